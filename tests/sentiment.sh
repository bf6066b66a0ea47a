# End-to-end tests of the sentiment tool: training on a separable labelled
# set it writes itself (both input formats), predicting in input order,
# evaluating, word vectors from a FIFO, bad input with FILE:LINE messages
# and exit 1, usage errors, a run stopped by SIGINT that resumes to
# exactly the parameters of an uninterrupted run, and --threads 2.
. "${top_srcdir:-.}/tests/setup"
S=$BIN/sentiment
[ -x "$S" ] || skip_ "sentiment not built"

# has REGEX FILE: FILE has a line matching REGEX.

# ---- data: label words decide the class, filler words are shared -------------
gen() { # gen SEED N FORMAT
    awk -v seed="$1" -v n="$2" -v fmt="$3" 'BEGIN {
        srand(seed)
        split("neg neutral pos", name, " ")
        for (i = 0; i < n; i++) {
            c = 1 + int(rand() * 3)
            printf "%s", fmt == "ft" ? "__label__" name[c] " " : name[c] "\t"
            len = 3 + int(rand() * 6)
            for (k = 0; k < len; k++)
                printf "%s%s", k ? " " : "", rand() < 0.5 ? name[c] "_" int(rand() * 8) : "the" int(rand() * 12)
            printf "\n"
        }
    }'
}
gen 1 600 tsv > "$T/train.tsv"
gen 2 150 tsv > "$T/dev.tsv"
gen 1 600 ft > "$T/train.ft"
SMALL="--hidden 16 --embed 12 --batch 16 --seed 3 --lr 0.01 --dropout 0.1"

check "train" run_ 0 "$T/train.err" "$S" train $SMALL --epochs 6 --valid "$T/dev.tsv" -o "$T/m.model" "$T/train.tsv"
check "train reports the data" has '600 training sentences (tsv), 3 labels' "$T/train.err"
check "train reports validation" has 'valid accuracy' "$T/train.err"
"$S" eval -m "$T/m.model" "$T/dev.tsv" > "$T/eval.out"
check "eval" test $? -eq 0
acc=$(awk '$1 == "accuracy" {print $2}' "$T/eval.out")
check "accuracy >= 0.9 on separable data ($acc)" awk -v a="$acc" 'BEGIN {exit !(a >= 0.9)}'
check "eval lists every label" sh -c "grep -c -E '^(neg|neutral|pos)	' '$T/eval.out' | grep -qx 6"
check "eval has macro-F1" has '^macro_f1	0\.' "$T/eval.out"
check "eval has the confusion matrix" has '^	neg	neutral	pos$' "$T/eval.out"
"$S" eval -m "$T/m.model" < "$T/train.ft" > "$T/eval2.out"
check "eval from stdin, fastText format" test $? -eq 0

cut -f2 "$T/dev.tsv" > "$T/dev.txt"
"$S" predict -m "$T/m.model" < "$T/dev.txt" > "$T/pred.out"
check "predict" test $? -eq 0
check "one line per input line" test "$(wc -l < "$T/pred.out")" -eq "$(wc -l < "$T/dev.txt")"
check "predict format label<TAB>p" sh -c "! grep -v -E '^(neg|neutral|pos)	(0|1)\.[0-9]{6}$' '$T/pred.out'"
# Input order: the predictions match eval's accuracy line by line.
cut -f1 "$T/pred.out" | paste - "$T/dev.tsv" | awk -F'\t' '$1 == $2 {h++} END {print h / NR}' > "$T/agree"
check "predictions in input order" awk -v a="$(cat "$T/agree")" -v b="$acc" 'BEGIN {d = a - b; exit !(d < 6e-5 && d > -6e-5)}'
printf 'neg_1 neg_2 the3\n\npos_4 pos_5\n' > "$T/three.txt"
"$S" predict -m "$T/m.model" --all "$T/three.txt" > "$T/all.out"
check "predict --all" test $? -eq 0
check "--all: three lines of three labels" sh -c "test \$(awk -F'\t' 'NF == 6' '$T/all.out' | wc -l) -eq 3"
check "--all: most likely first" sh -c "head -1 '$T/all.out' | cut -f1 | grep -qx neg && sed -n 3p '$T/all.out' | cut -f1 | grep -qx pos"
check "predict -k 2" sh -c "'$S' predict -m '$T/m.model' -k 2 < '$T/three.txt' | awk -F'\t' 'NF != 4 {exit 1}'"
# Batches of another size may round differently in the last digit.
"$S" predict -m "$T/m.model" --batch 1 < "$T/dev.txt" | cut -f1 > "$T/pred1.out"
cut -f1 "$T/pred.out" > "$T/pred64.out"
check "predict --batch 1 gives the same labels" compare "$T/pred64.out" "$T/pred1.out"

# The same data in fastText's format makes the same model.
check "train (fasttext)" run_ 0 "$T/ft.err" "$S" train $SMALL --epochs 6 --valid "$T/dev.tsv" -o "$T/ft.model" "$T/train.ft"
check "fasttext detected" has '(fasttext)' "$T/ft.err"
"$S" predict -m "$T/ft.model" --all < "$T/dev.txt" > "$T/ft.pred"
"$S" predict -m "$T/m.model" --all < "$T/dev.txt" > "$T/m.pred"
check "both formats: same predictions" compare "$T/m.pred" "$T/ft.pred"

# An unseen label is counted wrong and reported once.
{ cat "$T/dev.tsv"; printf 'mixed\tpos_1 neg_2\nmixed\tthe1\n'; } > "$T/dev2.tsv"
check "eval with an unseen label" run_ 0 "$T/unseen.err" sh -c '"$1" eval -m "$2" "$3" > "$4"' sh "$S" "$T/m.model" "$T/dev2.tsv" "$T/unseen.out"
check "unseen label scored" has '^mixed	0.0000	0.0000	0.0000	2$' "$T/unseen.out"
check "unseen label reported once, with its line" sh -c "grep -c \"dev2.tsv:151: label 'mixed' is not one of the model's\" '$T/unseen.err' | grep -qx 1"

# ---- word vectors, from a FIFO ------------------------------------------------
# Dimension 1 says the class of each class word.
awk 'BEGIN {
    split("neg neutral pos", name, " ")
    print 3 * 8 + 12, 4
    for (c = 1; c <= 3; c++) for (i = 0; i < 8; i++) printf "%s_%d %d %d %d 0.1\n", name[c], i, c == 1, c == 2, c == 3
    for (i = 0; i < 12; i++) printf "the%d 0 0 0 %g\n", i, i / 12
}' > "$T/vec.txt"
mkfifo "$T/fifo" || framework_failure_ "mkfifo"
cat "$T/vec.txt" > "$T/fifo" &
check "vectors from a FIFO, frozen" run_ 0 "$T/vec.err" "$S" train --hidden 8 --batch 16 --lr 0.02 --max-steps 40 --epochs 0 \
    --embeddings "$T/fifo" --freeze-embeddings --valid "$T/dev.tsv" -o "$T/v.model" "$T/train.tsv"
wait
check "coverage reported" has 'vectors for 36 of 36 training words (100.0%)' "$T/vec.err"
"$S" eval -m "$T/v.model" "$T/dev.tsv" > "$T/veval.out"
vacc=$(awk '$1 == "accuracy" {print $2}' "$T/veval.out")
check "frozen vectors learn in 40 steps ($vacc)" awk -v a="$vacc" 'BEGIN {exit !(a >= 0.9)}'
head -n 3 "$T/vec.txt" > "$T/short.vec"
check "short vectors file" run_ 1 "$T/short.err" "$S" train --embeddings "$T/short.vec" -o "$T/x.model" "$T/train.tsv"
check "short file: message" has "^sentiment: $T/short.vec:" "$T/short.err"
{ echo "2 4"; echo "a 1 2 3 4"; echo "b 1 2 3"; } > "$T/dim.vec"
check "wrong-dimension line" run_ 1 "$T/dim.err" "$S" train --embeddings "$T/dim.vec" -o "$T/x.model" "$T/train.tsv"
check "wrong dimension: FILE:LINE" has "^sentiment: $T/dim.vec:3: " "$T/dim.err"
check "--embed with --embeddings is a usage error" \
    run_ 2 "$T/null.err" "$S" train --embed 4 --embeddings "$T/vec.txt" -o "$T/x.model" "$T/train.tsv"

# ---- bad input: FILE:LINE and exit 1 --------------------------------------------
printf 'pos\tgood\nno label here\n' > "$T/nolabel.tsv"
check "line without a TAB" run_ 1 "$T/e1.err" "$S" train -o "$T/x.model" "$T/nolabel.tsv"
check "no TAB: FILE:LINE" has "^sentiment: $T/nolabel.tsv:2: no TAB between label and text" "$T/e1.err"
printf 'pos\tgood\nneg\t \n' > "$T/notext.tsv"
check "label without text" run_ 1 "$T/e2.err" "$S" train -o "$T/x.model" "$T/notext.tsv"
check "no text: FILE:LINE" has "^sentiment: $T/notext.tsv:2: no text after the label" "$T/e2.err"
printf '__label__pos good\nbad words\n' > "$T/noft.txt"
check "fastText line without a label" run_ 1 "$T/e3.err" "$S" train -o "$T/x.model" "$T/noft.txt"
check "fastText no label: FILE:LINE" has "^sentiment: $T/noft.txt:2: no label" "$T/e3.err"
: > "$T/empty.tsv"
check "empty training file" run_ 1 "$T/e4.err" "$S" train -o "$T/x.model" "$T/empty.tsv"
check "empty: message" has "^sentiment: $T/empty.tsv: empty training file" "$T/e4.err"
printf 'pos\tgood\npos\tfine\n\n' > "$T/one.tsv"
check "a single label" run_ 1 "$T/e5.err" "$S" train -o "$T/x.model" "$T/one.tsv"
check "single label: FILE:LINE" has "^sentiment: $T/one.tsv:2: every example has the label 'pos'" "$T/e5.err"
printf 'pos\tgood\nneg\tbad\nneg\tb\303\050d\n' > "$T/utf8.tsv"
check "invalid UTF-8" run_ 1 "$T/e6.err" "$S" train -o "$T/x.model" "$T/utf8.tsv"
check "invalid UTF-8: FILE:LINE" has "^sentiment: $T/utf8.tsv:3: invalid UTF-8" "$T/e6.err"
check "invalid UTF-8 in predict" run_ 1 "$T/e7.err" "$S" predict -m "$T/m.model" "$T/utf8.tsv"
check "predict: FILE:LINE" has "^sentiment: $T/utf8.tsv:3: invalid UTF-8" "$T/e7.err"
check "invalid UTF-8 in eval (stdin)" run_ 1 "$T/e8.err" "$S" eval -m "$T/m.model" < "$T/utf8.tsv"
check "eval: <stdin>:LINE" has "^sentiment: <stdin>:3: invalid UTF-8" "$T/e8.err"
check "validation file errors too" run_ 1 "$T/e9.err" "$S" train -o "$T/x.model" --valid "$T/nolabel.tsv" "$T/train.tsv"
check "validation: FILE:LINE" has "^sentiment: $T/nolabel.tsv:2:" "$T/e9.err"
check "not a model" run_ 1 "$T/e10.err" "$S" predict -m "$T/train.tsv" < "$T/dev.txt"
check "not a model: message" has "^sentiment: $T/train.tsv: " "$T/e10.err"
check "truncated model" sh -c "head -c 300 '$T/m.model' > '$T/cut.model'; '$S' predict -m '$T/cut.model' < '$T/dev.txt'; test \$? -eq 1" 2> /dev/null
check "no output is refused before reading" run_ 1 "$T/e11.err" "$S" train -o "$T/train.tsv" "$T/train.tsv"

# ---- usage errors: exit 2 ---------------------------------------------------------
check "no command" run_ 2 "$T/u.err" "$S"
check "unknown command" run_ 2 "$T/u.err" "$S" fit
check "usage error suggests --help" has "Try 'sentiment --help'" "$T/u.err"
check "train without -o" run_ 2 "$T/u.err" "$S" train "$T/train.tsv"
check "bad --pool" run_ 2 "$T/u.err" "$S" train --pool sum -o "$T/x.model" "$T/train.tsv"
check "bad --cell" run_ 2 "$T/u.err" "$S" train --cell rnn -o "$T/x.model" "$T/train.tsv"
check "bad --dropout" run_ 2 "$T/u.err" "$S" train --dropout 1.5 -o "$T/x.model" "$T/train.tsv"
check "predict without -m" run_ 2 "$T/u.err" "$S" predict < "$T/dev.txt"
check "bad -k" run_ 2 "$T/u.err" "$S" predict -m "$T/m.model" -k 0 < "$T/dev.txt"
check "unknown option" run_ 2 "$T/u.err" "$S" eval --bogus -m "$T/m.model"
check "subcommand --help" sh -c "'$S' predict --help | grep -q -- '--all'"

# ---- SIGINT writes a checkpoint; --resume ends bit-identical ----------------------
# tests/model_cmp: every tensor of two model files, the same bits?
CMP=$top_builddir/tests/model_cmp
[ -x "$CMP" ] || framework_failure_ "tests/model_cmp not built"
gen 7 3000 tsv > "$T/long.tsv"
# (pools of 3 batches: the checkpoint must bring back their shuffled order)
RUN="--hidden 48 --embed 32 --batch 8 --bucket-pool 3 --dropout 0.3 --seed 5 --epochs 3 --valid-every 20 --checkpoint-every 100000 --valid $T/dev.tsv"
check "uninterrupted run" run_ 0 "$T/a.err" "$S" train $RUN -o "$T/a.model" "$T/long.tsv"
"$S" train $RUN -o "$T/b.model" "$T/long.tsv" 2> "$T/b.err" &
# Once the first validation line is out, the handler is installed: interrupt.
interrupt_after $! "$T/b.err" 'valid accuracy'
check "SIGINT landed during training (exit 130, not a finished run)" test $rc -eq 130
check "SIGINT message" has 'interrupted: continue with --resume' "$T/b.err"
check "checkpoint written" test -s "$T/b.model.ckpt"
check "resume can't change the model" run_ 2 "$T/null.err" "$S" train --resume "$T/b.model.ckpt" --hidden 8 "$T/long.tsv"
check "resume with other data is refused" run_ 1 "$T/r0.err" "$S" train --resume "$T/b.model.ckpt" --valid "$T/dev.tsv" "$T/train.tsv"
check "other data: message" has 'differ from the ones the checkpoint was made with' "$T/r0.err"
check "resume finishes" run_ 0 "$T/r.err" "$S" train --resume "$T/b.model.ckpt" --checkpoint-every 100000 --valid "$T/dev.tsv" "$T/long.tsv"
check "resumed = uninterrupted (every tensor of the final checkpoint, optimiser moments too)" \
    "$CMP" "$T/a.model.ckpt" "$T/b.model.ckpt"
check "resumed = uninterrupted (best model)" "$CMP" "$T/a.model" "$T/b.model"
check "model_cmp can tell models apart" sh -c '! "$1" "$2" "$3" 2> /dev/null' sh "$CMP" "$T/a.model" "$T/m.model"

# ---- --threads 2: each batch split over two workers ---------------------------
check "--threads 2 trains" run_ 0 "$T/t2a.err" "$S" train $SMALL --threads 2 --epochs 6 --valid "$T/dev.tsv" -o "$T/t2a.model" "$T/train.tsv"
check "--threads 2 repeats bit for bit" run_ 0 "$T/t2b.err" "$S" train $SMALL --threads 2 --epochs 6 --valid "$T/dev.tsv" -o "$T/t2b.model" "$T/train.tsv"
check "--threads 2: the same model twice" "$CMP" "$T/t2a.model" "$T/t2b.model"
"$S" eval -m "$T/t2a.model" "$T/dev.tsv" > "$T/eval_t2.out"
acc2=$(awk '$1 == "accuracy" {print $2}' "$T/eval_t2.out")
check "--threads 2 learns as well ($acc2)" awk -v a="$acc2" 'BEGIN {exit !(a >= 0.9)}'
check "--threads above --batch is a usage error" run_ 2 "$T/u.err" "$S" train $SMALL --threads 17 -o "$T/x.model" "$T/train.tsv"

# ---- --bucket-pool: other batches, learning as well -------------------------------
check "one pool (the default)" run_ 0 "$T/bp0.err" "$S" train $SMALL --epochs 6 --valid "$T/dev.tsv" -o "$T/bp0.model" "$T/train.tsv"
check "--bucket-pool 2 trains" run_ 0 "$T/bp.err" "$S" train $SMALL --bucket-pool 2 --epochs 6 --valid "$T/dev.tsv" -o "$T/bp.model" "$T/train.tsv"
check "--bucket-pool 2: other batches, another model" sh -c '! "$1" "$2" "$3" 2> /dev/null' sh "$CMP" "$T/bp.model" "$T/bp0.model"
"$S" eval -m "$T/bp.model" "$T/dev.tsv" > "$T/eval_bp.out"
accbp=$(awk '$1 == "accuracy" {print $2}' "$T/eval_bp.out")
check "--bucket-pool 2 learns as well ($accbp)" awk -v a="$accbp" 'BEGIN {exit !(a >= 0.9)}'
check "--bucket-pool -1 is a usage error" run_ 2 "$T/u.err" "$S" train $SMALL --bucket-pool -1 -o "$T/x.model" "$T/train.tsv"

# --plot and --quiet.
check "--plot writes an SVG" run_ 0 "$T/null.err" "$S" train $SMALL --epochs 2 --valid "$T/dev.tsv" --plot "$T/p.svg" -o "$T/p.model" "$T/train.tsv"
check "plot is SVG" has '<svg' "$T/p.svg"
check "--quiet" run_ 0 "$T/q.err" "$S" train $SMALL --epochs 1 -q -o "$T/q.model" "$T/train.tsv"
check "--quiet: nothing on stderr" test ! -s "$T/q.err"
Exit
