/* CBOR decoder (one well-formed item, definite lengths, bounded depth): see cbor.h. */
#include "cbor.h"

#include <string.h>

/* ---- decoder ---------------------------------------------------------------------- */

/* Reads an item head: major type, argument and head size (0: malformed or truncated). */
static size_t read_head(const uint8_t *p, size_t len, unsigned *major, uint64_t *arg)
{
    if (len < 1)
        return 0;
    unsigned ai = p[0] & 0x1f;
    *major = p[0] >> 5;
    if (ai < 24) {
        *arg = ai;
        return 1;
    }
    if (ai > 27)
        return 0; /* reserved, or indefinite length */
    size_t n = (size_t)1 << (ai - 24);
    if (len < 1 + n)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[1 + i];
    *arg = v;
    return 1 + n;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t more;
        if (c < 0x80)
            more = 0;
        else if ((c >> 5) == 6)
            more = 1;
        else if ((c >> 4) == 14)
            more = 2;
        else if ((c >> 3) == 30)
            more = 3;
        else
            return false; /* a continuation byte, or 0xf8.. */
        if (more > n - i - 1)
            return false;
        uint32_t cp = more == 0 ? c : more == 1 ? c & 0x1fu : more == 2 ? c & 0x0fu : c & 0x07u;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

size_t cbor_item_size(const uint8_t *p, size_t len, unsigned depth)
{
    unsigned major;
    uint64_t arg;
    size_t h = read_head(p, len, &major, &arg);

    if (!h)
        return 0;
    switch (major) {
    case CBOR_UINT:
    case CBOR_NINT:
        return h;
    case CBOR_BYTES:
        return arg <= len - h ? h + (size_t)arg : 0;
    case CBOR_TEXT:
        if (arg > len - h || !utf8_ok(p + h, (size_t)arg))
            return 0;
        return h + (size_t)arg;
    case CBOR_ARRAY:
    case CBOR_MAP: {
        if (depth >= CBOR_MAX_DEPTH)
            return 0;
        uint64_t items = major == CBOR_MAP ? arg * 2 : arg;
        if (major == CBOR_MAP && arg > (len - h) / 2)
            return 0; /* cannot hold that many pairs */
        size_t pos = h;
        for (uint64_t i = 0; i < items; i++) {
            size_t n = cbor_item_size(p + pos, len - pos, depth + 1);
            if (!n)
                return 0;
            pos += n;
        }
        return pos;
    }
    case CBOR_SIMPLE:
        if (h == 1)
            return (arg >= 20 && arg <= 23) ? 1 : 0; /* false true null undefined */
        return (p[0] & 0x1f) >= 25 ? h : 0;       /* floats; one-byte simple: no */
    default:
        return 0; /* tags are not used by SMP */
    }
}

int cbor_check(const uint8_t *buf, size_t len, cbor_val *out)
{
    size_t n = cbor_item_size(buf, len, 0);
    if (!n || n != len)
        return -1;
    if (out) {
        out->p = buf;
        out->len = len;
    }
    return 0;
}

enum cbor_type cbor_type_of(cbor_val v)
{
    return (enum cbor_type)(v.len ? v.p[0] >> 5 : CBOR_SIMPLE);
}

bool cbor_get_uint(cbor_val v, uint64_t *out)
{
    unsigned major;
    return read_head(v.p, v.len, &major, out) && major == CBOR_UINT;
}

bool cbor_get_int(cbor_val v, int64_t *out)
{
    unsigned major;
    uint64_t arg;
    if (!read_head(v.p, v.len, &major, &arg) || arg > (uint64_t)INT64_MAX)
        return false;
    if (major == CBOR_UINT)
        *out = (int64_t)arg;
    else if (major == CBOR_NINT)
        *out = -1 - (int64_t)arg;
    else
        return false;
    return true;
}

static bool get_string(cbor_val v, unsigned want, const uint8_t **p, size_t *n)
{
    unsigned major;
    uint64_t arg;
    size_t h = read_head(v.p, v.len, &major, &arg);
    if (!h || major != want || arg > v.len - h)
        return false;
    *p = v.p + h;
    *n = (size_t)arg;
    return true;
}

bool cbor_get_text(cbor_val v, const char **s, size_t *n)
{
    const uint8_t *p;
    if (!get_string(v, CBOR_TEXT, &p, n))
        return false;
    *s = (const char *)p;
    return true;
}

bool cbor_get_bytes(cbor_val v, const uint8_t **p, size_t *n)
{
    return get_string(v, CBOR_BYTES, p, n);
}

bool cbor_get_bool(cbor_val v, bool *out)
{
    if (v.len < 1 || (v.p[0] != 0xf4 && v.p[0] != 0xf5))
        return false;
    *out = v.p[0] == 0xf5;
    return true;
}

bool cbor_is_null(cbor_val v)
{
    return v.len >= 1 && v.p[0] == 0xf6;
}

static double half_to_double(uint16_t h)
{
    uint64_t sign = (uint64_t)(h & 0x8000) << 48;
    unsigned exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint64_t bits;
    double d;

    if (exp == 0) { /* zero or subnormal: man * 2^-24 */
        d = (double)man / 16777216.0;
        return sign ? -d : d;
    }
    if (exp == 31)
        bits = sign | 0x7ff0000000000000ull | ((uint64_t)man << 42);
    else
        bits = sign | (uint64_t)(exp - 15 + 1023) << 52 | (uint64_t)man << 42;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

bool cbor_get_float(cbor_val v, double *out)
{
    int64_t i;
    if (v.len < 1)
        return false;
    if (cbor_get_int(v, &i)) {
        *out = (double)i;
        return true;
    }
    uint8_t b = v.p[0];
    if (b == 0xf9 && v.len >= 3) {
        *out = half_to_double((uint16_t)(v.p[1] << 8 | v.p[2]));
        return true;
    }
    if (b == 0xfa && v.len >= 5) {
        uint32_t fb = (uint32_t)v.p[1] << 24 | (uint32_t)v.p[2] << 16 | (uint32_t)v.p[3] << 8 |
                      v.p[4];
        float f;
        memcpy(&f, &fb, sizeof(f));
        *out = f;
        return true;
    }
    if (b == 0xfb && v.len >= 9) {
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++)
            bits = bits << 8 | v.p[1 + k];
        memcpy(out, &bits, sizeof(*out));
        return true;
    }
    return false;
}

bool cbor_iter_begin(cbor_val v, cbor_iter *it, uint64_t *count)
{
    unsigned major;
    uint64_t arg;
    size_t h = read_head(v.p, v.len, &major, &arg);
    if (!h || (major != CBOR_ARRAY && major != CBOR_MAP))
        return false;
    it->p = v.p + h;
    it->end = v.p + v.len;
    it->left = major == CBOR_MAP ? arg * 2 : arg;
    if (count)
        *count = arg;
    return true;
}

bool cbor_iter_next(cbor_iter *it, cbor_val *out)
{
    if (!it->left)
        return false;
    size_t n = cbor_item_size(it->p, (size_t)(it->end - it->p), 1);
    if (!n)
        return false;
    out->p = it->p;
    out->len = n;
    it->p += n;
    it->left--;
    return true;
}

bool cbor_text_is(cbor_val v, const char *s)
{
    const char *t = "";
    size_t n = 0;
    return cbor_get_text(v, &t, &n) && n == strlen(s) && memcmp(t, s, n) == 0;
}

bool cbor_map_get(cbor_val map, const char *key, cbor_val *out)
{
    cbor_iter it;
    cbor_val k, v;
    if (cbor_type_of(map) != CBOR_MAP || !cbor_iter_begin(map, &it, NULL))
        return false;
    while (cbor_iter_next(&it, &k) && cbor_iter_next(&it, &v)) {
        if (cbor_text_is(k, key)) {
            *out = v;
            return true;
        }
    }
    return false;
}
