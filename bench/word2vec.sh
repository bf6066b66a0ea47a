#!/bin/sh
# word2vec against its references, side by side in one run:
#   - libnlp's bin/word2vec
#   - the original C word2vec (built from the source in the npm package
#     "word2vec", when npm can fetch it), compiled as its makefile says
#   - fastText (`fasttext skipgram|cbow -maxn 0 -minn 0`)
#   - gensim (Word2Vec with corpus_file, bench/w2v_gensim.py)
# on ../shared/corpora/english/gutenberg.txt lowercased (bin/tokenize --lower
# when built, else tr A-Z a-z: the same file for every tool), at identical
# settings: size 100, window 5, negative 5, sample 1e-3, min-count 5, alpha
# 0.025 skip-gram / 0.05 CBOW.
#
# Speed: words/s = corpus words x epochs / seconds, median of RUNS runs, for
# skip-gram and CBOW, 1 and 2 threads, SPEED_ITER epochs (default 1).
# Seconds are the whole job (count, train, write text vectors) measured from
# outside, except gensim whose in-process time leaves out Python's start-up
# and imports.  Peak memory: max RSS from /usr/bin/time -v.
# Quality: QUALITY_ITER epochs (default 5), 2 threads; every tool's vectors
# are scored by the same evaluator (word2vec analogy --restrict 30000 on
# questions-words.txt, word2vec similarity on wordsim353.tsv).
#
# usage: bench/word2vec.sh            (from a built tree)
# environment: RUNS (3), SPEED_ITER (1), QUALITY_ITER (5), THREADS ("1 2"),
#   MODELS ("sg cbow"), TOOLS (default: every one found), SKIP_SPEED=1, SKIP_QUALITY=1, BENCH_DIR (scratch),
#   W2V_EXTRA (extra flags for libnlp's word2vec, e.g. --shared-negatives=1)
set -eu
LC_ALL=C
export LC_ALL
top_builddir=${top_builddir:-$(pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
W2V=$top_builddir/bin/word2vec
[ -x "$W2V" ] || { echo "bench: build first ($W2V missing)" >&2; exit 1; }
RUNS=${RUNS:-3}
SPEED_ITER=${SPEED_ITER:-1}
QUALITY_ITER=${QUALITY_ITER:-5}
THREADS=${THREADS:-"1 2"}
MODELS=${MODELS:-"sg cbow"}
W2V_EXTRA=${W2V_EXTRA:-}
export NLP_CORPORA=${NLP_CORPORA:-$top_srcdir/../shared/corpora}
work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/w2vbench.XXXXXX")}
mkdir -p "$work"
echo "scratch directory: $work"

gut=$("$top_srcdir/corpora/fetch.sh" english/gutenberg.txt)
questions=$("$top_srcdir/corpora/fetch.sh" analogy/questions-words.txt)
pairs=$NLP_CORPORA/similarity/wordsim353.tsv
[ -f "$pairs" ] || pairs=$("$top_srcdir/corpora/fetch.sh" similarity/wordsim353.tsv)
corpus=$work/corpus.txt
if [ ! -s "$corpus" ]; then
    if [ -x "$top_builddir/bin/tokenize" ]; then
        echo "corpus: tokenize --lower $gut"
        "$top_builddir/bin/tokenize" --lower < "$gut" > "$corpus"
    else
        echo "corpus: tr A-Z a-z < $gut"
        tr 'A-Z' 'a-z' < "$gut" > "$corpus"
    fi
fi
words=$(wc -w < "$corpus")
echo "corpus: $words words"

# --- references ------------------------------------------------------------------
tools="libnlp"
orig=$work/orig/word2vec
if [ ! -x "$orig" ] && command -v npm > /dev/null 2>&1; then
    mkdir -p "$work/orig"
    if (cd "$work/orig" && npm pack --silent word2vec@1.1.5 > /dev/null 2>&1 \
        && tar xzf word2vec-1.1.5.tgz \
        && gcc package/src/word2vec.c -o word2vec -lm -pthread -O3 -march=native \
               -funroll-loops -Wno-unused-result -fno-stack-protector); then
        :
    else
        echo "original word2vec: could not fetch or build (npm word2vec@1.1.5); skipped"
    fi
fi
[ -x "$orig" ] && tools="$tools original"
if command -v fasttext > /dev/null 2>&1; then tools="$tools fasttext"; else echo "fasttext absent: skipped"; fi
if /usr/bin/python3 -c 'import gensim' 2> /dev/null; then tools="$tools gensim"; else echo "gensim absent: skipped"; fi
[ -n "${TOOLS:-}" ] && tools=$TOOLS
echo "tools: $tools"

# run TOOL MODEL THREADS ITER OUT: trains; prints "SECONDS MAXRSS_KB".
run() {
    tool=$1 model=$2 th=$3 it=$4 out=$5
    if [ "$model" = sg ]; then cbow=0 alpha=0.025 ft=skipgram sg=1; else cbow=1 alpha=0.05 ft=cbow sg=0; fi
    tv=$work/time.txt
    t0=$(date +%s.%N)
    case $tool in
    libnlp) /usr/bin/time -v -o "$tv" "$W2V" -train "$corpus" -output "$out" -cbow $cbow -size 100 \
                -window 5 -negative 5 -hs 0 -sample 1e-3 -min-count 5 -alpha $alpha -iter "$it" \
                -threads "$th" -debug 0 $W2V_EXTRA ;;
    original) /usr/bin/time -v -o "$tv" "$orig" -train "$corpus" -output "$out" -cbow $cbow -size 100 \
                -window 5 -negative 5 -hs 0 -sample 1e-3 -min-count 5 -alpha $alpha -iter "$it" \
                -threads "$th" -debug 0 > /dev/null ;;
    fasttext) /usr/bin/time -v -o "$tv" fasttext $ft -input "$corpus" -output "$work/ft" -dim 100 -ws 5 \
                -neg 5 -loss ns -t 1e-3 -minCount 5 -lr $alpha -epoch "$it" -thread "$th" \
                -maxn 0 -minn 0 -verbose 0 > /dev/null && mv "$work/ft.vec" "$out" && rm -f "$work/ft.bin" ;;
    gensim) /usr/bin/time -v -o "$tv" /usr/bin/python3 "$top_srcdir/bench/w2v_gensim.py" "$corpus" "$out" \
                $sg "$th" "$it" $alpha > "$work/gensim.sec" ;;
    esac
    t1=$(date +%s.%N)
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$tv")
    if [ "$tool" = gensim ]; then secs=$(cat "$work/gensim.sec"); else secs=$(echo "$t1 - $t0" | bc -l); fi
    echo "$secs $rss"
}

if [ -x "$orig" ] && [ "${SKIP_COMPAT:-0}" != 1 ]; then
    echo
    echo "== compatibility with the original word2vec (same corpus, -iter 1)"
    "$W2V" -train "$corpus" -output "$work/c.ours.bin" -binary 1 -save-vocab "$work/c.ours.vocab" \
        -iter 1 -size 10 -threads 2 -debug 0
    "$orig" -train "$corpus" -output "$work/c.orig.bin" -binary 1 -save-vocab "$work/c.orig.vocab" \
        -iter 1 -size 10 -threads 2 -debug 0 > /dev/null
    if cmp -s "$work/c.ours.vocab" "$work/c.orig.vocab"; then echo "-save-vocab files: identical"
    else echo "-save-vocab files: DIFFER"; fi
    # Same words in the same order, same sizes: only the numbers differ.
    if [ "$(stat -c %s "$work/c.ours.bin")" = "$(stat -c %s "$work/c.orig.bin")" ]; then
        echo "binary vectors: same size ($(stat -c %s "$work/c.ours.bin") bytes)"
    else echo "binary vectors: sizes DIFFER"; fi
    "$W2V" -train "$corpus" -output "$work/c.ours.txt" -iter 1 -size 10 -threads 2 -debug 0
    "$orig" -train "$corpus" -output "$work/c.orig.txt" -iter 1 -size 10 -threads 2 -debug 0 > /dev/null
    mask() { sed -E 's/-?[0-9]+\.[0-9]{6} /N /g' "$1" | md5sum; }
    if [ "$(mask "$work/c.ours.txt")" = "$(mask "$work/c.orig.txt")" ]; then
        echo "text vectors: identical layout and word order (numbers masked)"
    else echo "text vectors: layout DIFFERS"; fi
fi

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

if [ "${SKIP_SPEED:-0}" != 1 ]; then
    echo
    echo "== speed: $SPEED_ITER epoch(s), median of $RUNS runs (words/s = $words x $SPEED_ITER / s)"
    printf '%-6s %-3s %-10s %10s %12s %10s\n' model thr tool seconds words/s maxRSS_MB
    for model in $MODELS; do
        for th in $THREADS; do
            : > "$work/speed.$model.$th"
            for r in $(seq "$RUNS"); do
                for tool in $tools; do   # interleaved, so load changes hit every tool
                    echo "$tool $(run $tool $model $th "$SPEED_ITER" "$work/speed.vec")" >> "$work/speed.$model.$th"
                done
            done
            best_ref=0
            for tool in $tools; do
                s=$(awk -v t=$tool '$1 == t {print $2}' "$work/speed.$model.$th" | median)
                m=$(awk -v t=$tool '$1 == t {print $3}' "$work/speed.$model.$th" | median)
                wps=$(echo "$words * $SPEED_ITER / $s" | bc -l)
                printf '%-6s %-3s %-10s %10.2f %12.0f %10.1f\n' $model $th $tool $s $wps $(echo "$m / 1024" | bc -l)
                if [ $tool = libnlp ]; then ours=$wps; ours_m=$m
                elif [ "$(echo "$wps > $best_ref" | bc -l)" = 1 ]; then best_ref=$wps; best_tool=$tool; best_m=$m; fi
            done
            if [ "$best_ref" != 0 ]; then
                printf '%-6s %-3s ratio libnlp / fastest reference (%s): %.2fx speed, %.2fx memory\n' \
                    $model $th $best_tool $(echo "$ours / $best_ref" | bc -l) $(echo "$ours_m / $best_m" | bc -l)
            fi
        done
    done
fi

if [ "${SKIP_QUALITY:-0}" != 1 ]; then
    echo
    echo "== quality: $QUALITY_ITER epochs, 2 threads (analogy: total accuracy over answered questions"
    echo "   with --restrict 30000; wordsim: Spearman x 100; memory: max RSS)"
    printf '%-6s %-10s %10s %10s %10s %10s\n' model tool analogy% wordsim seconds maxRSS_MB
    for model in $MODELS; do
        for tool in $tools; do
            out=$work/q.$model.$tool.txt
            set -- $(run $tool $model 2 "$QUALITY_ITER" "$out")
            acc=$("$W2V" analogy -m "$out" < "$questions" | tail -n 1 | sed 's/total accuracy: \([0-9.]*\)%.*/\1/')
            rho=$("$W2V" similarity -m "$out" < "$pairs" | awk '/^spearman/ {print $2 * 100}')
            printf '%-6s %-10s %10s %10.2f %10.2f %10.1f\n' $model $tool $acc $rho $1 $(echo "$2 / 1024" | bc -l)
        done
    done
fi
