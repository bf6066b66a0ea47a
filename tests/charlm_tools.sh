#!/bin/sh
# End-to-end tests of what charlm-generate and charlm-score share with the
# other tools, and of their defaults (issue 12): the default model path
# charlm.model round trip, --prime-file, the seed -v prints reproduces the
# sample, the final line break, one name for standard input, the invalid
# UTF-8 warning limit and its summary line, --strict, exit codes for usage
# errors, a full disk (/dev/full) and a closed pipe.  A tiny model trained
# in seconds, in a clean temporary directory.
. "${top_srcdir:-.}/tests/setup"
TRAIN=$BIN/charlm-train
GEN=$BIN/charlm-generate
SCORE=$BIN/charlm-score
for t in "$TRAIN" "$GEN" "$SCORE"; do
    [ -x "$t" ] || skip_ "$t not built"
done

# The file ends with a line break (and is not empty).
ends_with_newline() { [ -s "$1" ] && [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ]; }

# Lines of stderr about invalid UTF-8: the warnings proper, the summaries.
nwarnings() { grep -c ': invalid UTF-8$' "$1"; }

# ---- a tiny model at the default path ----------------------------------------
W=$T/work
mkdir "$W" || framework_failure_ "mkdir $W"
line='nel mezzo del cammin di nostra vita mi ritrovai per una selva oscura.'
i=0
: > "$T/rep.txt"
while [ $i -lt 60 ]; do
    echo "$line" >> "$T/rep.txt"
    i=$((i + 1))
done
SMALL="--layers 1 --hidden 32 --embed 8 --batch 4 --seq-len 16 --dropout 0 --threads 1 --seed 7"
# charlm-train -o charlm.model: the name charlm-train writes by default.
(cd "$W" && "$TRAIN" $SMALL --max-steps 60 --time-limit 0 --lr 0.01 -q -o charlm.model \
    < "$T/rep.txt") || framework_failure_ "charlm-train failed"
[ -s "$W/charlm.model" ] || framework_failure_ "no $W/charlm.model"
M=$W/charlm.model

# ---- the default model path ------------------------------------------------------
(cd "$W" && "$GEN" --length 80 --seed 3 > "$T/def.gen" 2> "$T/def.err")
check "generate without -m reads ./charlm.model" test $? -eq 0 -a -s "$T/def.gen"
"$GEN" -m "$M" --length 80 --seed 3 > "$T/m.gen"
check "... the same sample as -m charlm.model" compare "$T/m.gen" "$T/def.gen"
(cd "$W" && "$SCORE" < "$T/rep.txt" > "$T/def.score" 2> "$T/def.serr")
check "score without -m reads ./charlm.model" has '^bits-per-character: [0-9]' "$T/def.score"
"$SCORE" -m "$M" < "$T/rep.txt" > "$T/m.score"
check "... the same scores as -m charlm.model" compare "$T/m.score" "$T/def.score"
mkdir "$T/empty"
for tool in charlm-generate charlm-score; do
    check "$tool: no -m and no charlm.model: exit 2" \
        sh -c 'cd "$1" && "$2" < /dev/null > /dev/null 2> "$3"; test $? -eq 2' \
        sh "$T/empty" "$BIN/$tool" "$T/nomodel.err"
    printf '%s: no model given and charlm.model not found (train one with charlm-train, or give -m MODEL)\n%s\n' \
        "$tool" "Try '$tool --help' for more information." > "$T/nomodel.exp"
    check "$tool: no model: message" compare "$T/nomodel.exp" "$T/nomodel.err"
    check "$tool: a missing -m MODEL is a runtime error (exit 1)" \
        run_ 1 "$T/m1.err" "$BIN/$tool" -m "$T/empty/none.model" < "$T/rep.txt"
    check "$tool: missing model: message" has "^$tool: $T/empty/none.model" "$T/m1.err"
    check "$tool: --help names the default" sh -c '"$1" --help | grep -q "charlm.model"' sh "$BIN/$tool"
done

# ---- the seed, the final line break, the length ------------------------------------
run_ 0 "$T/v.err" "$GEN" -m "$M" -v --length 120 > "$T/v.gen"
check "-v prints the seed" has '^charlm-generate: seed [0-9][0-9]*$' "$T/v.err"
check "-v prints the model" has "^charlm-generate: model $M\$" "$T/v.err"
seed=$(sed -n 's/^charlm-generate: seed \([0-9]*\)$/\1/p' "$T/v.err")
"$GEN" -m "$M" --length 120 --seed "$seed" > "$T/v2.gen"
check "--seed with the seed -v printed gives the same sample" compare "$T/v.gen" "$T/v2.gen"
"$GEN" -m "$M" --length 120 --seed "$seed" -v > /dev/null 2> "$T/v3.err"
check "-v with --seed prints that seed" has "^charlm-generate: seed $seed\$" "$T/v3.err"
check "no -v: nothing on stderr" test ! -s "$T/def.err"
# The model's characters are ASCII, so bytes are characters here: a sample
# of 37 is the first 37 characters of a longer one with the same seed, plus
# a line break when the 37th is not one.
for s in 1 2 3 4 5 6 7 8; do
    "$GEN" -m "$M" --length 37 --seed $s --temperature 1.5 > "$T/nl.gen"
    check "output ends with a line break (seed $s)" ends_with_newline "$T/nl.gen"
    "$GEN" -m "$M" --length 400 --seed $s --temperature 1.5 > "$T/nl.long"
    head -c 37 "$T/nl.long" > "$T/nl.exp"
    ends_with_newline "$T/nl.exp" || echo >> "$T/nl.exp"
    check "37 characters drawn, then the line break (seed $s)" compare "$T/nl.exp" "$T/nl.gen"
done
"$GEN" -m "$M" --length 0 --prime abc > "$T/l0.gen"
printf 'abc\n' > "$T/l0.exp"
check "--length 0 --prime abc: the prime and a line break" compare "$T/l0.exp" "$T/l0.gen"
"$GEN" -m "$M" --length 0 > "$T/l00.gen"
check "--length 0 and no prime: nothing at all" test ! -s "$T/l00.gen"
prime=$(printf 'ab\nx')
prime=${prime%x} # "ab" and a line break
"$GEN" -m "$M" --length 10 --prime "$prime" --seed 1 > "$T/p.gen"
check "a prime that ends a line" has '^ab$' "$T/p.gen"
check "... and the sample after it ends with a line break" ends_with_newline "$T/p.gen"

# ---- --prime-file ------------------------------------------------------------------
printf 'nel mezzo del' > "$T/prime.txt"
"$GEN" -m "$M" --prime-file "$T/prime.txt" --length 60 --seed 4 > "$T/pf.gen"
check "--prime-file: exit 0" test $? -eq 0
"$GEN" -m "$M" --prime 'nel mezzo del' --length 60 --seed 4 > "$T/pp.gen"
check "--prime-file = --prime with the file's text" compare "$T/pp.gen" "$T/pf.gen"
check "--prime-file: printed first" has '^nel mezzo del' "$T/pf.gen"
"$GEN" -m "$M" --prime-file - --length 60 --seed 4 < "$T/prime.txt" > "$T/pfs.gen"
check "--prime-file - reads stdin" compare "$T/pp.gen" "$T/pfs.gen"
printf 'nel mezzo\n' > "$T/prime2.txt"
"$GEN" -m "$M" --prime-file "$T/prime2.txt" --length 30 --seed 4 > "$T/pf2.gen"
check "--prime-file keeps its line break" has '^nel mezzo$' "$T/pf2.gen"
check "--prime-file and --prime: usage error" \
    run_ 2 "$T/pb.err" "$GEN" -m "$M" --prime x --prime-file "$T/prime.txt"
check "both: hint" has "Try 'charlm-generate --help'" "$T/pb.err"
check "--prime-file: missing file" \
    run_ 1 "$T/pm.err" "$GEN" -m "$M" --prime-file "$T/nonexistent.txt"
check "missing prime file: message" has "^charlm-generate: $T/nonexistent.txt: No such file" "$T/pm.err"

# ---- invalid UTF-8: the same warnings, limit and summary in every tool --------------
# 8 bad lines among good ones: 5 warnings, then one summary for the other 3.
: > "$T/bad.txt"
i=1
while [ $i -le 8 ]; do
    printf 'nel mezzo\nbad \377 byte %d\n' $i >> "$T/bad.txt"
    i=$((i + 1))
done
# first 5 bad lines: 2, 4, 6, 8, 10
expect_warnings() { # TOOL NAME: the expected stderr
    for l in 2 4 6 8 10; do
        printf '%s: %s:%d: invalid UTF-8\n' "$1" "$2" $l
    done
    printf '%s: %s: ... and 3 more lines with invalid UTF-8\n' "$1" "$2"
}
"$SCORE" -m "$M" "$T/bad.txt" > /dev/null 2> "$T/s.err"
check "score: invalid UTF-8 replaced, exit 0" test $? -eq 0
expect_warnings charlm-score "$T/bad.txt" > "$T/s.exp"
check "score: 5 warnings and a summary" compare "$T/s.exp" "$T/s.err"
"$SCORE" -m "$M" < "$T/bad.txt" > /dev/null 2> "$T/s2.err"
expect_warnings charlm-score '<stdin>' > "$T/s2.exp"
check "score: standard input is <stdin>" compare "$T/s2.exp" "$T/s2.err"
"$SCORE" -m "$M" - < "$T/bad.txt" > /dev/null 2> "$T/s3.err"
check "score: '-' is <stdin> too" compare "$T/s2.exp" "$T/s3.err"
# Each file has its own count and summary.
"$SCORE" -m "$M" "$T/bad.txt" - < "$T/bad.txt" > /dev/null 2> "$T/s4.err"
cat "$T/s.exp" "$T/s2.exp" > "$T/s4.exp"
check "score: warnings per file" compare "$T/s4.exp" "$T/s4.err"
head -n 6 "$T/bad.txt" > "$T/bad3.txt"
"$SCORE" -m "$M" "$T/bad3.txt" > /dev/null 2> "$T/s5.err"
check "score: 3 bad lines: 3 warnings, no summary" \
    sh -c '[ "$(grep -c "invalid UTF-8" "$1")" -eq 3 ] && ! grep -q "more lines" "$1"' sh "$T/s5.err"
check "score --strict: exit 1" run_ 1 "$T/s6.err" "$SCORE" -m "$M" --strict < "$T/bad.txt"
printf 'charlm-score: <stdin>:2: invalid UTF-8\n' > "$T/s6.exp"
check "score --strict: file:line message" compare "$T/s6.exp" "$T/s6.err"
printf 'x' | "$SCORE" -m "$M" > /dev/null 2> "$T/s7.err"
check "score: nothing to score on stdin names <stdin>" has '^charlm-score: <stdin>: nothing to score' "$T/s7.err"

"$GEN" -m "$M" --prime-file "$T/bad.txt" --length 5 --seed 1 > "$T/g.out" 2> "$T/g.err"
check "generate: invalid UTF-8 in the prime file replaced, exit 0" test $? -eq 0
expect_warnings charlm-generate "$T/bad.txt" > "$T/g.exp"
check "generate: 5 warnings and a summary" compare "$T/g.exp" "$T/g.err"
check "generate: the prime printed with U+FFFD" has '^bad � byte 1$' "$T/g.out"
"$GEN" -m "$M" --prime-file - --length 5 --seed 1 < "$T/bad.txt" > /dev/null 2> "$T/g2.err"
expect_warnings charlm-generate '<stdin>' > "$T/g2.exp"
check "generate: standard input is <stdin>" compare "$T/g2.exp" "$T/g2.err"
check "generate --strict: exit 1" \
    run_ 1 "$T/g3.err" "$GEN" -m "$M" --strict --prime-file "$T/bad.txt" --length 5
printf 'charlm-generate: %s:2: invalid UTF-8\n' "$T/bad.txt" > "$T/g3.exp"
check "generate --strict: file:line message" compare "$T/g3.exp" "$T/g3.err"

# ---- usage errors exit 2 with the hint ----------------------------------------------
usage_error() {
    tool=$1; shift
    "$BIN/$tool" "$@" < "$T/rep.txt" > /dev/null 2> "$T/usage.err"
    rc=$?
    if [ $rc -ne 2 ] || ! grep -q "^Try '$tool --help' for more information.\$" "$T/usage.err"; then
        echo "FAIL: $tool $*: exit $rc, expected 2 with a hint:" >&2
        cat "$T/usage.err" >&2
        return 1
    fi
}
for tool in charlm-generate charlm-score; do
    check "$tool --bogus" usage_error $tool -m "$M" --bogus
    check "$tool: message" has "^$tool: unrecognized option '--bogus'" "$T/usage.err"
    check "$tool -x" usage_error $tool -m "$M" -x
    check "$tool: message" has "^$tool: invalid option -- 'x'" "$T/usage.err"
    check "$tool -m (no argument)" usage_error $tool -m
    check "$tool: message" has "^$tool: option requires an argument -- 'm'" "$T/usage.err"
    check "$tool --model (no argument)" usage_error $tool --model
    check "$tool: message" has "^$tool: option '--model' requires an argument" "$T/usage.err"
    check "$tool --strict=yes" usage_error $tool -m "$M" --strict=yes
    check "$tool: message" has "^$tool: option '--strict' doesn't allow an argument" "$T/usage.err"
    check "$tool --threads 0" usage_error $tool -m "$M" --threads 0
    check "$tool --help: exit 0, on stdout" sh -c '"$1" --help > "$2" 2> "$2.err" && [ -s "$2" ] && [ ! -s "$2.err" ]' \
        sh "$BIN/$tool" "$T/help"
    check "$tool --version: exit 0" sh -c '"$1" --version | grep -q "^$2 (libnlp) "' sh "$BIN/$tool" "$tool"
done

# ---- write errors: a full disk exits 1 with a message; a closed pipe is quiet --------
full_disk() { # TOOL ARGS...: exit 1 and "TOOL: write error: ..." on /dev/full
    tool=$1; shift
    "$BIN/$tool" "$@" > /dev/full 2> "$T/full.err"
    rc=$?
    if [ $rc -ne 1 ] || ! grep -q "^$tool: write error: No space left on device\$" "$T/full.err"; then
        echo "FAIL: $tool $* > /dev/full: exit $rc, expected 1 with a write error:" >&2
        cat "$T/full.err" >&2
        return 1
    fi
}
if [ -w /dev/full ]; then
    check "generate > /dev/full" full_disk charlm-generate -m "$M" --length 10000 --seed 1
    check "generate, short output > /dev/full" full_disk charlm-generate -m "$M" --length 3 --seed 1
    check "generate --length 0 --prime x > /dev/full" full_disk charlm-generate -m "$M" --length 0 --prime x
    check "score > /dev/full" full_disk charlm-score -m "$M" "$T/rep.txt"
    for tool in charlm-generate charlm-score; do
        check "$tool --help > /dev/full" full_disk $tool --help
        check "$tool --version > /dev/full" full_disk $tool --version
    done
else
    echo "note: no writable /dev/full; full-disk checks not run" >&2
fi
# `charlm-generate | head`: killed by SIGPIPE (status 141 in the shell),
# silently, even when started with SIGPIPE ignored.
for ign in no yes; do
    (
        [ $ign = yes ] && trap '' PIPE
        "$GEN" -m "$M" --length 200000 --seed 1 2> "$T/pipe.err"
        echo $? > "$T/pipe.rc"
    ) | head -c 100 > /dev/null
    check "closed pipe (SIGPIPE ignored: $ign): generate stops, killed by SIGPIPE" \
        test "$(cat "$T/pipe.rc")" -eq 141
    check "closed pipe (SIGPIPE ignored: $ign): nothing on stderr" test ! -s "$T/pipe.err"
done

Exit
