#!/bin/sh
# Checks `seq2seq bleu` against the real sacreBLEU (the anchor
# ../shared/anchors/sacrebleu, 2.6.0) on real text: Multi30k references
# against perturbed copies of themselves (words dropped, swapped, shuffled,
# lowercased, truncated, HTML-escaped, lines emptied) and against the other
# languages' lines, with BLEU and chrF, mixed case and lowercased, 13a and
# no tokenisation.  Every case must print the same BLEU line (score,
# precisions, BP, ratio, lengths) and the same chrF, to sacreBLEU's default
# two decimals.  Prints one line per case and a verdict; exit 0 when all
# agree, 1 otherwise, 77 when sacreBLEU or the corpus is missing.
#
#   bench/bleu_check.sh            from a built tree (after make)
#
# Environment: NLP_CORPORA (corpus mirror, default ../shared/corpora),
# NLP_ANCHORS (default ../shared/anchors), PYTHON (default /usr/bin/python3).
# sacreBLEU needs Debian's python3-portalocker python3-regex
# python3-tabulate python3-numpy python3-colorama python3-lxml.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(dirname "$here")
builddir=${top_builddir:-$(pwd)}
s2s=$builddir/bin/seq2seq
[ -x "$s2s" ] || { echo "bleu_check.sh: $s2s not built; run make first (from the build tree)" >&2; exit 1; }
: "${NLP_CORPORA:=$top_srcdir/../shared/corpora}"
: "${NLP_ANCHORS:=$top_srcdir/../shared/anchors}"
: "${PYTHON:=/usr/bin/python3}"
export NLP_CORPORA

sacrebleu() {
    PYTHONPATH=$NLP_ANCHORS/sacrebleu "$PYTHON" -m sacrebleu "$@"
}
if ! sacrebleu --version > /dev/null 2>&1; then
    echo "bleu_check.sh: sacreBLEU does not run from $NLP_ANCHORS/sacrebleu (see its README" \
         "for the Debian packages it needs)" >&2
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nlpbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fetch() { "$top_srcdir/corpora/fetch.sh" -d "$tmp/data" "$1" 2> /dev/null; }
val_en=$(fetch multi30k/val.en) && val_de=$(fetch multi30k/val.de) &&
    train_en=$(fetch multi30k/train.en) || {
    echo "bleu_check.sh: Multi30k not found (set NLP_CORPORA)" >&2
    exit 77
}
m=$NLP_CORPORA/multi30k

# ---- hypotheses made from the references --------------------------------
d=$tmp/h
mkdir "$d"
# Every 4th word dropped (a different phase per line).
awk '{ o = ""; for (i = 1; i <= NF; i++) if ((i + NR) % 4) o = o (o == "" ? "" : " ") $i; print o }' \
    "$val_en" > "$d/drop"
# Adjacent words swapped in pairs on odd lines.
awk 'NR % 2 { for (i = 1; i < NF; i += 2) { t = $i; $i = $(i + 1); $(i + 1) = t } } { print }' \
    "$val_en" > "$d/swap"
# Words in a pseudo-random order (a fixed LCG per line).
awk 'BEGIN { s = 12345 }
     { for (i = NF; i > 1; i--) { s = (s * 1103515245 + 12345) % 2147483648; j = 1 + s % i;
                                  t = $i; $i = $j; $j = t } print }' "$val_en" > "$d/shuffle"
tr 'A-Z' 'a-z' < "$val_en" > "$d/lower"
# The first half of each line's words (brevity penalty).
awk '{ o = ""; for (i = 1; i <= NF / 2; i++) o = o (o == "" ? "" : " ") $i; print o }' \
    "$val_en" > "$d/half"
# Every 7th line empty, others with a doubled last word.
awk 'NR % 7 == 0 { print ""; next } { print $0 " " $NF }' "$val_en" > "$d/empty_lines"
# HTML-escaped quotes, ampersands and angle brackets, hyphens between digits,
# thousands separators, trailing spaces and CRs.
awk '{ l = $0; gsub(/a /, "a \\&quot;", l); gsub(/ the /, " \\&amp; ", l);
       if (NR % 3 == 0) l = l " 1,000 &lt;2-3&gt; 3.14." ; if (NR % 5 == 0) l = l "  \r"; print l }' \
    "$val_en" > "$d/escaped"
# Lines one place down: unrelated sentences of the same kind.
{ tail -n +2 "$val_en"; head -n 1 "$val_en"; } > "$d/shifted"

# Synthetic lines that exercise every rule: the 13a punctuation class, '.'
# and ',' beside digits and not, '-' after digits, the HTML entities (and
# escaped entities), <skipped>, Unicode white space (NBSP, U+2028, U+001C,
# tabs), letters whose lowercase is special (dotted I, final sigma, Kelvin
# sign, titlecase digraph, sharp s), combining marks.  REF is random
# pieces; HYP the same with a third of the pieces replaced.
awk 'BEGIN {
    n = split("a|B|3|12|.|,|-|--|...|&quot;|&amp;|&lt;|&gt;|&amp;quot;|&amp;lt;|<skipped>|" \
              "\304\260stanbul|\316\243|\316\237\316\224\316\237\316\243|\316\243\316\225\316\243'"'"'|" \
              "stra\303\237e|\342\204\252|\307\205ungla|\302\240|\342\200\250|\034|\t|'"'"'|" \
              "e\314\201t\303\251|3.14|1,000|2-3|e.g.|U.S.|$5|x-y|(a)|[b]|{c}|a/b|@x|#1|~|^|_|`|" \
              "\\\\|*|+|=|;|:|?|!|<|>|%|\303\211COLE|\316\243\316\243|.5|5.|,5|5,|-5|5-|a.b|1.a|a,1", p, "|")
    s = 7
    for (line = 0; line < 3000; line++) {
        s = (s * 1103515245 + 12345) % 2147483648; k = 1 + s % 14
        r = ""; h = ""
        for (i = 0; i < k; i++) {
            s = (s * 1103515245 + 12345) % 2147483648; t = p[1 + s % n]
            s = (s * 1103515245 + 12345) % 2147483648; sep = (s % 3) ? " " : ""
            s = (s * 1103515245 + 12345) % 2147483648; u = (s % 3) ? t : p[1 + s % n]
            r = r t sep; h = h u sep
        }
        print r > "'"$d/synthetic.ref"'"; print h > "'"$d/synthetic.hyp"'"
    }
}'

pass=0 fail=0
# case NAME REF HYP [SEQ2SEQ-OPTION]...: one comparison; the options map to
# sacreBLEU's: --lowercase -> -lc --chrf-lowercase, --tokenize none -> -tok none.
case_() {
    name=$1 ref=$2 hyp=$3
    shift 3
    sopts=""
    for a in "$@"; do
        case $a in
        --lowercase) sopts="$sopts -lc --chrf-lowercase" ;;
        --tokenize=none) sopts="$sopts -tok none" ;;
        esac
    done
    # shellcheck disable=SC2086
    sacrebleu "$ref" -i "$hyp" -m bleu chrf -w 2 -f text $sopts > "$tmp/theirs" 2> "$tmp/err" || {
        echo "FAIL $name: sacreBLEU failed:" >&2
        cat "$tmp/err" >&2
        fail=$((fail + 1))
        return
    }
    "$s2s" bleu --chrf "$@" "$ref" "$hyp" > "$tmp/ours" 2> "$tmp/err" || {
        echo "FAIL $name: seq2seq bleu failed:" >&2
        cat "$tmp/err" >&2
        fail=$((fail + 1))
        return
    }
    their_bleu=$(sed -n 's/^ *BLEU|[^ ]* = //p' "$tmp/theirs")
    their_chrf=$(sed -n 's/^ *chrF2|[^ ]* = //p' "$tmp/theirs")
    our_bleu=$(sed -n 's/^BLEU = //p' "$tmp/ours")
    our_chrf=$(sed -n 's/^chrF2 = //p' "$tmp/ours")
    if [ -n "$their_bleu" ] && [ "$their_bleu" = "$our_bleu" ] && [ "$their_chrf" = "$our_chrf" ]; then
        verdict=same pass=$((pass + 1))
    else
        verdict=DIFFERENT fail=$((fail + 1))
    fi
    printf '%-9s %-26s BLEU %s | chrF2 %s\n' "$verdict" "$name" "$our_bleu" "$our_chrf"
    if [ "$verdict" = DIFFERENT ]; then
        printf '%-9s %-26s BLEU %s | chrF2 %s\n' sacreBLEU "" "$their_bleu" "$their_chrf"
    fi
}

case_ identical "$val_en" "$val_en"
for h in drop swap shuffle lower half empty_lines escaped shifted; do
    case_ "$h" "$val_en" "$d/$h"
    case_ "$h --lowercase" "$val_en" "$d/$h" --lowercase
done
case_ "shuffle --tokenize none" "$val_en" "$d/shuffle" --tokenize=none
case_ "escaped --tokenize none" "$val_en" "$d/escaped" --tokenize=none
case_ "val en vs de" "$val_en" "$val_de"
case_ "val de vs en" "$val_de" "$val_en"
case_ "val en vs de --lowercase" "$val_en" "$val_de" --lowercase
for l in de fr; do
    if [ -f "$m/test_2016_flickr.$l" ] && [ -f "$m/test_2016_flickr.en" ]; then
        case_ "test_2016 en vs $l" "$m/test_2016_flickr.en" "$m/test_2016_flickr.$l"
        case_ "test_2016 $l vs en -lc" "$m/test_2016_flickr.$l" "$m/test_2016_flickr.en" --lowercase
    fi
done
if [ -f "$m/val.fr" ]; then
    case_ "val fr vs de" "$m/val.fr" "$val_de"
fi
for o in "" --lowercase --tokenize=none; do
    # shellcheck disable=SC2086
    case_ "synthetic $o" "$d/synthetic.ref" "$d/synthetic.hyp" $o
done
# The whole training set against itself shifted: 29000 unrelated pairs.
{ tail -n +2 "$train_en"; head -n 1 "$train_en"; } > "$d/train_shifted"
case_ "train.en shifted" "$train_en" "$d/train_shifted"

# ---- the text functions line by line --------------------------------------
# nlp_bleu_tokenize_13a and nlp_bleu_lowercase against sacreBLEU's
# Tokenizer13a and Python's str.lower on every line of the texts above
# (after str.rstrip, as sacreBLEU reads them), and the lowercasing of every
# Unicode scalar value alone and in the final-sigma contexts.
cat > "$tmp/text.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "nlp/bleu.h"
#include "nlp/lines.h"
/* text MODE < lines: each line rstripped, then lowercased (MODE has l)
** and 13a-tokenised (MODE has t). */
int main(int argc, char **argv)
{
    int lower = argc > 1 && strchr(argv[1], 'l'), tok = argc > 1 && strchr(argv[1], 't');
    nlp_lines *r;
    char *line, *lb = NULL, *tb = NULL;
    size_t len, lc = 0, tc = 0;
    if (nlp_lines_new(&r, stdin, 0) != 0)
        return 1;
    while (nlp_lines_next(r, &line, &len) == 1) {
        len = nlp_bleu_rstrip(line, len);
        if (lower && nlp_bleu_lowercase(line, len, &lb, &lc, &len) != 0)
            return 1;
        if (lower)
            line = lb;
        if (tok && nlp_bleu_tokenize_13a(line, len, &tb, &tc, &len) != 0)
            return 1;
        if (tok)
            line = tb;
        fwrite(line, 1, len, stdout);
        putchar('\n');
    }
    return 0;
}
EOF
cat > "$tmp/text.py" <<'EOF'
import sys
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
tok, mode = Tokenizer13a(), sys.argv[1]
out = open(sys.stdout.fileno(), 'w', encoding='utf-8', newline='\n')
for line in open(sys.stdin.fileno(), encoding='utf-8', newline='\n'):
    line = line.rstrip()
    if 'l' in mode:
        line = line.lower()
    if 't' in mode:
        line = tok(line)
    out.write(line + '\n')
EOF
libs=$builddir/lib/.libs
${CC:-cc} -O2 -I"$top_srcdir/lib" -o "$tmp/text" "$tmp/text.c" "$libs/libnlp.so" -Wl,-rpath,"$libs"
# Every scalar value but the line ends, alone, after and before a final
# sigma, inside a word after one, and between a letter and one.
"$PYTHON" -c '
import sys
out = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="\n")
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or cp in (0x0A, 0x0D):
        continue
    c = chr(cp)
    out.write(f"{c}\na\u03a3{c}\n{c}\u03a3\na\u03a3{c}b\na{c}\u03a3\n")' > "$d/codepoints"
for f in "$d/synthetic.ref" "$d/synthetic.hyp" "$d/escaped" "$val_en" "$val_de" "$train_en" \
         "$m/train.de" "$m/train.fr"; do
    [ -f "$f" ] || continue
    for mode in t l lt; do
        PYTHONPATH=$NLP_ANCHORS/sacrebleu "$PYTHON" "$tmp/text.py" "$mode" < "$f" > "$tmp/theirs"
        "$tmp/text" "$mode" < "$f" > "$tmp/ours"
        name="$mode $(basename "$f")"
        if cmp -s "$tmp/theirs" "$tmp/ours"; then
            printf '%-9s %-26s %s lines\n' same "$name" "$(wc -l < "$f")"
            pass=$((pass + 1))
        else
            printf '%-9s %-26s %s of %s lines\n' DIFFERENT "$name" \
                "$(diff "$tmp/theirs" "$tmp/ours" | grep -c '^<')" "$(wc -l < "$f")"
            fail=$((fail + 1))
        fi
    done
done
# The code points: a difference counts only at a character Python's
# Unicode database knows (utf8proc may know a newer Unicode).
PYTHONPATH=$NLP_ANCHORS/sacrebleu "$PYTHON" "$tmp/text.py" l < "$d/codepoints" > "$tmp/theirs"
"$tmp/text" l < "$d/codepoints" > "$tmp/ours"
"$PYTHON" - "$d/codepoints" "$tmp/theirs" "$tmp/ours" > "$tmp/cp" <<'EOF'
import sys, unicodedata
src, a, b = (open(f, encoding='utf-8', newline='\n').read().split('\n') for f in sys.argv[1:])
known = newer = 0
for s, x, y in zip(src, a, b):
    if x != y:
        if any(unicodedata.category(c) == 'Cn' for c in s):
            newer += 1
        else:
            known += 1
            print('  differs:', ' '.join('U+%04X' % ord(c) for c in s), file=sys.stderr)
print(known, newer, len(src) - 1, unicodedata.unidata_version)
EOF
read -r known newer lines uver < "$tmp/cp"
if [ "$known" -eq 0 ]; then
    printf '%-9s %-26s %s lines (%s differ, all at characters Unicode %s lacks)\n' \
        same "lowercase code points" "$lines" "$newer" "$uver"
    pass=$((pass + 1))
else
    printf '%-9s %-26s %s of %s lines\n' DIFFERENT "lowercase code points" "$known" "$lines"
    fail=$((fail + 1))
fi

echo "bleu_check: $pass same, $fail different"
[ "$fail" -eq 0 ]
