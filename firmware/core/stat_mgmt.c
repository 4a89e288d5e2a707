/* Statistics management (group 2), answered as Zephyr 4.4's stat_mgmt does: command 1 reads
 * the list of statistics groups ({"stat_list": [...]}), command 0 reads one group
 * ({"name", "fields": {counter: value}}); an unknown name gets STAT_MGMT_ERR_INVALID_STAT_NAME.
 * The groups are counters the core keeps anyway: "smp" (the console transport) and
 * "runtime" (inferences). */
#include <string.h>

#include "groups.h"
#include "runtime.h"
#include "tinyops/port.h"

enum { STAT_MGMT_ERR_INVALID_GROUP = 2, STAT_MGMT_ERR_INVALID_STAT_NAME = 3 };

#define STAT_NAME_MAX 32

static void field(cbor_enc *e, const char *name, uint32_t v)
{
    cbor_put_text(e, name);
    cbor_put_uint(e, v);
}

static void smp_fields(cbor_enc *e)
{
    const smp_serial_stats *s = runtime_serial_stats();
    field(e, "frames_in", s->frames);
    field(e, "frames_out", runtime_frames_out());
    field(e, "frames_dropped", runtime_frames_dropped());
    field(e, "text_lines", s->text_lines);
    field(e, "rx_dropped", port_uart_rx_dropped());
}

static void runtime_fields(cbor_enc *e)
{
    field(e, "inferences", rt.inferences);
}

static const struct {
    const char *name;
    void (*fields)(cbor_enc *e);
} stat_groups[] = {{"smp", smp_fields}, {"runtime", runtime_fields}};

#define N_STAT_GROUPS (sizeof(stat_groups) / sizeof(stat_groups[0]))

static int show(smp_ctx *ctx)
{
    char name[STAT_NAME_MAX];
    bool bad = false;

    if (!smp_req_cstr(ctx, "name", name, sizeof(name), &bad))
        return bad ? MGMT_ERR_EINVAL : smp_group_error(ctx, STAT_MGMT_ERR_INVALID_STAT_NAME);
    for (size_t i = 0; i < N_STAT_GROUPS; i++) {
        if (strcmp(name, stat_groups[i].name) != 0)
            continue;
        cbor_put_text(&ctx->rsp, "name");
        cbor_put_text(&ctx->rsp, name);
        cbor_put_text(&ctx->rsp, "fields");
        cbor_map_begin(&ctx->rsp);
        stat_groups[i].fields(&ctx->rsp);
        cbor_map_end(&ctx->rsp);
        return MGMT_ERR_EOK;
    }
    return smp_group_error(ctx, STAT_MGMT_ERR_INVALID_STAT_NAME);
}

static int list(smp_ctx *ctx)
{
    cbor_put_text(&ctx->rsp, "stat_list");
    cbor_array_begin(&ctx->rsp);
    for (size_t i = 0; i < N_STAT_GROUPS; i++)
        cbor_put_text(&ctx->rsp, stat_groups[i].name);
    cbor_array_end(&ctx->rsp);
    return MGMT_ERR_EOK;
}

/* stat_mgmt_translate_error_code: the rc a version-1 request gets */
static int legacy_rc(int32_t rc)
{
    if (rc == STAT_MGMT_ERR_INVALID_GROUP || rc == STAT_MGMT_ERR_INVALID_STAT_NAME)
        return MGMT_ERR_ENOENT;
    return MGMT_ERR_EUNKNOWN;
}

static const smp_handler handlers[] = {
    [0] = {show, NULL},
    [1] = {list, NULL},
};

static smp_group group = {GROUP_STAT, "stat mgmt", handlers, 2, legacy_rc, NULL};

void stat_mgmt_register(void)
{
    smp_register_group(&group);
}
