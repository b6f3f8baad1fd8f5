/*
 * Thin helpers over jansson (the library's one optional dependency) for the
 * JSON files of Hugging Face checkpoints: bounded size and nesting depth,
 * UTF-8 checked, messages that name the file. Everything here exists only
 * when lib_config.h says BITNET_HAVE_JSON; callers check that first.
 */
#ifndef BITNET_JSON_H
#define BITNET_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "lib_config.h"

/* Limits for every JSON text the library reads: a tokenizer.json of a
 * 256k vocabulary is ~20 MB; configs and headers are small. */
#define BITNET_JSON_MAX_SIZE   ((size_t)256 << 20)
#define BITNET_JSON_MAX_DEPTH  32

#if BITNET_HAVE_JSON
#include <jansson.h>

/* Parse `len` bytes of JSON text. Refused (BITNET_E_FORMAT, message naming
 * `what`): more than max_size bytes, invalid UTF-8, nesting deeper than
 * BITNET_JSON_MAX_DEPTH, duplicate object keys, syntax errors. */
int bitnet__json_parse(json_t **out, const char *text, size_t len,
                       size_t max_size, const char *what);
/* Read and parse a file (BITNET_E_IO when it cannot be read,
 * BITNET_E_NOT_FOUND when it does not exist). */
int bitnet__json_load_file(json_t **out, const char *path, size_t max_size);

/* Typed object members. Each returns BITNET_OK, BITNET_E_NOT_FOUND when the
 * key is absent or null, or BITNET_E_FORMAT naming `what`.key when the
 * value has another type or is out of range. */
int bitnet__json_int(const json_t *obj, const char *key, int64_t lo, int64_t hi,
                     int64_t *v, const char *what);
int bitnet__json_num(const json_t *obj, const char *key, double *v, const char *what);
int bitnet__json_bool(const json_t *obj, const char *key, int *v, const char *what);
int bitnet__json_str(const json_t *obj, const char *key, const char **v, const char *what);
#endif

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int bitnet__utf8_valid(const char *s, size_t n);
/* Nesting depth of JSON text (brackets outside strings); stops counting at
 * limit + 1. */
int bitnet__json_depth(const char *s, size_t n, int limit);

#endif /* BITNET_JSON_H */
