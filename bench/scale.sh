#!/bin/sh
# Data-parallel scaling on this machine (issue 13), side by side in one run:
#   - charlm-train, 2x256 LSTM, embed 64, batch 32, seq-len 64 (the
#     Divina Commedia shipped in corpora/): chars/s of the training steps
#     (charlm-train -v's chars_per_s) for 1 process x 1 and 2 threads and
#     mpirun -np 2 x 1 and 2 threads;
#   - word2vec (CBOW, size 100, the other settings of bench/word2vec.sh) on
#     the first W2V_WORDS words of bench/word2vec.sh's corpus (gutenberg.txt
#     lowercased): words/s for the same four layouts;
#   - the bytes reduced: per charlm step (the gradient buffer, 4 bytes a
#     parameter) and per word2vec sync (syn0 and syn1neg), with what a
#     ring allreduce of that size costs on 8 machines over 10 Gb/s;
#   - unless SKIP_QUALITY=1: analogy accuracy of word2vec after
#     QUALITY_ITER epochs on the whole corpus, one process x 2 threads
#     against 2 ranks x 1 thread (the same total epochs), the ranks adding
#     up their updates (the default) and averaging (--sync-average 1).
# Each figure is the median of RUNS runs, interleaved.  Without MPI built
# the rank rows are left out.
#
# usage: nice -n 10 bench/scale.sh      (from a built tree)
# environment: RUNS (3), STEPS (40 charlm steps), W2V_WORDS (2000000),
#   QUALITY_ITER (5), SKIP_QUALITY, SYNC_WORDS (word2vec's default),
#   BENCH_DIR (scratch), MPIRUN (mpirun)
set -eu
LC_ALL=C
export LC_ALL
top_builddir=${top_builddir:-$(pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
TRAIN=$top_builddir/bin/charlm-train
W2V=$top_builddir/bin/word2vec
[ -x "$TRAIN" ] && [ -x "$W2V" ] || { echo "bench: build first" >&2; exit 1; }
RUNS=${RUNS:-3}
STEPS=${STEPS:-40}
W2V_WORDS=${W2V_WORDS:-2000000}
QUALITY_ITER=${QUALITY_ITER:-5}
SYNC=${SYNC_WORDS:+--sync-words $SYNC_WORDS}
export NLP_CORPORA=${NLP_CORPORA:-$top_srcdir/../shared/corpora}
work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/scalebench.XXXXXX")}
mkdir -p "$work"
echo "scratch directory: $work"

MPIRUN=${MPIRUN:-$(command -v mpirun || true)}
layouts="1x1 1x2"
if [ -n "$MPIRUN" ] && grep -q '^#define HAVE_MPI 1' "$top_builddir/config.h" 2> /dev/null; then
    layouts="$layouts 2x1 2x2"
    if [ "$(id -u)" = 0 ]; then
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
    fi
    OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
    export OMPI_MCA_btl OMPI_MCA_btl_vader_single_copy_mechanism
else
    echo "MPI not built (or no mpirun): threads only"
fi
# launch LAYOUT CMD...: CMD on R ranks (R x W); the thread count is the caller's.
launch() {
    r=${1%x*}; shift
    if [ "$r" = 1 ]; then "$@"
    else "$MPIRUN" --oversubscribe --bind-to none -np "$r" "$@"; fi
}
threads_of() { echo "${1#*x}"; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

dante=$top_srcdir/corpora/divina_commedia.txt
gut=$("$top_srcdir/corpora/fetch.sh" english/gutenberg.txt)
corpus=$work/corpus.txt
if [ ! -s "$corpus" ]; then
    if [ -x "$top_builddir/bin/tokenize" ]; then
        "$top_builddir/bin/tokenize" --lower < "$gut" > "$corpus"
    else
        tr 'A-Z' 'a-z' < "$gut" > "$corpus"
    fi
fi
# The speed slice: whole lines up to W2V_WORDS words.
awk -v n="$W2V_WORDS" '{ w += NF; print; if (w >= n) exit }' "$corpus" > "$work/slice.txt"
echo "word2vec speed slice: $(wc -w < "$work/slice.txt") words; quality corpus: $(wc -w < "$corpus") words"

CHARLM="--layers 2 --hidden 256 --embed 64 --batch 32 --seq-len 64 --valid 0 --time-limit 0 -v"
echo
echo "== speed, median of $RUNS runs ($STEPS charlm steps; word2vec 1 epoch CBOW)"
for l in $layouts; do : > "$work/c.$l"; : > "$work/w.$l"; done
for run in $(seq "$RUNS"); do
    for l in $layouts; do   # interleaved, so load changes hit every layout
        th=$(threads_of "$l")
        launch "$l" "$TRAIN" $CHARLM --threads "$th" --max-steps "$STEPS" -o "$work/c.model" "$dante" \
            2> "$work/c.err"
        sed -n 's/.*chars_per_s=\([0-9]*\).*/\1/p' "$work/c.err" >> "$work/c.$l"
        params=$(sed -n 's/.*: \([0-9]*\) parameters;.*/\1/p' "$work/c.err")
        launch "$l" "$W2V" -train "$work/slice.txt" -output "$work/w.txt" -cbow 1 -size 100 -window 5 \
            -negative 5 -sample 1e-3 -min-count 5 -iter 1 -threads "$th" -debug 1 --verbose $SYNC \
            2> "$work/w.err"
        sed -n 's/.*(\([0-9.]*\)k words\/s).*/\1/p' "$work/w.err" | awk '{ print $1 * 1000 }' >> "$work/w.$l"
        vocab=$(sed -n 's/^vocabulary size: //p' "$work/w.err")
    done
done
printf '%-8s %12s %8s %12s %8s\n' layout chars/s ratio words/s ratio
c11=$(median < "$work/c.1x1") w11=$(median < "$work/w.1x1")
for l in $layouts; do
    c=$(median < "$work/c.$l") w=$(median < "$work/w.$l")
    printf '%-8s %12.0f %8.2f %12.0f %8.2f\n' "$l" "$c" "$(echo "$c / $c11" | bc -l)" \
        "$w" "$(echo "$w / $w11" | bc -l)"
done
echo "(layout RxW: R ranks x W threads each; ratios against 1x1)"

echo
echo "== bytes reduced"
# word2vec rows are padded to 16 floats (lib/w2v.c ROW_ALIGN).
stride=$(( (100 + 15) / 16 * 16 ))
cb=$((params * 4))
wb=$((2 * vocab * stride * 4))
echo "charlm: $params parameters: $cb bytes (float32) per step in one MPI_Allreduce"
echo "        (+ 3 doubles of losses and 3 of votes)"
echo "word2vec: syn0 + syn1neg, $vocab x $stride floats each: $wb bytes per sync,"
echo "          one sync every --sync-words words per rank"
# A ring allreduce moves 2 (N-1)/N of the buffer through each link.
awk -v b="$cb" -v w="$wb" 'BEGIN {
    n = 8; bw = 10e9 / 8;
    printf "8 machines, 10 Gb/s (%.2f GB/s) ring allreduce, 2(N-1)/N x bytes per link:\n", bw / 1e9;
    printf "  charlm:   %.1f MB -> %.1f ms per step\n", b * 2 * (n - 1) / n / 1e6, b * 2 * (n - 1) / n / bw * 1e3;
    printf "  word2vec: %.1f MB -> %.1f ms per sync\n", w * 2 * (n - 1) / n / 1e6, w * 2 * (n - 1) / n / bw * 1e3 }'

if [ "${SKIP_QUALITY:-0}" != 1 ]; then
    questions=$("$top_srcdir/corpora/fetch.sh" analogy/questions-words.txt)
    echo
    echo "== word2vec quality: CBOW, $QUALITY_ITER epochs on the whole corpus (analogy: total accuracy)"
    printf '%-11s %10s %10s\n' layout analogy% seconds
    for q in 1x2 2x1 2x1-average; do
        l=${q%-average}
        case " $layouts " in *" $l "*) ;; *) continue ;; esac
        avg=; [ "$q" = "$l" ] || avg="--sync-average 1"
        t0=$(date +%s.%N)
        launch "$l" "$W2V" -train "$corpus" -output "$work/q.$q.txt" -cbow 1 -size 100 -window 5 \
            -negative 5 -sample 1e-3 -min-count 5 -iter "$QUALITY_ITER" -threads "$(threads_of "$l")" \
            -debug 0 $SYNC $avg
        t1=$(date +%s.%N)
        acc=$("$W2V" analogy -m "$work/q.$q.txt" < "$questions" | tail -n 1 |
              sed 's/total accuracy: \([0-9.]*\)%.*/\1/')
        printf '%-11s %10s %10.1f\n' "$q" "$acc" "$(echo "$t1 - $t0" | bc -l)"
    done
fi
