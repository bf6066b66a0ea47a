#!/usr/bin/env python3
"""Token F1 of `tokenize` against the gold tokenisation of a UD treebank.

    bench/ud_score.py [--tokenize BIN] [--errors N] [--words] FILE.conllu -- [TOKENIZE OPTIONS]
    bench/ud_score.py ../shared/corpora/ud/en_ewt-ud-dev.conllu -- --lang en

For each sentence, the `# text = ` line is the input (one line per sentence,
all sentences in one run of the tool).  Gold tokens are the surface tokens:
the FORM of every line whose ID is an integer or a range n-m, leaving out
the words inside a range.  Gold and predicted tokens are placed in the text
by character offsets (each token is searched from the end of the previous
one); a predicted token is correct when its start and end offsets equal a
gold token's.  Prints precision, recall and F1 and, with --errors N, the N
most frequent disagreements (the gold and predicted tokens of each region
where the two segmentations differ).

--words scores syntactic words instead of surface tokens where a range is a
plain split of its surface form (its words concatenate to the FORM, as
don't = do + n't, cannot = can + not); other ranges (Italian del = di + il)
stay surface tokens.  This shows how the language rules fare against the
word level that English clitic splitting follows.
"""
import argparse
import collections
import os
import subprocess
import sys


def read_conllu(path, words):
    """Yields (text, [gold token strings]) per sentence."""
    text, toks, skip_to = None, [], 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("# text = "):
            text = line[len("# text = "):]
        elif line.startswith("#"):
            continue
        elif not line.strip():
            if text is not None and toks:
                yield text, toks
            text, toks, skip_to = None, [], 0
        else:
            cols = line.split("\t")
            tid, form = cols[0], cols[1]
            if "." in tid:
                continue            # empty node
            if "-" in tid:
                a, b = (int(x) for x in tid.split("-"))
                sub = []
                for j in range(b - a + 1):
                    sub.append(lines[i + j].split("\t")[1])
                if words and "".join(sub) == form:
                    toks.extend(sub)
                else:
                    toks.append(form)
                skip_to = b
            elif int(tid) > skip_to:
                toks.append(form)
    if text is not None and toks:
        yield text, toks


def place(text, toks):
    """Character spans of toks in text, searched left to right; a token not
    found (e.g. changed by normalisation) gets None."""
    spans, pos = [], 0
    for t in toks:
        k = text.find(t, pos)
        if k < 0:
            spans.append(None)
            continue
        spans.append((k, k + len(t)))
        pos = k + len(t)
    return spans


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--tokenize", default=os.path.join(here, "..", "bin", "tokenize"),
                    help="the tokenize binary [../bin/tokenize next to this script]")
    ap.add_argument("--errors", type=int, default=0, help="show the N most frequent errors")
    ap.add_argument("--words", action="store_true",
                    help="score split ranges (don't -> do n't) as words")
    ap.add_argument("conllu")
    ap.add_argument("opts", nargs="*", help="options for tokenize, after --")
    a = ap.parse_args()

    sents = list(read_conllu(a.conllu, a.words))
    inp = "".join(t.replace("\n", " ") + "\n" for t, _ in sents)
    res = subprocess.run([a.tokenize] + a.opts, input=inp.encode("utf-8"),
                         stdout=subprocess.PIPE, check=True)
    out = res.stdout.decode("utf-8").split("\n")
    if len(out) < len(sents):
        sys.exit("ud_score: tokenize gave %d lines for %d sentences" % (len(out), len(sents)))

    n_gold = n_pred = n_ok = 0
    errors = collections.Counter()
    for (text, gold), line in zip(sents, out):
        pred = line.split(" ") if line else []
        gs, ps = place(text, gold), place(text, pred)
        gset = set(s for s in gs if s)
        pset = set(s for s in ps if s)
        n_gold += len(gold)
        n_pred += len(pred)
        n_ok += len(gset & pset)
        if a.errors and gset != pset:
            # group the disagreeing tokens into regions of overlapping spans
            bad = sorted([(s, "g", t) for s, t in zip(gs, gold) if s and s not in pset] +
                         [(s, "p", t) for s, t in zip(ps, pred) if s and s not in gset])
            region, end = [], -1
            for s, who, t in bad + [((10 ** 9, 10 ** 9), "", "")]:
                if region and s[0] >= end:
                    g = " ".join(x[2] for x in region if x[1] == "g")
                    p = " ".join(x[2] for x in region if x[1] == "p")
                    errors["gold [%s]  pred [%s]" % (g, p)] += 1
                    region = []
                region.append((s, who, t))
                end = max(end, s[1]) if len(region) > 1 else s[1]

    p = n_ok / n_pred if n_pred else 0.0
    r = n_ok / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    print("%s: %d sentences, gold %d, predicted %d, correct %d" %
          (os.path.basename(a.conllu), len(sents), n_gold, n_pred, n_ok))
    print("precision %.2f%%  recall %.2f%%  F1 %.2f%%" % (100 * p, 100 * r, 100 * f))
    for e, c in errors.most_common(a.errors):
        print("%5d  %s" % (c, e))


if __name__ == "__main__":
    main()
