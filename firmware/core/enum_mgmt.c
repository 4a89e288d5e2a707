/* Enumeration management (group 10), answered as Zephyr 4.4 does: groups in registration
 * order (sorted by name), `handlers` = the group's handler array size, details of unknown
 * groups silently left out, an index past the end ENUM_MGMT_ERR_INDEX_TOO_LARGE. */
#include "groups.h"

#define ENUM_MGMT_ERR_INDEX_TOO_LARGE 4

static uint64_t group_count(void)
{
    uint64_t n = 0;
    for (const smp_group *g = smp_groups(); g; g = g->next)
        n++;
    return n;
}

static int count(smp_ctx *ctx)
{
    cbor_put_text(&ctx->rsp, "count");
    cbor_put_uint(&ctx->rsp, group_count());
    return MGMT_ERR_EOK;
}

static int list(smp_ctx *ctx)
{
    cbor_put_text(&ctx->rsp, "groups");
    cbor_array_begin(&ctx->rsp);
    for (const smp_group *g = smp_groups(); g; g = g->next)
        cbor_put_uint(&ctx->rsp, g->id);
    cbor_array_end(&ctx->rsp);
    return MGMT_ERR_EOK;
}

static int single(smp_ctx *ctx)
{
    uint64_t index = 0, i = 0;
    bool bad = false;
    smp_req_uint(ctx, "index", &index, &bad);
    if (bad)
        return MGMT_ERR_EINVAL;
    for (const smp_group *g = smp_groups(); g; g = g->next, i++) {
        if (i != index)
            continue;
        cbor_put_text(&ctx->rsp, "group");
        cbor_put_uint(&ctx->rsp, g->id);
        if (!g->next) {
            cbor_put_text(&ctx->rsp, "end");
            cbor_put_bool(&ctx->rsp, true);
        }
        return MGMT_ERR_EOK;
    }
    return smp_group_error(ctx, ENUM_MGMT_ERR_INDEX_TOO_LARGE);
}

static bool wanted(cbor_val list, bool all, uint16_t id)
{
    cbor_iter it;
    cbor_val v;
    uint64_t g;
    if (all)
        return true;
    if (!cbor_iter_begin(list, &it, NULL))
        return false;
    while (cbor_iter_next(&it, &v))
        if (cbor_get_uint(v, &g) && g == id)
            return true;
    return false;
}

static int details(smp_ctx *ctx)
{
    cbor_val list = {0};
    bool all = !cbor_map_get(ctx->req, "groups", &list);
    if (!all && cbor_type_of(list) != CBOR_ARRAY)
        return MGMT_ERR_EINVAL;
    cbor_put_text(&ctx->rsp, "groups");
    cbor_array_begin(&ctx->rsp);
    for (const smp_group *g = smp_groups(); g; g = g->next) {
        if (!wanted(list, all, g->id))
            continue;
        cbor_map_begin(&ctx->rsp);
        cbor_put_text(&ctx->rsp, "group");
        cbor_put_uint(&ctx->rsp, g->id);
        cbor_put_text(&ctx->rsp, "name");
        cbor_put_text(&ctx->rsp, g->name);
        cbor_put_text(&ctx->rsp, "handlers");
        cbor_put_uint(&ctx->rsp, g->count);
        cbor_map_end(&ctx->rsp);
    }
    cbor_array_end(&ctx->rsp);
    return MGMT_ERR_EOK;
}

static const smp_handler handlers[] = {
    [0] = {count, NULL},
    [1] = {list, NULL},
    [2] = {single, NULL},
    [3] = {details, NULL},
};

static smp_group group = {GROUP_ENUM, "enum mgmt", handlers, 4, NULL, NULL};

void enum_mgmt_register(void)
{
    smp_register_group(&group);
}
