/* Test tool for firmware/core/cbor.c: each stdin line is hex; prints the canonical
 * re-encoding (decoded with the firmware's decoder, written with its encoder), or REJECT
 * when cbor_check refuses the input, or UNSUPPORTED for valid CBOR the tool cannot rebuild. */
#include <stdio.h>
#include <string.h>

#include "cbor.h"

static int recode(cbor_val v, cbor_enc *e)
{
    uint64_t u;
    int64_t i;
    const uint8_t *p;
    const char *s;
    size_t n;
    bool b;
    double d;
    cbor_iter it;
    cbor_val x;

    switch (cbor_type_of(v)) {
    case CBOR_UINT:
        cbor_get_uint(v, &u);
        cbor_put_uint(e, u);
        return 0;
    case CBOR_NINT:
        if (!cbor_get_int(v, &i))
            return -1;
        cbor_put_int(e, i);
        return 0;
    case CBOR_BYTES:
        cbor_get_bytes(v, &p, &n);
        cbor_put_bytes(e, p, n);
        return 0;
    case CBOR_TEXT:
        cbor_get_text(v, &s, &n);
        cbor_put_textn(e, s, n);
        return 0;
    case CBOR_ARRAY:
    case CBOR_MAP:
        cbor_iter_begin(v, &it, NULL);
        if (cbor_type_of(v) == CBOR_MAP)
            cbor_map_begin(e);
        else
            cbor_array_begin(e);
        while (cbor_iter_next(&it, &x))
            if (recode(x, e))
                return -1;
        if (cbor_type_of(v) == CBOR_MAP)
            cbor_map_end(e);
        else
            cbor_array_end(e);
        return 0;
    default:
        if (cbor_get_bool(v, &b)) {
            cbor_put_bool(e, b);
            return 0;
        }
        if (cbor_is_null(v)) {
            cbor_put_null(e);
            return 0;
        }
        if (cbor_get_float(v, &d)) {
            cbor_put_float(e, d);
            return 0;
        }
        return -1;
    }
}

int main(void)
{
    static char hex[1 << 17];
    static uint8_t in[1 << 16], out[1 << 16];
    while (fgets(hex, sizeof(hex), stdin)) {
        size_t n = 0;
        for (char *h = hex; h[0] && h[1] && h[0] != '\n'; h += 2) {
            unsigned v;
            if (sscanf(h, "%2x", &v) != 1 || n >= sizeof(in))
                break;
            in[n++] = (uint8_t)v;
        }
        cbor_val v;
        cbor_enc e;
        if (cbor_check(in, n, &v)) {
            puts("REJECT");
        } else {
            cbor_enc_init(&e, out, sizeof(out));
            if (recode(v, &e) || !cbor_enc_done(&e)) {
                puts("UNSUPPORTED");
            } else {
                for (size_t k = 0; k < e.len; k++)
                    printf("%02x", out[k]);
                putchar('\n');
            }
        }
        fflush(stdout);
    }
    return 0;
}
