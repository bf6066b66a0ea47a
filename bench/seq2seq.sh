#!/bin/sh
# seq2seq against ../shared/anchors/torch_seq2seq.py (PyTorch) on Multi30k
# German -> English, both systems in one run, one after the other (never
# at the same time: they would share the cores).
#
# Data: ../shared/corpora/multi30k train / val / test_2016_flickr, both
# sides through `tokenize --lang de|en --lower`, the same files for both
# systems.  Sizes as the anchor's defaults: embed 128, hidden 256, bi-GRU
# encoder, GRU decoder, Bahdanau attention, dropout 0.2, batch 64,
# min-count 2, Adam 1e-3, clip 1, no label smoothing and no weight average
# (ours has them by default); 1 thread each (the anchor's best here).
#
# Each system trains for the same wall time (--minutes, default 20; ours
# validates on val by perplexity within that time and keeps its best
# model; the anchor does not validate).  Then:
#   training     target tokens/s (tokens with </s> over the seconds of the
#                training steps, as the anchor counts them); the ratio;
#   quality      BLEU on test_2016_flickr by `seq2seq bleu --lowercase`
#                (13a, as sacreBLEU) against the raw English reference:
#                ours greedy and beam 5, the anchor greedy (its only
#                search; its own untokenised BLEU is shown beside);
#   decoding     sentences/s on test_2016 on 1 thread: ours greedy and
#                beam 5 (translate -v, model loaded), the anchor's greedy
#                (decode_sents_per_s); the greedy ratio;
#   memory       peak resident set (/usr/bin/time -v) of our training and
#                decoding runs and of the anchor's whole run.
#
# With --default, instead: our default configuration alone (no size flags,
# only --threads, default 2, and --time-limit, default 60 minutes), the
# length penalty of beam 5 chosen among 0, 0.5 and 1 by BLEU on val, then
# test_2016_flickr BLEU greedy and beam 5 with it (target: beam 5 >= 35).
#
# usage: bench/seq2seq.sh [--minutes M] [--smoke] [--threads N] [--keep DIR]
#                         [--default]
#   --smoke      a short run to check the script: 1 minute each (--minutes
#                still overrides), both searches
#   --threads N  our training threads (default 1); the anchor stays on 1
#   --extra 'F'  extra flags for our train
#   --length-penalty A   GNMT alpha of our beam-5 run (default 0; tune it
#                on val, not on test)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${top_builddir:-$top}
S=$build/bin/seq2seq
TOK=$build/bin/tokenize
PY=/usr/bin/python3
shared=${NLP_SHARED:-$top/../shared}
[ -d "$shared" ] || shared=$top/../../shared
REF=${NLP_ANCHORS:-$shared/anchors}/torch_seq2seq.py
DATA=${NLP_MULTI30K:-$shared/corpora/multi30k}

minutes=20 smoke=0 threads=1 keep= extra= minutes_given=0 lp=0 default=0 threads_given=0
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) minutes=$2; minutes_given=1; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --threads) threads=$2; threads_given=1; shift 2 ;;
    --default) default=1; shift ;;
    --keep) keep=$2; shift 2 ;;
    --extra) extra=$2; shift 2 ;;
    --length-penalty) lp=$2; shift 2 ;;
    -h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "seq2seq.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$default" = 1 ] && [ "$minutes_given" = 0 ] && minutes=60
[ "$default" = 1 ] && [ "$threads_given" = 0 ] && threads=2
[ "$smoke" = 1 ] && [ "$minutes_given" = 0 ] && minutes=1
[ -x "$S" ] && [ -x "$TOK" ] || { echo "seq2seq.sh: build first (make)" >&2; exit 1; }
$PY -c 'import torch' 2> /dev/null || { echo "seq2seq.sh: $PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
[ -f "$REF" ] || { echo "seq2seq.sh: $REF not found (set NLP_ANCHORS)" >&2; exit 1; }
for f in train.de train.en val.de val.en test_2016_flickr.de test_2016_flickr.en; do
    [ -f "$DATA/$f" ] || { echo "seq2seq.sh: $DATA/$f not found (set NLP_MULTI30K)" >&2; exit 1; }
done
if [ -n "$keep" ]; then tmp=$keep; mkdir -p "$tmp"; else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/seq2seq-bench.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
fi
seconds=$(awk -v m="$minutes" 'BEGIN { print m * 60 }')
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
value() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | tail -n 1; }
peak() { sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p' "$1" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "seq2seq bench: $(nproc --all) CPUs, $minutes minute(s) of training each, our threads $threads"
echo "torch $($PY -c 'import torch; print(torch.__version__)'), seq2seq $("$S" --version | awk '{ print $NF }')"
uptime

# ---- the data, tokenised once ----------------------------------------------
for split in train val test_2016_flickr; do
    "$TOK" --lang de --lower < "$DATA/$split.de" > "$tmp/$split.de"
    "$TOK" --lang en --lower < "$DATA/$split.en" > "$tmp/$split.en"
done
echo "data: $(wc -l < "$tmp/train.de") training, $(wc -l < "$tmp/val.de") validation, $(wc -l < "$tmp/test_2016_flickr.de") test pairs"

bleu_of() { "$S" bleu --lowercase "$1" < "$2" | sed -n 's/^BLEU = \([0-9.]*\).*/\1/p'; }

# ---- the default configuration, alone -------------------------------------------
if [ "$default" = 1 ]; then
    echo "ours, default configuration: training for at most $seconds s on $threads threads"
    /usr/bin/time -v "$S" train -o "$tmp/default.model" --source "$tmp/train.de" --target "$tmp/train.en" \
        --valid-source "$tmp/val.de" --valid-target "$tmp/val.en" \
        --time-limit "$seconds" --threads "$threads" $extra > /dev/null 2> "$tmp/default.train.err" || {
        tail -20 "$tmp/default.train.err" >&2; exit 1; }
    grep -E '^epoch|^done|^seq2seq' "$tmp/default.train.err"
    best_lp=0 best_val=-1
    for a in 0 0.5 1; do
        "$S" translate -m "$tmp/default.model" --beam 5 --length-penalty "$a" --threads "$threads" \
            < "$tmp/val.de" > "$tmp/val.lp$a.hyp"
        b=$(bleu_of "$DATA/val.en" "$tmp/val.lp$a.hyp")
        echo "val BLEU beam 5, length penalty $a: $b"
        if awk -v b="$b" -v m="$best_val" 'BEGIN { exit !(b > m) }'; then best_val=$b best_lp=$a; fi
    done
    "$S" translate -m "$tmp/default.model" --beam 1 --threads "$threads" \
        < "$tmp/test_2016_flickr.de" > "$tmp/test.greedy.hyp"
    "$S" translate -m "$tmp/default.model" --beam 5 --length-penalty "$best_lp" --threads "$threads" \
        < "$tmp/test_2016_flickr.de" > "$tmp/test.beam5.hyp"
    g=$(bleu_of "$DATA/test_2016_flickr.en" "$tmp/test.greedy.hyp")
    b5=$(bleu_of "$DATA/test_2016_flickr.en" "$tmp/test.beam5.hyp")
    echo "test_2016_flickr BLEU: greedy $g, beam 5 $b5 (length penalty $best_lp, chosen on val; target beam 5 >= 35)"
    echo "peak RSS train (MB): $(($(peak "$tmp/default.train.err") / 1024))"
    echo "default_test_bleu_greedy=$g default_test_bleu_beam5=$b5 default_length_penalty=$best_lp"
    uptime
    exit 0
fi

# ---- ours -------------------------------------------------------------------
echo "ours: training for $seconds s"
/usr/bin/time -v "$S" train -o "$tmp/ours.model" --source "$tmp/train.de" --target "$tmp/train.en" \
    --valid-source "$tmp/val.de" --valid-target "$tmp/val.en" \
    --embed 128 --hidden 256 --cell gru --attention bahdanau --dropout 0.2 --batch 64 \
    --min-count 2 --lr 0.001 --clip 1 --label-smoothing 0 --average 0 \
    --epochs 0 --patience 0 --time-limit "$seconds" \
    --threads "$threads" -v $extra > /dev/null 2> "$tmp/ours.train.err" || {
    tail -20 "$tmp/ours.train.err" >&2; exit 1; }
grep -E '^epoch|^done' "$tmp/ours.train.err" | tail -n 3
ours_tps=$(value tgt_tokens_per_s < "$tmp/ours.train.err")
ours_train_kb=$(peak "$tmp/ours.train.err")
for k in 1 5; do
    /usr/bin/time -v "$S" translate -m "$tmp/ours.model" --beam "$k" --threads 1 -v \
        --length-penalty "$([ "$k" = 1 ] && echo 0 || echo "$lp")" \
        < "$tmp/test_2016_flickr.de" > "$tmp/ours.beam$k.hyp" 2> "$tmp/ours.dec$k.err" || {
        tail -5 "$tmp/ours.dec$k.err" >&2; exit 1; }
    eval "ours_sps$k=\$(sed -n 's/.*(\([0-9.]*\) sentences\/s).*/\1/p' \"\$tmp/ours.dec$k.err\")"
    eval "ours_dec_kb$k=\$(peak \"\$tmp/ours.dec$k.err\")"
    eval "ours_bleu$k=\$(bleu_of \"\$DATA/test_2016_flickr.en\" \"\$tmp/ours.beam$k.hyp\")"
done

# ---- the anchor ---------------------------------------------------------------
echo "anchor: training for $seconds s"
/usr/bin/time -v $PY "$REF" "$tmp/train.de" "$tmp/train.en" "$tmp/test_2016_flickr.de" \
    "$tmp/test_2016_flickr.en" --seconds "$seconds" --threads 1 --hyp-out "$tmp/torch.hyp" \
    > "$tmp/torch.out" 2> "$tmp/torch.err" || { tail -20 "$tmp/torch.err" >&2; exit 1; }
cat "$tmp/torch.out"
torch_tps=$(value tgt_tokens_per_s < "$tmp/torch.out")
torch_sps=$(value decode_sents_per_s < "$tmp/torch.out")
torch_own=$(value test_bleu < "$tmp/torch.out")
torch_kb=$(peak "$tmp/torch.err")
torch_bleu=$(bleu_of "$DATA/test_2016_flickr.en" "$tmp/torch.hyp")

# ---- the figures ----------------------------------------------------------------
echo
echo "                          ours          anchor        ratio"
printf "train tgt tokens/s        %-13s %-13s %sx (target >= 1.5x)\n" "$ours_tps" "$torch_tps" "$(ratio "$ours_tps" "$torch_tps")"
printf "test BLEU greedy          %-13s %-13s (anchor's own BLEU %s)\n" "$ours_bleu1" "$torch_bleu" "$torch_own"
printf "test BLEU beam 5          %-13s - (length penalty %s)\n" "$ours_bleu5" "$lp"
printf "decode sents/s greedy     %-13s %-13s %sx (target >= 2x)\n" "$ours_sps1" "$torch_sps" "$(ratio "$ours_sps1" "$torch_sps")"
printf "decode sents/s beam 5     %-13s -\n" "$ours_sps5"
printf "peak RSS train (MB)       %-13s %-13s (anchor: whole run)\n" "$((ours_train_kb / 1024))" "$((torch_kb / 1024))"
printf "peak RSS decode (MB)      %-13s (beam 5: %s)\n" "$((ours_dec_kb1 / 1024))" "$((ours_dec_kb5 / 1024))"
echo "ours_tgt_tokens_per_s=$ours_tps torch_tgt_tokens_per_s=$torch_tps ours_bleu_greedy=$ours_bleu1 ours_bleu_beam5=$ours_bleu5 torch_bleu_greedy=$torch_bleu ours_decode_sents_per_s_greedy=$ours_sps1 ours_decode_sents_per_s_beam5=$ours_sps5 torch_decode_sents_per_s=$torch_sps"
uptime
