#!/bin/sh
# train_step.sh: one character-LM training step (embed -> 2-layer RNN ->
# linear -> softmax cross-entropy -> backward -> clip -> Adam), libnlp
# against PyTorch (../shared/anchors/torch_charlm.py) doing the same work,
# side by side in one run, repeated; prints medians and ratios.
#
#   bench/train_step.sh                 # from the top of a built tree (make)
#   REPS=5 SECONDS_PER_RUN=10 bench/train_step.sh
#   CONFIGS="lstm:256 gru:256" bench/train_step.sh
#
# For each configuration (cell:hidden; embed 64, batch 32, 64 steps, 2
# layers, vocabulary 100) it reports chars/s (= B*T*steps/s) for libnlp on
# 1 and 2 OpenBLAS threads and for PyTorch on 1 thread (its best here: it
# is several times slower on 2), the GEMM FLOP rate of our step as a
# fraction of plain cblas_sgemm 1024^3 on the same threads
# (../shared/anchors/sgemm_peak.c), peak memory (max RSS) of both, and the
# allocations made inside our timed steps, attributed by shared object
# (libnlp must show none).  PyTorch is skipped when it is not installed.
set -eu
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
anchors=${NLP_ANCHORS:-$top_srcdir/../shared/anchors}
REPS=${REPS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
CONFIGS=${CONFIGS:-"lstm:256 gru:256 lstm:128 lstm:512 gru:128 gru:512"}
PYTHON=${PYTHON:-/usr/bin/python3}

libdir=$top_builddir/lib/.libs
if [ ! -e "$libdir/libnlp.so" ]; then
    echo "train_step.sh: $libdir/libnlp.so not found: run make first (from the build tree)" >&2
    exit 1
fi
for f in "$anchors/torch_charlm.py" "$anchors/sgemm_peak.c"; do
    [ -e "$f" ] || { echo "train_step.sh: $f not found (set NLP_ANCHORS)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
blas_cflags=$(pkg-config --cflags openblas)
blas_libs=$(pkg-config --libs openblas)
cc=${CC:-cc}
$cc -O2 -fopenmp -I"$top_srcdir/lib" -I"$top_builddir" $blas_cflags \
    "$top_srcdir/bench/train_step.c" -o "$tmp/train_step" \
    -L"$libdir" -Wl,-rpath,"$libdir" -lnlp $blas_libs -ldl -lm
$cc -O2 $blas_cflags "$anchors/sgemm_peak.c" -o "$tmp/sgemm_peak" $blas_libs

have_torch=0
if "$PYTHON" -c 'import torch' 2>/dev/null; then
    have_torch=1
    # A text of exactly 100 distinct symbols, so PyTorch's vocabulary is 100.
    "$PYTHON" - "$tmp/corpus.txt" <<'EOF'
import random, sys
random.seed(1)
syms = [chr(c) for c in range(33, 133)]
open(sys.argv[1], "w", encoding="utf-8").write("".join(random.choice(syms) for _ in range(400000)))
EOF
else
    echo "train_step.sh: PyTorch not importable by $PYTHON: reporting libnlp only" >&2
fi

# median of the numbers on stdin
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

echo "sgemm ceiling (1024x1024x1024, median of $REPS):"
for t in 1 2; do
    for i in $(seq "$REPS"); do
        OPENBLAS_NUM_THREADS=$t "$tmp/sgemm_peak" | awk '{print $(NF-1)}'
    done | median > "$tmp/peak$t"
    echo "  $t thread(s): $(cat "$tmp/peak$t") GFLOP/s"
done

printf '\n%-9s %10s %10s %10s %7s %7s %10s %10s %9s %9s\n' config ours_1t ours_2t torch_1t \
    ratio1 ratio2 frac_1t frac_2t rss_ours rss_torch
for conf in $CONFIGS; do
    cell=${conf%%:*}
    hidden=${conf#*:}
    : > "$tmp/o1"; : > "$tmp/o2"; : > "$tmp/pt"; : > "$tmp/g1"; : > "$tmp/g2"
    : > "$tmp/rss"; : > "$tmp/ptrss"
    for i in $(seq "$REPS"); do
        # Interleaved, so a burst of load on the shared machine hits all.
        for t in 1 2; do
            out=$(OMP_NUM_THREADS=$t "$tmp/train_step" --cell "$cell" --hidden "$hidden" \
                  --threads "$t" --seconds "$SECONDS_PER_RUN")
            echo "$out" >> "$tmp/log"
            echo "$out" | field chars_per_s >> "$tmp/o$t"
            echo "$out" | field gflops >> "$tmp/g$t"
            echo "$out" | field maxrss_mb >> "$tmp/rss"
        done
        if [ $have_torch = 1 ]; then
            /usr/bin/time -f 'maxrss_kb=%M' -o "$tmp/time" "$PYTHON" "$anchors/torch_charlm.py" \
                "$tmp/corpus.txt" --cell "$cell" --hidden "$hidden" --threads 1 \
                --seconds "$SECONDS_PER_RUN" --valid 0.01 > "$tmp/ptout"
            field chars_per_s < "$tmp/ptout" >> "$tmp/pt"
            awk -F= '/maxrss_kb/ {printf "%.1f\n", $2 / 1024}' "$tmp/time" >> "$tmp/ptrss"
        fi
    done
    o1=$(median < "$tmp/o1"); o2=$(median < "$tmp/o2"); pt=$(median < "$tmp/pt")
    g1=$(median < "$tmp/g1"); g2=$(median < "$tmp/g2")
    rss=$(median < "$tmp/rss"); ptrss=$(median < "$tmp/ptrss")
    awk -v c="$conf" -v o1="$o1" -v o2="$o2" -v pt="$pt" -v g1="$g1" -v g2="$g2" \
        -v p1="$(cat "$tmp/peak1")" -v p2="$(cat "$tmp/peak2")" -v rss="$rss" -v ptrss="$ptrss" \
        'BEGIN {
            r1 = pt > 0 ? sprintf("%.2fx", o1 / pt) : "-"; r2 = pt > 0 ? sprintf("%.2fx", o2 / pt) : "-"
            printf "%-9s %10.0f %10.0f %10s %7s %7s %10.2f %10.2f %8sM %8sM\n", c, o1, o2, \
                pt == "nan" ? "-" : sprintf("%.0f", pt), r1, r2, g1 / p1, g2 / p2, rss, \
                ptrss == "nan" ? "-" : ptrss
        }'
done
echo
echo "chars/s medians of $REPS runs of ${SECONDS_PER_RUN}s; ratio = ours / PyTorch 1 thread;"
echo "frac = GEMM FLOP rate of our step / sgemm 1024^3 on the same threads."
echo "Allocations inside our timed steps, per step, by the caller's shared object"
echo "(libnlp.so never appears: it allocates nothing in a step):"
awk '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    who = v["alloc_callers"]; gsub(/:[0-9]+/, "", who)
    printf "  %s h=%s, %s thread(s): %.1f per step, from %s\n", v["cell"], v["hidden"], v["threads"],
        v["allocs_in_steps"] / v["steps"], who
}' "$tmp/log" | sort -u
