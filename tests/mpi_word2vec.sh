#!/bin/sh
# word2vec under mpirun (issue 13): each rank trains on its shard of the
# corpus and the ranks combine their vectors every --sync-words words.  On
# the synthetic two-group corpus of tests/word2vec.sh: 2 ranks (1 and 2
# threads each) learn the groups; rank 0 alone writes; a run on 2 ranks x 1
# thread repeats bit for bit; --sync-words and --sync-average reach the
# syncs (other values, other vectors) and are range-checked; standard input is refused
# under mpirun; a rank that fails fails the job, naming the rank.
. "${top_srcdir:-.}/tests/mpi_setup"
W2V=$BIN/word2vec
[ -x "$W2V" ] || framework_failure_ "$W2V not built"

awk 'BEGIN { srand(42); for (i = 0; i < 1200; i++) {
        g = rand() < 0.5 ? "a" : "b"; line = "";
        for (k = 0; k < 8; k++) line = line g int(rand() * 10) " ";
        print line } }' > "$T/corpus"
FAST="-size 20 -min-count 1 -sample 0 -iter 4 --seed 3 -cbow 0 -train $T/corpus"

same_group() {
    awk -F'\t' '{ if (substr($1, 1, 1) != substr($2, 1, 1)) bad = 1 } END { exit bad || NR == 0 }' "$1"
}

# ---- the option ------------------------------------------------------------------
"$W2V" --help > "$T/help"
check "--help lists --sync-words" has '^ *--sync-words=N' "$T/help"
check "--sync-words 0 is a usage error" run_ 2 "$T/s0.err" "$W2V" $FAST --sync-words 0 -output "$T/x.txt"
check "its message names it" has 'sync-words' "$T/s0.err"

# ---- 2 ranks ------------------------------------------------------------------------
for th in 1 2; do
    check "2 ranks x $th threads train" \
        run_ 0 "$T/r$th.err" mpirun_ 2 "$W2V" $FAST -threads $th --sync-words 2000 \
            -debug 1 --verbose -output "$T/v$th.txt"
    check "2 ranks x $th threads: all rows" test "$(wc -l < "$T/v$th.txt")" -eq 22
    "$W2V" similar -m "$T/v$th.txt" -n 5 a3 b7 > "$T/near$th"
    check "2 ranks x $th threads: neighbours in the same group" same_group "$T/near$th"
    check "2 ranks x $th threads: one summary, the words of both ranks" \
        test "$(grep -c 'trained on [0-9]* words on 2 ranks' "$T/r$th.err")" -eq 1
done
# 1200 lines of 8 words and a newline, 4 epochs: 43200 words on the 2 ranks.
check "every word counted once" has 'trained on 43200 words on 2 ranks' "$T/r1.err"
mpirun_ 2 "$W2V" $FAST -threads 1 --sync-words 2000 -output "$T/again.txt" 2> "$T/again.err"
check "2 ranks x 1 thread repeat bit for bit" compare "$T/v1.txt" "$T/again.txt"
mpirun_ 2 "$W2V" $FAST -threads 1 --sync-words 500 -output "$T/s500.txt" 2> "$T/s500.err"
check "another --sync-words, other vectors" test "$(cmp -s "$T/v1.txt" "$T/s500.txt"; echo $?)" -eq 1
"$W2V" similar -m "$T/s500.txt" -n 5 a3 b7 > "$T/near500"
check "--sync-words 500: neighbours in the same group" same_group "$T/near500"
mpirun_ 2 "$W2V" $FAST -threads 1 --sync-words 2000 --sync-average 1 -output "$T/avg.txt" 2> "$T/avg.err"
check "--sync-average 1: other vectors" test "$(cmp -s "$T/v1.txt" "$T/avg.txt"; echo $?)" -eq 1
"$W2V" similar -m "$T/avg.txt" -n 5 a3 b7 > "$T/nearavg"
check "--sync-average 1: neighbours in the same group" same_group "$T/nearavg"
check "--sync-average 2 is a usage error" run_ 2 "$T/a2.err" "$W2V" $FAST --sync-average 2 -output "$T/x.txt"

# ---- refusals and failures ----------------------------------------------------------
check "standard input is refused under mpirun" \
    run_ 2 "$T/stdin.err" mpirun_ 2 "$W2V" -size 20 -min-count 1 -iter 1 -output "$T/x.txt"
check "the message says why" has 'give -train FILE' "$T/stdin.err"
check "a rank that fails fails the job" \
    run_ 1 "$T/f.err" env ASAN_OPTIONS=$MPI_ASAN_OPTIONS "$NLP_MPIRUN" --oversubscribe --bind-to none \
        -np 1 "$W2V" $FAST -output "$T/f.txt" : \
        -np 1 "$W2V" $FAST -train "$T/missing" -output "$T/f.txt"
check "the message names the rank" has 'rank 1 of 2 failed' "$T/f.err"
check "and the file" has "$T/missing" "$T/f.err"
check "no output written" test ! -e "$T/f.txt"
Exit
