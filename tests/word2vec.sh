# End-to-end tests of word2vec: training on a synthetic two-group corpus,
# determinism, bad input, both command-line spellings, the subcommands,
# word classes, output files that survive failures, and (when gensim is
# installed) loading the output with gensim.  Regressions are named after
# their issue: "issue11-1" is defect 1 of issue 11.
. "${top_srcdir:-.}/tests/setup"
W2V=$BIN/word2vec
[ -x "$W2V" ] || framework_failure_ "$W2V not built"

# Two groups of ten words; a line holds words of one group only, so words of
# a group share contexts and never meet the other group.
awk 'BEGIN { srand(42); for (i = 0; i < 600; i++) {
        g = rand() < 0.5 ? "a" : "b"; line = "";
        for (k = 0; k < 8; k++) line = line g int(rand() * 10) " ";
        print line } }' > "$T/corpus"
FAST="-size 20 -min-count 1 -sample 0 -threads 1 -iter 4 --seed 3"

# same_group FILE: every neighbour listed shares the query's first letter.
same_group() {
    awk -F'\t' '{ if (substr($1, 1, 1) != substr($2, 1, 1)) bad = 1 } END { exit bad || NR == 0 }' "$1"
}

# --- training: neighbours come from the same group ------------------------
check "skip-gram trains" "$W2V" $FAST -cbow 0 -train "$T/corpus" -output "$T/sg.txt"
check "header says 21 words of 20 dimensions" test "$(head -n 1 "$T/sg.txt")" = "21 20"
check "first word is </s>" test "$(sed -n 2p "$T/sg.txt" | cut -d' ' -f1)" = "</s>"
"$W2V" similar -m "$T/sg.txt" -n 5 a3 b7 > "$T/near" 2> "$T/err"
check "similar exits 0" test $? -eq 0
check "similar prints 5 neighbours per word" test "$(wc -l < "$T/near")" -eq 10
check "skip-gram neighbours are in the same group" same_group "$T/near"

check "CBOW + hs, binary output" "$W2V" $FAST -cbow 1 -hs 1 -negative 0 -binary 1 \
    -train "$T/corpus" -output "$T/cb.bin"
"$W2V" similar -m "$T/cb.bin" -n 5 a1 b2 > "$T/near2"
check "CBOW neighbours are in the same group" same_group "$T/near2"
"$W2V" $FAST --shared-negatives=1 -cbow 0 < "$T/corpus" > "$T/sh.txt"
"$W2V" similar -m "$T/sh.txt" -n 5 a5 b5 > "$T/near3"
check "shared negatives: neighbours in the same group" same_group "$T/near3"

# --- determinism and input paths ---------------------------------------------
"$W2V" $FAST -cbow 0 < "$T/corpus" > "$T/r1.txt"
"$W2V" $FAST -cbow 0 < "$T/corpus" > "$T/r2.txt"
check "one thread with --seed is repeatable" compare "$T/r1.txt" "$T/r2.txt"
check "stdin and -train give the same vectors" compare "$T/sg.txt" "$T/r1.txt"
cat "$T/corpus" | "$W2V" $FAST -cbow 0 > "$T/r3.txt"
check "a pipe (spooled) gives the same vectors" compare "$T/r1.txt" "$T/r3.txt"
"$W2V" $FAST -cbow 0 --seed 4 < "$T/corpus" > "$T/r4.txt"
check "another seed gives other vectors" test "$(cmp -s "$T/r1.txt" "$T/r4.txt"; echo $?)" -ne 0
check "two threads train" "$W2V" -size 20 -min-count 1 -threads 2 -iter 1 -train "$T/corpus" -output "$T/t2.txt"
check "two threads: all rows written" test "$(wc -l < "$T/t2.txt")" -eq 22

printf 'x\000y z\nx y\n' > "$T/nul"
"$W2V" -size 4 -min-count 1 -threads 1 -iter 1 -train "$T/nul" > "$T/nul.txt"
check "NUL separates words" test "$(cut -d' ' -f1 "$T/nul.txt" | sort | tr '\n' ' ')" = "4 </s> x y z "

# --- both spellings of the options --------------------------------------------
"$W2V" -size 8 -window 3 -sample 1e-4 -hs 0 -negative 3 -threads 1 -iter 2 -min-count 2 \
    -alpha 0.03 -cbow 0 -binary 0 -debug 0 -train "$T/corpus" -output "$T/legacy.txt"
"$W2V" --size=8 --window 3 --sample=1e-4 --hs=0 --negative=3 --threads=1 --iter=2 --min-count=2 \
    --alpha=0.03 --cbow=0 --binary=0 --debug=0 --train="$T/corpus" --output="$T/gnu.txt"
check "legacy and GNU flags agree" compare "$T/legacy.txt" "$T/gnu.txt"
"$W2V" -size 8 -threads 1 -iter 1 -min-count 2 -o "$T/short.txt" < "$T/corpus"
check "-o writes a file" test "$(head -n 1 "$T/short.txt")" = "21 8"

# --- vocabulary files ------------------------------------------------------------
"$W2V" $FAST -save-vocab "$T/vocab" < "$T/corpus" > "$T/v1.txt"
check "save-vocab: 21 lines" test "$(wc -l < "$T/vocab")" -eq 21
check "save-vocab: </s> first with the line count" test "$(head -n 1 "$T/vocab")" = "</s> 600"
"$W2V" $FAST -read-vocab "$T/vocab" < "$T/corpus" > "$T/v2.txt"
check "read-vocab reproduces the run" compare "$T/v1.txt" "$T/v2.txt"
printf 'a0 10\nbroken\n' > "$T/bad.vocab"
returns_ 1 "$W2V" $FAST -read-vocab "$T/bad.vocab" < "$T/corpus" > /dev/null 2> "$T/err"
check "bad -read-vocab fails" test $? -eq 0
check "bad -read-vocab names FILE:LINE" grep -q "^word2vec: $T/bad.vocab:2: " "$T/err"

# --- bad input ----------------------------------------------------------------
returns_ 1 "$W2V" $FAST < /dev/null > "$T/out" 2> "$T/err"
check "empty input fails" test $? -eq 0
check "empty input: message" grep -q "empty input" "$T/err"
check "empty input: nothing on stdout" test ! -s "$T/out"
printf 'x y z\nx\n' > "$T/tiny"
returns_ 1 "$W2V" -min-count 5 -train "$T/tiny" > /dev/null 2> "$T/err"
check "no word over min-count fails" test $? -eq 0
check "no word over min-count: message" grep -q "no word occurs at least 5 times" "$T/err"
returns_ 1 "$W2V" -train "$T/missing" > /dev/null 2> "$T/err"
check "missing training file fails" test $? -eq 0
check "missing training file: message" \
    test "$(cat "$T/err")" = "word2vec: $T/missing: No such file or directory"
returns_ 2 "$W2V" -nosuchflag 1 < "$T/corpus" > /dev/null 2> "$T/err"
check "unknown flag exits 2" test $? -eq 0
check "unknown flag: message" grep -q "unknown option '-nosuchflag'" "$T/err"
returns_ 2 "$W2V" -size abc < "$T/corpus" > /dev/null 2> /dev/null
check "non-numeric -size exits 2" test $? -eq 0
returns_ 2 "$W2V" -hs 0 -negative 0 < "$T/corpus" > /dev/null 2> /dev/null
check "neither hs nor negative exits 2" test $? -eq 0
returns_ 2 "$W2V" -size < /dev/null > /dev/null 2> /dev/null
check "missing value exits 2" test $? -eq 0

# --- subcommands on hand-made vectors ---------------------------------------------
cat > "$T/hand.txt" <<'EOF'
6 2
the 0.1 0.3
Man 1 0
woman 1 1
king 0 1
queen -1 2
apple 0.2 -1
EOF
cat > "$T/q.txt" <<'EOF'
: family
man woman king queen
man woman king apple
man woman pear apple
: gram1-test
king queen man woman
EOF
"$W2V" analogy -m "$T/hand.txt" < "$T/q.txt" > "$T/acc"
check "analogy exits 0" test $? -eq 0
check "analogy: section line" grep -qx 'family: 50.00% (1/2), 1 skipped' "$T/acc"
check "analogy: last line" test "$(tail -n 1 "$T/acc")" = "total accuracy: 66.67% (2/3), 4 questions seen"
"$W2V" analogy -m "$T/hand.txt" --restrict 4 "$T/q.txt" > "$T/acc4"
check "analogy --restrict: queen out of reach" \
    test "$(tail -n 1 "$T/acc4")" = "total accuracy: 0.00% (0/0), 4 questions seen"
printf ': s\na b c\n' > "$T/badq"
returns_ 1 "$W2V" analogy -m "$T/hand.txt" "$T/badq" > /dev/null 2> "$T/err"
check "analogy: bad question names FILE:LINE" grep -q "badq:2: expected four words" "$T/err"
printf '# comment\nman\twoman\t9\nking\tqueen\t9.5\nman\tapple\t1\npear\tman\t5\n' > "$T/pairs"
"$W2V" similarity -m "$T/hand.txt" < "$T/pairs" > "$T/sim"
check "similarity: pairs used/skipped" grep -qx 'pairs used: 3, skipped (unknown words): 1' "$T/sim"
check "similarity: spearman" grep -qx 'spearman: 1.0000' "$T/sim"
returns_ 1 "$W2V" similar -m "$T/hand.txt" nosuchword > /dev/null 2> "$T/err"
check "similar: unknown word fails" test $? -eq 0
printf '2 2\nx 1\n' > "$T/badvec"
returns_ 1 "$W2V" similar -m "$T/badvec" x > /dev/null 2> "$T/err"
check "bad vectors file names FILE:LINE" grep -q "badvec:2: row has 1 numbers" "$T/err"
returns_ 2 "$W2V" similar x > /dev/null 2> /dev/null
check "similar without -m exits 2" test $? -eq 0

# --- issue11-1: word2vec -alpha 2 ---------------------------------------------------
# Training diverges to NaN; (int)NaN indexed the sigmoid table out of bounds.
for path in "-hs 0 -negative 5 -cbow 0" "-hs 0 -negative 5 -cbow 1" "-hs 1 -negative 3 -cbow 0"; do
    echo previous > "$T/prev.txt"
    returns_ 1 "$W2V" $FAST $path -alpha 2 -train "$T/corpus" -output "$T/prev.txt" 2> "$T/err"
    check "issue11-1: word2vec -alpha 2 ($path) fails, no crash" test $? -eq 0
    check "issue11-1: word2vec -alpha 2 ($path): message" \
        grep -q "^word2vec: training diverged .* try a smaller learning rate than 2 (see -alpha)$" "$T/err"
    check "issue11-1: word2vec -alpha 2 ($path): previous output kept" test "$(cat "$T/prev.txt")" = previous
done
returns_ 1 "$W2V" $FAST -alpha 5 < "$T/corpus" > "$T/out" 2> /dev/null
check "issue11-1: word2vec -alpha 5 to stdout fails" test $? -eq 0
check "issue11-1: no vectors on stdout after divergence" test ! -s "$T/out"
check "issue11-1: -alpha 0.1 still trains" "$W2V" $FAST -alpha 0.1 -train "$T/corpus" -output "$T/a01.txt"

# --- issue11-8: the previous output survives; bad destinations fail at once --------
mkdir "$T/dir"
# The empty input would fail only after reading: the destination is checked first.
returns_ 1 "$W2V" $FAST -output "$T/dir" < /dev/null 2> "$T/err"
check "issue11-8: -output DIR fails" test $? -eq 0
check "issue11-8: -output DIR: message, before reading the input" \
    test "$(cat "$T/err")" = "word2vec: $T/dir: Is a directory"
returns_ 1 "$W2V" $FAST -output "$T/corpus/x" < /dev/null 2> "$T/err"
check "issue11-8: -output below a file fails at once" \
    test "$(cat "$T/err")" = "word2vec: $T/corpus/x: Not a directory"
returns_ 1 "$W2V" $FAST -output "$T/no/such/x" < /dev/null 2> "$T/err"
check "issue11-8: -output in a missing directory fails at once" \
    grep -q "^word2vec: $T/no/such/x: .*No such file or directory$" "$T/err"
returns_ 1 "$W2V" $FAST -save-vocab "$T/dir" < /dev/null 2> "$T/err"
check "issue11-8: -save-vocab DIR fails at once" test "$(cat "$T/err")" = "word2vec: $T/dir: Is a directory"
if [ "$(id -u)" -ne 0 ]; then
    mkdir "$T/ro" && chmod 555 "$T/ro"
    returns_ 1 "$W2V" $FAST -output "$T/ro/x" < /dev/null 2> "$T/err"
    check "issue11-8: unwritable directory fails at once" grep -q "Permission denied" "$T/err"
fi
# A full disk while writing (RLIMIT_FSIZE; SIGXFSZ ignored, so write fails with EFBIG):
# exit 1 with the reason, the previous file intact, no temporary left.
mkdir "$T/save" && echo previous > "$T/save/vec.txt" && echo previous > "$T/save/vocab"
(ulimit -f 4; trap '' XFSZ; exec "$W2V" $FAST -size 100 -train "$T/corpus" -output "$T/save/vec.txt") 2> "$T/err"
check "issue11-8: write error exits 1" test $? -eq 1
check "issue11-8: write error: message" \
    test "$(cat "$T/err")" = "word2vec: $T/save/vec.txt: write error: File too large"
check "issue11-8: write error: previous vectors intact" test "$(cat "$T/save/vec.txt")" = previous
check "issue11-8: write error: no temporary left" test "$(ls "$T/save" | tr '\n' ' ')" = "vec.txt vocab "
(ulimit -f 0; trap '' XFSZ; exec "$W2V" $FAST -train "$T/corpus" -save-vocab "$T/save/vocab" -output "$T/save/vec.txt") 2> "$T/err"
check "issue11-8: -save-vocab write error exits 1" test $? -eq 1
check "issue11-8: -save-vocab write error: previous vocabulary intact" test "$(cat "$T/save/vocab")" = previous
# Killed while writing (SIGXFSZ at the limit): the previous file is intact, and
# the next successful save removes the dead writer's temporary.
# (The braces keep the shell's own "File size limit exceeded" report off the log.)
{ (ulimit -f 4; exec "$W2V" $FAST -size 100 -train "$T/corpus" -output "$T/save/vec.txt"); rc=$?; } 2> /dev/null
check "issue11-8: killed during the write" test "$rc" -gt 128
check "issue11-8: killed: previous vectors intact" test "$(cat "$T/save/vec.txt")" = previous
check "issue11-8: then a save succeeds" "$W2V" $FAST -cbow 0 -train "$T/corpus" -output "$T/save/vec.txt"
check "issue11-8: the new file is whole" compare "$T/sg.txt" "$T/save/vec.txt"
check "issue11-8: the stale temporary is gone" test "$(ls "$T/save" | tr '\n' ' ')" = "vec.txt vocab "
returns_ 1 "$W2V" $FAST -train "$T/corpus" -output /dev/full 2> "$T/err"
check "issue11-8: -output /dev/full fails" \
    test "$(cat "$T/err")" = "word2vec: /dev/full: write error: No space left on device"
returns_ 1 "$W2V" $FAST -train "$T/corpus" > /dev/full 2> "$T/err"
check "issue11-8: stdout on /dev/full fails, one message" \
    test "$(cat "$T/err")" = "word2vec: <stdout>: write error: No space left on device"
check "issue11-8: -output /dev/null stays a device" "$W2V" $FAST -train "$T/corpus" -output /dev/null
check "issue11-8: /dev/null is still a character device" test -c /dev/null

# --- issue11-13: messages name the file and escape bad bytes -------------------------
returns_ 1 "$W2V" $FAST -train "$T/dir" 2> "$T/err"
check "issue11-13: -train DIR: message" test "$(cat "$T/err")" = "word2vec: $T/dir: Is a directory"
returns_ 1 "$W2V" $FAST < "$T/dir" 2> "$T/err"
check "issue11-13: stdin a directory: message" test "$(cat "$T/err")" = "word2vec: <stdin>: Is a directory"
returns_ 1 "$W2V" similar -m "$T/dir" x 2> "$T/err"
check "issue11-13: similar -m DIR: message" test "$(cat "$T/err")" = "word2vec: $T/dir: Is a directory"
printf '2 2
x 1
' | "$W2V" similar -m - x > /dev/null 2> "$T/err"
check "issue11-13: standard input is named <stdin>" \
    test "$(cat "$T/err")" = "word2vec: <stdin>:2: row has 1 numbers, expected 2"
bad=$(printf 'x\377\001y\\')
returns_ 1 "$W2V" similar -m "$T/hand.txt" "$bad" 2> "$T/err"
check "issue11-13: invalid bytes escaped in 'not in the vocabulary'" \
    test "$(cat "$T/err")" = 'word2vec: x\xff\x01y\x5c: not in the vocabulary'
printf '2 2
x 1 2
y 3 4' > "$T/cut.txt"
returns_ 1 "$W2V" similar -m "$T/cut.txt" x 2> "$T/err"
check "issue11-3: a file cut in its last number is refused" \
    test "$(cat "$T/err")" = "word2vec: $T/cut.txt:3: row 2 has no final newline (is the file cut short?)"
printf '4611686018427387904 4
a 1 2 3 4
' > "$T/huge.txt"
returns_ 1 "$W2V" similar -m "$T/huge.txt" a 2> "$T/err"
check "issue11-3: a huge row count is a truncated file" \
    test "$(cat "$T/err")" = "word2vec: $T/huge.txt:3: file ends after 1 of 4611686018427387904 rows"
cat "$T/huge.txt" | "$W2V" similar -m - a 2> "$T/err"
check "issue11-3: a huge row count from a pipe too" \
    test "$(cat "$T/err")" = "word2vec: <stdin>:3: file ends after 1 of 4611686018427387904 rows"

# --- issue 12: -classes K, as the original word2vec ------------------------------------
"$W2V" $FAST -cbow 0 -classes 2 -train "$T/corpus" -output "$T/classes" -save-vocab "$T/cvocab"
check "-classes 2 trains" test $? -eq 0
check "-classes: one 'WORD CLASS' line per word" \
    awk 'NF != 2 || $2 !~ /^[01]$/ { bad = 1 } END { exit bad || NR != 21 }' "$T/classes"
check "-classes: words in vocabulary order, </s> first" \
    test "$(cut -d' ' -f1 "$T/classes" | tr '\n' ' ')" = "$(cut -d' ' -f1 "$T/cvocab" | tr '\n' ' ')"
# classes_apart FILE: all a-words share a class, all b-words the other.
classes_apart() {
    awk '$1 != "</s>" { g = substr($1, 1, 1); if (!(g in cl)) cl[g] = $2; else if (cl[g] != $2) bad = 1 }
         END { exit bad || cl["a"] == cl["b"] }' "$1"
}
check "-classes 2 puts the two groups apart" classes_apart "$T/classes"
"$W2V" $FAST -cbow 1 --classes=2 -binary 1 < "$T/corpus" > "$T/classes2"
check "-classes: CBOW, to stdout, text even with -binary 1" classes_apart "$T/classes2"
"$W2V" $FAST -classes 1 < "$T/corpus" > "$T/classes1"
check "-classes 1: one class" test "$(cut -d' ' -f2 "$T/classes1" | sort -u)" = 0
"$W2V" $FAST -classes 50 < "$T/corpus" > "$T/classes50"
check "-classes 50 (more than words): ids below 21" \
    awk '$2 < 0 || $2 >= 21 { bad = 1 } END { exit bad || NR != 21 }' "$T/classes50"
returns_ 2 "$W2V" -classes -1 < /dev/null 2> /dev/null
check "-classes -1 exits 2" test $? -eq 0

# --- gensim reads both formats (skipped when gensim is absent) -------------------------
if /usr/bin/python3 -c 'import gensim' 2> /dev/null; then
    "$W2V" $FAST -cbow 0 -binary 1 < "$T/corpus" > "$T/g.bin"
    /usr/bin/python3 - "$T/sg.txt" "$T/g.bin" > "$T/gensim.out" 2>&1 <<'EOF'
import sys
from gensim.models import KeyedVectors
t = KeyedVectors.load_word2vec_format(sys.argv[1], binary=False)
b = KeyedVectors.load_word2vec_format(sys.argv[2], binary=True)
assert len(t.index_to_key) == 21 and t.vector_size == 20, "text"
assert len(b.index_to_key) == 21 and b.vector_size == 20, "binary"
assert t.index_to_key[0] == "</s>" and b.index_to_key == t.index_to_key
print(abs(t["a1"] - b["a1"]).max())
EOF
    check "gensim loads text and binary output" test $? -eq 0
    check "gensim: text and binary hold the same vectors" \
        awk '{ exit !($1 < 1e-6) }' "$T/gensim.out"
else
    echo "gensim absent: format check skipped"
fi
Exit
