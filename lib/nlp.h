/*
** libnlp: neural natural-language processing in C.
**
** Umbrella header: includes every public module.  Programs may include
** single modules instead (<nlp/rng.h>, ...).  All public names start with
** nlp_; nothing here prints or exits; errors are NLP_E* codes (nlp/error.h).
*/
#ifndef NLP_H
#define NLP_H

#include <nlp/alloc.h>
#include <nlp/error.h>
#include <nlp/rng.h>
#include <nlp/progress.h>
#include <nlp/outfile.h>
#include <nlp/vocab.h>
#include <nlp/w2v.h>
#include <nlp/vectors.h>
#include <nlp/utf8.h>
#include <nlp/lines.h>
#include <nlp/codepoints.h>
#include <nlp/tokenize.h>
#include <nlp/tensor.h>
#include <nlp/params.h>
#include <nlp/embed.h>
#include <nlp/linear.h>
#include <nlp/rnn.h>
#include <nlp/loss.h>
#include <nlp/optim.h>
#include <nlp/attn.h>
#include <nlp/model.h>
#include <nlp/train.h>
#include <nlp/svg.h>
#include <nlp/crc32.h>
#include <nlp/sample.h>
#include <nlp/charlm.h>
#include <nlp/generate.h>
#include <nlp/classify.h>
#include <nlp/bleu.h>
#include <nlp/series.h>
#include <nlp/forecast.h>
#include <nlp/pairs.h>
#include <nlp/beam.h>
#include <nlp/seq2seq.h>

/* The library version, e.g. "0.1.0" (the package version from configure). */
const char *nlp_version(void);

#endif
