/*
 * safetensors files (Hugging Face): an 8-byte little-endian header length
 * N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [b, e]},
 * "__metadata__": {str: str}}, then the raw data; offsets are relative to
 * the data section. Sharded checkpoints list their files in
 * model.safetensors.index.json ("weight_map": {tensor: file}).
 * The header parser works on a byte buffer (the fuzz target); the set
 * maps the files read-only and serves tensors from the mappings.
 */
#ifndef BITNET_SAFETENSORS_H
#define BITNET_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/internal.h"

enum bitnet_st_dtype {
    ST_BOOL = 0, ST_U8, ST_I8, ST_I16, ST_U16, ST_I32, ST_U32, ST_I64, ST_U64,
    ST_F16, ST_BF16, ST_F32, ST_F64, ST_F8_E4M3, ST_F8_E5M2, ST_DTYPE_COUNT
};

#define BITNET_ST_MAX_DIMS 8
/* Header size limit (the reference implementation's is 100 MB). */
#define BITNET_ST_MAX_HEADER ((uint64_t)100 << 20)

typedef struct bitnet_st_tensor {
    char *name;
    int dtype;                      /* enum bitnet_st_dtype */
    int n_dims;
    uint64_t shape[BITNET_ST_MAX_DIMS];
    uint64_t begin, end;            /* within the file's data section */
    const uint8_t *data;            /* base + data_start + begin */
    int file;                       /* index into the set's files */
} bitnet_st_tensor;

const char *bitnet__st_dtype_name(int dtype);
size_t bitnet__st_dtype_size(int dtype);

/* Parse and validate one file held in buf[0..size): header length within
 * the file, JSON (size, depth, UTF-8), every entry's dtype, shape and
 * offsets (inside the data section, byte size = product of the shape times
 * the element size, no two tensors overlapping), __metadata__ a map of
 * strings. On success *out holds *n tensors (names allocated) whose data
 * pointers point into buf. `what` names the file in messages.
 * BITNET_E_FORMAT / BITNET_E_UNSUPPORTED (unknown dtype) / BITNET_E_NOMEM. */
int bitnet__st_parse(const uint8_t *buf, size_t size, const char *what,
                     bitnet_st_tensor **out, size_t *n);
void bitnet__st_tensors_free(bitnet_st_tensor *t, size_t n);

typedef struct bitnet_st_set {
    size_t n_files;
    bitnet_file_view *files;
    char **paths;
    size_t n_tensors;
    bitnet_st_tensor *tensors;      /* sorted by name */
} bitnet_st_set;

/* Open a checkpoint's tensors: `path` is a .safetensors file or a
 * model.safetensors.index.json (every shard it names is opened; a tensor
 * must be in the file the index says). Names are unique across files. */
int bitnet__st_open(bitnet_st_set **out, const char *path, int no_mmap);
void bitnet__st_close(bitnet_st_set *s);
const bitnet_st_tensor *bitnet__st_find(const bitnet_st_set *s, const char *name);
/* Tell the kernel the pages of t are not needed any more (they are read
 * again from the file if touched): keeps the resident set small while
 * master weights are streamed through. */
void bitnet__st_release(const bitnet_st_set *s, const bitnet_st_tensor *t);
/* The same for bytes [off, off + n) of t (whole pages inside it only). */
void bitnet__st_release_range(const bitnet_st_set *s, const bitnet_st_tensor *t,
                              size_t off, size_t n);

#endif /* BITNET_SAFETENSORS_H */
