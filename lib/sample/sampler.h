/*
 * Sampler internals reachable from tests: a constructor that takes the
 * vocabulary size directly (no model needed) and the candidate set the chain
 * leaves before the draw.
 */
#ifndef BITNET_SAMPLER_H
#define BITNET_SAMPLER_H

#include "base/internal.h"

/* As bitnet_sampler_create() with an explicit vocabulary size (> 0). */
int bitnet__sampler_create_n(bitnet_sampler **out, int32_t n_vocab,
                             const bitnet_sampler_params *p);

/* Logits after logit bias and penalties (the first two chain steps):
 * out receives n_vocab floats. Same argument checks as sample_logits. */
int bitnet__sampler_adjust(bitnet_sampler *s, const float *logits,
                           size_t n_logits, float *out);

/* Run the whole chain except the draw. On success ids[0..*n_out) are the
 * surviving candidates, highest logit first (ties: lower id first), and
 * probs[] their final probabilities (after temperature; they sum to 1).
 * With temperature <= 0 the single greedy token is returned with
 * probability 1. ids/probs must hold n_vocab entries. */
int bitnet__sampler_candidates(bitnet_sampler *s, const float *logits,
                               size_t n_logits, int32_t *ids, double *probs,
                               size_t *n_out);

/* exp(x) for x <= 0 computed with basic IEEE double arithmetic only, so the
 * result is the same bit pattern on every platform (libm exp is not). */
double bitnet__exp_neg(double x);

#endif /* BITNET_SAMPLER_H */
