/* OS management (group 0): echo, reset, MCUmgr params, OS/application info. */
#include <string.h>

#include "groups.h"
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

#define OS_MGMT_ERR_INVALID_FORMAT 2

#ifndef TINYOPS_BUILD_ID
#define TINYOPS_BUILD_ID "tinyops-fw"
#endif
#if defined(__arm__)
#define MACHINE "arm"
#elif defined(__x86_64__)
#define MACHINE "x86_64"
#else
#define MACHINE "unknown"
#endif

static int echo(smp_ctx *ctx)
{
    const char *s;
    size_t n;
    bool bad = false;
    if (!smp_req_text(ctx, "d", &s, &n, &bad))
        return MGMT_ERR_EINVAL;
    cbor_put_text(&ctx->rsp, "r");
    cbor_put_textn(&ctx->rsp, s, n);
    return MGMT_ERR_EOK;
}

static void do_reset(void)
{
    port_reset();
}

static int reset(smp_ctx *ctx)
{
    ctx->after_send = do_reset; /* answer first, then reset */
    return MGMT_ERR_EOK;
}

static int params(smp_ctx *ctx)
{
    cbor_put_text(&ctx->rsp, "buf_size");
    cbor_put_uint(&ctx->rsp, SMP_MTU);
    cbor_put_text(&ctx->rsp, "buf_count");
    cbor_put_uint(&ctx->rsp, SMP_BUF_COUNT);
    return MGMT_ERR_EOK;
}

/* Zephyr's os_mgmt info: format letters in the order "snrvbmpio", "a" for all */
static int info(smp_ctx *ctx)
{
    static const char order[] = "snrvbmpio";
    char fmt[16] = "s";
    char out[192];
    size_t len = 0;
    bool bad = false;

    if (!smp_req_cstr(ctx, "format", fmt, sizeof(fmt), &bad) && bad)
        return MGMT_ERR_EINVAL;
    for (const char *c = fmt; *c; c++)
        if (*c != 'a' && !strchr(order, *c))
            return smp_group_error(ctx, OS_MGMT_ERR_INVALID_FORMAT);
    bool all = strchr(fmt, 'a') != NULL;
    for (const char *c = order; *c; c++) {
        if (!all && !strchr(fmt, *c))
            continue;
        const char *v = "";
        switch (*c) {
        case 's': v = "tinyops-fw"; break;
        case 'n': v = port_board_id(); break;
        case 'r': v = mr_version(); break;
        case 'v': v = "1.0.0"; break;
        case 'b': v = TINYOPS_BUILD_ID; break;
        case 'm': v = MACHINE; break;
        case 'p': v = MACHINE; break;
        case 'i': v = port_board_id(); break;
        case 'o': v = "tinyops-fw"; break;
        }
        size_t n = strlen(v);
        if (len + n + 1 >= sizeof(out))
            break;
        if (len)
            out[len++] = ' ';
        memcpy(out + len, v, n);
        len += n;
    }
    cbor_put_text(&ctx->rsp, "output");
    cbor_put_textn(&ctx->rsp, out, len);
    return MGMT_ERR_EOK;
}

static const smp_handler handlers[] = {
    [0] = {echo, echo},
    [5] = {NULL, reset},
    [6] = {params, NULL},
    [7] = {info, NULL},
};

static smp_group group = {GROUP_OS, "os mgmt", handlers, 8, NULL, NULL};

void os_mgmt_register(void)
{
    smp_register_group(&group);
}
