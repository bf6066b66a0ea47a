# End-to-end tests of tokenize: every option, language rules, invalid
# UTF-8 (message and exit codes), empty input, files and stdin, long lines.
. "${top_srcdir:-.}/tests/setup"
tok=$BIN/tokenize
[ -x "$tok" ] || framework_failure_ "no $tok"

# t NAME INPUT EXPECTED [OPTIONS...]: tokenize INPUT (printf format) and
# compare with EXPECTED (printf format).
t() {
    name=$1 input=$2 want=$3
    shift 3
    printf "$input" > "$T/in"
    printf "$want" > "$T/exp"
    if "$tok" "$@" < "$T/in" > "$T/out" 2> "$T/err" && compare "$T/exp" "$T/out" &&
        [ ! -s "$T/err" ]; then
        echo "ok: $name"
    else
        echo "FAIL: $name" >&2
        cat "$T/err" >&2
        fail=1
    fi
}

# --- default: one line in, one line out -------------------------------------
t "words and punctuation" 'Hello, world!\n' 'Hello , world !\n'
t "whitespace dropped" '  a\t\tb   c \n\nd\n' 'a b c\n\nd\n'
t "final line without newline" 'a b\nc' 'a b\nc\n'
t "CRLF" 'a b\r\nc\r\n' 'a b\nc\n'
t "NUL and controls separate tokens" 'a\000b\001c\n' 'a b c\n'
t "numbers stay whole" 'Pi is 3.14, not 1,000 or 12:30 on 08/16/2000.\n' \
  'Pi is 3.14 , not 1,000 or 12:30 on 08/16/2000 .\n'
t "URL and e-mail" 'See http://example.com/a?b=1&c=2, or www.gnu.org. Mail john.doe@example.org!\n' \
  'See http://example.com/a?b=1&c=2 , or www.gnu.org . Mail john.doe@example.org !\n'
t "URL in parentheses" '(https://en.wikipedia.org/wiki/C_(language))\n' \
  '( https://en.wikipedia.org/wiki/C_(language) )\n'
t "abbreviations" 'Dr. Smith, e.g. in the U.S. and Jennifer M. Anderson etc. left\n' \
  'Dr. Smith , e.g. in the U.S. and Jennifer M. Anderson etc. left\n' --lang en
t "punctuation runs" 'Wait... what?! -- no :-) ok\n' 'Wait ... what ?! -- no :-) ok\n'
t "hyphenated words whole by default" 'a counter-attack\n' 'a counter-attack\n'
t "combining mark and emoji stay in the token" 'cafe\314\201 \360\237\221\215\360\237\217\275\n' \
  'caf\303\251 \360\237\221\215\360\237\217\275\n'

# --- --lang en ----------------------------------------------------------------
t "en clitics" "don't can't won't it's I'm we're they've I'd we'll\n" \
  "do n't ca n't wo n't it 's I 'm we 're they 've I 'd we 'll\n" --lang en
t "en typographic apostrophe" 'don\342\200\231t it\342\200\231s\n' \
  'do n\342\200\231t it \342\200\231s\n' --lang en
t "en keeps other apostrophes" "o'clock O'Neill rock'n'roll\n" "o'clock O'Neill rock'n'roll\n" --lang en
t "en hyphens as UD EWT" 'a 15-year e-mail from 303-832-8160\n' \
  'a 15 - year e-mail from 303-832-8160\n' --lang en
t "no rules without --lang" "don't\n" "don't\n"

# --- --lang it ----------------------------------------------------------------
t "it elision" "l'amor dell'anima c'\303\250 un'altra\n" \
  "l' amor dell' anima c' \303\250 un' altra\n" --lang it
t "it typographic apostrophe" 'l\342\200\231amor dell\342\200\231anima\n' \
  'l\342\200\231 amor dell\342\200\231 anima\n' --lang it
t "it apocope" "un po' di pane\n" "un po' di pane\n" --lang it
t "it Divina Commedia" "Nel mezzo del cammin di nostra vita\nmi ritrovai per una selva oscura,\n" \
  "Nel mezzo del cammin di nostra vita\nmi ritrovai per una selva oscura ,\n" --lang it

# --- --unit ---------------------------------------------------------------------
t "unit sentence" 'Mr. Smith went home. He slept! Then\n\nA b.\n' \
  'Mr. Smith went home .\nHe slept !\nThen\n\nA b .\n' --unit sentence --lang en
t "unit char" 'e\314\201a \360\237\207\256\360\237\207\271!\n' \
  '\303\251 a \360\237\207\256\360\237\207\271 !\n' --unit char
t "unit char keeps combining marks with normalize none" 'e\314\201 x\n' 'e\314\201 x\n' \
  --unit char --normalize none
t "unit char family emoji" '\360\237\221\250\342\200\215\360\237\221\251\342\200\215\360\237\221\247 a\n' \
  '\360\237\221\250\342\200\215\360\237\221\251\342\200\215\360\237\221\247 a\n' -u char

# --- --lower, --normalize ---------------------------------------------------------
t "lower: full case folding" 'Stra\303\237e \316\243\316\231\316\243 \303\211T\303\211 HELLO\n' \
  'strasse \317\203\316\271\317\203 \303\251t\303\251 hello\n' --lower
t "lower keeps the tokenization" 'Dr. Smith\n' 'dr. smith\n' --lower --lang en
t "normalize nfc (default)" 'e\314\201\n' '\303\251\n'
t "normalize none" 'e\314\201\n' 'e\314\201\n' --normalize none
t "normalize nfkc" '\357\254\201x x\302\262 \357\274\241\n' 'fix x2 A\n' --normalize nfkc
t "normalize nfc keeps compatibility characters" '\357\254\201x\n' '\357\254\201x\n' --normalize=nfc

# --- --no-punct, --one-per-line -----------------------------------------------------
t "no-punct" 'Hello, world... $5 + 3!\n' 'Hello world $ 5 + 3\n' --no-punct
t "no-punct keeps sentence ends" 'A b. C d.\n' 'A b\nC d\n' --no-punct --unit sentence
t "one-per-line" 'a b\n\nc.\n' 'a\nb\n\n\nc\n.\n\n' --one-per-line
t "one-per-line with sentences" 'A b. C d.\n' 'A\nb\n.\n\nC\nd\n.\n\n' --one-per-line -u sentence

# --- empty input, files, stdin --------------------------------------------------------
: > "$T/empty"
"$tok" < "$T/empty" > "$T/out" 2> "$T/err"
check "empty input: exit 0" test $? -eq 0
check "empty input: nothing written" test ! -s "$T/out" -a ! -s "$T/err"
printf 'one\n' > "$T/f1"
printf 'two, three\n' > "$T/f2"
printf 'stdin\n' | "$tok" "$T/f1" - "$T/f2" > "$T/out"
printf 'one\nstdin\ntwo , three\n' > "$T/exp"
check "files and - in order" compare "$T/exp" "$T/out"
returns_ 1 "$tok" "$T/f1" "$T/nonexistent" "$T/f2" > "$T/out" 2> "$T/err"
check "missing file: exit 1" test $? -eq 0
check "missing file: message" grep -q "^tokenize: $T/nonexistent: No such file or directory\$" "$T/err"
printf 'one\ntwo , three\n' > "$T/exp"
check "missing file: the others are done" compare "$T/exp" "$T/out"

# --- invalid UTF-8 ----------------------------------------------------------------------
printf 'ok\nbad \377 here \300\257\nfine\n\355\240\200x\n' > "$T/bad"
"$tok" "$T/bad" > "$T/out" 2> "$T/err"
check "invalid UTF-8: exit 0" test $? -eq 0
printf 'ok\nbad \357\277\275 here \357\277\275\357\277\275\nfine\n\357\277\275\357\277\275\357\277\275x\n' > "$T/exp"
check "invalid UTF-8: replaced by U+FFFD per maximal subpart" compare "$T/exp" "$T/out"
printf 'tokenize: %s:2: invalid UTF-8\ntokenize: %s:4: invalid UTF-8\n' "$T/bad" "$T/bad" > "$T/exp"
check "invalid UTF-8: one warning per line" compare "$T/exp" "$T/err"
"$tok" < "$T/bad" > /dev/null 2> "$T/err"
check "invalid UTF-8 on stdin: named <stdin>" grep -q '^tokenize: <stdin>:2: invalid UTF-8$' "$T/err"
returns_ 1 "$tok" --strict "$T/bad" > "$T/out" 2> "$T/err"
check "strict: exit 1" test $? -eq 0
printf 'tokenize: %s:2: invalid UTF-8\n' "$T/bad" > "$T/exp"
check "strict: message" compare "$T/exp" "$T/err"
printf 'ok\n' > "$T/exp"
check "strict: output before the error is kept" compare "$T/exp" "$T/out"
printf 'caf\351s ok\n' | "$tok" > "$T/out" 2> /dev/null
printf 'caf\357\277\275s ok\n' > "$T/exp"
check "invalid byte inside a word stays in it" compare "$T/exp" "$T/out"
printf 'truncated \342\202' > "$T/trunc"
"$tok" "$T/trunc" > "$T/out" 2> "$T/err"
printf 'truncated \357\277\275\n' > "$T/exp"
check "truncated sequence at end of file: one U+FFFD" compare "$T/exp" "$T/out"
check "strict accepts valid input" returns_ 0 "$tok" --strict "$T/f2" > /dev/null

# --- a long line (memory proportional to it, no limit) ------------------------------------
awk 'BEGIN { for (i = 0; i < 300000; i++) printf "word%d, ", i % 1000 }' > "$T/long"
"$tok" "$T/long" > "$T/out"
check "long line: one output line" test "$(wc -l < "$T/out")" -eq 1
check "long line: all tokens" test "$(wc -w < "$T/out")" -eq 600000
check "long line: content" test "$(tail -c 10 "$T/out")" = "word999 ,"
awk 'BEGIN { for (i = 0; i < 3000000; i++) printf "x" }' > "$T/one"
"$tok" "$T/one" > "$T/out"
check "one 3 MB token" test "$(wc -c < "$T/out")" -eq 3000001

# --- usage ------------------------------------------------------------------------------
check "help exits 0" returns_ 0 "$tok" --help > "$T/help"
for opt in --unit --lang --lower --normalize --no-punct --one-per-line --strict --help --version; do
    check "help lists $opt" grep -q -e "$opt" "$T/help"
done
check "version" returns_ 0 "$tok" --version > /dev/null
check "unknown option: exit 2" returns_ 2 "$tok" --bogus < /dev/null 2> "$T/err"
check "unknown option: message" grep -q "^tokenize: unrecognized option '--bogus'" "$T/err"
check "unknown short option: exit 2" returns_ 2 "$tok" -x < /dev/null 2> "$T/err"
check "unknown short option: message" grep -q "^tokenize: invalid option -- 'x'" "$T/err"
check "missing argument: exit 2" returns_ 2 "$tok" --unit < /dev/null 2> "$T/err"
check "missing argument: message" grep -q "^tokenize: option '--unit' requires an argument" "$T/err"
check "bad --unit: exit 2" returns_ 2 "$tok" --unit=line < /dev/null 2> "$T/err"
check "bad --unit: message" grep -q "^tokenize: invalid value for --unit: 'line'" "$T/err"
check "bad --normalize: exit 2" returns_ 2 "$tok" --normalize=nfd < /dev/null 2> /dev/null
check "bad --lang: exit 2" returns_ 2 "$tok" --lang='e n' < /dev/null 2> "$T/err"
check "bad --lang: message" grep -q "^tokenize: invalid language 'e n'" "$T/err"
check "other ICU locales are accepted" returns_ 0 "$tok" --lang fr < "$T/f2" > /dev/null
check "--lower=x: exit 2" returns_ 2 "$tok" --lower=x < /dev/null 2> "$T/err"
check "--lower=x: message" grep -q "^tokenize: option '--lower' doesn't allow an argument" "$T/err"
check "--lower=x: hint" grep -q "^Try 'tokenize --help' for more information.\$" "$T/err"
check "-u without argument: message" sh -c '"$1" -u < /dev/null 2>&1 | grep -q "^tokenize: option requires an argument -- .u.\$"' sh "$tok"

# --- the invalid UTF-8 warnings every tool gives: 5 lines, then a summary ----------
# (issue 12; tests/charlm_tools.sh checks the same in charlm-score/-generate)
: > "$T/bad8"
i=1
while [ $i -le 8 ]; do
    printf 'ok line\nbad \377 line %d\n' $i >> "$T/bad8"
    i=$((i + 1))
done
expect_warnings() { # NAME: the expected stderr for $T/bad8 read as NAME
    for l in 2 4 6 8 10; do
        printf 'tokenize: %s:%d: invalid UTF-8\n' "$1" $l
    done
    printf 'tokenize: %s: ... and 3 more lines with invalid UTF-8\n' "$1"
}
"$tok" "$T/bad8" > "$T/out" 2> "$T/err"
check "8 bad lines: exit 0" test $? -eq 0
expect_warnings "$T/bad8" > "$T/exp"
check "8 bad lines: 5 warnings and a summary" compare "$T/exp" "$T/err"
check "8 bad lines: every line tokenized" test "$(grep -c '^bad � line [1-8]$' "$T/out")" -eq 8
"$tok" < "$T/bad8" > /dev/null 2> "$T/err"
expect_warnings '<stdin>' > "$T/exp"
check "8 bad lines on stdin: named <stdin>" compare "$T/exp" "$T/err"
"$tok" "$T/bad8" - < "$T/bad8" > /dev/null 2> "$T/err"
{ expect_warnings "$T/bad8"; expect_warnings '<stdin>'; } > "$T/exp"
check "warnings counted per file" compare "$T/exp" "$T/err"
# Each warning comes just before its line's output, the summary after the
# file's output.
"$tok" "$T/bad8" > "$T/both" 2>&1
check "warning before its line's output" sh -c 'sed -n 2p "$1" | grep -q ":2: invalid UTF-8$" && sed -n 3p "$1" | grep -q "^bad � line 1$"' sh "$T/both"
check "summary after the file's output" sh -c 'tail -n 1 "$1" | grep -q "and 3 more lines"' sh "$T/both"
returns_ 1 "$tok" --strict < "$T/bad8" > /dev/null 2> "$T/err"
check "strict on stdin: exit 1" test $? -eq 0
printf 'tokenize: <stdin>:2: invalid UTF-8\n' > "$T/exp"
check "strict on stdin: <stdin>:LINE message" compare "$T/exp" "$T/err"

# --- write errors: a full disk is exit 1 with a message; a closed pipe is quiet ----
if [ -w /dev/full ]; then
    for args in "$T/f2" "$T/long" "--help" "--version"; do
        "$tok" $args > /dev/full 2> "$T/err"
        rc=$?
        check "tokenize $(basename -- "$args") > /dev/full: exit 1" test $rc -eq 1
        check "tokenize $(basename -- "$args") > /dev/full: message" \
            grep -q '^tokenize: write error: No space left on device$' "$T/err"
        check "tokenize $(basename -- "$args") > /dev/full: one message" test "$(wc -l < "$T/err")" -eq 1
    done
fi
for ign in no yes; do
    (
        [ $ign = yes ] && trap '' PIPE
        "$tok" "$T/long" "$T/long" "$T/long" 2> "$T/pipe.err"
        echo $? > "$T/pipe.rc"
    ) | head -c 100 > /dev/null
    check "closed pipe (SIGPIPE ignored: $ign): killed by SIGPIPE" test "$(cat "$T/pipe.rc")" -eq 141
    check "closed pipe (SIGPIPE ignored: $ign): nothing on stderr" test ! -s "$T/pipe.err"
done
Exit
