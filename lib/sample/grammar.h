/*
 * Grammar-constrained sampling: a GBNF parser (grammar_parse.c), a matcher
 * that advances a set of parse stacks byte by byte (grammar.c), and a trie of
 * token pieces used to compute the set of allowed tokens without walking the
 * vocabulary byte by byte.
 *
 * Compiled form. Every rule is a list of alternatives; an alternative is a
 * run of elements in one flat array ended by a BN_GE_END element. A CHAR
 * element matches one code point in a sorted, merged list of ranges (negated
 * classes are complemented at parse time); a REF element expands a rule.
 * Repetitions and groups become generated rules, so the matcher only knows
 * these three kinds of element.
 */
#ifndef BITNET_GRAMMAR_H
#define BITNET_GRAMMAR_H

#include "base/internal.h"

enum { BN_GE_END = 0, BN_GE_CHAR = 1, BN_GE_REF = 2 };

typedef struct bn_range {
    uint32_t lo, hi;          /* inclusive code point range */
} bn_range;

typedef struct bn_gelem {
    uint32_t type;            /* BN_GE_* */
    uint32_t a;               /* CHAR: first range; REF: rule id */
    uint32_t n;               /* CHAR: number of ranges */
} bn_gelem;

typedef struct bn_grammar {
    bn_gelem *elem;
    uint32_t n_elem;
    bn_range *range;
    uint32_t n_range;
    uint32_t n_rules;
    uint32_t *alt_first;      /* n_rules + 1: rule r's alternatives are  */
    uint32_t *alts;           /* alts[alt_first[r] .. alt_first[r+1]),    */
    uint32_t root;            /* each the element index where it starts  */
} bn_grammar;

/* Parse GBNF text (NUL-terminated UTF-8) with the start rule `root` (NULL:
 * "root"). Errors: BITNET_E_GRAMMAR with "line L, column C: ..." in the
 * message; BITNET_E_INVALID_ARG; BITNET_E_NOMEM. */
int bitnet__grammar_parse(const char *text, const char *root, bn_grammar **out);
void bitnet__grammar_free(bn_grammar *g);

/* Whether code point cp is in the ranges of a CHAR element. */
int bitnet__gelem_match(const bn_grammar *g, const bn_gelem *e, uint32_t cp);

/* ---- matcher ------------------------------------------------------------ */

typedef struct bn_gmatch bn_gmatch;

/* A matcher over g (borrowed: g must outlive it), at the start state. */
int bitnet__gmatch_create(bn_gmatch **out, const bn_grammar *g);
void bitnet__gmatch_free(bn_gmatch *m);
/* Back to the start state. */
void bitnet__gmatch_reset(bn_gmatch *m);
/* Advance by bytes (a token piece; it may end inside a UTF-8 sequence).
 * 1: advanced; 0: the bytes leave the grammar (state unchanged);
 * BITNET_E_NOMEM. */
int bitnet__gmatch_feed(bn_gmatch *m, const void *bytes, size_t n);
/* 1 when the text so far is a complete sentence of the grammar. */
int bitnet__gmatch_can_end(const bn_gmatch *m);
/* 1 when some non-empty continuation is possible. */
int bitnet__gmatch_can_continue(const bn_gmatch *m);
/* Whole-string test: 1 if g matches exactly s[0..n), else 0 (<0: NOMEM). */
int bitnet__grammar_match(const bn_grammar *g, const char *s, size_t n);

/* ---- token pieces ------------------------------------------------------- */

typedef struct bn_vtrie bn_vtrie;

/* A trie of the non-empty pieces pieces[i] (len[i] bytes) of tokens
 * 0..n-1; empty pieces are left out. */
int bitnet__vtrie_build(bn_vtrie **out, const char *const *pieces,
                        const uint32_t *len, int32_t n);
void bitnet__vtrie_free(bn_vtrie *t);

/* Set bit i of allowed (n_vocab bits, cleared first) for every token whose
 * piece the grammar accepts from the current state. Returns BITNET_OK or
 * BITNET_E_NOMEM. */
int bitnet__gmatch_mask(bn_gmatch *m, const bn_vtrie *t, uint64_t *allowed,
                        int32_t n_vocab);

#endif /* BITNET_GRAMMAR_H */
