/*
 * The model source wrapper and the openers: which implementation reads a
 * path or a buffer. Implementations: format/gguf_source.c.
 */
#include <stdlib.h>

#include "base/internal.h"
#include "format/gguf.h"
#include "format/hf.h"
#include "format/source.h"

int bitnet__source_create(bitnet_source **out, const bitnet_source_ops *ops,
                          void *impl)
{
    *out = NULL;
    bitnet_source *s = calloc(1, sizeof(*s));
    if (!s) {
        ops->close(impl);
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    }
    s->ops = ops;
    s->impl = impl;
    *out = s;
    return BITNET_OK;
}

void bitnet__source_free(bitnet_source *s)
{
    if (!s) return;
    s->ops->close(s->impl);
    free(s);
}

int bitnet__source_open_file(bitnet_source **out, const char *path, int no_mmap)
{
    *out = NULL;
    if (bitnet__hf_is_checkpoint(path))
        return bitnet__hf_source(out, path, no_mmap, NULL);
    bitnet_file_view v;
    int rc = bitnet__file_open(&v, path, no_mmap);
    if (rc) return rc;
    return bitnet__gguf_source(out, v.data, v.size, &v);
}

int bitnet__source_open_buffer(bitnet_source **out, const void *data, size_t size)
{
    return bitnet__gguf_source(out, data, size, NULL);
}
