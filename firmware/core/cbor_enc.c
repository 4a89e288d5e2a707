/* CBOR encoder (canonical: shortest heads and floats, sorted map keys): see cbor.h. */
#include "cbor.h"

#include <string.h>

#define MAP_MAX_PAIRS 32

/* ---- encoder ---------------------------------------------------------------------- */
void cbor_enc_init(cbor_enc *e, uint8_t *buf, size_t cap)
{
    memset(e, 0, sizeof(*e));
    e->buf = buf;
    e->cap = cap;
}

static void put_raw(cbor_enc *e, const void *p, size_t n)
{
    if (e->err || n > e->cap - e->len) {
        e->err = true;
        return;
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static size_t head_size(uint64_t v)
{
    return v < 24 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffffu ? 5 : 9;
}

static size_t write_head(uint8_t *out, unsigned major, uint64_t v)
{
    size_t n = head_size(v);
    uint8_t ai = n == 1 ? (uint8_t)v : n == 2 ? 24 : n == 3 ? 25 : n == 5 ? 26 : 27;
    out[0] = (uint8_t)(major << 5 | ai);
    for (size_t i = 1; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return n;
}

static void put_head(cbor_enc *e, unsigned major, uint64_t v)
{
    uint8_t h[9];
    put_raw(e, h, write_head(h, major, v));
}

static void count_item(cbor_enc *e)
{
    e->items[e->depth]++;
}

void cbor_put_uint(cbor_enc *e, uint64_t v)
{
    count_item(e);
    put_head(e, CBOR_UINT, v);
}

void cbor_put_int(cbor_enc *e, int64_t v)
{
    count_item(e);
    if (v >= 0)
        put_head(e, CBOR_UINT, (uint64_t)v);
    else
        put_head(e, CBOR_NINT, (uint64_t)(-(v + 1)));
}

void cbor_put_bytes(cbor_enc *e, const uint8_t *p, size_t n)
{
    count_item(e);
    put_head(e, CBOR_BYTES, n);
    put_raw(e, p, n);
}

uint8_t *cbor_put_bytes_reserve(cbor_enc *e, size_t n)
{
    count_item(e);
    put_head(e, CBOR_BYTES, n);
    if (e->err || n > e->cap - e->len) {
        e->err = true;
        return NULL;
    }
    uint8_t *at = e->buf + e->len;
    e->len += n;
    return at;
}

void cbor_bytes_shrink(cbor_enc *e, uint8_t *at, size_t n, size_t n2)
{
    if (e->err || n2 > n || head_size(n2) != head_size(n) || at + n != e->buf + e->len) {
        e->err = true;
        return;
    }
    write_head(at - head_size(n), CBOR_BYTES, n2);
    e->len -= n - n2;
}

void cbor_put_textn(cbor_enc *e, const char *s, size_t n)
{
    count_item(e);
    put_head(e, CBOR_TEXT, n);
    put_raw(e, s, n);
}

void cbor_put_text(cbor_enc *e, const char *s)
{
    cbor_put_textn(e, s, strlen(s));
}

void cbor_put_bool(cbor_enc *e, bool v)
{
    uint8_t b = v ? 0xf5 : 0xf4;
    count_item(e);
    put_raw(e, &b, 1);
}

void cbor_put_null(cbor_enc *e)
{
    uint8_t b = 0xf6;
    count_item(e);
    put_raw(e, &b, 1);
}

/* Half-precision bits of d if d is exactly representable as a half. */
static bool to_half(uint64_t bits, uint16_t *h)
{
    uint16_t sign = (uint16_t)((bits >> 48) & 0x8000);
    int exp = (int)((bits >> 52) & 0x7ff);
    uint64_t man = bits & 0xfffffffffffffull;

    if (exp == 0x7ff) { /* inf, nan (cbor2 writes every nan as 7e00) */
        *h = man ? 0x7e00 : (uint16_t)(sign | 0x7c00);
        return true;
    }
    if (exp == 0) {
        if (man)
            return false;
        *h = sign;
        return true;
    }
    int e2 = exp - 1023;
    if (e2 > 15 || e2 < -24)
        return false;
    if (e2 >= -14) {
        if (man & ((1ull << 42) - 1))
            return false;
        *h = (uint16_t)(sign | (unsigned)(e2 + 15) << 10 | (unsigned)(man >> 42));
        return true;
    }
    uint64_t full = man | (1ull << 52);
    unsigned shift = (unsigned)(28 - e2); /* 43..52 */
    if (full & ((1ull << shift) - 1))
        return false;
    *h = (uint16_t)(sign | (unsigned)(full >> shift));
    return true;
}

void cbor_put_float(cbor_enc *e, double d)
{
    uint8_t out[9];
    uint64_t bits;
    uint16_t h;
    size_t n;

    memcpy(&bits, &d, sizeof(bits));
    count_item(e);
    if (to_half(bits, &h)) {
        out[0] = 0xf9;
        out[1] = (uint8_t)(h >> 8);
        out[2] = (uint8_t)h;
        n = 3;
    } else if ((double)(float)d == d) {
        float f = (float)d;
        uint32_t fb;
        memcpy(&fb, &f, sizeof(fb));
        out[0] = 0xfa;
        for (int i = 0; i < 4; i++)
            out[1 + i] = (uint8_t)(fb >> (24 - 8 * i));
        n = 5;
    } else {
        out[0] = 0xfb;
        for (int i = 0; i < 8; i++)
            out[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
        n = 9;
    }
    put_raw(e, out, n);
}

static void open_container(cbor_enc *e, bool is_map)
{
    uint8_t placeholder = 0;
    count_item(e);
    if (e->depth >= CBOR_MAX_DEPTH) {
        e->err = true;
        return;
    }
    e->start[e->depth] = e->len;
    e->is_map[e->depth] = is_map;
    put_raw(e, &placeholder, 1);
    e->depth++;
    e->items[e->depth] = 0;
}

static void reverse(uint8_t *p, size_t n)
{
    for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
        uint8_t t = p[i];
        p[i] = p[j - 1];
        p[j - 1] = t;
    }
}

/* canonical key order: shorter encoding first, then bytewise */
static int key_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    if (la != lb)
        return la < lb ? -1 : 1;
    return memcmp(a, b, la);
}

static void sort_map(cbor_enc *e, size_t from, uint32_t pairs)
{
    size_t off[MAP_MAX_PAIRS], klen[MAP_MAX_PAIRS], plen[MAP_MAX_PAIRS];
    if (pairs > MAP_MAX_PAIRS) {
        e->err = true;
        return;
    }
    size_t pos = from;
    for (uint32_t i = 0; i < pairs; i++) {
        size_t k = cbor_item_size(e->buf + pos, e->len - pos, 0);
        size_t v = k ? cbor_item_size(e->buf + pos + k, e->len - pos - k, 0) : 0;
        if (!k || !v) {
            e->err = true;
            return;
        }
        off[i] = pos;
        klen[i] = k;
        plen[i] = k + v;
        pos += k + v;
    }
    /* bubble sort by swapping adjacent pairs in place (maps here are small) */
    for (uint32_t pass = 0; pass + 1 < pairs; pass++) {
        for (uint32_t i = 0; i + 1 < pairs - pass; i++) {
            uint8_t *a = e->buf + off[i];
            uint8_t *b = e->buf + off[i + 1];
            int c = key_cmp(a, klen[i], b, klen[i + 1]);
            if (c == 0) {
                e->err = true; /* duplicate key */
                return;
            }
            if (c < 0)
                continue;
            size_t la = plen[i], lb = plen[i + 1], ka = klen[i];
            reverse(a, la);
            reverse(a + la, lb);
            reverse(a, la + lb);
            off[i + 1] = off[i] + lb;
            plen[i] = lb;
            plen[i + 1] = la;
            klen[i] = klen[i + 1];
            klen[i + 1] = ka;
        }
    }
}

static void close_container(cbor_enc *e, bool is_map)
{
    if (e->err)
        return;
    if (e->depth == 0 || e->is_map[e->depth - 1] != is_map) {
        e->err = true;
        return;
    }
    uint32_t n = e->items[e->depth];
    e->depth--;
    size_t s = e->start[e->depth];
    if (is_map && (n & 1)) {
        e->err = true;
        return;
    }
    uint64_t count = is_map ? n / 2 : n;
    size_t hs = head_size(count);
    if (hs > 1) { /* make room for a longer head */
        if (hs - 1 > e->cap - e->len) {
            e->err = true;
            return;
        }
        memmove(e->buf + s + hs, e->buf + s + 1, e->len - s - 1);
        e->len += hs - 1;
    }
    write_head(e->buf + s, is_map ? CBOR_MAP : CBOR_ARRAY, count);
    if (is_map)
        sort_map(e, s + hs, (uint32_t)count);
}

void cbor_map_begin(cbor_enc *e) { open_container(e, true); }
void cbor_map_end(cbor_enc *e) { close_container(e, true); }
void cbor_array_begin(cbor_enc *e) { open_container(e, false); }
void cbor_array_end(cbor_enc *e) { close_container(e, false); }

bool cbor_enc_done(const cbor_enc *e)
{
    return !e->err && e->depth == 0;
}
