#!/bin/sh
# End-to-end tests of the forecast tool (issue 14): a learnable series
# (a sum of sines) and a random walk written by the test; the three
# commands; every bad input the issue names (a non-numeric cell, a series
# too short for the window, a missing column name) with FILE:LINE:COLUMN
# messages and exit 1; usage errors with exit 2; every option of --help in
# the man page and used by this script; and a run stopped by SIGINT that
# resumes to the same bits as an uninterrupted one (tests/model_cmp).
. "${top_srcdir:-.}/tests/setup"
F=$BIN/forecast
[ -x "$F" ] || skip_ "$F not built"
CMP=$top_builddir/tests/model_cmp
[ -x "$CMP" ] || framework_failure_ "tests/model_cmp not built"

# A sum of sines with a little noise, CSV with a date column and a second
# input; a random walk, whitespace-separated without a header.
awk 'BEGIN { srand(5); print "date,y,u";
    for (t = 0; t < 300; t++)
        printf "d%d,%.6f,%.6f\n", t, sin(t * 0.35) + 0.5 * sin(t * 0.11 + 1) + 0.05 * (rand() - 0.5), cos(t * 0.35) }' > "$T/sines.csv"
awk 'BEGIN { srand(9); x = 10; for (t = 0; t < 300; t++) { x += rand() - 0.5; printf "%d %.6f\n", t, x } }' > "$T/walk.txt"
SMALL="--window 12 --hidden 12 --batch 16 --epochs 30 --valid-every 100 --seed 3"

# ---- train, eval, predict -------------------------------------------------
check "train an LSTM" run_ 0 "$T/a.err" "$F" train $SMALL --time date --target y --valid 0.25 \
    --format csv -o "$T/s.model" "$T/sines.csv"
check "train: rows and windows reported" has '300 rows (225 training, 75 validation)' "$T/a.err"
check "train: validation table, model beside the baselines" has '^1	lstm	' "$T/a.err"
has '^1	persistence	' "$T/a.err" && has '^1	linear	' "$T/a.err" || fail=1
"$F" eval -m "$T/s.model" --plot "$T/eval.svg" "$T/sines.csv" > "$T/eval.out" 2> "$T/eval.err"
check "eval exits 0" test $? -eq 0
check "eval: header" has '^step	model	forecasts	mse	mae	mape	mase	skill$' "$T/eval.out"
check "eval: three rows" test "$(grep -c '^1	' "$T/eval.out")" -eq 3
# The LSTM learns the sines: it beats persistence (skill > 0.5).
skill=$(awk -F'\t' '$2 == "lstm" { print $8 }' "$T/eval.out")
check "eval: the LSTM beats persistence on the sines (skill $skill)" \
    awk -v s="$skill" 'BEGIN { exit !(s > 0.5) }'
check "eval: persistence skill is 0" sh -c "awk -F'\t' '\$2 == \"persistence\" { exit !(\$8 == 0) }' '$T/eval.out'"
check "eval --plot writes an SVG" has '<svg' "$T/eval.svg"
check "eval --plot: every forecaster drawn" has 'persistence' "$T/eval.svg"
check "predict --steps 3: three lines" sh -c "'$F' predict -m '$T/s.model' --steps 3 < '$T/sines.csv' | wc -l | grep -qx 3"
"$F" predict -m "$T/s.model" < "$T/sines.csv" > "$T/p1" || fail=1
check "predict: a number" grep -Eqx -- '-?[0-9.]+(e[-+]?[0-9]+)?' "$T/p1"
# A headerless tail: the columns by their numbers.
tail -n 20 "$T/sines.csv" | "$F" predict -m "$T/s.model" > "$T/p2" 2> "$T/p2.err"
check "predict from a headerless tail" compare "$T/p1" "$T/p2"

# Multivariate, direct horizon 3, differenced; beyond the horizon is refused.
check "train multivariate, --horizon 3, --difference" run_ 0 "$T/m.err" "$F" train $SMALL \
    --time date --target y --inputs u,y --horizon 3 --difference --model gru --layers 2 \
    --dropout 0.1 -o "$T/m.model" "$T/sines.csv"
"$F" eval -m "$T/m.model" "$T/sines.csv" > "$T/m.out" || fail=1
check "eval: the H-step rows" test "$(grep -c '^3	' "$T/m.out")" -eq 3
check "predict beyond the horizon of a multivariate model: exit 1" \
    run_ 1 "$T/b.err" "$F" predict -m "$T/m.model" --steps 4 "$T/sines.csv"
check "  ... says why" has 'the future of the other 1 inputs, which is unknown' "$T/b.err"
check "predict up to the horizon" sh -c "'$F' predict -m '$T/m.model' '$T/sines.csv' | wc -l | grep -qx 3"

# The random walk: persistence is the one to beat, and the model does not
# beat it by much (the steps are unpredictable).
check "train on the random walk (rnn, whitespace, by number)" run_ 0 "$T/w.err" "$F" train $SMALL \
    --model rnn --target 2 -o "$T/w.model" "$T/walk.txt"
"$F" eval -m "$T/w.model" "$T/walk.txt" > "$T/w.out" || fail=1
check "walk: the model's skill is below 0.1" sh -c "awk -F'\t' '\$2 == \"rnn\" { exit !(\$8 < 0.1) }' '$T/w.out'"
# The baselines as models.
check "--model linear" run_ 0 "$T/l.err" "$F" train --model linear --window 4 --no-difference --target 2 -o "$T/l.model" "$T/walk.txt"
check "linear: fitted, not trained" has 'linear model fitted on' "$T/l.err"
"$F" eval -m "$T/l.model" "$T/walk.txt" > "$T/l.out" || fail=1
check "linear model: the two baselines" test "$(grep -c '^1	' "$T/l.out")" -eq 2
check "differencing is the default" has 'window 12 (differenced)' "$T/w.out"
check "--model persistence" run_ 0 "$T/p.err" "$F" train --model persistence --target 2 -o "$T/p.model" "$T/walk.txt"
check "persistence forecasts the last value" sh -c "'$F' predict -m '$T/p.model' --steps 2 '$T/walk.txt' | uniq | wc -l | grep -qx 1"

# --fill: missing cells filled, else refused.
printf 'y\n1\n2\nNA\n4\n5\n6\n7\n8\n9\n10\n11\n12\n' > "$T/na.csv"
check "--fill previous" run_ 0 "$T/f.err" "$F" train --model linear --window 2 --fill previous -o "$T/f.model" "$T/na.csv"
check "--fill: reported" has '1 missing or non-numeric cells filled (previous)' "$T/f.err"
check "--fill linear" run_ 0 "$T/f.err" "$F" train --model linear --window 2 --fill linear -o "$T/f.model" "$T/na.csv"

# ---- bad input: FILE:LINE:COLUMN and exit 1 --------------------------------
printf 'a,b\n1,2\n3,2\n4, x\n5,6\n' > "$T/bad.csv"
check "a non-numeric cell: exit 1" run_ 1 "$T/e1" "$F" train --model linear --window 1 --target b -o "$T/x.model" "$T/bad.csv"
check "  ... names file:line:column" has "^forecast: $T/bad.csv:4:4: 'x' in column 'b' is not a number" "$T/e1"
head -n 12 "$T/walk.txt" > "$T/short.txt"
check "a short series for the window: exit 1" run_ 1 "$T/e2" "$F" train --window 50 --target 2 --output "$T/x.model" "$T/short.txt"
check "  ... says how many rows are needed" has "short.txt: 12 rows (10 for training after --valid 0.2): a window of 50 differenced and a horizon of 1 need at least 52" "$T/e2"
check "a missing column name: exit 1" run_ 1 "$T/e3" "$F" train --target nope -o "$T/x.model" "$T/bad.csv"
check "  ... names the file, line and the columns" has "bad.csv:1: no column 'nope' (the columns are 'a', 'b')" "$T/e3"
check "a missing input column: exit 1" run_ 1 "$T/e4" "$F" train --target a --inputs b,c -o "$T/x.model" "$T/bad.csv"
check "eval of a series too short for the window: exit 1" run_ 1 "$T/e5" "$F" eval -m "$T/s.model" "$T/na.csv"
check "eval of a table without the model's column: exit 1" run_ 1 "$T/e6" "$F" eval -m "$T/s.model" "$T/bad.csv"
check "  ... names it" has "bad.csv:1: no time column 'date' (the columns are 'a', 'b')" "$T/e6"
check "an empty series" run_ 1 "$T/e7" "$F" train -o "$T/x.model" /dev/null
check "a model that is not one" run_ 1 "$T/e8" "$F" eval -m "$T/bad.csv" "$T/sines.csv"
check "a model of another kind" run_ 1 "$T/e9" "$F" predict -m /dev/null "$T/sines.csv"
check "never overwrite a non-model" run_ 1 "$T/e10" "$F" train --model linear -o "$T/bad.csv" "$T/walk.txt"

# ---- usage errors: exit 2 ----------------------------------------------------
check "no command" run_ 2 "$T/u" "$F"
check "  ... Try --help" has "Try 'forecast --help' for more information." "$T/u"
check "unknown command" run_ 2 "$T/u" "$F" fit
check "unknown option" run_ 2 "$T/u" "$F" train --bogus -o "$T/x.model" "$T/walk.txt"
check "bad --model" run_ 2 "$T/u" "$F" train --model arima -o "$T/x.model" "$T/walk.txt"
check "bad --window" run_ 2 "$T/u" "$F" train --window 0 -o "$T/x.model" "$T/walk.txt"
check "bad --fill" run_ 2 "$T/u" "$F" train --fill zero -o "$T/x.model" "$T/walk.txt"
check "bad --format" run_ 2 "$T/u" "$F" train --format xls -o "$T/x.model" "$T/walk.txt"
check "bad --valid" run_ 2 "$T/u" "$F" train --valid 0.95 -o "$T/x.model" "$T/walk.txt"
check "no -o" run_ 2 "$T/u" "$F" train "$T/walk.txt"
check "predict without -m" run_ 2 "$T/u" "$F" predict "$T/walk.txt"
check "bad --steps" run_ 2 "$T/u" "$F" predict -m "$T/s.model" --steps 0 "$T/walk.txt"
check "--threads above --batch" run_ 1 "$T/u" "$F" train --batch 2 --threads 3 --target 2 -o "$T/x.model" "$T/walk.txt"

# ---- --help, the man page, and this script use every option ---------------
page=$top_srcdir/man/forecast.1
check "man page" test -f "$page"
check "--help exits 0" sh -c "'$F' --help > '$T/help'"
check "train --help" sh -c "'$F' train --help | grep -q -- '--difference'"
check "--version names libnlp" sh -c "'$F' --version | grep -q libnlp"
for opt in $(grep -o -- '--[a-z][a-z0-9-]*' "$T/help" | sort -u); do
    check "$opt in the man page" sh -c "sed 's/\\\\-/-/g' '$page' | grep -q -E -e '$opt([^a-z0-9-]|\$)'"
    check "$opt exercised here" grep -q -e "$opt" "$0"
done

# ---- the training options, SIGINT and --resume -------------------------------
check "the shared training options" \
    run_ 0 "$T/o.err" "$F" train --window 8 --hidden 8 --target 2 --optimizer rmsprop --lr 0.003 \
    --lr-decay 0.7 --lr-patience 3 --min-lr 1e-4 --clip 1 --patience 5 --valid-every 20 \
    --time-limit 30 --max-steps 200 --average 0.99 --plot "$T/train.svg" --verbose \
    -o "$T/o.model" "$T/walk.txt"
check "--plot: the training curves" has '<svg' "$T/train.svg"
check "-v: the rate" has 'steps_per_s=' "$T/o.err"
check "-q: nothing on stderr" run_ 0 "$T/q.err" "$F" train --quiet --epochs 2 --window 8 --hidden 8 --target 2 -o "$T/q.model" "$T/walk.txt"
check "  ... really nothing" test ! -s "$T/q.err"
# Two threads: a batch split in two shares, repeatable bit for bit.
for r in 1 2; do
    "$F" train -q --threads 2 --epochs 3 --window 8 --hidden 8 --target 2 -o "$T/t$r.model" "$T/walk.txt" || fail=1
done
check "--threads 2 repeats bit for bit" "$CMP" "$T/t1.model" "$T/t2.model"

RUN="--window 16 --hidden 32 --batch 8 --layers 2 --dropout 0.2 --seed 5 --epochs 0 --max-steps 800 --valid-every 100 --checkpoint-every 100000 --time date --target y --inputs u"
check "uninterrupted run" run_ 0 "$T/r1.err" "$F" train $RUN -q -o "$T/a.model" "$T/sines.csv"
"$F" train $RUN -o "$T/b.model" "$T/sines.csv" 2> "$T/b.err" &
interrupt_after $! "$T/b.err" 'valid mse'
check "SIGINT landed during training (exit 130)" test $rc -eq 130
check "SIGINT message" has 'interrupted: continue with --resume' "$T/b.err"
check "checkpoint written" test -s "$T/b.model.ckpt"
check "resume can't change the model" run_ 2 "$T/u" "$F" train --resume "$T/b.model.ckpt" --hidden 8 "$T/sines.csv"
awk -F, -v OFS=, 'NR == 100 { $2 = $2 + 1 } { print }' "$T/sines.csv" > "$T/other.csv"
check "resume with another series is refused" run_ 1 "$T/r0.err" "$F" train --resume "$T/b.model.ckpt" "$T/other.csv"
check "  ... said so" has 'the series differs from the one the checkpoint was made with' "$T/r0.err"
check "resume finishes" run_ 0 "$T/r.err" "$F" train --resume "$T/b.model.ckpt" --checkpoint-every 100000 "$T/sines.csv"
check "resumed = uninterrupted (the final checkpoint, optimiser moments too)" \
    "$CMP" "$T/a.model.ckpt" "$T/b.model.ckpt"
check "resumed = uninterrupted (best model)" "$CMP" "$T/a.model" "$T/b.model"
# kill -9 at random moments of a run that checkpoints often (as
# tests/charlm_kill.sh): after every kill the model and the checkpoint on
# disk load (eval reads both), and no more than one temporary is left.
kills=0 loaded=0 round=0
while [ $round -lt 4 ]; do
    round=$((round + 1))
    if [ -f "$T/k.model.ckpt" ]; then
        set -- --resume "$T/k.model.ckpt"
    else
        set -- --window 16 --hidden 32 --batch 8 --epochs 0 --max-steps 100000 --valid-every 10 --patience 0 \
            --checkpoint-every 0.05 --time date --target y
    fi
    "$F" train "$@" -q -o "$T/k.model" "$T/sines.csv" 2> "$T/k.err" &
    pid=$!
    sleep "$(awk -v r="$round" 'BEGIN { srand(r * 7919 + 1); printf "%.2f", 0.25 + rand() * 0.4 }')"
    kill -9 "$pid" 2> /dev/null && kills=$((kills + 1))
    wait "$pid" 2> /dev/null
    for f in "$T/k.model" "$T/k.model.ckpt"; do
        [ -f "$f" ] || continue
        if "$F" eval -m "$f" "$T/sines.csv" > /dev/null 2> "$T/k.eval"; then
            loaded=$((loaded + 1))
        else
            echo "FAIL: after kill $round, $f does not load:" >&2
            cat "$T/k.eval" >&2
            fail=1
        fi
    done
    n=$(ls "$T" | grep -c '^k\.model.*\.tmp[0-9]' || true)
    check "kill -9 round $round: at most one temporary left behind ($n)" [ "$n" -le 1 ]
done
check "every run was killed ($kills of 4)" [ "$kills" -eq 4 ]
check "the files loaded after the kills ($loaded)" [ "$loaded" -ge 4 ]
check "model_cmp can tell models apart" sh -c '! "$1" "$2" "$3" 2> /dev/null' sh "$CMP" "$T/a.model" "$T/s.model"
Exit
