# End-to-end tests of seq2seq train, translate and score on data the test
# writes itself: a reverse task (with rare words that become <unk>) trained
# for a few seconds and then translated; translation in input order and
# flushed per batch (a FIFO sees output before the end of its input);
# n-best lists, --replace-unk and attention heatmaps; forced-decoding
# scores; every bad input of issue 8 with "seq2seq: FILE:LINE: what" and
# exit 1; a model of another kind refused; usage errors; a run stopped by
# SIGINT at a random step that resumes to exactly the tensors of an
# uninterrupted run; and every option of the three commands' --help
# exercised here (the man page check is tests/man_options.sh).
. "${top_srcdir:-.}/tests/setup"
S=$BIN/seq2seq
[ -x "$S" ] || skip_ "seq2seq not built"
CMP=$top_builddir/tests/model_cmp
[ -x "$CMP" ] || framework_failure_ "tests/model_cmp not built"

# ---- data: reverse sequences of 3..7 symbols; 1 token in 10 a rare word -----
gen() { # gen SEED N: source<TAB>reversed source
    awk -v seed="$1" -v n="$2" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++) {
            len = 3 + int(rand() * 5)
            for (k = 0; k < len; k++)
                w[k] = rand() < 0.1 ? "w" seed "x" i "x" k : substr("abcdefgh", 1 + int(rand() * 8), 1)
            for (k = 0; k < len; k++) printf "%s%s", k ? " " : "", w[k]
            printf "\t"
            for (k = len - 1; k >= 0; k--) printf "%s%s", k < len - 1 ? " " : "", w[k]
            printf "\n"
        }
    }'
}
gen 1 4000 > "$T/train.tsv"
gen 2 150 > "$T/dev.tsv"
cut -f1 "$T/dev.tsv" > "$T/dev.src"
cut -f2 "$T/dev.tsv" > "$T/dev.ref"
cut -f1 "$T/train.tsv" > "$T/train.src"
cut -f2 "$T/train.tsv" > "$T/train.tgt"
SMALL="--embed 32 --hidden 64 --batch 32 --dropout 0 --lr 0.005 --seed 3"
TINY="--embed 8 --hidden 8 --batch 16 --max-steps 6 --seed 2"

# exact DIR/HYP DIR/REF: the fraction of lines equal.
exact() { paste -d '|' "$1" "$2" | awk -F '|' '$1 == $2 { c++ } END { print c / NR }'; }
atleast() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# ---- training learns the task --------------------------------------------------
check "train" run_ 0 "$T/train.err" "$S" train $SMALL --epochs 4 --valid "$T/dev.tsv" \
    -o "$T/m.model" "$T/train.tsv"
check "train reports the data" has '4000 training pairs' "$T/train.err"
check "train reports validation perplexity" has 'valid ppl' "$T/train.err"
check "train reports tokens/s" has 'target tokens/s' "$T/train.err"
check "greedy translate" run_ 0 "$T/tr.err" "$S" translate -m "$T/m.model" --beam 1 "$T/dev.src" > /dev/null
"$S" translate -m "$T/m.model" --beam 1 < "$T/dev.src" > "$T/greedy.hyp"
"$S" translate -m "$T/m.model" --beam 5 --length-penalty 0.6 --max-len-ratio 3 --batch 7 \
    --threads 1 < "$T/dev.src" > "$T/beam.hyp"
"$S" translate -m "$T/m.model" --beam 1 --replace-unk < "$T/dev.src" > "$T/unk.hyp"
check "one translation per line (greedy)" test "$(wc -l < "$T/greedy.hyp")" -eq 150
"$S" translate -m "$T/m.model" --beam 1 --batch 1 < "$T/dev.src" > "$T/greedy1.hyp"
check "the same translations whatever the batch" compare "$T/greedy.hyp" "$T/greedy1.hyp"
check "one translation per line (beam)" test "$(wc -l < "$T/beam.hyp")" -eq 150
# From a regular file several batches are read ahead and regrouped by
# length; from a pipe each batch goes as it is: the same lines either way,
# empty lines and n-best lists included.
awk 'NR % 13 == 0 { print "" } { print }' "$T/dev.src" > "$T/blanks.src"
"$S" translate -m "$T/m.model" --beam 3 --n-best 2 --batch 7 < "$T/blanks.src" > "$T/ahead.hyp"
cat "$T/blanks.src" | "$S" translate -m "$T/m.model" --beam 3 --n-best 2 --batch 7 > "$T/piped.hyp"
check "read ahead from a file = batch by batch from a pipe" compare "$T/ahead.hyp" "$T/piped.hyp"
check "n-best lines for every line, empty ones too" test "$(cut -f1 "$T/ahead.hyp" | sort -un | wc -l)" -eq "$(wc -l < "$T/blanks.src")"
g=$(exact "$T/greedy.hyp" "$T/dev.ref"); b=$(exact "$T/beam.hyp" "$T/dev.ref")
u=$(exact "$T/unk.hyp" "$T/dev.ref")
echo "exact match: greedy $g, beam 5 $b, greedy --replace-unk $u"
check "reverse task learned: greedy exact match >= 0.4 ($g)" atleast "$g" 0.4
check "beam 5 exact match >= 0.4 ($b)" atleast "$b" 0.4
check "--replace-unk leaves no <unk>" sh -c "! grep -q '<unk>' '$T/unk.hyp'"
check "--replace-unk does not hurt ($u >= $g)" atleast "$u" "$g"
check "<unk> generated without --replace-unk" has '<unk>' "$T/greedy.hyp"
check "--replace-unk brings rare source words back" has 'w2x' "$T/unk.hyp"
# Score: the reversed target is likelier than the unreversed one.
paste "$T/dev.src" "$T/dev.src" > "$T/wrong.tsv"
check "score" run_ 0 "$T/score.err" "$S" score -m "$T/m.model" "$T/dev.tsv" > /dev/null
"$S" score -m "$T/m.model" -q < "$T/dev.tsv" > "$T/right.sc" 2> "$T/q.err"
"$S" score -m "$T/m.model" -q --source "$T/dev.src" --target "$T/dev.src" --batch 5 \
    --threads 1 > "$T/wrong.sc"
check "score -q is quiet" test ! -s "$T/q.err"
check "score: one line per pair" test "$(wc -l < "$T/right.sc")" -eq 150
check "score format LOGPROB<TAB>PPL" sh -c "awk -F '\t' 'NF != 2 || \$1 > 0 || \$2 < 1 { bad = 1 } END { exit bad }' '$T/right.sc'"
check "score reports the corpus perplexity" has 'perplexity' "$T/score.err"
check "right targets score higher than wrong ones" sh -c "paste '$T/right.sc' '$T/wrong.sc' | awk '{ r += \$1; w += \$3 } END { exit !(r > w) }'"

# n-best lists and attention heatmaps.
printf 'a b c\n\nd e f g\n' > "$T/three.src"
"$S" translate -m "$T/m.model" --beam 4 --n-best 3 < "$T/three.src" > "$T/nbest.out"
check "n-best: 3 lines for each non-empty line, 1 (empty) for the empty one" test "$(wc -l < "$T/nbest.out")" -eq 7
check "n-best format LINE<TAB>SCORE<TAB>TEXT" sh -c "awk -F '\t' 'NF != 3 && \$0 != \"\" { bad = 1 } END { exit bad }' '$T/nbest.out'"
check "n-best numbers the input lines" sh -c "cut -f1 '$T/nbest.out' | tr '\n' ' ' | grep -q '^1 1 1 2 3 3 3 \$'"
check "n-best sorted best first" sh -c "awk -F '\t' 'NF == 3 { if (\$1 == l && \$2 > p) bad = 1; l = \$1; p = \$2 } END { exit bad }' '$T/nbest.out'"
check "--attention-out" run_ 0 "$T/a.err" "$S" translate -m "$T/m.model" --attention-out "$T/attn.svg" -v < "$T/three.src" > /dev/null
check "attention SVG: one panel per non-empty sentence" test "$(grep -c '<g transform' "$T/attn.svg")" -eq 2
check "attention SVG names source tokens" has '>d<' "$T/attn.svg"
check "-v reports sentences/s" has 'sentences/s' "$T/a.err"
"$S" translate --model "$T/m.model" < "$T/three.src" > "$T/three.out"
check "an empty line translates to an empty line, in order" sh -c "sed -n 2p '$T/three.out' | grep -qx ''"

# A pipe sees each batch's translation before the end of the input.
mkfifo "$T/fifo"
"$S" translate -m "$T/m.model" --batch 1 < "$T/fifo" > "$T/live.out" &
pid=$!
exec 3> "$T/fifo"
echo 'a b c d' >&3
i=0
while [ $i -lt 300 ] && [ ! -s "$T/live.out" ]; do sleep 0.1; i=$((i + 1)); done
check "output before the end of the input" test -s "$T/live.out"
echo 'e f' >&3
exec 3>&-
wait $pid
check "then the rest" test "$(wc -l < "$T/live.out")" -eq 2

# ---- the same model from both layouts -----------------------------------------
"$S" train $TINY --quiet --output "$T/tsv.model" "$T/train.tsv"
"$S" train $TINY -q -o "$T/two.model" --source "$T/train.src" --target "$T/train.tgt"
check "tsv and --source/--target give the same model" "$CMP" "$T/tsv.model" "$T/two.model"
check "--valid-source/--valid-target" run_ 0 "$T/v.err" "$S" train $TINY \
    --valid-source "$T/dev.src" --valid-target "$T/dev.ref" --valid-metric bleu \
    --max-len-ratio 1.5 -o "$T/v.model" "$T/train.tsv"
check "--valid-metric bleu reports BLEU" has 'valid bleu' "$T/v.err"
check "and perplexity beside it" has 'perplexity .*, BLEU' "$T/v.err"

# ---- the model options ------------------------------------------------------------
printf '3 8\na 1 0 0 0 0 0 0 0\nb 0 1 0 0 0 0 0 0\nzz 0 0 1 0 0 0 0 0\n' > "$T/vec.txt"
check "lstm, 2+2 layers, luong-general, label smoothing, batch tokens, vectors" \
    run_ 0 "$T/o.err" "$S" train $TINY --cell lstm --enc-layers 2 --dec-layers 2 \
    --attention luong-general --label-smoothing 0.1 --batch-tokens 200 --max-vocab 20 \
    --min-count 1 --src-embeddings "$T/vec.txt" --tgt-embeddings "$T/vec.txt" \
    -o "$T/o1.model" "$T/train.tsv"
check "vectors reported" has 'vectors for 2 of' "$T/o.err"
check "luong-dot, tied embeddings, attn-hidden, dropout" run_ 0 "$T/o.err" "$S" train $TINY \
    --attention luong-dot --tie-embeddings --attn-hidden 4 --dropout 0.3 -o "$T/o2.model" "$T/train.tsv"
check "no attention" run_ 0 "$T/o.err" "$S" train $TINY --attention none -o "$T/o3.model" "$T/train.tsv"
check "translate with a model without attention" run_ 0 "$T/o.err" "$S" translate -m "$T/o3.model" "$T/three.src" > /dev/null
check "--replace-unk needs attention" run_ 1 "$T/o.err" "$S" translate -m "$T/o3.model" --replace-unk "$T/three.src"
check "... and says so" has 'needs attention' "$T/o.err"
"$S" train $TINY --max-vocab 7 -o "$T/o4.model" "$T/train.tsv" 2> "$T/o.err"
check "--max-vocab 7: vocabularies of 7" has 'vocabularies 7 and 7' "$T/o.err"
check "vectors of another dimension refused" run_ 1 "$T/o.err" "$S" train $TINY --embed 4 \
    --src-embeddings "$T/vec.txt" -o "$T/o5.model" "$T/train.tsv"
# The shared training options, with two training threads.
check "shared options, --threads 2, --plot" run_ 0 "$T/o.err" "$S" train $TINY --valid "$T/dev.tsv" \
    --threads 2 --optimizer adam --lr 0.01 --lr-decay 0.5 --lr-patience 1 --min-lr 1e-4 \
    --patience 3 --clip 2 --time-limit 60 --epochs 2 --valid-every 3 --checkpoint-every 100 \
    --average 0.99 --plot "$T/plot.svg" --verbose -o "$T/o6.model" "$T/train.tsv"
check "--plot writes an SVG" has '<svg' "$T/plot.svg"
"$S" train $TINY --threads 2 -q -o "$T/w1.model" "$T/train.tsv"
"$S" train $TINY --threads 2 -q -o "$T/w2.model" "$T/train.tsv"
check "--threads 2 repeats bit for bit" "$CMP" "$T/w1.model" "$T/w2.model"
# A sentence too long to draw is left out of the heatmaps, with a warning.
awk 'BEGIN { for (i = 0; i < 17000; i++) printf "a "; print "b" }' > "$T/long.src"
check "a very long line translates" run_ 0 "$T/l.err" "$S" translate -m "$T/m.model" --beam 2 \
    --max-len-ratio 0.01 \
    --attention-out "$T/long.svg" "$T/long.src" > /dev/null
check "... and its heatmap is left out" has 'too many to draw' "$T/l.err"
check "-v reports the speed" has 'tgt_tokens_per_s=' "$T/o.err"
check "--quiet is quiet" run_ 0 "$T/q.err" "$S" train $TINY -q -o "$T/o7.model" "$T/train.tsv"
check "--quiet: nothing on stderr" test ! -s "$T/q.err"

# ---- bad input: seq2seq: FILE:LINE: what, exit 1 -----------------------------------
bad() { # bad NAME CONTENT MESSAGE
    printf "$2" > "$T/bad.tsv"
    check "$1: exit 1" run_ 1 "$T/bad.err" "$S" train $TINY -o "$T/bad.model" "$T/bad.tsv"
    check "$1: message" has "^seq2seq: $T/bad.tsv:$3" "$T/bad.err"
}
bad "a line without a tab" 'a b\tc\nno tab\n' '2: no TAB'
bad "an empty source side" 'a b\tc\n \tc\n' '2: empty source side'
bad "an empty target side" 'a b\tc\nd\t\n' '2: empty target side'
bad "extra tabs" 'a\tb\tc\n' '1: 2 TABs'
bad "invalid UTF-8" 'a\tb\nc \377\td\n' '2: invalid UTF-8'
: > "$T/bad.tsv"
check "an empty training file: exit 1" run_ 1 "$T/bad.err" "$S" train $TINY -o "$T/bad.model" "$T/bad.tsv"
check "an empty training file: message" has "^seq2seq: $T/bad.tsv: no sentence pair" "$T/bad.err"
printf 'a\nb\nc\n' > "$T/three.a"
printf 'x\ny\n' > "$T/two.b"
check "--source/--target of different lengths: exit 1" run_ 1 "$T/bad.err" "$S" train $TINY \
    -o "$T/bad.model" --source "$T/three.a" --target "$T/two.b"
check "different lengths: message" has "^seq2seq: $T/two.b:3: ends here, but $T/three.a has more lines" "$T/bad.err"
check "bad input in --valid" run_ 1 "$T/bad.err" "$S" train $TINY -o "$T/bad.model" --valid "$T/three.a" "$T/train.tsv"
check "bad input in --valid: message" has "^seq2seq: $T/three.a:1: no TAB" "$T/bad.err"
check "stdin is <stdin>" sh -c "printf 'x\n' | '$S' train $TINY -o '$T/bad.model' 2>&1 | grep -q '^seq2seq: <stdin>:1: no TAB'"
check "bad input to score" run_ 1 "$T/bad.err" "$S" score -m "$T/m.model" "$T/three.a"
check "bad input to score: message" has "^seq2seq: $T/three.a:1: no TAB" "$T/bad.err"
printf 'a b\nc \377\n' > "$T/bad.src"
check "invalid UTF-8 to translate" run_ 1 "$T/bad.err" "$S" translate -m "$T/m.model" "$T/bad.src"
check "invalid UTF-8 to translate: message" has "^seq2seq: $T/bad.src:2: invalid UTF-8" "$T/bad.err"
check "no model written after bad input" test ! -e "$T/bad.model"
# A model of another kind.
if [ -x "$BIN/charlm-train" ]; then
    yes 'abc abd abe' | head -200 > "$T/lm.txt"
    "$BIN/charlm-train" --hidden 8 --embed 4 --seq-len 8 --batch 2 --max-steps 2 --valid 0 -q \
        -o "$T/lm.model" "$T/lm.txt"
    check "a charlm model to translate: exit 1" run_ 1 "$T/k.err" "$S" translate -m "$T/lm.model" "$T/three.src"
    check "a charlm model: message" has "^seq2seq: $T/lm.model: .*charlm" "$T/k.err"
    check "a charlm model to score: exit 1" run_ 1 "$T/k.err" "$S" score -m "$T/lm.model" "$T/dev.tsv"
    check "a charlm checkpoint to --resume: exit 1" run_ 1 "$T/k.err" "$S" train --resume "$T/lm.model" "$T/dev.tsv"
fi
check "a text file as model" run_ 1 "$T/k.err" "$S" translate -m "$T/dev.tsv" "$T/three.src"
check "train never overwrites a text file" run_ 1 "$T/k.err" "$S" train $TINY -o "$T/dev.src" "$T/train.tsv"

# ---- usage errors: exit 2 -------------------------------------------------------
check "train without -o" run_ 2 "$T/u.err" "$S" train $TINY "$T/train.tsv"
check "usage error says Try" has "Try 'seq2seq --help'" "$T/u.err"
check "--source without --target" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --source "$T/train.src"
check "a file and --source" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --source "$T/train.src" --target "$T/train.tgt" "$T/train.tsv"
check "--valid-metric bleu without validation" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --valid-metric bleu "$T/train.tsv"
check "bad --valid-metric" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --valid-metric acc "$T/train.tsv"
check "bad --attention" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --attention luong "$T/train.tsv"
check "bad --cell" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --cell rnn "$T/train.tsv"
check "bad --dropout" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --dropout 1 "$T/train.tsv"
check "--max-vocab 4" run_ 2 "$T/u.err" "$S" train -o "$T/x.model" --max-vocab 4 "$T/train.tsv"
check "--threads above the batch" run_ 2 "$T/u.err" "$S" train $TINY --batch 2 --threads 3 -o "$T/x.model" "$T/train.tsv"
check "translate without -m" run_ 2 "$T/u.err" "$S" translate < "$T/three.src"
check "--n-best above --beam" run_ 2 "$T/u.err" "$S" translate -m "$T/m.model" --beam 2 --n-best 3 < "$T/three.src"
check "bad --beam" run_ 2 "$T/u.err" "$S" translate -m "$T/m.model" --beam 0 < "$T/three.src"
check "score without -m" run_ 2 "$T/u.err" "$S" score "$T/dev.tsv"
check "unknown option" run_ 2 "$T/u.err" "$S" translate --bogus -m "$T/m.model"
check "unknown command" run_ 2 "$T/u.err" "$S" retrain
check "--version" run_ 0 "$T/null.err" "$S" --version > /dev/null
for cmd in train translate score; do
    check "$cmd --help" run_ 0 "$T/null.err" "$S" $cmd --help > /dev/null
done

# ---- SIGINT at a random step writes a checkpoint; --resume ends bit-identical ------
RUN="--embed 16 --hidden 24 --batch 16 --dropout 0.2 --seed 5 --epochs 2 --valid-every 7 --checkpoint-every 100000 --valid $T/dev.tsv"
check "uninterrupted run" run_ 0 "$T/a.err" "$S" train $RUN -o "$T/a.model" "$T/train.tsv"
# Interrupt after a random number (1..12) of validations: a random step.
k=$(awk 'BEGIN { srand(); print 1 + int(rand() * 12) }')
echo "interrupting after validation $k"
"$S" train $RUN -o "$T/b.model" "$T/train.tsv" 2> "$T/b.err" &
interrupt_after $! "$T/b.err" 'valid ppl' "$k"
check "SIGINT landed during training (exit 130, not a finished run)" test $rc -eq 130
check "SIGINT message" has 'interrupted: continue with --resume' "$T/b.err"
check "checkpoint written" test -s "$T/b.model.ckpt"
check "resume can't change the model" run_ 2 "$T/null.err" "$S" train --resume "$T/b.model.ckpt" --hidden 8 "$T/train.tsv"
check "resume with other data is refused" run_ 1 "$T/r0.err" "$S" train --resume "$T/b.model.ckpt" --valid "$T/dev.tsv" "$T/dev.tsv"
check "other data: message" has 'pairs' "$T/r0.err"
check "resume finishes" run_ 0 "$T/r.err" "$S" train --resume "$T/b.model.ckpt" --checkpoint-every 100000 --valid "$T/dev.tsv" "$T/train.tsv"
check "resumed = uninterrupted (every tensor of the final checkpoint, optimiser moments too)" \
    "$CMP" "$T/a.model.ckpt" "$T/b.model.ckpt"
check "resumed = uninterrupted (best model)" "$CMP" "$T/a.model" "$T/b.model"
check "model_cmp can tell models apart" sh -c '! "$1" "$2" "$3" 2> /dev/null' sh "$CMP" "$T/a.model" "$T/m.model"

# ---- every option of train, translate and score is exercised above -------------
self=$top_srcdir/tests/seq2seq.sh
for cmd in train translate score; do
    "$S" $cmd --help > "$T/help"
    for opt in $(grep -o -- '--[a-z][a-z0-9-]*' "$T/help" | sort -u); do
        check "$cmd $opt exercised" grep -q -E -e "$opt([^a-z0-9-]|\$)" "$self"
    done
done
Exit
