#!/bin/sh
# Issue 11, "a kill -9 loop test": charlm-train checkpointing often is
# killed with SIGKILL at random moments, again and again; after every kill
# the model and the checkpoint on disk must load (charlm-score reads both),
# and no more than one temporary of a killed save may be left beside them
# (the next save removes the stale ones).  Bounded: a few seconds.
. "${top_srcdir:-.}/tests/setup"
TRAIN=$BIN/charlm-train
SCORE=$BIN/charlm-score
for t in "$TRAIN" "$SCORE"; do
    [ -x "$t" ] || skip_ "$t not built"
done

# A text that takes a while to train on, written by the test.
i=0
while [ $i -lt 400 ]; do
    echo "nel mezzo del cammin di nostra vita $i mi ritrovai per una selva oscura"
    i=$((i + 1))
done > "$T/text"

kills=0 loaded=0 round=0
while [ $round -lt 8 ]; do
    round=$((round + 1))
    if [ -f "$T/m.model.ckpt" ]; then
        set -- --resume "$T/m.model.ckpt"
    else
        set -- --layers 1 --hidden 64 --embed 16 --batch 8 --seq-len 16 --threads 1 \
            --valid 0.1 --valid-every 5 --checkpoint-every 0.05 --epochs 0 --time-limit 0
    fi
    "$TRAIN" "$@" -q -o "$T/m.model" "$T/text" 2> "$T/err.$round" &
    pid=$!
    # Kill somewhere between 0.3 and 1.2 s in: inside saves, steps, checks.
    sleep "$(awk -v r="$round" 'BEGIN { srand(r * 7919 + 1); printf "%.2f", 0.3 + rand() * 0.9 }')"
    if kill -9 "$pid" 2> /dev/null; then
        kills=$((kills + 1))
    fi
    wait "$pid" 2> /dev/null
    for f in "$T/m.model" "$T/m.model.ckpt"; do
        [ -f "$f" ] || continue
        if "$SCORE" -m "$f" < "$T/text" > "$T/score" 2> "$T/score.err"; then
            loaded=$((loaded + 1))
        else
            echo "FAIL: after kill $round, $f does not load:" >&2
            cat "$T/score.err" >&2
            fail=1
        fi
    done
    n=$(ls "$T" | grep -c '\.tmp[0-9]' || true)
    check "round $round: at most one temporary left behind ($n)" [ "$n" -le 1 ]
done
# The test must have done what it claims: the runs were killed and the
# files were there to load.
check "every run was killed ($kills of 8)" [ "$kills" -eq 8 ]
check "the files loaded after the kills ($loaded)" [ "$loaded" -ge 8 ]
Exit
