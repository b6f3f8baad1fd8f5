/*
 * GBNF parser: text -> bn_grammar (see grammar.h for the compiled form).
 *
 * Syntax accepted
 *   grammar    := rule*
 *   rule       := name '::=' alternates      (a rule ends where the next
 *                                              "name ::=" starts)
 *   alternates := sequence ('|' sequence)*
 *   sequence   := (primary repeat?)*         (may be empty)
 *   primary    := name | '"' literal '"' | '[' '^'? class ']' | '.' |
 *                 '(' alternates ')'
 *   repeat     := '*' | '+' | '?' | '{' m '}' | '{' m ',' '}' |
 *                 '{' m ',' n '}' | '{' ',' n '}'
 * Names are [A-Za-z0-9_-]+. '#' starts a comment to the end of the line.
 * Whitespace (newlines included) may appear between any two items.
 * Escapes in literals and classes: \n \r \t \\ \" \' \[ \] \- \^ \/ \xHH
 * \uHHHH \UHHHHHHHH. Other text is UTF-8 and stands for itself.
 *
 * After parsing, the grammar is refused when a referenced rule is not
 * defined, the start rule is missing, a rule can never match any finite
 * text (unproductive), or a rule can reach itself without consuming input
 * (left recursion, which the matcher could not expand).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/grammar.h"

#define BN_G_MAX_REPEAT 10000        /* largest m or n in {m,n} */
#define BN_G_MAX_ELEMS  (1u << 22)   /* elements of the whole grammar */
#define BN_G_MAX_NEST   200          /* nested groups */
#define BN_G_MAX_CP     0x10FFFFu

typedef struct evec {
    bn_gelem *e;
    size_t n, cap;
} evec;

typedef struct prule {
    char *name;          /* user rules; NULL for generated ones */
    uint32_t parent;     /* generated: the user rule it belongs to */
    size_t pos;          /* where it is defined (or first referenced) */
    int defined;
    evec body;           /* alternatives, each ended by BN_GE_END */
} prule;

typedef struct pctx {
    const char *s;
    size_t pos;
    prule *rules;
    size_t n_rules, cap_rules;
    bn_range *ranges;
    size_t n_ranges, cap_ranges;
    size_t total;        /* elements emitted so far */
    uint32_t cur_rule;   /* the user rule being parsed */
    int failed;
} pctx;

/* ---- errors ------------------------------------------------------------ */

static void line_col(const char *s, size_t pos, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < pos && s[i]; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int perr(pctx *p, size_t pos, const char *msg, const char *arg)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    int line, col;
    line_col(p->s, pos, &line, &col);
    bitnet__error(BITNET_E_GRAMMAR, "grammar: line %d, column %d: %s%s%s%s",
                  line, col, msg, arg ? " '" : "", arg ? arg : "",
                  arg ? "'" : "");
    return -1;
}

static int nomem(pctx *p)
{
    if (!p->failed) {
        p->failed = 2;
        bitnet__error(BITNET_E_NOMEM, "grammar: out of memory");
    }
    return -1;
}

/* ---- growable arrays --------------------------------------------------- */

static int evec_push(pctx *p, evec *v, uint32_t type, uint32_t a, uint32_t n)
{
    if (p->total >= BN_G_MAX_ELEMS)
        return perr(p, p->pos, "grammar too large (repetition counts "
                    "multiply its size)", NULL);
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        bn_gelem *ne = realloc(v->e, nc * sizeof(*ne));
        if (!ne)
            return nomem(p);
        v->e = ne;
        v->cap = nc;
    }
    v->e[v->n].type = type;
    v->e[v->n].a = a;
    v->e[v->n].n = n;
    v->n++;
    p->total++;
    return 0;
}

static int evec_append(pctx *p, evec *v, const evec *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (evec_push(p, v, w->e[i].type, w->e[i].a, w->e[i].n))
            return -1;
    return 0;
}

static long new_rule(pctx *p, const char *name, size_t len, size_t pos)
{
    if (p->n_rules == p->cap_rules) {
        size_t nc = p->cap_rules ? p->cap_rules * 2 : 16;
        prule *nr = realloc(p->rules, nc * sizeof(*nr));
        if (!nr)
            return nomem(p);
        p->rules = nr;
        p->cap_rules = nc;
    }
    prule *r = &p->rules[p->n_rules];
    memset(r, 0, sizeof(*r));
    if (name) {
        r->name = bitnet__strndup(name, len);
        if (!r->name)
            return nomem(p);
        r->parent = (uint32_t)p->n_rules;
    } else {
        r->parent = p->cur_rule;
        r->defined = 1;
    }
    r->pos = pos;
    return (long)p->n_rules++;
}

static long find_rule(pctx *p, const char *name, size_t len, size_t pos)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const char *n = p->rules[i].name;
        if (n && strlen(n) == len && memcmp(n, name, len) == 0)
            return (long)i;
    }
    return new_rule(p, name, len, pos);
}

/* ---- lexing ------------------------------------------------------------ */

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static void skip_space(pctx *p)
{
    const char *s = p->s;
    for (;;) {
        char c = s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            p->pos++;
        } else if (c == '#') {
            while (s[p->pos] && s[p->pos] != '\n')
                p->pos++;
        } else {
            return;
        }
    }
}

static size_t name_len(const char *s)
{
    size_t n = 0;
    while (is_name_char(s[n]))
        n++;
    return n;
}

/* Whether a rule definition ("name ::=") starts at pos. */
static int at_definition(const pctx *p)
{
    const char *s = p->s + p->pos;
    size_t n = name_len(s);
    if (n == 0)
        return 0;
    s += n;
    for (;;) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            s++;
        } else if (*s == '#') {
            while (*s && *s != '\n')
                s++;
        } else {
            break;
        }
    }
    return s[0] == ':' && s[1] == ':' && s[2] == '=';
}

/* Decode one UTF-8 character at p->pos. */
static int utf8_char(pctx *p, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)p->s + p->pos;
    unsigned c = s[0];
    uint32_t v;
    int n;
    if (c < 0x80) {
        *cp = c;
        p->pos++;
        return 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
        v = c & 0x1F; n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        v = c & 0x0F; n = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
        v = c & 0x07; n = 3;
    } else {
        return perr(p, p->pos, "invalid UTF-8", NULL);
    }
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return perr(p, p->pos, "invalid UTF-8", NULL);
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[4] = { 0, 0x80, 0x800, 0x10000 };
    if (v < min[n] || v > BN_G_MAX_CP || (v >= 0xD800 && v <= 0xDFFF))
        return perr(p, p->pos, "invalid UTF-8", NULL);
    *cp = v;
    p->pos += (size_t)n + 1;
    return 0;
}

static int hex_digits(pctx *p, int n, uint32_t *cp)
{
    uint32_t v = 0;
    size_t start = p->pos - 2;
    for (int i = 0; i < n; i++) {
        char c = p->s[p->pos];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return perr(p, p->pos, "expected a hexadecimal digit in escape",
                         NULL);
        v = v * 16 + (uint32_t)d;
        p->pos++;
    }
    if (v > BN_G_MAX_CP || (v >= 0xD800 && v <= 0xDFFF))
        return perr(p, start, "escape is not a Unicode scalar value", NULL);
    *cp = v;
    return 0;
}

/* One character of a literal or class, with escapes. */
static int read_char(pctx *p, uint32_t *cp)
{
    if (p->s[p->pos] != '\\')
        return utf8_char(p, cp);
    size_t at = p->pos;
    char c = p->s[p->pos + 1];
    p->pos += 2;
    switch (c) {
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case '\\': case '"': case '\'': case '[': case ']': case '-': case '^':
    case '/':
        *cp = (uint32_t)(unsigned char)c;
        return 0;
    case 'x': return hex_digits(p, 2, cp);
    case 'u': return hex_digits(p, 4, cp);
    case 'U': return hex_digits(p, 8, cp);
    default:
        p->pos = at;
        return perr(p, at, "unknown escape", NULL);
    }
}

/* ---- ranges ------------------------------------------------------------ */

static int range_cmp(const void *a, const void *b)
{
    const bn_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and merge r[0..n) in place; complement over [0, MAX_CP] when neg.
 * Returns the new count; out must hold n + 1 ranges. */
static size_t ranges_norm(bn_range *r, size_t n, int neg, bn_range *out)
{
    qsort(r, n, sizeof(*r), range_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && r[i].lo <= out[m - 1].hi + 1) {
            if (r[i].hi > out[m - 1].hi)
                out[m - 1].hi = r[i].hi;
        } else {
            out[m++] = r[i];
        }
    }
    if (!neg)
        return m;
    /* complement: the gaps between the merged ranges */
    bn_range tmp[1];
    size_t k = 0;
    uint32_t next = 0;
    int open = 1;
    for (size_t i = 0; i < m; i++) {
        bn_range cur = out[i];
        if (cur.lo > next) {
            tmp[0].lo = next;
            tmp[0].hi = cur.lo - 1;
            out[k++] = tmp[0];   /* k <= i: never overwrites unread input */
        }
        if (cur.hi >= BN_G_MAX_CP) {
            open = 0;
            break;
        }
        next = cur.hi + 1;
    }
    if (open) {
        out[k].lo = next;
        out[k].hi = BN_G_MAX_CP;
        k++;
    }
    return k;
}

/* Add a CHAR element for the ranges r[0..n) (normalised here). */
static int push_class(pctx *p, evec *v, bn_range *r, size_t n, int neg)
{
    if (p->n_ranges + n + 1 > p->cap_ranges) {
        size_t nc = p->cap_ranges ? p->cap_ranges : 64;
        while (nc < p->n_ranges + n + 1)
            nc *= 2;
        bn_range *nr = realloc(p->ranges, nc * sizeof(*nr));
        if (!nr)
            return nomem(p);
        p->ranges = nr;
        p->cap_ranges = nc;
    }
    size_t first = p->n_ranges;
    size_t m = ranges_norm(r, n, neg, p->ranges + first);
    p->n_ranges += m;
    return evec_push(p, v, BN_GE_CHAR, (uint32_t)first, (uint32_t)m);
}

/* ---- parsing ----------------------------------------------------------- */

static int parse_alternates(pctx *p, uint32_t rule, int depth);

static int parse_literal(pctx *p, evec *item)
{
    size_t start = p->pos;
    p->pos++;                                   /* opening quote */
    for (;;) {
        char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return 0;
        }
        if (c == '\0' || c == '\n' || c == '\r')
            return perr(p, start, "unterminated string literal", NULL);
        bn_range r;
        if (read_char(p, &r.lo))
            return -1;
        r.hi = r.lo;
        if (push_class(p, item, &r, 1, 0))
            return -1;
    }
}

static int parse_class(pctx *p, evec *item)
{
    size_t start = p->pos;
    p->pos++;                                   /* '[' */
    int neg = 0;
    if (p->s[p->pos] == '^') {
        neg = 1;
        p->pos++;
    }
    bn_range *r = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    for (;;) {
        char c = p->s[p->pos];
        if (c == ']')
            break;
        if (c == '\0') {
            perr(p, start, "unterminated character class", NULL);
            goto out;
        }
        size_t at = p->pos;
        bn_range x;
        if (read_char(p, &x.lo))
            goto out;
        x.hi = x.lo;
        if (p->s[p->pos] == '-' && p->s[p->pos + 1] != ']' &&
            p->s[p->pos + 1] != '\0') {
            p->pos++;
            if (read_char(p, &x.hi))
                goto out;
            if (x.hi < x.lo) {
                perr(p, at, "character range is reversed", NULL);
                goto out;
            }
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            bn_range *nr = realloc(r, nc * sizeof(*nr));
            if (!nr) {
                nomem(p);
                goto out;
            }
            r = nr;
            cap = nc;
        }
        r[n++] = x;
    }
    if (n == 0) {
        perr(p, start, "empty character class", NULL);
        goto out;
    }
    p->pos++;                                   /* ']' */
    rc = push_class(p, item, r, n, neg);
out:
    free(r);
    return rc;
}

static int parse_uint(pctx *p, uint32_t *out)
{
    size_t start = p->pos;
    uint32_t v = 0;
    if (p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return perr(p, p->pos, "expected a number in {}", NULL);
    while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        v = v * 10 + (uint32_t)(p->s[p->pos] - '0');
        if (v > BN_G_MAX_REPEAT)
            return perr(p, start, "repetition count above 10000", NULL);
        p->pos++;
    }
    *out = v;
    return 0;
}

/* Append x (a single element) min..max times to out; max UINT32_MAX means
 * unbounded. Optional copies become generated rules "R ::= x R | (empty)"
 * (star) or nested "O1 ::= x O2 | (empty)" chains (bounded). */
static int emit_repeat(pctx *p, evec *out, bn_gelem x, uint32_t min,
                       uint32_t max, size_t pos)
{
    for (uint32_t i = 0; i < min; i++)
        if (evec_push(p, out, x.type, x.a, x.n))
            return -1;
    if (max == UINT32_MAX) {
        long r = new_rule(p, NULL, 0, pos);
        if (r < 0)
            return -1;
        evec *b = &p->rules[r].body;
        if (evec_push(p, b, x.type, x.a, x.n) ||
            evec_push(p, b, BN_GE_REF, (uint32_t)r, 0) ||
            evec_push(p, b, BN_GE_END, 0, 0) ||
            evec_push(p, b, BN_GE_END, 0, 0))
            return -1;
        return evec_push(p, out, BN_GE_REF, (uint32_t)r, 0);
    }
    if (max == min)
        return 0;
    /* Build the chain from its innermost rule outwards. */
    long next = -1;
    for (uint32_t i = min; i < max; i++) {
        long r = new_rule(p, NULL, 0, pos);
        if (r < 0)
            return -1;
        evec *b = &p->rules[r].body;
        if (evec_push(p, b, x.type, x.a, x.n))
            return -1;
        if (next >= 0 && evec_push(p, b, BN_GE_REF, (uint32_t)next, 0))
            return -1;
        if (evec_push(p, b, BN_GE_END, 0, 0) ||
            evec_push(p, b, BN_GE_END, 0, 0))
            return -1;
        next = r;
    }
    return evec_push(p, out, BN_GE_REF, (uint32_t)next, 0);
}

static int parse_sequence(pctx *p, evec *out, int depth)
{
    evec item = { NULL, 0, 0 };
    int rc = -1;
    for (;;) {
        skip_space(p);
        char c = p->s[p->pos];
        if (c == '\0' || c == '|' || c == ')')
            break;
        if (depth == 0 && at_definition(p))
            break;
        size_t start = p->pos;
        item.n = 0;
        if (c == '"') {
            if (parse_literal(p, &item))
                goto out;
        } else if (c == '[') {
            if (parse_class(p, &item))
                goto out;
        } else if (c == '.') {
            bn_range any = { 0, BN_G_MAX_CP };
            p->pos++;
            if (push_class(p, &item, &any, 1, 0))
                goto out;
        } else if (c == '(') {
            if (depth >= BN_G_MAX_NEST) {
                perr(p, start, "groups nested too deeply", NULL);
                goto out;
            }
            long r = new_rule(p, NULL, 0, start);
            if (r < 0)
                goto out;
            p->pos++;
            if (parse_alternates(p, (uint32_t)r, depth + 1))
                goto out;
            if (p->s[p->pos] != ')') {
                perr(p, start, "unclosed '('", NULL);
                goto out;
            }
            p->pos++;
            if (evec_push(p, &item, BN_GE_REF, (uint32_t)r, 0))
                goto out;
        } else if (is_name_char(c)) {
            size_t n = name_len(p->s + p->pos);
            long r = find_rule(p, p->s + p->pos, n, p->pos);
            if (r < 0)
                goto out;
            p->pos += n;
            if (evec_push(p, &item, BN_GE_REF, (uint32_t)r, 0))
                goto out;
        } else {
            char bad[8] = { 0 };
            size_t k = 0;
            bad[k++] = c;
            while (k < 4 && ((unsigned char)p->s[p->pos + k] & 0xC0) == 0x80) {
                bad[k] = p->s[p->pos + k];
                k++;
            }
            perr(p, start, "unexpected character", bad);
            goto out;
        }
        /* optional repetition operator */
        size_t op_at = p->pos;
        skip_space(p);
        c = p->s[p->pos];
        uint32_t min = 1, max = 1;
        if (c == '*') {
            min = 0; max = UINT32_MAX; p->pos++;
        } else if (c == '+') {
            min = 1; max = UINT32_MAX; p->pos++;
        } else if (c == '?') {
            min = 0; max = 1; p->pos++;
        } else if (c == '{') {
            size_t at = p->pos;
            p->pos++;
            skip_space(p);
            min = 0;
            if (p->s[p->pos] != ',' && parse_uint(p, &min))
                goto out;
            skip_space(p);
            if (p->s[p->pos] == '}') {
                max = min;
            } else if (p->s[p->pos] == ',') {
                p->pos++;
                skip_space(p);
                if (p->s[p->pos] == '}') {
                    max = UINT32_MAX;
                } else {
                    if (parse_uint(p, &max))
                        goto out;
                    skip_space(p);
                    if (max < min) {
                        perr(p, at, "repetition {m,n} with n < m", NULL);
                        goto out;
                    }
                }
            }
            if (p->s[p->pos] != '}') {
                perr(p, at, "expected '}' to close the repetition", NULL);
                goto out;
            }
            p->pos++;
        } else {
            p->pos = op_at;   /* whitespace stays for the next item */
        }
        if (min == 1 && max == 1) {
            if (evec_append(p, out, &item))
                goto out;
            continue;
        }
        if (item.n == 0)
            continue;   /* "" repeated is still "" */
        bn_gelem x;
        if (item.n == 1) {
            x = item.e[0];
        } else {   /* a multi-character literal: repeat it as a rule */
            long r = new_rule(p, NULL, 0, start);
            if (r < 0)
                goto out;
            if (evec_append(p, &p->rules[r].body, &item) ||
                evec_push(p, &p->rules[r].body, BN_GE_END, 0, 0))
                goto out;
            x.type = BN_GE_REF;
            x.a = (uint32_t)r;
            x.n = 0;
        }
        if (emit_repeat(p, out, x, min, max, start))
            goto out;
    }
    rc = 0;
out:
    free(item.e);
    return rc;
}

static int parse_alternates(pctx *p, uint32_t rule, int depth)
{
    evec seq = { NULL, 0, 0 };
    int rc = -1;
    for (;;) {
        seq.n = 0;
        if (parse_sequence(p, &seq, depth))
            goto out;
        /* the rules array may have moved: index it afresh */
        if (evec_append(p, &p->rules[rule].body, &seq) ||
            evec_push(p, &p->rules[rule].body, BN_GE_END, 0, 0))
            goto out;
        if (p->s[p->pos] != '|')
            break;
        p->pos++;
    }
    rc = 0;
out:
    free(seq.e);
    return rc;
}

static int parse_all(pctx *p)
{
    skip_space(p);
    while (p->s[p->pos]) {
        size_t start = p->pos;
        size_t n = name_len(p->s + p->pos);
        if (n == 0)
            return perr(p, start, "expected a rule name", NULL);
        long r = find_rule(p, p->s + p->pos, n, start);
        if (r < 0)
            return -1;
        p->pos += n;
        skip_space(p);
        if (strncmp(p->s + p->pos, "::=", 3) != 0)
            return perr(p, p->pos, "expected '::=' after the rule name",
                        NULL);
        p->pos += 3;
        if (p->rules[r].defined)
            return perr(p, start, "rule defined twice:", p->rules[r].name);
        p->rules[r].defined = 1;
        p->rules[r].pos = start;
        p->cur_rule = (uint32_t)r;
        if (parse_alternates(p, (uint32_t)r, 0))
            return -1;
        if (p->s[p->pos] == ')')
            return perr(p, p->pos, "unmatched ')'", NULL);
        skip_space(p);
    }
    return 0;
}

/* ---- checks on the whole grammar --------------------------------------- */

/* Name used in messages: the user rule, or the rule a generated one is in. */
static void rule_desc(const pctx *p, uint32_t r, char *buf, size_t cap)
{
    const prule *x = &p->rules[r];
    if (x->name)
        snprintf(buf, cap, "rule '%s'", x->name);
    else
        snprintf(buf, cap, "a group or repetition in rule '%s'",
                 p->rules[x->parent].name ? p->rules[x->parent].name : "?");
}

static int rule_err(pctx *p, uint32_t r, const char *what)
{
    char d[200];
    rule_desc(p, r, d, sizeof(d));
    char msg[400];
    snprintf(msg, sizeof(msg), "%s %s", d, what);
    return perr(p, p->rules[r].pos, msg, NULL);
}

/* Iterate to a fixed point: flag[r] = some alternative has every element
 * satisfying elem_ok (CHAR: `chars` says whether a non-empty class counts,
 * REF: flag of the rule). nullable: chars = 0; productive: chars = 1. */
static void fixpoint(const pctx *p, uint8_t *flag, int chars)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        for (size_t r = 0; r < p->n_rules; r++) {
            if (flag[r])
                continue;
            const evec *b = &p->rules[r].body;
            int ok = 1;
            for (size_t i = 0; i < b->n; i++) {
                const bn_gelem *e = &b->e[i];
                if (e->type == BN_GE_END) {
                    if (ok) {
                        flag[r] = 1;
                        changed = 1;
                        break;
                    }
                    ok = 1;
                } else if (e->type == BN_GE_CHAR) {
                    if (!chars || e->n == 0)
                        ok = 0;
                } else if (!flag[e->a]) {
                    ok = 0;
                }
            }
        }
    }
}

/* Depth-first search over "r can start with s" edges (s referenced after
 * only nullable elements); a back edge is left recursion. */
static int left_rec(pctx *p, const uint8_t *nullable, uint8_t *color)
{
    size_t n = p->n_rules;
    uint32_t *stk = malloc(n * sizeof(*stk));
    size_t *it = malloc(n * sizeof(*it));
    uint8_t *live = malloc(n);   /* inside the current alternative prefix */
    if (!stk || !it || !live) {
        free(stk); free(it); free(live);
        return nomem(p);
    }
    int rc = 0;
    for (size_t s0 = 0; s0 < n && rc == 0; s0++) {
        if (color[s0])
            continue;
        size_t sp = 0;
        stk[sp] = (uint32_t)s0; it[sp] = 0; live[sp] = 1; sp++;
        color[s0] = 1;
        while (sp > 0) {
            size_t top = sp - 1;
            uint32_t r = stk[top];
            const evec *b = &p->rules[r].body;
            if (it[top] >= b->n) {
                color[r] = 2;
                sp--;
                continue;
            }
            const bn_gelem *e = &b->e[it[top]++];
            if (e->type == BN_GE_END) {
                live[top] = 1;
                continue;
            }
            if (!live[top])
                continue;
            if (e->type == BN_GE_CHAR) {
                live[top] = 0;
                continue;
            }
            if (!nullable[e->a])
                live[top] = 0;
            if (color[e->a] == 1) {
                rc = rule_err(p, e->a, "is left-recursive (it can reach "
                              "itself without consuming input; a repeated "
                              "item that can be empty does this too)");
                break;
            }
            if (color[e->a] == 0) {
                color[e->a] = 1;
                stk[sp] = e->a; it[sp] = 0; live[sp] = 1; sp++;
            }
        }
    }
    free(stk); free(it); free(live);
    return rc;
}

static int check(pctx *p)
{
    for (size_t r = 0; r < p->n_rules; r++)
        if (!p->rules[r].defined)
            return perr(p, p->rules[r].pos, "undefined rule",
                        p->rules[r].name);
    size_t n = p->n_rules;
    uint8_t *prod = calloc(n, 1), *null = calloc(n, 1), *color = calloc(n, 1);
    int rc = -1;
    if (!prod || !null || !color) {
        nomem(p);
        goto out;
    }
    fixpoint(p, prod, 1);
    for (size_t r = 0; r < n; r++)
        if (!prod[r]) {
            rule_err(p, (uint32_t)r, "can never match (every alternative "
                     "needs an endless expansion or an empty character "
                     "class)");
            goto out;
        }
    fixpoint(p, null, 0);
    if (left_rec(p, null, color))
        goto out;
    rc = 0;
out:
    free(prod); free(null); free(color);
    return rc;
}

/* ---- assembly ---------------------------------------------------------- */

void bitnet__grammar_free(bn_grammar *g)
{
    if (!g)
        return;
    free(g->elem);
    free(g->range);
    free(g->alt_first);
    free(g->alts);
    free(g);
}

static int assemble(pctx *p, uint32_t root, bn_grammar **out)
{
    bn_grammar *g = calloc(1, sizeof(*g));
    if (!g)
        return nomem(p);
    size_t n_elem = 1, n_alts = 0;   /* element 0: a spare END */
    for (size_t r = 0; r < p->n_rules; r++) {
        n_elem += p->rules[r].body.n;
        for (size_t i = 0; i < p->rules[r].body.n; i++)
            n_alts += p->rules[r].body.e[i].type == BN_GE_END;
    }
    g->elem = malloc(n_elem * sizeof(*g->elem));
    g->alt_first = malloc((p->n_rules + 1) * sizeof(*g->alt_first));
    g->alts = malloc((n_alts ? n_alts : 1) * sizeof(*g->alts));
    g->range = malloc((p->n_ranges ? p->n_ranges : 1) * sizeof(*g->range));
    if (!g->elem || !g->alt_first || !g->alts || !g->range) {
        bitnet__grammar_free(g);
        return nomem(p);
    }
    if (p->n_ranges)
        memcpy(g->range, p->ranges, p->n_ranges * sizeof(*g->range));
    g->n_range = (uint32_t)p->n_ranges;
    g->elem[0].type = BN_GE_END;
    g->elem[0].a = g->elem[0].n = 0;
    size_t e = 1, a = 0;
    for (size_t r = 0; r < p->n_rules; r++) {
        const evec *b = &p->rules[r].body;
        g->alt_first[r] = (uint32_t)a;
        int at_start = 1;
        for (size_t i = 0; i < b->n; i++) {
            if (at_start)
                g->alts[a++] = (uint32_t)e;
            g->elem[e++] = b->e[i];
            at_start = b->e[i].type == BN_GE_END;
        }
    }
    g->alt_first[p->n_rules] = (uint32_t)a;
    g->n_elem = (uint32_t)e;
    g->n_rules = (uint32_t)p->n_rules;
    g->root = root;
    *out = g;
    return 0;
}

int bitnet__grammar_parse(const char *text, const char *root, bn_grammar **out)
{
    if (!out)
        return bitnet__error(BITNET_E_INVALID_ARG, "grammar: out is NULL");
    *out = NULL;
    if (!text)
        return bitnet__error(BITNET_E_INVALID_ARG, "grammar: text is NULL");
    if (!root)
        root = "root";
    pctx p;
    memset(&p, 0, sizeof(p));
    p.s = text;
    int rc = parse_all(&p);
    long root_id = -1;
    if (rc == 0) {
        for (size_t r = 0; r < p.n_rules; r++)
            if (p.rules[r].name && strcmp(p.rules[r].name, root) == 0)
                root_id = (long)r;
        if (root_id < 0) {
            p.failed = 1;
            bitnet__error(BITNET_E_GRAMMAR, "grammar: no rule named '%s' "
                          "(the start rule)", root);
            rc = -1;
        }
    }
    if (rc == 0)
        rc = check(&p);
    if (rc == 0)
        rc = assemble(&p, (uint32_t)root_id, out);
    for (size_t r = 0; r < p.n_rules; r++) {
        free(p.rules[r].name);
        free(p.rules[r].body.e);
    }
    free(p.rules);
    free(p.ranges);
    if (rc == 0)
        return BITNET_OK;
    return p.failed == 2 ? BITNET_E_NOMEM : BITNET_E_GRAMMAR;
}

int bitnet__gelem_match(const bn_grammar *g, const bn_gelem *e, uint32_t cp)
{
    const bn_range *r = g->range + e->a;
    uint32_t lo = 0, hi = e->n;   /* binary search: the last lo <= cp */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (r[mid].hi < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->n && r[lo].lo <= cp;
}
