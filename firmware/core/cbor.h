/* A small CBOR codec (RFC 8949) for SMP: fixed buffers, no heap, every length checked.
 *
 * Encoder: writes canonical CBOR as cbor2's canonical mode does: shortest integer and
 * length heads, floats in the shortest of half/single/double that keeps the value, map
 * keys sorted (shorter encoded key first, then bytewise), definite lengths only.
 * Containers are opened and closed; the closing call fills in the count and sorts a map.
 *
 * Decoder: cbor_check() accepts exactly one well-formed item of definite length, nested at
 * most CBOR_MAX_DEPTH deep; everything else (truncated, trailing bytes, indefinite lengths,
 * reserved values, tags) is rejected. After it, the accessors read values in place.
 */
#ifndef TINYOPS_CBOR_H
#define TINYOPS_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CBOR_MAX_DEPTH 8

enum cbor_type {
    CBOR_UINT = 0, CBOR_NINT = 1, CBOR_BYTES = 2, CBOR_TEXT = 3,
    CBOR_ARRAY = 4, CBOR_MAP = 5, CBOR_TAG = 6, CBOR_SIMPLE = 7,
};

/* ---- encoder ---------------------------------------------------------------------- */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool err;                           /* set on overflow or misuse; sticky */
    uint8_t depth;
    size_t start[CBOR_MAX_DEPTH];       /* offset of each open container's head */
    uint32_t items[CBOR_MAX_DEPTH + 1]; /* items written at each level */
    bool is_map[CBOR_MAX_DEPTH];
} cbor_enc;

void cbor_enc_init(cbor_enc *e, uint8_t *buf, size_t cap);
void cbor_put_uint(cbor_enc *e, uint64_t v);
void cbor_put_int(cbor_enc *e, int64_t v);
void cbor_put_bytes(cbor_enc *e, const uint8_t *p, size_t n);
/* A byte string of n bytes whose contents the caller writes at the returned pointer
 * (NULL: no room). Saves a copy for file and tensor data. */
uint8_t *cbor_put_bytes_reserve(cbor_enc *e, size_t n);
/* Shrink the byte string just reserved to n2 <= n bytes (same head size required). */
void cbor_bytes_shrink(cbor_enc *e, uint8_t *at, size_t n, size_t n2);
void cbor_put_textn(cbor_enc *e, const char *s, size_t n);
void cbor_put_text(cbor_enc *e, const char *s);
void cbor_put_bool(cbor_enc *e, bool v);
void cbor_put_null(cbor_enc *e);
void cbor_put_float(cbor_enc *e, double v);
void cbor_map_begin(cbor_enc *e);
void cbor_map_end(cbor_enc *e);
void cbor_array_begin(cbor_enc *e);
void cbor_array_end(cbor_enc *e);
/* true when everything fitted and every container is closed */
bool cbor_enc_done(const cbor_enc *e);

/* ---- decoder ---------------------------------------------------------------------- */
typedef struct {
    const uint8_t *p; /* the item's first byte */
    size_t len;       /* the whole item's size */
} cbor_val;

/* 0 if `buf` holds exactly one well-formed item (see above), else -1. */
int cbor_check(const uint8_t *buf, size_t len, cbor_val *out);
/* Size of the well-formed item at p (0: malformed/truncated/too deep). */
size_t cbor_item_size(const uint8_t *p, size_t len, unsigned depth);

enum cbor_type cbor_type_of(cbor_val v);
bool cbor_get_uint(cbor_val v, uint64_t *out);
bool cbor_get_int(cbor_val v, int64_t *out);
bool cbor_get_text(cbor_val v, const char **s, size_t *n);
bool cbor_get_bytes(cbor_val v, const uint8_t **p, size_t *n);
bool cbor_get_bool(cbor_val v, bool *out);
bool cbor_is_null(cbor_val v);
bool cbor_get_float(cbor_val v, double *out); /* floats and integers */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    uint64_t left; /* items left (a map's pairs count twice) */
} cbor_iter;

/* Iterate an array's items or a map's keys and values alternately (v checked first). */
bool cbor_iter_begin(cbor_val v, cbor_iter *it, uint64_t *count);
bool cbor_iter_next(cbor_iter *it, cbor_val *out);
/* A map's value for a text key (false: absent or not a map). */
bool cbor_map_get(cbor_val map, const char *key, cbor_val *out);
/* text equality with a C string */
bool cbor_text_is(cbor_val v, const char *s);

#endif
