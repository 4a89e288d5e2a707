/* The SMP server core: see smp.h. */
#include "smp.h"

#include <string.h>

#define SMP_HDR 8

static smp_group *groups;

void smp_register_group(smp_group *g)
{
    /* keep the list sorted by name, as Zephyr's handlers sit in a section sorted by name */
    smp_group **at = &groups;
    while (*at && strcmp((*at)->name, g->name) < 0)
        at = &(*at)->next;
    g->next = *at;
    *at = g;
}

const smp_group *smp_groups(void)
{
    return groups;
}

static const smp_group *find_group(uint16_t id)
{
    for (const smp_group *g = groups; g; g = g->next)
        if (g->id == id)
            return g;
    return NULL;
}

int smp_group_error(smp_ctx *ctx, int32_t rc)
{
    ctx->err_group = ctx->group;
    ctx->err_rc = rc;
    return SMP_GROUP_ERR;
}

static void restart_body(smp_ctx *ctx, uint8_t *body, size_t cap)
{
    cbor_enc_init(&ctx->rsp, body, cap);
    cbor_map_begin(&ctx->rsp);
}

size_t smp_handle(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap,
                  void (**after_send)(void))
{
    smp_ctx ctx;
    if (len < SMP_HDR || cap < SMP_HDR)
        return 0;
    memset(&ctx, 0, sizeof(ctx));
    ctx.version = (pkt[0] >> 3) & 3;
    ctx.op = pkt[0] & 7;
    size_t body_len = (size_t)pkt[2] << 8 | pkt[3];
    ctx.group = (uint16_t)(pkt[4] << 8 | pkt[5]);
    ctx.seq = pkt[6];
    ctx.cmd = pkt[7];
    if (ctx.op != SMP_OP_READ && ctx.op != SMP_OP_WRITE)
        return 0; /* responses and unknown ops are not answered */
    if (body_len != len - SMP_HDR)
        return 0; /* the header lies about the length: drop, as Zephyr does */
    if (ctx.version > 1)
        return 0; /* a future version: not for us */

    uint8_t *body = out + SMP_HDR;
    size_t body_cap = cap - SMP_HDR;
    restart_body(&ctx, body, body_cap);

    int rc;
    const smp_group *g = find_group(ctx.group);
    smp_handler_fn fn = NULL;
    if (g && ctx.cmd < g->count)
        fn = ctx.op == SMP_OP_READ ? g->handlers[ctx.cmd].read : g->handlers[ctx.cmd].write;
    if (!fn)
        rc = MGMT_ERR_ENOTSUP;
    else if (body_len == 0)
        rc = MGMT_ERR_EINVAL;
    else if (cbor_check(pkt + SMP_HDR, body_len, &ctx.req) || cbor_type_of(ctx.req) != CBOR_MAP)
        rc = MGMT_ERR_EINVAL;
    else
        rc = fn(&ctx);

    if (rc == SMP_GROUP_ERR && ctx.version == 0) {
        rc = g && g->legacy_rc ? g->legacy_rc(ctx.err_rc) : MGMT_ERR_EUNKNOWN;
        if (rc == MGMT_ERR_EOK)
            rc = MGMT_ERR_EUNKNOWN;
    }
    if (rc == SMP_GROUP_ERR) {
        cbor_put_text(&ctx.rsp, "err");
        cbor_map_begin(&ctx.rsp);
        cbor_put_text(&ctx.rsp, "group");
        cbor_put_uint(&ctx.rsp, ctx.err_group);
        cbor_put_text(&ctx.rsp, "rc");
        cbor_put_int(&ctx.rsp, ctx.err_rc);
        cbor_map_end(&ctx.rsp);
        ctx.after_send = NULL;
    } else if (rc != MGMT_ERR_EOK) {
        restart_body(&ctx, body, body_cap);
        cbor_put_text(&ctx.rsp, "rc");
        cbor_put_int(&ctx.rsp, rc);
        ctx.after_send = NULL;
    }
    cbor_map_end(&ctx.rsp);
    if (!cbor_enc_done(&ctx.rsp)) { /* the answer did not fit */
        restart_body(&ctx, body, body_cap);
        cbor_put_text(&ctx.rsp, "rc");
        cbor_put_int(&ctx.rsp, MGMT_ERR_ENOMEM);
        cbor_map_end(&ctx.rsp);
        ctx.after_send = NULL;
    }
    size_t n = ctx.rsp.len;
    out[0] = (uint8_t)(ctx.version << 3 | (ctx.op + 1));
    out[1] = 0;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    out[4] = (uint8_t)(ctx.group >> 8);
    out[5] = (uint8_t)ctx.group;
    out[6] = ctx.seq;
    out[7] = ctx.cmd;
    if (after_send)
        *after_send = ctx.after_send;
    return SMP_HDR + n;
}

static bool field(smp_ctx *ctx, const char *key, cbor_val *v)
{
    return cbor_map_get(ctx->req, key, v);
}

bool smp_req_uint(smp_ctx *ctx, const char *key, uint64_t *out, bool *bad)
{
    cbor_val v;
    if (!field(ctx, key, &v))
        return false;
    if (!cbor_get_uint(v, out)) {
        *bad = true;
        return false;
    }
    return true;
}

bool smp_req_bool(smp_ctx *ctx, const char *key, bool *out, bool *bad)
{
    cbor_val v;
    if (!field(ctx, key, &v))
        return false;
    if (!cbor_get_bool(v, out)) {
        *bad = true;
        return false;
    }
    return true;
}

bool smp_req_text(smp_ctx *ctx, const char *key, const char **s, size_t *n, bool *bad)
{
    cbor_val v;
    if (!field(ctx, key, &v))
        return false;
    if (!cbor_get_text(v, s, n)) {
        *bad = true;
        return false;
    }
    return true;
}

bool smp_req_bytes(smp_ctx *ctx, const char *key, const uint8_t **p, size_t *n, bool *bad)
{
    cbor_val v;
    if (!field(ctx, key, &v))
        return false;
    if (!cbor_get_bytes(v, p, n)) {
        *bad = true;
        return false;
    }
    return true;
}

bool smp_req_cstr(smp_ctx *ctx, const char *key, char *buf, size_t cap, bool *bad)
{
    const char *s;
    size_t n;
    if (!smp_req_text(ctx, key, &s, &n, bad))
        return false;
    if (n >= cap || memchr(s, 0, n)) {
        *bad = true;
        return false;
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    return true;
}
