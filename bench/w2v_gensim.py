#!/usr/bin/python3
"""gensim reference for bench/word2vec.sh.

usage: w2v_gensim.py CORPUS OUTPUT SG THREADS ITER ALPHA
Trains gensim's Word2Vec on CORPUS (whitespace-separated words, one sentence
a line) with word2vec's settings (size 100, window 5, negative 5, sample 1e-3,
min-count 5), writes OUTPUT in word2vec text format and prints the seconds
spent in vocabulary building + training + saving (the import and the Python
start-up are left out, which favours gensim).
"""
import sys
import time

from gensim.models import Word2Vec

corpus, output, sg, threads, epochs, alpha = sys.argv[1:7]
t0 = time.perf_counter()
model = Word2Vec(corpus_file=corpus, vector_size=100, window=5, negative=5, hs=0,
                 sample=1e-3, min_count=5, sg=int(sg), workers=int(threads),
                 epochs=int(epochs), alpha=float(alpha), seed=1)
model.wv.save_word2vec_format(output, binary=False)
print("%.3f" % (time.perf_counter() - t0))
