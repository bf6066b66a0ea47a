#!/bin/sh
# seq2seq train and sentiment train under mpirun (issue 13): 2 ranks x B/2
# sentences train the same weights as 1 process x B (within float
# rounding: the gradient is summed in another order) and exactly those of
# 1 process with 2 threads; only rank 0 writes and reports; standard input
# is refused under mpirun (it reaches rank 0 only).  Tiny models: seconds.
. "${top_srcdir:-.}/tests/mpi_setup"
S2S=$BIN/seq2seq
SENT=$BIN/sentiment
MODEL_CMP=$top_builddir/tests/model_cmp
[ -x "$S2S" ] && [ -x "$SENT" ] || skip_ "seq2seq or sentiment not built"
[ -x "$MODEL_CMP" ] || framework_failure_ "$MODEL_CMP not built (make check builds it)"
TOL=1e-5 # as tests/mpi_charlm.sh: measured below 1e-6

awk 'BEGIN { srand(7); for (i = 0; i < 400; i++) { n = 3 + int(rand() * 5); s = ""; r = ""
    for (k = 0; k < n; k++) { w = substr("abcdefgh", 1 + int(rand() * 8), 1); s = s (k ? " " : "") w; r = w (k ? " " : "") r }
    print s "\t" r } }' > "$T/pairs.tsv"
head -n 40 "$T/pairs.tsv" > "$T/pairs.dev"
awk 'BEGIN { srand(3); split("neg pos", name, " "); for (i = 0; i < 300; i++) { c = 1 + int(rand() * 2); printf "%s\t", name[c]
    n = 3 + int(rand() * 5); for (k = 0; k < n; k++) printf "%s%s", k ? " " : "", rand() < 0.5 ? name[c] "_" int(rand() * 5) : "the" int(rand() * 9)
    printf "\n" } }' > "$T/sent.tsv"
head -n 40 "$T/sent.tsv" > "$T/sent.dev"

for tool in seq2seq sentiment; do
    if [ $tool = seq2seq ]; then
        cmd="$S2S train"; data=$T/pairs.tsv
        opts="--embed 8 --hidden 12 --batch 16 --max-steps 12 --valid-every 6 --valid $T/pairs.dev --seed 2"
    else
        cmd="$SENT train"; data=$T/sent.tsv
        # no word dropout: its masks, like dropout's, depend on the split
        opts="--embed 8 --hidden 12 --batch 16 --max-steps 12 --valid-every 6 --valid $T/sent.dev --seed 2 --word-dropout 0"
    fi
    check "$tool: 1 process" run_ 0 "$T/$tool.1.err" $cmd $opts --dropout 0 -o "$T/$tool.1.model" "$data"
    check "$tool: 2 ranks" run_ 0 "$T/$tool.2.err" mpirun_ 2 $cmd $opts --dropout 0 -o "$T/$tool.2.model" "$data"
    check "$tool: 2 ranks x B/2 = 1 x B within $TOL" \
        run_ 0 "$T/$tool.cmp.err" "$MODEL_CMP" --tol $TOL "$T/$tool.1.model" "$T/$tool.2.model"
    check "$tool: only rank 0 reports" test "$(grep -c 'model written to' "$T/$tool.2.err")" -eq 1
    check "$tool: 1 process, 2 threads, dropout" \
        run_ 0 "$T/$tool.t.err" $cmd $opts --dropout 0.2 --threads 2 -o "$T/$tool.t.model" "$data"
    check "$tool: 2 ranks, dropout" \
        run_ 0 "$T/$tool.r.err" mpirun_ 2 $cmd $opts --dropout 0.2 -o "$T/$tool.r.model" "$data"
    check "$tool: 2 ranks = 2 threads bit for bit" \
        run_ 0 "$T/$tool.tr.err" "$MODEL_CMP" "$T/$tool.t.model" "$T/$tool.r.model"
    mpirun_ 2 $cmd $opts -o "$T/$tool.stdin.model" < "$data" > /dev/null 2> "$T/$tool.stdin.err"
    check "$tool: standard input refused under mpirun" test $? -ne 0
    check "$tool: ... saying why" has 'standard input reaches rank 0 only' "$T/$tool.stdin.err"
done
Exit
