/*
 * params.c -- parameter structs across the ABI: filling a caller's struct
 * with defaults, copying a caller's struct in, and copying the library's
 * values out, each with the one struct_size rule of tokenformer.h.
 *
 * A struct's first field is its size_t struct_size; fields are only ever
 * appended.  So a caller's struct_size may be anything from the end of the
 * first field after struct_size (the oldest layout there ever was) to this
 * library's sizeof: a smaller one is garbage, a larger one comes from a
 * newer header than this library knows.  Both are refused, and nothing is
 * ever read or written past the caller's struct_size.
 */
#include <string.h>

#include "internal.h"

void tfi_params_init(void *p, size_t size, const void *defaults, size_t dsize)
{
    if (!p || size < sizeof(size_t))
        return;
    size_t n = size < dsize ? size : dsize;
    memcpy(p, defaults, n);
    memcpy(p, &n, sizeof n);
}

/* TF_ERR_ARGUMENT for a struct_size outside [lo, hi], saying how to get a
 * good struct: "tf_model_params" comes from tf_model_default_params(). */
static tf_status bad_size(tfi_errbuf *eb, const char *fn, const char *type, size_t size,
                          size_t lo, size_t hi)
{
    size_t len = strlen(type);
    const size_t suffix = sizeof "_params" - 1;
    if (len > suffix && strcmp(type + len - suffix, "_params") == 0)
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "%s: %s.struct_size is %zu, outside [%zu, %zu]: obtain the struct from "
                        "%.*s_default_params()", fn, type, size, lo, hi, (int)(len - suffix),
                        type);
    return tfi_fail(eb, TF_ERR_ARGUMENT,
                    "%s: %s.struct_size is %zu, outside [%zu, %zu]: set it to sizeof(%s)", fn,
                    type, size, lo, hi, type);
}

tf_status tfi_params_in(void *dst, size_t dsize, const void *src, size_t min_size,
                        const char *fn, const char *type, tfi_errbuf *eb)
{
    if (!src)
        return TF_OK;
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size < min_size || size > dsize)
        return bad_size(eb, fn, type, size, min_size, dsize);
    memcpy(dst, src, size);
    memcpy(dst, &dsize, sizeof dsize);
    return TF_OK;
}

tf_status tfi_params_out(void *dst, const void *src, size_t ssize, size_t min_size,
                         const char *fn, const char *type, tfi_errbuf *eb)
{
    size_t size;
    memcpy(&size, dst, sizeof size);
    if (size < min_size || size > ssize)
        return bad_size(eb, fn, type, size, min_size, ssize);
    memcpy((char *)dst + sizeof size, (const char *)src + sizeof size, size - sizeof size);
    return TF_OK;
}
