#!/bin/sh
# End-to-end tests of charlm-train, charlm-generate and charlm-score on small
# texts this script writes itself: learning a repeating text, sampling it
# back, scoring it, the default and short output paths, resuming after
# SIGINT at a random moment bit-identically, and refusing bad input, bad
# options and wrong model files.  Small models on one thread, so the whole
# script takes seconds (and stays bearable under ASan).
. "${top_srcdir:-.}/tests/setup"
TRAIN=$BIN/charlm-train
GEN=$BIN/charlm-generate
SCORE=$BIN/charlm-score
MODEL_CMP=$top_builddir/tests/model_cmp
for t in "$TRAIN" "$GEN" "$SCORE"; do
    [ -x "$t" ] || skip_ "$t not built"
done
# The resume tests compare weights with it: without it they would not run.
[ -x "$MODEL_CMP" ] || framework_failure_ "$MODEL_CMP not built (make check builds it)"

# A small model that still learns quickly; every run is on one thread with
# a fixed seed, so the results are repeatable.
SMALL="--layers 1 --hidden 48 --embed 16 --batch 8 --seq-len 32 --dropout 0 --threads 1 --seed 7"

# A number from a "name: value" line of charlm-score.
field() { sed -n "s/^$1: *\([0-9.]*\).*/\1/p" "$2"; }

# awk comparisons on decimal numbers
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
near() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { x = a - b; if (x < 0) x = -x; exit !(x <= d) }'; }

# Valid UTF-8 (LC_ALL=C.UTF-8 from tests/setup): no line fails to match.
valid_utf8() { ! grep -aqv '^.*$' "$1"; }

# Usage errors exit 2 with "Try ... --help" and never start training.
usage_error() {
    tool=$1; shift
    "$tool" "$@" < "$T/rep.txt" > /dev/null 2> "$T/usage.err"
    rc=$?
    if [ $rc -ne 2 ] || ! grep -q "Try '.* --help'" "$T/usage.err"; then
        echo "FAIL: $(basename "$tool") $*: exit $rc, expected 2 with a hint:" >&2
        cat "$T/usage.err" >&2
        return 1
    fi
}

# ---- a repeating text is learned, sampled back and scored ------------------
line='nel mezzo del cammin di nostra vita mi ritrovai per una selva oscura.'
i=0
: > "$T/rep.txt"
while [ $i -lt 150 ]; do
    echo "$line" >> "$T/rep.txt"
    i=$((i + 1))
done
check "train on a repeating text" \
    run_ 0 "$T/rep.err" "$TRAIN" $SMALL --epochs 12 --time-limit 0 --lr 0.01 -o "$T/rep.model" \
    "$T/rep.txt"
check "per-epoch report" has '^epoch 12 step [0-9]*: train [0-9.]*, valid bpc [0-9.]*.*chars/s' "$T/rep.err"
best=$(sed -n 's/.*best valid bpc \([0-9.]*\) at step.*/\1/p' "$T/rep.err")
check "model named at the end" has "^charlm-train: model written to $T/rep.model (the best on validation" "$T/rep.err"
check "learned to under 0.1 bpc (got '$best')" lt "${best:-9}" 0.1
check "model written" test -s "$T/rep.model"
check "no checkpoint left without --checkpoint-every" test ! -e "$T/rep.model.ckpt"

# Sampled back at a low temperature: the continuation follows the line.
"$GEN" -m "$T/rep.model" --prime "nel mezzo" --temperature 0.05 --length 120 --seed 1 \
    > "$T/gen.txt" 2> "$T/gen.err"
check "generate exits 0" test $? -eq 0
check "prime printed first" has '^nel mezzo del cammin di nostra vita' "$T/gen.txt"
check "continuation follows the text" has 'mi ritrovai per una selva oscura\.$' "$T/gen.txt"
check "generated length" test "$(wc -m < "$T/gen.txt")" -eq $((9 + 120 + 1)) # + the final line break
# The same seed gives the same text; another one (at T=1) usually differs.
"$GEN" -m "$T/rep.model" --length 200 --seed 5 > "$T/g1.txt"
"$GEN" -m "$T/rep.model" --length 200 --seed 5 > "$T/g2.txt"
check "same seed, same sample" compare "$T/g1.txt" "$T/g2.txt"
"$GEN" -m "$T/rep.model" --temperature 0 --length 50 --prime "nel" > "$T/g0.txt"
check "--temperature 0 is accepted" test $? -eq 0
check "greedy continues the line" has '^nel mezzo del cammin di nostra vita mi ritrov' "$T/g0.txt"
"$GEN" -m "$T/rep.model" --top-k 1 --length 50 --prime "nel" --seed 9 > "$T/gk.txt"
check "top-k 1 = temperature 0" compare "$T/g0.txt" "$T/gk.txt"
# The model is sure of every next character (p > 0.5): the nucleus of
# top-p 0.5 holds that one character only, so sampling is greedy.
"$GEN" -m "$T/rep.model" --top-p 0.5 --length 50 --prime "nel" --seed 2 > "$T/gp.txt"
check "--top-p exits 0" test $? -eq 0
check "--top-p 0.5 on a sure model = temperature 0" compare "$T/g0.txt" "$T/gp.txt"
"$GEN" -m "$T/rep.model" --length 0 --prime "abc" > "$T/g00.txt"
printf 'abc\n' > "$T/abc.txt"
check "--length 0 output" compare "$T/abc.txt" "$T/g00.txt"

# Scoring the validation tail (the last 5%, ASCII so bytes = characters)
# gives the validation figure the training reported for the best model.
n=$(wc -c < "$T/rep.txt")
nvalid=$(awk -v n="$n" 'BEGIN { printf "%d", n * 0.05 }')
tail -c "$nvalid" "$T/rep.txt" > "$T/valid.txt"
"$SCORE" -m "$T/rep.model" "$T/valid.txt" > "$T/score.txt"
check "score exits 0" test $? -eq 0
sbpc=$(field bits-per-character "$T/score.txt")
check "score ($sbpc) matches training's validation bpc ($best)" near "${sbpc:-9}" "${best:-0}" 0.0002
check "score counts characters" has "^characters: $nvalid\$" "$T/score.txt"
check "score predicts all but the first" has "^predicted: $((nvalid - 1))\$" "$T/score.txt"
check "perplexity is 2^bpc" awk -v b="$sbpc" -v p="$(field perplexity "$T/score.txt")" \
    'BEGIN { d = 2^b - p; exit !(d < 1e-4 && d > -1e-4) }'
"$SCORE" -m "$T/rep.model" < "$T/valid.txt" > "$T/score2.txt"
check "score reads stdin" compare "$T/score.txt" "$T/score2.txt"
# Characters the model never saw are counted and named.
printf 'nel mezzo «del» cammin\n' > "$T/unk.txt"
"$SCORE" -m "$T/rep.model" "$T/unk.txt" > "$T/unk.out"
check "unknown characters reported" has '^unknown: 2 U+00AB « U+00BB »$' "$T/unk.out"
check "scoring text with unknowns still gives a number" has '^bits-per-character: [0-9]' "$T/unk.out"
printf 'x' > "$T/one.txt"
check "one character: nothing to score" \
    run_ 1 "$T/one.err" "$SCORE" -m "$T/rep.model" "$T/one.txt"
check "one character: message" has 'nothing to score' "$T/one.err"

# ---- characters are code points, never bytes ---------------------------------
i=0
: > "$T/it.txt"
while [ $i -lt 60 ]; do
    echo "Tant’ è amara che poco è più morte; «così» però ch’i’ vi trovai…" >> "$T/it.txt"
    i=$((i + 1))
done
check "train on accented text" \
    run_ 0 "$T/it.err" "$TRAIN" $SMALL --epochs 2 --min-count 1 --valid 0.1 -o "$T/it.model" "$T/it.txt"
# 31 distinct code points (bytes would give fewer, with no è, ’, « ...) + <unk>
nsym=$(( $(grep -o . "$T/it.txt" | sort -u | wc -l) + 2 ))
check "vocabulary = distinct characters + <unk> ($nsym)" has " $nsym symbols;" "$T/it.err"
"$GEN" -m "$T/it.model" --length 400 --temperature 1.5 --seed 3 > "$T/it.gen"
check "generated text is valid UTF-8" valid_utf8 "$T/it.gen"
check "generated text has multi-byte characters" grep -q '[èù’«»…]' "$T/it.gen"
"$GEN" -m "$T/it.model" --prime "Tant’ è" --length 30 --seed 3 > "$T/it.gen2"
check "prime with multi-byte characters" has '^Tant’ è' "$T/it.gen2"

# ---- invalid UTF-8 -------------------------------------------------------------
{ cat "$T/rep.txt"; printf 'bad \377 byte\n'; cat "$T/rep.txt"; } > "$T/bad.txt"
badline=$(( $(wc -l < "$T/rep.txt") + 1 ))
check "invalid UTF-8 is replaced with a warning" \
    run_ 0 "$T/bad.err" "$TRAIN" $SMALL --max-steps 2 --time-limit 0 -o "$T/bad.model" "$T/bad.txt"
check "warning names file and line" has "^charlm-train: $T/bad.txt:$badline: invalid UTF-8\$" "$T/bad.err"
check "one warning for one bad line" test "$(grep -c 'invalid UTF-8' "$T/bad.err")" -eq 1
# Per input: the first 5 bad lines, then one summary; each input its own.
i=0
: > "$T/bad8.txt"
while [ $i -lt 8 ]; do printf 'x \377\n' >> "$T/bad8.txt"; i=$((i + 1)); done
check "many bad lines" \
    run_ 0 "$T/bad8.err" "$TRAIN" $SMALL --max-steps 1 -o "$T/bad8.model" "$T/bad8.txt" "$T/bad.txt"
check "5 warnings for the first input" test "$(grep -c "^charlm-train: $T/bad8.txt:[0-9]*: invalid UTF-8\$" "$T/bad8.err")" -eq 5
check "then its summary" has "^charlm-train: $T/bad8.txt: ... and 3 more lines with invalid UTF-8\$" "$T/bad8.err"
check "the second input warns on its own" has "^charlm-train: $T/bad.txt:$badline: invalid UTF-8\$" "$T/bad8.err"
check "--strict refuses invalid UTF-8" \
    run_ 1 "$T/bad2.err" "$TRAIN" $SMALL --strict -o "$T/bad2.model" < "$T/bad.txt"
check "--strict message (stdin is <stdin>)" has "^charlm-train: <stdin>:$badline: invalid UTF-8\$" "$T/bad2.err"
check "--strict: no model" test ! -e "$T/bad2.model"
check "score warns on invalid UTF-8 too" \
    run_ 0 "$T/bad3.err" "$SCORE" -m "$T/rep.model" "$T/bad.txt" > /dev/null
check "score warning" has "^charlm-score: $T/bad.txt:$badline: invalid UTF-8\$" "$T/bad3.err"
check "score --strict" \
    run_ 1 "$T/null.err" "$SCORE" --strict -m "$T/rep.model" "$T/bad.txt"

# ---- errors before any training ------------------------------------------------
: > "$T/empty.txt"
check "empty input" \
    run_ 1 "$T/e.err" "$TRAIN" $SMALL -o "$T/e.model" < "$T/empty.txt"
check "empty input message" has '^charlm-train: empty input' "$T/e.err"
check "empty input: no model" test ! -e "$T/e.model"
head -c 200 "$T/rep.txt" > "$T/short.txt"
check "too short for one sequence" \
    run_ 1 "$T/s.err" "$TRAIN" $SMALL -o "$T/s.model" "$T/short.txt"
check "too short message" has 'corpus too short: 190 characters of training text, but --batch 8 and --seq-len 32 need at least 264' "$T/s.err"
awk 'BEGIN { for (i = 33; i < 127; i++) printf "%c", i }' > "$T/distinct.txt"
check "no character frequent enough" \
    run_ 1 "$T/dc.err" "$TRAIN" --batch 2 --seq-len 8 -o "$T/dc.model" "$T/distinct.txt"
check "no character frequent enough: message" has 'no character occurs 2 times' "$T/dc.err"
check "unwritable output" \
    run_ 1 "$T/w.err" "$TRAIN" $SMALL -o "$T/no/such/dir/m.model" "$T/rep.txt"
check "unwritable output message" has "^charlm-train: $T/no/such/dir/m.model: cannot create a temporary file: No such file or directory" "$T/w.err"
check "unwritable output: no training" sh -c "! grep -q epoch '$T/w.err'"
mkdir "$T/dir.model"
check "output is a directory" \
    run_ 1 "$T/d.err" "$TRAIN" $SMALL -o "$T/dir.model" "$T/rep.txt"
check "directory message" has "^charlm-train: $T/dir.model: Is a directory\$" "$T/d.err"
check "missing input file" \
    run_ 1 "$T/n.err" "$TRAIN" $SMALL -o "$T/x.model" "$T/nonexistent.txt"
check "missing input message" has "nonexistent.txt: No such file" "$T/n.err"

# ---- wrong model files -----------------------------------------------------------
check "generate: no such model" \
    run_ 1 "$T/m1.err" "$GEN" -m "$T/nonexistent.model"
check "no such model: message" has "^charlm-generate: .*nonexistent.model" "$T/m1.err"
check "generate: text file as model" \
    run_ 1 "$T/m2.err" "$GEN" -m "$T/rep.txt"
check "foreign file: message" has "^charlm-generate: $T/rep.txt.*not a libnlp model" "$T/m2.err"
head -c 300 "$T/rep.model" > "$T/trunc.model"
check "truncated model" \
    run_ 1 "$T/m3.err" "$SCORE" -m "$T/trunc.model" < "$T/valid.txt"
check "truncated model: message" has "^charlm-score: $T/trunc.model.*truncated" "$T/m3.err"
cp "$T/rep.model" "$T/flip.model"
printf 'Z' | dd of="$T/flip.model" bs=1 seek=400 conv=notrunc 2> /dev/null
check "corrupted model" \
    run_ 1 "$T/m4.err" "$GEN" -m "$T/flip.model"
check "corrupted model: message" has "^charlm-generate: $T/flip.model.*checksum" "$T/m4.err"
check "empty model file" \
    run_ 1 "$T/null.err" "$GEN" -m "$T/empty.txt"
# A well-formed model of another kind (the kind renamed, the CRC redone).
if command -v python3 > /dev/null 2>&1; then
    python3 - "$T/rep.model" "$T/other.model" <<'EOF'
import sys, zlib, struct
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"charlm")
b[i:i + 6] = b"w2vecs"
b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xffffffff)
open(sys.argv[2], "wb").write(b)
EOF
    check "model of another kind" \
        run_ 1 "$T/m5.err" "$GEN" -m "$T/other.model"
    check "another kind: message" has "^charlm-generate: $T/other.model: this is a 'w2vecs' model, not a 'charlm' model" "$T/m5.err"
    check "another kind (score)" \
        run_ 1 "$T/null.err" "$SCORE" -m "$T/other.model" < "$T/valid.txt"
    check "another kind (resume)" \
        run_ 1 "$T/m7.err" "$TRAIN" --resume "$T/other.model" "$T/rep.txt"
    check "another kind (resume): message" has "^charlm-train: $T/other.model: this is a 'w2vecs' model" "$T/m7.err"
fi
check "resume from a best-model file (no training state)" \
    run_ 1 "$T/m6.err" "$TRAIN" --resume "$T/rep.model" "$T/rep.txt"
check "not a checkpoint: message" has "not a checkpoint" "$T/m6.err"

# ---- output paths -----------------------------------------------------------------
# No -o: charlm.model in the current directory, named on stderr (issue 12).
mkdir "$T/cwd"
check "no -o: trains" sh -c 'cd "$1" && "$2" $3 --max-steps 2 < "$4" 2> "$5"' sh \
    "$T/cwd" "$TRAIN" "$SMALL" "$T/rep.txt" "$T/cwd.err"
check "no -o: charlm.model written" test -s "$T/cwd/charlm.model"
check "no -o: the model is named" has '^charlm-train: no -o given: the model goes to charlm.model$' "$T/cwd.err"
check "no -o: a model" "$MODEL_CMP" "$T/cwd/charlm.model" "$T/cwd/charlm.model"
# The card's usage, literally: cat text | charlm-train && charlm-generate.
check "cat | charlm-train && charlm-generate" sh -c \
    'cd "$1" && cat "$4" | "$2" $3 --max-steps 2 -q && "$5" --length 10 --seed 1 > gen.txt' \
    sh "$T/cwd" "$TRAIN" "$SMALL" "$T/rep.txt" "$GEN"
check "... generates from charlm.model" test -s "$T/cwd/gen.txt"
check "no -o: an existing model is replaced" sh -c 'cd "$1" && "$2" $3 --max-steps 3 < "$4" 2> /dev/null' \
    sh "$T/cwd" "$TRAIN" "$SMALL" "$T/rep.txt"
# A file there that is not a model is never overwritten.
mkdir "$T/cwd2"
cp "$T/rep.txt" "$T/cwd2/charlm.model"
check "no -o over a text file: refused" sh -c 'cd "$1"; "$2" $3 --max-steps 2 < "$4" 2> "$5"; test $? -eq 1' \
    sh "$T/cwd2" "$TRAIN" "$SMALL" "$T/rep.txt" "$T/cwd2.err"
check "refusal message" has '^charlm-train: charlm.model: exists and is not a libnlp model: not overwriting it' "$T/cwd2.err"
check "the text file is intact" compare "$T/rep.txt" "$T/cwd2/charlm.model"
check "-o over a text file: refused too" \
    run_ 1 "$T/null.err" "$TRAIN" $SMALL --max-steps 2 -o "$T/cwd2/charlm.model" "$T/rep.txt"
check "the text file is still intact" compare "$T/rep.txt" "$T/cwd2/charlm.model"
# Issue 11 item 2: a bare name (was "Invalid argument") and dir/name (the
# writability probe overflowed its buffer).
check "-o m (no directory part)" sh -c 'cd "$1" && "$2" $3 --max-steps 2 -o m "$4" 2> "$5"' \
    sh "$T/cwd" "$TRAIN" "$SMALL" "$T/rep.txt" "$T/short.err"
check "-o m: written" test -s "$T/cwd/m"
check "-o m: named" has '^charlm-train: model written to m ' "$T/short.err"
mkdir "$T/cwd/d"
check "-o d/a" sh -c 'cd "$1" && "$2" $3 --max-steps 2 -o d/a "$4" 2> /dev/null' \
    sh "$T/cwd" "$TRAIN" "$SMALL" "$T/rep.txt"
check "-o d/a: written" "$MODEL_CMP" "$T/cwd/d/a" "$T/cwd/d/a"
check "no stray probe files" test "$(ls -A "$T/cwd/d")" = a

# ---- SIGINT at a random moment; --resume ends with the same weights -------------------
# One run straight through, one interrupted at a random moment and resumed:
# the best models and the final checkpoints (weights, optimiser moments,
# carried state) must be the same bits.  The interruption must land, else
# the test fails.
i=0
: > "$T/long.txt"
while [ $i -lt 3 ]; do
    cat "$T/rep.txt" "$T/it.txt" >> "$T/long.txt"
    i=$((i + 1))
done
# About a second of training here, so that a signal at most a quarter of a
# second after the first report lands even on a much faster machine.
STEPS=6000
RUN="--layers 1 --hidden 32 --embed 8 --batch 8 --seq-len 16 --dropout 0.1 --threads 1 --seed 7
    --valid 0.1 --epochs 0 --time-limit 0 --max-steps $STEPS --valid-every 100 --lr-patience 1
    --checkpoint-every 100000"
check "uninterrupted run" \
    run_ 0 "$T/a.err" "$TRAIN" $RUN -o "$T/a.model" "$T/long.txt"
check "uninterrupted: final checkpoint" test -s "$T/a.model.ckpt"
check "uninterrupted: the rate decays on plateaus" grep -q 'lr 0.001,' "$T/a.err"
delay=$(awk -v s="$$" 'BEGIN { srand(s); printf "%.3f", rand() * 0.25 }')
"$TRAIN" $RUN -o "$T/b.model" "$T/long.txt" 2> "$T/b.err" &
pid=$!
# The handler is installed before the first report line.
i=0
while [ $i -lt 3000 ] && ! grep -q '^epoch 1 step' "$T/b.err" 2> /dev/null; do
    sleep 0.02
    i=$((i + 1))
done
sleep "$delay"
kill -INT $pid 2> /dev/null
wait $pid
rc=$?
stopped=$(sed -n 's/^stop requested at epoch [0-9]* step \([0-9]*\):.*/\1/p' "$T/b.err")
echo "note: SIGINT ${delay}s after the first report: stopped at step ${stopped:-none}"
check "SIGINT landed: exit 130" test $rc -eq 130
check "SIGINT message" has "^stop requested at epoch [0-9]* step [0-9]*: checkpoint written to $T/b.model.ckpt\$" "$T/b.err"
check "resume hint" has "^charlm-train: interrupted: continue with --resume $T/b.model.ckpt\$" "$T/b.err"
check "stopped in the middle (step ${stopped:-none})" test "${stopped:-0}" -gt 0 -a "${stopped:-$STEPS}" -lt $STEPS
check "checkpoint written" test -s "$T/b.model.ckpt"
"$GEN" -m "$T/b.model.ckpt" --length 10 --seed 1 > "$T/ck.gen"
check "checkpoint is a usable model: generates" test $? -eq 0
n=$(wc -m < "$T/ck.gen")
check "checkpoint is a usable model: 10 characters ($n)" test "$n" -ge 10 -a "$n" -le 11
check "checkpoint is a usable model: UTF-8" valid_utf8 "$T/ck.gen"
check "resume with other data is refused" \
    run_ 1 "$T/r0.err" "$TRAIN" --resume "$T/b.model.ckpt" "$T/rep.txt"
check "other data: message" has 'training text differs' "$T/r0.err"
check "resume can't change the model" \
    run_ 2 "$T/r1.err" "$TRAIN" --resume "$T/b.model.ckpt" --hidden 64 "$T/long.txt"
check "can't change the model: message" has '^charlm-train: --hidden cannot be changed when resuming' "$T/r1.err"
check "resume can't change the learning rate" \
    run_ 2 "$T/r2.err" "$TRAIN" --resume "$T/b.model.ckpt" --lr 0.1 "$T/long.txt"
check "can't change the learning rate: message" has '^charlm-train: --lr cannot be changed when resuming' "$T/r2.err"
# Issue 11 item 10: without -o the model goes next to the checkpoint, under
# its name: a copy elsewhere writes there, not where the run was.
mkdir "$T/moved"
cp "$T/b.model.ckpt" "$T/moved/run.ckpt"
cp "$T/b.model" "$T/b.before"
cp "$T/b.model.ckpt" "$T/b.ckpt.before"
check "resume a moved checkpoint" \
    run_ 0 "$T/mv.err" "$TRAIN" --resume "$T/moved/run.ckpt" --max-steps "$((stopped + 1))" "$T/long.txt"
# (Written there when the step it ran beat the best of before, else named.)
check "moved: the model goes next to it" has "^charlm-train: \(no \)\{0,1\}model written to $T/moved/run[ :]" "$T/mv.err"
check "moved: its checkpoint rewritten there" sh -c '! cmp -s "$1" "$2"' sh "$T/moved/run.ckpt" "$T/b.ckpt.before"
check "moved: the original run's model untouched" compare "$T/b.before" "$T/b.model"
check "moved: the original run's checkpoint untouched" compare "$T/b.ckpt.before" "$T/b.model.ckpt"
cp "$T/moved/run.ckpt" "$T/moved/noext"
check "--resume without .ckpt and without -o refused" usage_error "$TRAIN" --resume "$T/moved/noext"
check "resume finishes" \
    run_ 0 "$T/r.err" "$TRAIN" --resume "$T/b.model.ckpt" --threads 1 "$T/long.txt"
check "resumed run reaches the last step" has "^done (step limit): epoch [0-9]*, step $STEPS;" "$T/r.err"
check "resumed model = uninterrupted model (weights, bit for bit)" \
    "$MODEL_CMP" "$T/a.model" "$T/b.model"
check "resumed checkpoint = uninterrupted checkpoint (weights, moments, state)" \
    "$MODEL_CMP" "$T/a.model.ckpt" "$T/b.model.ckpt"
"$SCORE" -m "$T/a.model" "$T/long.txt" > "$T/a.score"
"$SCORE" -m "$T/b.model" "$T/long.txt" > "$T/b.score"
check "resumed model = uninterrupted model (scores)" compare "$T/a.score" "$T/b.score"
# Without teeth the comparison would prove nothing: other weights differ.
check "model_cmp tells models apart" sh -c '! "$1" "$2" "$3" 2> /dev/null' sh "$MODEL_CMP" \
    "$T/a.model" "$T/rep.model"

# Weight averaging over a resume: a run ended by --max-steps 250 and resumed
# to 500 (keeping the checkpoint's --average) ends with the model (the
# average) and the checkpoint (raw weights and the average) of a run
# straight through.
AVG="--layers 1 --hidden 32 --embed 8 --batch 8 --seq-len 16 --dropout 0.1 --threads 1 --seed 7
    --valid 0.1 --epochs 0 --time-limit 0 --valid-every 100 --checkpoint-every 100000"
check "averaged run straight through" \
    run_ 0 "$T/va.err" "$TRAIN" $AVG --average 0.99 --max-steps 500 -o "$T/va.model" "$T/long.txt"
check "averaged run to step 250" \
    run_ 0 "$T/vb.err" "$TRAIN" $AVG --average 0.99 --max-steps 250 -o "$T/vb.model" "$T/long.txt"
check "averaged run resumed to step 500" \
    run_ 0 "$T/vb2.err" "$TRAIN" --resume "$T/vb.model.ckpt" --max-steps 500 "$T/long.txt"
check "averaged: resumed model = straight through" "$MODEL_CMP" "$T/va.model" "$T/vb.model"
check "averaged: resumed checkpoint = straight through" \
    "$MODEL_CMP" "$T/va.model.ckpt" "$T/vb.model.ckpt"
# Turned on when resuming a run checkpointed without it: the average starts
# there, so the model is neither the raw weights nor the average from step 0.
check "run to step 250 without averaging" \
    run_ 0 "$T/vc.err" "$TRAIN" $AVG --average 0 --max-steps 250 -o "$T/vc.model" "$T/long.txt"
check "resumed with --average 0.99" \
    run_ 0 "$T/vc2.err" "$TRAIN" --resume "$T/vc.model.ckpt" --average 0.99 --max-steps 500 \
    "$T/long.txt"
check "  ... validates and writes a model" has "^done (step limit): epoch [0-9]*, step 500; best" "$T/vc2.err"
check "  ... an average of its own" sh -c '! "$1" "$2" "$3" 2> /dev/null' sh "$MODEL_CMP" \
    "$T/va.model" "$T/vc.model"

# Issue 11 item 9: a second Ctrl-C while the checkpoint is written changes
# nothing: the checkpoint on disk is complete and resumes.
"$TRAIN" $RUN -o "$T/c2.model" "$T/long.txt" 2> "$T/c2.err" &
pid=$!
i=0
while [ $i -lt 3000 ] && ! grep -q '^epoch 1 step' "$T/c2.err" 2> /dev/null; do
    sleep 0.02
    i=$((i + 1))
done
sleep "$delay"
kill -INT $pid 2> /dev/null
sleep 0.01
kill -INT $pid 2> /dev/null
wait $pid
rc=$?
check "two SIGINTs: exit 130" test $rc -eq 130
check "two SIGINTs: checkpoint written" has "^stop requested at epoch .*checkpoint written to $T/c2.model.ckpt\$" "$T/c2.err"
check "two SIGINTs: the checkpoint loads" "$MODEL_CMP" "$T/c2.model.ckpt" "$T/c2.model.ckpt"
check "two SIGINTs: no temporary file left" sh -c '! ls "$1"/c2.model.ckpt.* 2> /dev/null | grep -q .' sh "$T"
check "two SIGINTs: resumes" \
    run_ 0 "$T/null.err" "$TRAIN" --resume "$T/c2.model.ckpt" "$T/long.txt"
check "two SIGINTs: resumed = uninterrupted" "$MODEL_CMP" "$T/a.model.ckpt" "$T/c2.model.ckpt"

check "SIGTERM also checkpoints" sh -c '
    "$1" $2 --epochs 1000 -o "$3/c.model" "$3/long.txt" 2> "$3/c.err" &
    pid=$!
    i=0
    while [ $i -lt 600 ] && ! grep -q "^epoch 1 step" "$3/c.err" 2> /dev/null; do
        sleep 0.1; i=$((i + 1))
    done
    kill -TERM $pid; wait $pid; rc=$?
    [ $rc -eq 143 ] && [ -s "$3/c.model.ckpt" ]' sh "$TRAIN" "$SMALL --time-limit 0" "$T"
check "--checkpoint-every writes MODEL.ckpt" \
    run_ 0 "$T/null.err" "$TRAIN" $SMALL --max-steps 3 --checkpoint-every 1000 -o "$T/ck.model" "$T/rep.txt"
check "checkpoint at the end" "$MODEL_CMP" "$T/ck.model.ckpt" "$T/ck.model.ckpt"
check "--time-limit stops training" \
    run_ 0 "$T/tl.err" "$TRAIN" $SMALL --epochs 100000 --time-limit 0.5 -o "$T/tl.model" "$T/rep.txt"
check "time limit reported" has '^done (time limit)' "$T/tl.err"
check "--patience stops training" \
    run_ 0 "$T/pa.err" "$TRAIN" $SMALL --epochs 0 --time-limit 30 --valid-every 5 --patience 2 \
    --lr 1e-9 --optimizer sgd --average 0 -o "$T/pa.model" "$T/rep.txt"
# A rate far below float32's resolution leaves the weights as they are, so
# the validation figure never improves: the third validation stops (without
# the average, whose float rounding could move it).
check "early stopping reported" has '^done (early stopping): epoch 0, step 15;' "$T/pa.err"
check "--quiet is quiet" \
    run_ 0 "$T/q.err" "$TRAIN" $SMALL --max-steps 2 --quiet -o "$T/q.model" "$T/rep.txt"
check "--quiet: nothing on stderr" test ! -s "$T/q.err"
check "--valid 0: model kept anyway" \
    run_ 0 "$T/v0.err" "$TRAIN" $SMALL --max-steps 2 --valid 0 -o "$T/v0.model" "$T/rep.txt"
check "--valid 0: the latest model is written" has "^charlm-train: model written to $T/v0.model (the latest, without validation" "$T/v0.err"
for cell in gru rnn; do
    check "--cell $cell trains" \
        run_ 0 "$T/$cell.err" "$TRAIN" $SMALL --cell $cell --layers 2 --max-steps 3 \
        -o "$T/$cell.model" "$T/rep.txt"
    check "--cell $cell: the model reported" has " $cell 2x48, embed 16: " "$T/$cell.err"
    "$GEN" -m "$T/$cell.model" --length 20 --seed 1 > "$T/$cell.gen"
    n=$(wc -m < "$T/$cell.gen")
    check "--cell $cell generates 20 characters ($n)" test "$n" -ge 20 -a "$n" -le 21
done
# Each optimiser with its own default learning rate (issue 12: one rate for
# all, shown as Adam's, made SGD crawl).
for o in "sgd 1" "rmsprop 0.002" "adam 0.002"; do
    set -- $o
    check "--optimizer $1" \
        run_ 0 "$T/$1.err" "$TRAIN" $SMALL --optimizer $1 --max-steps 3 -v \
        -o "$T/$1.model" "$T/rep.txt"
    check "--optimizer $1: default lr $2" has ", $1 lr $2, clip 5," "$T/$1.err"
done
check "--optimizer sgd --lr 0.3: the rate given" \
    run_ 0 "$T/sgd2.err" "$TRAIN" $SMALL --optimizer sgd --lr 0.3 --max-steps 2 -v -o "$T/sgd2.model" "$T/rep.txt"
check "--lr is used" has ', sgd lr 0.3, ' "$T/sgd2.err"
"$TRAIN" --help > "$T/help.txt"
check "--help: the default rate per optimiser" has '\[adam 0.002, rmsprop 0.002, sgd 1\]' "$T/help.txt"
check "stdin and '-'" \
    run_ 0 "$T/null.err" "$TRAIN" $SMALL --max-steps 2 -o "$T/dash.model" - < "$T/rep.txt"

# Weight averaging: the model written is the average that was validated, so
# charlm-score gives the best validation bpc the run reported.
check "train --average 0.999" \
    run_ 0 "$T/avg.err" "$TRAIN" $SMALL --epochs 3 --time-limit 0 --lr 0.01 --average 0.999 \
    -o "$T/avg.model" "$T/rep.txt"
abest=$(sed -n 's/.*best valid bpc \([0-9.]*\) at step.*/\1/p' "$T/avg.err")
"$SCORE" -m "$T/avg.model" "$T/valid.txt" > "$T/avg.score"
check "charlm-score reads the averaged model" test $? -eq 0
abpc=$(field bits-per-character "$T/avg.score")
check "score ($abpc) = the averaged model's validation bpc ($abest)" \
    near "${abpc:-9}" "${abest:-0}" 0.0002

# ---- every option accepted or refused properly --------------------------------------
O="-o $T/u.model"
for args in "--cell lstmx" "--layers 0" "--layers x" "--hidden 0" "--hidden 12x" \
    "--embed -1" "--dropout 1" "--dropout -0.1" "--min-count 0" "--seq-len 0" \
    "--batch 0" "--epochs -1" "--time-limit -1" "--max-steps -1" "--lr 0" "--lr x" \
    "--optimizer adagrad" "--lr-decay 0" "--lr-decay 1.5" "--lr-patience 0" "--min-lr -1" \
    "--patience -1" "--valid-every -1" "--clip -1" "--valid 0.6" "--valid x" "--seed -1" \
    "--threads 0" "--checkpoint-every -5" "--average 1" "--average -0.1" "--average x" \
    "--plot" "--bogus" "-x" "--layers"; do
    check "charlm-train $args refused" usage_error "$TRAIN" $O $args
done
for args in "--length -1" "--length x" "--temperature -1" "--temperature x" "--top-k -1" \
    "--top-p 0" "--top-p 1.5" "--seed x" "--threads 0" "--bogus" "extra"; do
    check "charlm-generate $args refused" usage_error "$GEN" -m "$T/rep.model" $args
done
check "charlm-generate without -m refused" usage_error "$GEN"
check "charlm-generate --prime with invalid UTF-8 refused" \
    usage_error "$GEN" -m "$T/rep.model" --prime "$(printf 'a\377')"
for args in "--bogus" "--threads 0" "-m"; do
    check "charlm-score $args refused" usage_error "$SCORE" $args
done
check "charlm-score without -m refused" usage_error "$SCORE"
# Every long option of --help parses (values from the help's defaults).
check "all train options accepted" \
    run_ 0 "$T/all.err" "$TRAIN" --cell lstm --layers 1 --hidden 16 \
    --embed 8 --dropout 0.2 --min-count 1 --seq-len 16 --batch 4 --epochs 1 --time-limit 10 \
    --max-steps 20 --lr 0.002 --lr-decay 0.5 --lr-patience 2 --min-lr 0.0001 --patience 0 \
    --optimizer adam --clip 5 --valid 0.05 --valid-every 10 --seed 1 --threads 1 \
    --strict --output "$T/all.model" --checkpoint-every 0 --plot "$T/all.svg" --verbose "$T/rep.txt"
check "--verbose says more" has '<unk> (min-count 1)' "$T/all.err"
check "--plot writes an SVG" has '<svg' "$T/all.svg"
check "all generate options accepted" returns_ 0 "$GEN" --model "$T/all.model" --length 5 \
    --temperature 0.5 --top-k 3 --top-p 0.9 --prime "n" --seed 1 --threads 1 > /dev/null
check "short generate options" returns_ 0 "$GEN" -m "$T/all.model" -n 5 -t 0.5 -p n -s 1 > /dev/null
check "all score options accepted" returns_ 0 "$SCORE" --model "$T/all.model" --strict \
    --threads 1 "$T/valid.txt" > /dev/null

Exit
