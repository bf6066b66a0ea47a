#!/bin/sh
# Benchmarks tokenize, side by side in one run:
#   throughput on english/gutenberg.txt against the raw ICU word-break
#   iterator (the anchor ../shared/anchors/icu_wordbreak.c, compiled here)
#   and NLTK's TreebankWordTokenizer; then token F1 against the gold UD
#   tokenisation (bench/ud_score.py) of EWT (--lang en) and ISDT (--lang it).
#
#   bench/tokenize.sh              from a built tree (after make)
#   RUNS=5 NLTK_RUNS=3 bench/tokenize.sh
#
# Every figure is the median of RUNS runs (NLTK: NLTK_RUNS), the programs
# interleaved so that load from elsewhere hits them alike.  Throughput is
# bytes / second, both by CPU time (user+sys of the process: tokenize,
# ICU and NLTK are all single-threaded, and on a shared machine this is the
# stable figure, used for the verdict) and by wall clock.  tokenize is
# timed as a whole process (start, reading, writing to /dev/null), the ICU
# anchor's wall clock only around its loop, NLTK only around its loop
# (both clocks), so the ratios are conservative.
# Environment: NLP_CORPORA (corpus mirror, default ../shared/corpora),
# NLP_ANCHORS (default ../shared/anchors), PYTHON (default /usr/bin/python3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(dirname "$here")
builddir=${top_builddir:-$(pwd)}
tok=$builddir/bin/tokenize
[ -x "$tok" ] || { echo "tokenize.sh: $tok not built; run make first (from the build tree)" >&2; exit 1; }
: "${NLP_CORPORA:=$top_srcdir/../shared/corpora}"
: "${NLP_ANCHORS:=$top_srcdir/../shared/anchors}"
: "${PYTHON:=/usr/bin/python3}"
: "${RUNS:=5}"
: "${NLTK_RUNS:=3}"
export NLP_CORPORA

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nlpbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
corpus=$("$top_srcdir/corpora/fetch.sh" -d "$tmp/data" english/gutenberg.txt)
ewt=$("$top_srcdir/corpora/fetch.sh" -d "$tmp/data" ud/en_ewt-ud-dev.conllu)
isdt=$("$top_srcdir/corpora/fetch.sh" -d "$tmp/data" ud/it_isdt-ud-dev.conllu)

${CC:-cc} -O2 -o "$tmp/icu_wordbreak" "$NLP_ANCHORS/icu_wordbreak.c" \
    $(pkg-config --cflags --libs icu-uc)
"$PYTHON" -c 'import nltk' 2>/dev/null || { echo "tokenize.sh: $PYTHON lacks nltk (apt-get install python3-nltk)" >&2; exit 1; }

echo "== throughput: $(wc -c < "$corpus") bytes of english/gutenberg.txt, $RUNS runs, medians"
"$PYTHON" - "$corpus" "$tmp/icu_wordbreak" "$tok" "$RUNS" "$NLTK_RUNS" <<'EOF'
import os, re, resource, statistics, subprocess, sys, time

corpus, icu, tok, runs, nltk_runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
size = os.path.getsize(corpus)
MB = 1e6

def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def run_icu():
    c0 = cpu_children()
    out = subprocess.run([icu, corpus], stdout=subprocess.PIPE, check=True).stdout.decode()
    cpu = cpu_children() - c0
    return float(re.search(r"([\d.]+) MB/s", out).group(1)), size / cpu / MB

def run_tok(opts):
    c0 = cpu_children()
    t0 = time.perf_counter()
    with open(corpus, "rb") as f, open(os.devnull, "wb") as null:
        subprocess.run([tok] + opts, stdin=f, stdout=null, check=True)
    wall = time.perf_counter() - t0
    cpu = cpu_children() - c0
    return size / wall / MB, size / cpu / MB

# NLTK: the Treebank tokenizer line by line, timed around the loop only.
NLTK = r'''
import sys, time, resource
from nltk.tokenize import TreebankWordTokenizer
tk = TreebankWordTokenizer()
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
c0 = time.process_time(); t0 = time.perf_counter()
out = [" ".join(tk.tokenize(l)) for l in lines]
print(time.perf_counter() - t0, time.process_time() - c0)
'''
def run_nltk():
    out = subprocess.run([sys.executable, "-c", NLTK, corpus], stdout=subprocess.PIPE,
                         check=True).stdout.decode().split()
    return size / float(out[0]) / MB, size / float(out[1]) / MB

res = {k: [] for k in ("icu", "tok", "tok_en", "nltk")}
for r in range(max(runs, nltk_runs)):
    if r < runs:
        res["icu"].append(run_icu())
        res["tok"].append(run_tok([]))
        res["tok_en"].append(run_tok(["--lang", "en"]))
    if r < nltk_runs:
        res["nltk"].append(run_nltk())

med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
       for k, v in res.items()}
names = {"icu": "ICU word break (anchor)", "tok": "tokenize",
         "tok_en": "tokenize --lang en", "nltk": "NLTK TreebankWordTokenizer"}
print("%-28s %10s %10s   (all runs, wall MB/s)" % ("", "wall MB/s", "CPU MB/s"))
for k in ("icu", "tok", "tok_en", "nltk"):
    print("%-28s %10.1f %10.1f   %s" % (names[k], med[k][0], med[k][1],
                                      " ".join("%.1f" % x[0] for x in res[k])))
ok_cpu = ok_wall = True
for k in ("tok", "tok_en"):
    ri, ci = med[k][0] / med["icu"][0], med[k][1] / med["icu"][1]
    rn, cn = med[k][0] / med["nltk"][0], med[k][1] / med["nltk"][1]
    print("%-19s / ICU: %.2fx CPU (%.2fx wall), target >= 0.6   / NLTK: %.1fx CPU (%.1fx wall), target >= 15"
          % (names[k], ci, ri, cn, rn))
    ok_cpu = ok_cpu and ci >= 0.6 and cn >= 15
    ok_wall = ok_wall and ri >= 0.6 and rn >= 15
# All three programs are single-threaded; on a shared machine their wall
# clocks mostly measure the other load, so the verdict uses CPU time.
print("throughput targets: %s by CPU time (%s by wall clock)"
      % ("met" if ok_cpu else "NOT met", "met" if ok_wall else "not met"))
EOF

echo
echo "== token F1 against UD surface tokens (bench/ud_score.py)"
"$PYTHON" "$here/ud_score.py" --tokenize "$tok" "$ewt" -- --lang en
"$PYTHON" "$here/ud_score.py" --tokenize "$tok" "$isdt" -- --lang it
echo "-- EWT scored on words where a multiword token is a plain split (don't = do + n't):"
"$PYTHON" "$here/ud_score.py" --words --tokenize "$tok" "$ewt" -- --lang en
