# End-to-end tests of seq2seq bleu and of the seq2seq dispatcher: the
# output lines (scores from sacreBLEU 2.6.0 on the same files), every
# option, HYP from a file or standard input, CRLF, mismatched and empty
# inputs, invalid UTF-8 (warnings, their summary, --strict), usage errors
# and their exit codes.
. "${top_srcdir:-.}/tests/setup"
s2s=$BIN/seq2seq
[ -x "$s2s" ] || framework_failure_ "no $s2s"
version=$("$s2s" --version | sed -n 's/^seq2seq (libnlp) //p')
[ -n "$version" ] || framework_failure_ "no version from seq2seq --version"

# A small corpus with 13a at work: punctuation, a number, entities, '-'
# between digits; the hypotheses differ in case, punctuation and words.
printf 'The cat sat on the mat.\nA man, 3.14 &quot;km&quot; away.\nIt is 2-3 times faster!\n' \
    > "$T/ref"
printf 'the cat sat on a mat .\nA man 3.14 "km" away.\nIt is two times faster\n' > "$T/hyp"

# --- the dispatcher ------------------------------------------------------------
check "--help lists bleu" sh -c "'$s2s' --help > '$T/help' && grep -q '^  bleu ' '$T/help'"
for opt in --lowercase --tokenize --chrf --strict --help; do
    check "bleu --help lists $opt" has "$opt" "$T/help"
done
check "bleu --help" sh -c "'$s2s' bleu --help > '$T/bhelp' && grep -q '^Usage: seq2seq bleu' '$T/bhelp'"
check "bleu -h" sh -c "'$s2s' bleu -h | cmp -s - '$T/bhelp'"
check "--version" sh -c "'$s2s' --version | grep -q '^seq2seq (libnlp) '"
check "no command: exit 2" run_ 2 "$T/err" "$s2s"
check "unknown command: exit 2" run_ 2 "$T/err" "$s2s" frobnicate
check "unknown command: message" has "^seq2seq: unknown command 'frobnicate'" "$T/err"
check "unknown command: Try" has "^Try 'seq2seq --help' for more information.$" "$T/err"
check "unknown option before the command: exit 2" run_ 2 "$T/err" "$s2s" --frob

# --- scores ---------------------------------------------------------------------
cat > "$T/want" <<EOF
BLEU = 39.96 90.0/64.7/35.7/27.3 (BP = 0.819 ratio = 0.833 hyp_len = 20 ref_len = 24)
nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:libnlp-$version
EOF
check "default: BLEU and signature" sh -c "'$s2s' bleu '$T/ref' < '$T/hyp' > '$T/out'"
check "default: lines" compare "$T/want" "$T/out"
check "HYP as a file" sh -c "'$s2s' bleu '$T/ref' '$T/hyp' | cmp -s - '$T/out'"
check "HYP as -" sh -c "'$s2s' bleu '$T/ref' - < '$T/hyp' | cmp -s - '$T/out'"
check "REF from stdin" sh -c "'$s2s' bleu - '$T/hyp' < '$T/ref' | cmp -s - '$T/out'"

cat > "$T/want" <<EOF
BLEU = 39.96 90.0/64.7/35.7/27.3 (BP = 0.819 ratio = 0.833 hyp_len = 20 ref_len = 24)
nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:libnlp-$version
chrF2 = 46.19
nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:libnlp-$version
EOF
check "--chrf" sh -c "'$s2s' bleu --chrf '$T/ref' '$T/hyp' > '$T/out'"
check "--chrf: lines" compare "$T/want" "$T/out"

cat > "$T/want" <<EOF
BLEU = 45.93 90.0/70.6/42.9/36.4 (BP = 0.819 ratio = 0.833 hyp_len = 20 ref_len = 24)
nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:libnlp-$version
chrF2 = 47.19
nrefs:1|case:lc|eff:yes|nc:6|nw:0|space:no|version:libnlp-$version
EOF
check "--lowercase" sh -c "'$s2s' bleu --lowercase --chrf '$T/ref' '$T/hyp' > '$T/out'"
check "--lowercase: lines" compare "$T/want" "$T/out"

cat > "$T/want" <<EOF
BLEU = 16.36 58.8/21.4/9.1/6.2 (BP = 1.000 ratio = 1.062 hyp_len = 17 ref_len = 16)
nrefs:1|case:mixed|eff:no|tok:none|smooth:exp|version:libnlp-$version
EOF
check "--tokenize none" sh -c "'$s2s' bleu --tokenize none '$T/ref' '$T/hyp' > '$T/out'"
check "--tokenize none: lines" compare "$T/want" "$T/out"
check "--tokenize=13a is the default" sh -c \
    "'$s2s' bleu --tokenize=13a '$T/ref' '$T/hyp' | head -n 1 | grep -q '^BLEU = 39.96 '"

cat > "$T/want" <<EOF
BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 24 ref_len = 24)
nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:libnlp-$version
EOF
check "identical: 100" sh -c "'$s2s' bleu '$T/ref' '$T/ref' > '$T/out'"
check "identical: lines" compare "$T/want" "$T/out"

# CRLF and trailing white space are stripped as sacreBLEU strips them.
sed 's/$/ \r/' "$T/hyp" > "$T/hyp.crlf"
check "CRLF hypotheses score as LF" sh -c \
    "'$s2s' bleu '$T/ref' '$T/hyp.crlf' | head -n 1 | grep -q '^BLEU = 39.96 '"
# Empty lines are sentences; no overlap scores 0.
printf '\n\n\n' > "$T/empty3"
check "empty hypotheses" sh -c "'$s2s' bleu '$T/ref' '$T/empty3' > '$T/out'"
check "empty hypotheses: BLEU 0, BP 0" has \
    '^BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 24)$' "$T/out"
printf 'QZQ\nZQ Q\nJ\n' > "$T/other"
check "no overlap" sh -c "'$s2s' bleu --chrf '$T/ref' '$T/other' > '$T/out'"
check "no overlap: 0" has '^BLEU = 0.00 0.0/0.0/0.0/0.0 ' "$T/out"
check "no overlap: chrF 0" has '^chrF2 = 0.00$' "$T/out"

# --- bad input ---------------------------------------------------------------------
head -n 2 "$T/hyp" > "$T/hyp2"
check "fewer hypotheses: exit 1" run_ 1 "$T/err" "$s2s" bleu "$T/ref" "$T/hyp2"
check "fewer hypotheses: message" has \
    "^seq2seq: $T/ref:3: no hypothesis for this reference ($T/hyp2 has 2 lines)$" "$T/err"
check "fewer hypotheses: nothing on stdout" sh -c \
    "! '$s2s' bleu '$T/ref' '$T/hyp2' 2> /dev/null | grep -q ."
check "more hypotheses: exit 1" run_ 1 "$T/err" sh -c "cat '$T/hyp' '$T/hyp' | '$s2s' bleu '$T/ref'"
check "more hypotheses: message" has \
    "^seq2seq: <stdin>:4: no reference for this hypothesis ($T/ref has 3 lines)$" "$T/err"
: > "$T/empty"
check "empty files: exit 1" run_ 1 "$T/err" "$s2s" bleu "$T/empty" "$T/empty"
check "empty files: message" has "^seq2seq: $T/empty: no lines: nothing to score$" "$T/err"
check "missing file: exit 1" run_ 1 "$T/err" "$s2s" bleu "$T/nonexistent" "$T/hyp"
check "missing file: message" has "^seq2seq: $T/nonexistent: No such file or directory$" "$T/err"

# Invalid UTF-8: replaced and warned about (five lines per file, then a
# count), or refused with --strict.
printf 'the cat sat on a mat \377.\nA man 3.14 "km" away.\nIt is two times faster\n' > "$T/hyp.bad"
check "invalid UTF-8: exit 0" run_ 0 "$T/err" sh -c "'$s2s' bleu '$T/ref' '$T/hyp.bad' > '$T/out'"
check "invalid UTF-8: a replaced byte is a token" has "hyp_len = 21 " "$T/out"
check "invalid UTF-8: warning" has "^seq2seq: $T/hyp.bad:1: invalid UTF-8$" "$T/err"
check "invalid UTF-8: one warning" test "$(wc -l < "$T/err")" -eq 1
check "--strict: exit 1" run_ 1 "$T/err" "$s2s" bleu --strict "$T/ref" "$T/hyp.bad"
check "--strict: message" has "^seq2seq: $T/hyp.bad:1: invalid UTF-8$" "$T/err"
check "--strict on valid input" sh -c "'$s2s' bleu --strict '$T/ref' '$T/hyp' | grep -q '^BLEU = 39.96 '"
awk '{ print "\300 " $0 }' "$T/ref" "$T/ref" "$T/ref" > "$T/ref9.bad"
cat "$T/hyp" "$T/hyp" "$T/hyp" > "$T/hyp9"
check "many invalid lines: exit 0" run_ 0 "$T/err" sh -c \
    "'$s2s' bleu --chrf --lowercase '$T/ref9.bad' '$T/hyp9' > '$T/out'"
check "many invalid lines: 5 warnings" test "$(grep -c ':[0-9]*: invalid UTF-8$' "$T/err")" -eq 5
check "many invalid lines: summary" has \
    "^seq2seq: $T/ref9.bad: ... and 4 more lines with invalid UTF-8$" "$T/err"

# Usage errors.
check "no REF: exit 2" run_ 2 "$T/err" "$s2s" bleu
check "no REF: message" has "missing REF operand" "$T/err"
check "no REF: Try" has "^Try 'seq2seq --help' for more information.$" "$T/err"
check "extra operand: exit 2" run_ 2 "$T/err" "$s2s" bleu "$T/ref" "$T/hyp" "$T/hyp"
check "extra operand: message" has "extra operand '$T/hyp'" "$T/err"
check "both stdin: exit 2" run_ 2 "$T/err" "$s2s" bleu - -
check "bad --tokenize: exit 2" run_ 2 "$T/err" "$s2s" bleu --tokenize intl "$T/ref"
check "bad --tokenize: message" has "invalid value for --tokenize: 'intl' (expected 13a or none)" "$T/err"
check "--tokenize without value: exit 2" run_ 2 "$T/err" "$s2s" bleu "$T/ref" --tokenize
check "unknown option: exit 2" run_ 2 "$T/err" "$s2s" bleu --smooth floor "$T/ref"
check "unknown option: message" has "unrecognized option '--smooth'" "$T/err"
check "--chrf=yes: exit 2" run_ 2 "$T/err" "$s2s" bleu --chrf=yes "$T/ref"
Exit
