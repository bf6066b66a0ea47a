#!/bin/sh
# sentiment against its references on SST-2 (sentence level, binary), side
# by side in one run:
#   - libnlp's bin/sentiment, random embeddings and 100-d vectors that our
#     word2vec trains on english/gutenberg.txt (tokenize --lang en --lower)
#     plus the SST training sentences;
#   - fastText (`fasttext supervised -epoch 25 -lr 0.5`, with and without
#     -wordNgrams 2), on the same split in its own format;
#   - ../shared/anchors/torch_sentiment.py (PyTorch: embeddings -> bi-LSTM ->
#     max-pool -> linear, Adam), random and with the same vectors.
# The neural models have the same sizes (embed 100, hidden 150 per
# direction, dropout 0.5, batch 32, Adam 1e-3, best dev epoch kept) and
# every tool runs on THREADS threads (1 by default: PyTorch's best here).
# Each trains for its own default number of epochs: the anchor 10, ours 20
# (word dropout makes ours learn more slowly, and at twice the speed 20
# epochs take less time than the anchor's 10).
#
# Besides, our training speed on 2 threads (--threads 2, random embeddings,
# TRAIN2_EPOCHS epochs) for the 2-thread/1-thread ratio, and one run of our
# defaults on 2 threads: when it reached its best dev accuracy.
#
# Figures, medians of RUNS runs (seeds 1..RUNS):
#   dev accuracy (%) of the model kept;
#   training sentences/s = sentences stepped over / training seconds
#     (validation after each epoch included, as the anchor counts it; for
#     fastText: epochs x sentences / the whole `supervised` run);
#   prediction sentences/s = lines / seconds of classifying PRED_REPEAT
#     copies of the dev sentences (ours and fastText: the whole predict
#     command, model loading included; the anchor: its own in-process
#     figure over dev).
#
# usage: bench/sentiment.sh            (from a built tree)
# environment: RUNS (3), TORCH_RUNS (RUNS), THREADS (1), PRED_REPEAT (20),
#   EPOCHS (the anchor's, 10), OURS_EPOCHS (empty: our default),
#   TOOLS ("ours fasttext torch"), SENTIMENT_EXTRA (extra flags for our
#   train), BENCH_DIR (scratch; vectors are kept there), TRAIN2_EPOCHS (3;
#   0 = no 2-thread runs), KINDS ("random vectors": the embeddings of the
#   neural runs)
set -eu
LC_ALL=C
export LC_ALL
top_builddir=${top_builddir:-$(pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
S=$top_builddir/bin/sentiment
[ -x "$S" ] || { echo "bench: build first ($S missing)" >&2; exit 1; }
RUNS=${RUNS:-3}
TORCH_RUNS=${TORCH_RUNS:-$RUNS}
THREADS=${THREADS:-1}
PRED_REPEAT=${PRED_REPEAT:-20}
EPOCHS=${EPOCHS:-10}
OURS_EPOCHS=${OURS_EPOCHS:-}
ours_epochs=${OURS_EPOCHS:+--epochs $OURS_EPOCHS}
TOOLS=${TOOLS:-"ours fasttext torch"}
SENTIMENT_EXTRA=${SENTIMENT_EXTRA:-}
TRAIN2_EPOCHS=${TRAIN2_EPOCHS:-3}
KINDS=${KINDS:-"random vectors"}
# ../shared beside the checkout (or beside a worktree's parent directory).
shared=$top_srcdir/../shared
[ -d "$shared" ] || shared=$top_srcdir/../../shared
ANCHOR=${ANCHOR:-$shared/anchors/torch_sentiment.py}
export NLP_CORPORA=${NLP_CORPORA:-$shared/corpora}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sentbench.XXXXXX")}
mkdir -p "$work"
echo "scratch directory: $work"

train=$("$top_srcdir/corpora/fetch.sh" sst2/train.tsv)
dev=$("$top_srcdir/corpora/fetch.sh" sst2/dev.tsv)
ntrain=$(wc -l < "$train")
ndev=$(wc -l < "$dev")
echo "SST-2: $ntrain training and $ndev dev sentences; $THREADS thread(s); $RUNS runs"

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
has() { case " $TOOLS " in *" $1 "*) return 0;; esac; return 1; }

# Prediction input: the dev sentences, PRED_REPEAT times.
cut -f2 "$dev" > "$work/dev.txt"
: > "$work/pred.txt"
i=0
while [ $i -lt "$PRED_REPEAT" ]; do cat "$work/dev.txt" >> "$work/pred.txt"; i=$((i + 1)); done
npred=$(wc -l < "$work/pred.txt")

# The vectors: gutenberg plus the training sentences (already tokenised
# and lower case), 100 dimensions, our word2vec's defaults otherwise.
vec=$work/vectors.txt
if [ ! -s "$vec" ] && { has ours || has torch; } && case " $KINDS " in *" vectors "*) true;; *) false;; esac; then
    gut=$("$top_srcdir/corpora/fetch.sh" english/gutenberg.txt)
    echo "vectors: tokenize --lang en --lower < gutenberg.txt; cut -f2 train.tsv | word2vec -size 100 -threads 2"
    t0=$(now)
    { "$top_builddir/bin/tokenize" --lang en --lower < "$gut"; cut -f2 "$train"; } |
        "$top_builddir/bin/word2vec" -size 100 -threads 2 -debug 0 > "$vec.tmp"
    mv "$vec.tmp" "$vec"
    echo "vectors: $(head -n 1 "$vec" | cut -d' ' -f1) words in $(echo "$(now) - $t0" | bc) s"
fi

: > "$work/results"
# record NAME ACC TRAIN_RATE PRED_RATE
record() { echo "$1 $2 $3 $4" >> "$work/results"; echo "  $1: dev $2%, train $3 sentences/s, predict $4 sentences/s"; }

if has ours; then
    for kind in $KINDS; do
        r=1
        while [ $r -le "$RUNS" ]; do
            emb=
            [ $kind = vectors ] && emb="--embeddings $vec"
            "$S" train -v -o "$work/ours.$kind.model" --valid "$dev" $ours_epochs \
                --threads "$THREADS" --seed $r $emb $SENTIMENT_EXTRA "$train" 2> "$work/ours.$kind.$r.log"
            line=$(grep 'train_seconds=' "$work/ours.$kind.$r.log")
            acc=$(echo "$line" | sed 's/.*dev_accuracy=\([0-9.]*\).*/\1/')
            rate=$(echo "$line" | sed 's/.*sentences_per_s=\([0-9.]*\).*/\1/')
            t0=$(now)
            "$S" predict -m "$work/ours.$kind.model" --threads "$THREADS" < "$work/pred.txt" > "$work/ours.pred"
            prate=$(echo "$npred / ($(now) - $t0)" | bc)
            record "ours-$kind" "$acc" "$rate" "$prate"
            r=$((r + 1))
        done
    done
    if [ "$TRAIN2_EPOCHS" -gt 0 ]; then
        # Training speed alone, 1 and 2 threads, same epochs, interleaved.
        for th in 1 2; do
            "$S" train -v -o "$work/ours.t$th.model" --valid "$dev" --epochs "$TRAIN2_EPOCHS" \
                --threads $th --seed 1 $SENTIMENT_EXTRA "$train" 2> "$work/ours.t$th.log"
            line=$(grep 'train_seconds=' "$work/ours.t$th.log")
            echo "$line" | sed 's/.*sentences_per_s=\([0-9.]*\).*/\1/' > "$work/ours.t$th.rate"
            echo "  ours, $th thread(s), $TRAIN2_EPOCHS epochs: $(cat "$work/ours.t$th.rate") sentences/s"
        done
        # The defaults on 2 threads: the time of the last progress line
        # marked (best), as 1m12s or 56.4s, and of the whole run.
        "$S" train -v -o "$work/ours.d2.model" --valid "$dev" --threads 2 "$train" 2> "$work/ours.d2.log"
        best=$(grep '(best)' "$work/ours.d2.log" | tail -n 1)
        secs() { awk '{t = $NF; s = 0; if (t ~ /m/) {split(t, p, "m"); s = 60 * p[1]; t = p[2]} sub(/s$/, "", t); printf "%.0f", s + t}'; }
        echo "$best" | sed 's/:.*//' > "$work/ours.d2.epoch"
        echo "$best" | secs > "$work/ours.d2.best"
        grep -o 'train_seconds=[0-9.]*' "$work/ours.d2.log" | sed 's/.*=//' > "$work/ours.d2.total"
        grep -o 'dev_accuracy=[0-9.]*' "$work/ours.d2.log" | sed 's/.*=//' > "$work/ours.d2.acc"
        echo "  ours, defaults, 2 threads: best dev $(cat "$work/ours.d2.acc")% at $(cat "$work/ours.d2.epoch"), $(cat "$work/ours.d2.best") s into $(cat "$work/ours.d2.total") s of training"
    fi
fi

if has fasttext; then
    command -v fasttext > /dev/null || { echo "bench: fasttext missing (apt-get install -y fasttext)" >&2; exit 1; }
    awk -F'\t' '{print "__label__" $1 " " $2}' "$train" > "$work/train.ft"
    awk -F'\t' '{print "__label__" $1 " " $2}' "$dev" > "$work/dev.ft"
    for ng in 1 2; do
        r=1
        while [ $r -le "$RUNS" ]; do
            t0=$(now)
            fasttext supervised -input "$work/train.ft" -output "$work/ft" -epoch 25 -lr 0.5 \
                -wordNgrams $ng -thread "$THREADS" -seed $r -verbose 0 > /dev/null
            rate=$(echo "25 * $ntrain / ($(now) - $t0)" | bc)
            acc=$(fasttext test "$work/ft.bin" "$work/dev.ft" | awk '$1 == "P@1" {printf "%.2f", 100 * $2}')
            t0=$(now)
            fasttext predict "$work/ft.bin" "$work/pred.txt" > "$work/ft.pred"
            prate=$(echo "$npred / ($(now) - $t0)" | bc)
            record "fasttext-ngrams$ng" "$acc" "$rate" "$prate"
            r=$((r + 1))
        done
    done
fi

if has torch; then
    [ -f "$ANCHOR" ] || { echo "bench: $ANCHOR missing" >&2; exit 1; }
    for kind in $KINDS; do
        r=1
        while [ $r -le "$TORCH_RUNS" ]; do
            emb=
            [ $kind = vectors ] && emb="--embeddings $vec"
            /usr/bin/python3 "$ANCHOR" "$train" "$dev" "$dev" --epochs "$EPOCHS" --threads "$THREADS" \
                --seed $r $emb > "$work/torch.$kind.$r.out"
            out=$(cat "$work/torch.$kind.$r.out")
            acc=$(echo "$out" | sed 's/.*dev=\([0-9.]*\).*/\1/')
            rate=$(echo "$out" | sed 's/.*train_sents_per_s=\([0-9.]*\).*/\1/')
            prate=$(echo "$out" | sed 's/.*predict_sents_per_s=\([0-9.]*\).*/\1/')
            record "torch-$kind" "$acc" "$rate" "$prate"
            r=$((r + 1))
        done
    done
fi

: > "$work/medians"   # BENCH_DIR may hold an earlier run
echo
echo "medians over runs (SST-2 dev, $THREADS thread(s)):"
printf '%-20s %8s %16s %16s\n' system "dev %" "train sent/s" "predict sent/s"
for name in $(awk '{print $1}' "$work/results" | awk '!seen[$0]++'); do
    acc=$(awk -v n="$name" '$1 == n {print $2}' "$work/results" | median)
    tr=$(awk -v n="$name" '$1 == n {print $3}' "$work/results" | median)
    pr=$(awk -v n="$name" '$1 == n {print $4}' "$work/results" | median)
    printf '%-20s %8s %16.0f %16.0f\n' "$name" "$acc" "$tr" "$pr"
    echo "$name $acc $tr $pr" >> "$work/medians"
done

# Ratios: ours against the anchor (same embeddings) and fastText's better run.
med() { awk -v n="$1" -v f="$2" '$1 == n {print $f}' "$work/medians" 2> /dev/null; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}' || echo "-"; }
ftbest=
for ng in 1 2; do
    a=$(med fasttext-ngrams$ng 2)
    [ -n "$a" ] && { [ -z "$ftbest" ] || awk -v a="$a" -v b="$ftbest" 'BEGIN {exit !(a > b)}'; } && ftbest=$a
done
echo
echo "ratios (ours / reference):"
minus() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.2f", a - b}' || echo "-"; }
printf '%-10s %18s %18s %14s %14s\n' kind "train vs anchor" "predict vs anchor" "dev - anchor" "dev - fastText"
for kind in $KINDS; do
    o=ours-$kind a=torch-$kind
    printf '%-10s %18s %18s %14s %14s\n' "$kind" "$(ratio "$(med "$o" 3)" "$(med "$a" 3)")" \
        "$(ratio "$(med "$o" 4)" "$(med "$a" 4)")" "$(minus "$(med "$o" 2)" "$(med "$a" 2)")" \
        "$(minus "$(med "$o" 2)" "$ftbest")"
done
[ -n "$ftbest" ] && echo "fastText's better dev accuracy: $ftbest%; targets: train >= 1.5x, predict >= 2x, dev >= anchor, dev >= fastText + 3"
if [ -s "$work/ours.t1.rate" ] && [ -s "$work/ours.t2.rate" ]; then
    echo "ours, training on 2 threads / 1 thread: $(ratio "$(cat "$work/ours.t2.rate")" "$(cat "$work/ours.t1.rate")") ($(cat "$work/ours.t2.rate") / $(cat "$work/ours.t1.rate") sentences/s)"
    [ -n "$(med torch-random 3)" ] &&
        echo "ours on 2 threads / the anchor on $THREADS (random): $(ratio "$(cat "$work/ours.t2.rate")" "$(med torch-random 3)")"
fi
[ -s "$work/ours.d2.best" ] &&
    echo "ours, defaults on 2 threads: best dev accuracy $(cat "$work/ours.d2.best") s into training (target < 180 s)"
