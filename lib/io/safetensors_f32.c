/*
 * safetensors_f32.c -- a safetensors tensor as float32: F32 copied, F16
 * and BF16 widened exactly (every half and bfloat16 value, subnormals,
 * infinities and NaN payloads included, is a float32 value), from a file
 * held in memory or, for one opened with tfi_st_open_header, read from the
 * file straight into the destination.  Also the one narrowing the writer
 * needs: float32 to bfloat16, rounded to nearest even.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "kernels/bf16.h"

float tfi_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {          /* inf, NaN: the payload moves up, the quiet bit with it */
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {      /* normal: rebias 15 -> 127 */
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else {                    /* zero and subnormals: mant * 2^-24, exact in float32 */
        float v = (float)mant * 0x1p-24f;
        memcpy(&bits, &v, sizeof bits);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

float tfi_bf16_to_f32(uint16_t b)
{
    return tfi_bf16_value(b);
}

uint16_t tfi_f32_to_bf16(float f)
{
    return tfi_bf16_round(f);
}

int tfi_st_dtype_is_float(tfi_st_dtype d)
{
    return d == TFI_ST_F32 || d == TFI_ST_F16 || d == TFI_ST_BF16;
}

/* dst[0..count) from count elements of dtype at src (any alignment).
 * src may be the upper half of dst itself (an in-place widening: element
 * i is read before dst[i] is written, and dst[i] ends before element i+1
 * starts). */
static void widen(float *dst, const unsigned char *src, tfi_st_dtype dtype, size_t count)
{
    if (dtype == TFI_ST_F32) {
        memmove(dst, src, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, sizeof h);
        dst[i] = dtype == TFI_ST_F16 ? tfi_f16_to_f32(h) : tfi_bf16_to_f32(h);
    }
}

/* Reads `bytes` bytes at `offset` of the file into buf (pread, so the file
 * position is never shared state). */
static tf_status read_at(const tfi_st_file *f, void *buf, size_t bytes, uint64_t offset,
                         tfi_errbuf *eb)
{
    unsigned char *p = buf;
    while (bytes > 0) {
        size_t chunk = bytes < ((size_t)1 << 30) ? bytes : ((size_t)1 << 30);
        ssize_t got = pread(fileno(f->fp), p, chunk, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return tfi_fail(eb, TF_ERR_IO, "%s: read failed: %s", f->name, strerror(errno));
        if (got == 0)
            return tfi_fail(eb, TF_ERR_IO, "%s: the file shrank while it was read (no data at "
                            "byte %llu)", f->name, (unsigned long long)offset);
        p += got;
        bytes -= (size_t)got;
        offset += (uint64_t)got;
    }
    return TF_OK;
}

tf_status tfi_st_copy_f32(const tfi_st_file *f, const tfi_st_tensor *t, float *dst,
                          tfi_errbuf *eb)
{
    if (!tfi_st_dtype_is_float(t->dtype))
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32, F16 "
                        "or BF16", f->name, t->name, tfi_st_dtype_name(t->dtype));
    const size_t count = (size_t)t->numel, bytes = (size_t)(t->end - t->begin);
    if (count == 0)
        return TF_OK;
    if (!f->header_only) {
        widen(dst, tfi_st_data(f, t), t->dtype, count);
        return TF_OK;
    }
    /* the raw bytes land in dst's upper part and widen in place */
    unsigned char *raw = (unsigned char *)dst + (count * sizeof(float) - bytes);
    tf_status st = read_at(f, raw, bytes, (uint64_t)f->data_start + t->begin, eb);
    if (st == TF_OK)
        widen(dst, raw, t->dtype, count);
    return st;
}
