#!/bin/sh
# gemm.sh: GFLOP/s of cblas_sgemm and of nlp_tensor_gemm side by side, one
# thread, at the recurrent-step shapes: M in {8,16,32,64} rows x (N,K) in
# {(1024,256),(256,1024),(1536,384),(384,1536),(2048,512),(512,2048)}, forms
# NN (backward: dh += dG Whh) and NT (forward: G += h Whh^T); medians of
# REPS measurements of SECONDS_PER_RUN each, the two sides interleaved,
# timed by the thread's CPU clock so that other load on the machine does
# not count as the kernel's time.
#
#   bench/gemm.sh                      # from the top of a built tree (make)
#   REPS=3 SECONDS_PER_RUN=0.1 bench/gemm.sh
#   bench/gemm.sh --m 16,32 --nk 1024x256,256x1024
set -eu
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
REPS=${REPS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-0.2}

libdir=$top_builddir/lib/.libs
if [ ! -e "$libdir/libnlp.so" ]; then
    echo "gemm.sh: $libdir/libnlp.so not found: run make first (from the build tree)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
$cc -O2 -I"$top_srcdir/lib" -I"$top_builddir" $(pkg-config --cflags openblas) \
    "$top_srcdir/bench/gemm.c" -o "$tmp/gemm" \
    -L"$libdir" -Wl,-rpath,"$libdir" -lnlp $(pkg-config --libs openblas) -lm
echo "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(uptime | sed 's/.*load/load/')"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$tmp/gemm" --reps "$REPS" --seconds "$SECONDS_PER_RUN" "$@"
echo "GFLOP/s per CPU-second of the thread (not wall-clock: the machine is shared),"
echo "medians of $REPS runs of ${SECONDS_PER_RUN}s; alpha 1, beta 1; ratio = ours / cblas."
echo "$(uptime | sed 's/.*load/load/')"
