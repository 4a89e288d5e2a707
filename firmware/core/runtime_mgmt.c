/* The TinyOps runtime group (64), as resources/protocol/runtime_group.md specifies:
 * model-info 0, load-model 1 (atomic, sha256-checked, persisted), stream 2, infer 3,
 * stats 4, and tensor 5 (per-operator outputs of an infer with preserve on). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"
#include "sha256.h"
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

#define PERIOD_MIN_MS 10
#define PERIOD_MAX_MS 60000
#define SUMMARY_MIN_MS 100
#define SUMMARY_MAX_MS 3600000
#define HOLD_MS 10000 /* stream inference paused after a preserving infer */
#define TENSOR_OVERHEAD 192 /* header and keys of a tensor answer */

static const char *dtype_name(enum mr_dtype d)
{
    static const char *const names[] = {"int8", "uint8", "int16", "int32", "float32"};
    return (unsigned)d < 5 ? names[d] : "int8";
}

static int fail(smp_ctx *ctx, enum mr_rc rc)
{
    return smp_group_error(ctx, rc);
}

/* ---- handlers ------------------------------------------------------------------------------- */
static void put_spec(cbor_enc *e, const mr_tensor_spec *s)
{
    cbor_map_begin(e);
    cbor_put_text(e, "name");
    cbor_put_text(e, s->name);
    cbor_put_text(e, "dtype");
    cbor_put_text(e, dtype_name(s->dtype));
    cbor_put_text(e, "shape");
    cbor_array_begin(e);
    for (uint8_t i = 0; i < s->ndim && i < MR_MAX_DIMS; i++)
        cbor_put_int(e, s->shape[i]);
    cbor_array_end(e);
    cbor_put_text(e, "scale");
    cbor_put_float(e, (double)s->scale);
    cbor_put_text(e, "zero_point");
    cbor_put_int(e, s->zero_point);
    cbor_map_end(e);
}

static void put_specs(cbor_enc *e, const char *key, size_t n, bool (*get)(size_t, mr_tensor_spec *))
{
    mr_tensor_spec s;
    cbor_put_text(e, key);
    cbor_array_begin(e);
    for (size_t i = 0; i < n; i++)
        if (get(i, &s))
            put_spec(e, &s);
    cbor_array_end(e);
}

static int model_info(smp_ctx *ctx)
{
    cbor_enc *e = &ctx->rsp;
    cbor_put_text(e, "runtime");
    cbor_put_text(e, mr_version());
    cbor_put_text(e, "protocol");
    cbor_put_uint(e, RT_PROTOCOL);
    cbor_put_text(e, "board");
    cbor_put_text(e, port_board_id());
    cbor_put_text(e, "arena_size");
    cbor_put_uint(e, mr_arena_size());
    cbor_put_text(e, "default_path");
    cbor_put_text(e, RT_DEFAULT_PATH);
    cbor_put_text(e, "loaded");
    cbor_put_bool(e, mr_loaded());
    if (mr_num_registered_ops()) { /* the operators this firmware can run */
        cbor_put_text(e, "ops");
        cbor_array_begin(e);
        for (size_t i = 0; i < mr_num_registered_ops(); i++)
            cbor_put_text(e, mr_registered_op(i) ? mr_registered_op(i) : "");
        cbor_array_end(e);
    }
    if (!mr_loaded())
        return MGMT_ERR_EOK;
    cbor_put_text(e, "path");
    cbor_put_text(e, rt.path);
    cbor_put_text(e, "sha256");
    cbor_put_bytes(e, rt.sha256, 32);
    cbor_put_text(e, "size");
    cbor_put_uint(e, rt.size);
    cbor_put_text(e, "arena_used");
    cbor_put_uint(e, mr_arena_used());
    put_specs(e, "inputs", mr_num_inputs(), mr_input_spec);
    put_specs(e, "outputs", mr_num_outputs(), mr_output_spec);
    cbor_put_text(e, "labels");
    cbor_array_begin(e);
    for (size_t i = 0; i < rt.nlabels; i++)
        cbor_put_text(e, rt.labels[i]);
    cbor_array_end(e);
    return MGMT_ERR_EOK;
}

static int load_model(smp_ctx *ctx)
{
    char path[FS_PATH_MAX];
    char labels[RT_MAX_LABELS][RT_LABEL_MAX];
    size_t nlabels = 0, size = 0, want_n = 0;
    const uint8_t *want = NULL;
    uint8_t digest[32];
    bool bad = false;
    cbor_val list;

    if (!smp_req_cstr(ctx, "path", path, sizeof(path), &bad))
        return bad ? fail(ctx, MR_NOT_FOUND) : MGMT_ERR_EINVAL;
    if (smp_req_bytes(ctx, "sha256", &want, &want_n, &bad) && want_n != 32)
        return MGMT_ERR_EINVAL;
    if (cbor_map_get(ctx->req, "labels", &list) && !cbor_is_null(list)) {
        cbor_iter it;
        cbor_val v;
        const char *s;
        size_t n;
        if (!cbor_iter_begin(list, &it, NULL) || cbor_type_of(list) != CBOR_ARRAY)
            return MGMT_ERR_EINVAL;
        while (cbor_iter_next(&it, &v)) {
            if (!cbor_get_text(v, &s, &n))
                return MGMT_ERR_EINVAL;
            if (nlabels < RT_MAX_LABELS && n) {
                n = n < RT_LABEL_MAX - 1 ? n : RT_LABEL_MAX - 1;
                memcpy(labels[nlabels], s, n);
                labels[nlabels++][n] = 0;
            }
        }
    }
    if (bad)
        return MGMT_ERR_EINVAL;
    if (!fs_path_ok(path) || port_storage_size(path, &size) != 0) {
        rt.load_failures++;
        return fail(ctx, MR_NOT_FOUND);
    }
    if (size > mr_model_capacity()) {
        rt.load_failures++;
        return fail(ctx, MR_TOO_LARGE);
    }
    if (runtime_file_sha256(path, size, digest) != 0) {
        rt.load_failures++;
        return fail(ctx, MR_NOT_FOUND);
    }
    if (want && memcmp(want, digest, 32) != 0) {
        rt.load_failures++;
        return fail(ctx, MR_DIGEST_MISMATCH);
    }
    size_t prev_classes = mr_loaded() ? runtime_class_count() : 0;
    enum mr_rc rc = mr_load_file(path, &size);
    if (rc != MR_OK) { /* the running model is untouched */
        rt.load_failures++;
        return fail(ctx, rc);
    }
    if (!nlabels)
        nlabels = runtime_labels_near(path, labels);
    if (nlabels || prev_classes != runtime_class_count()) { /* else: a retrained model, same classes */
        memcpy(rt.labels, labels, sizeof(labels));
        rt.nlabels = nlabels;
    }
    strcpy(rt.path, path);
    memcpy(rt.sha256, digest, 32);
    rt.size = size;
    runtime_fit_labels();
    runtime_save_state();
    rt.loads++;
    rt.summary_restart = true;
    cbor_put_text(&ctx->rsp, "sha256");
    cbor_put_bytes(&ctx->rsp, digest, 32);
    cbor_put_text(&ctx->rsp, "size");
    cbor_put_uint(&ctx->rsp, size);
    cbor_put_text(&ctx->rsp, "arena_used");
    cbor_put_uint(&ctx->rsp, mr_arena_used());
    return MGMT_ERR_EOK;
}

static int stream(smp_ctx *ctx)
{
    bool on = false, bad = false;
    uint64_t period = rt.period_ms, summary_period = rt.summary_period_ms;
    bool has_period = smp_req_uint(ctx, "period_ms", &period, &bad);
    bool has_sp = smp_req_uint(ctx, "summary_period_ms", &summary_period, &bad);
    bool summary = rt.summary;
    uint8_t fields = rt.fields;
    cbor_val v;
    bool has_mode = cbor_map_get(ctx->req, "mode", &v) && !cbor_is_null(v);

    if (!smp_req_bool(ctx, "on", &on, &bad) || bad)
        return MGMT_ERR_EINVAL;
    if (has_period && (period < PERIOD_MIN_MS || period > PERIOD_MAX_MS))
        return MGMT_ERR_EINVAL;
    if (has_sp && (summary_period < SUMMARY_MIN_MS || summary_period > SUMMARY_MAX_MS))
        return MGMT_ERR_EINVAL;
    if (has_mode) {
        if (cbor_text_is(v, "summary"))
            summary = true;
        else if (cbor_text_is(v, "raw"))
            summary = false;
        else
            return MGMT_ERR_EINVAL;
    }
    if (cbor_map_get(ctx->req, "fields", &v) && !cbor_is_null(v)) {
        cbor_iter it;
        cbor_val f;
        if (cbor_type_of(v) != CBOR_ARRAY || !cbor_iter_begin(v, &it, NULL))
            return MGMT_ERR_EINVAL;
        fields = 0;
        while (cbor_iter_next(&it, &f)) {
            if (cbor_text_is(f, "scores"))
                fields |= RT_FIELD_SCORES;
            else if (cbor_text_is(f, "latency"))
                fields |= RT_FIELD_LATENCY;
            else if (cbor_text_is(f, "resources"))
                fields |= RT_FIELD_RESOURCES;
            else
                return MGMT_ERR_EINVAL;
        }
        if (!fields)
            fields = RT_FIELD_SCORES | RT_FIELD_LATENCY | RT_FIELD_RESOURCES;
    }
    rt.period_ms = (uint32_t)period;
    rt.summary_period_ms = (uint32_t)summary_period;
    rt.fields = fields;
    if (summary != rt.summary)
        rt.summary_restart = true;
    rt.summary = summary;
    rt.stream_on = on;
    cbor_put_text(&ctx->rsp, "on");
    cbor_put_bool(&ctx->rsp, on);
    cbor_put_text(&ctx->rsp, "period_ms");
    cbor_put_uint(&ctx->rsp, rt.period_ms);
    if (has_mode) {
        cbor_put_text(&ctx->rsp, "mode");
        cbor_put_text(&ctx->rsp, rt.summary ? "summary" : "raw");
        cbor_put_text(&ctx->rsp, "summary_period_ms");
        cbor_put_uint(&ctx->rsp, rt.summary_period_ms);
    }
    return MGMT_ERR_EOK;
}

static int infer(smp_ctx *ctx)
{
    const uint8_t *in;
    size_t n, out_len = 0;
    bool bad = false, preserve = false;
    uint32_t latency = 0;
    mr_tensor_spec os;

    if (!smp_req_bytes(ctx, "input", &in, &n, &bad))
        return MGMT_ERR_EINVAL;
    smp_req_bool(ctx, "preserve", &preserve, &bad);
    if (bad)
        return MGMT_ERR_EINVAL;
    if (!mr_loaded() || !mr_output_spec(0, &os))
        return fail(ctx, MR_NO_MODEL);
    cbor_enc before = ctx->rsp;
    cbor_put_text(&ctx->rsp, "output");
    uint8_t *at = cbor_put_bytes_reserve(&ctx->rsp, os.bytes);
    if (!at)
        return MGMT_ERR_ENOMEM;
    mr_set_preserve(preserve);
    enum mr_rc rc = mr_infer(in, n, at, os.bytes, &out_len, &latency);
    if (rc != MR_OK) {
        ctx->rsp = before;
        return fail(ctx, rc);
    }
    cbor_bytes_shrink(&ctx->rsp, at, os.bytes, out_len);
    rt.inferences++;
    rt.last_latency_us = latency;
    cbor_put_text(&ctx->rsp, "latency_us");
    cbor_put_uint(&ctx->rsp, latency);
    if (preserve) {
        rt.hold_until_ms = port_millis() + HOLD_MS;
        cbor_put_text(&ctx->rsp, "ops");
        cbor_put_uint(&ctx->rsp, mr_num_operators());
    }
    return MGMT_ERR_EOK;
}

static int stats(smp_ctx *ctx)
{
    cbor_enc *e = &ctx->rsp;
    uint32_t heap_free = 0, heap_total = 0, mv;
    float temp;
    port_heap(&heap_free, &heap_total);
    cbor_put_text(e, "uptime_ms");
    cbor_put_uint(e, port_millis());
    cbor_put_text(e, "heap_free");
    cbor_put_uint(e, heap_free);
    cbor_put_text(e, "heap_total");
    cbor_put_uint(e, heap_total);
    cbor_put_text(e, "arena_size");
    cbor_put_uint(e, mr_arena_size());
    cbor_put_text(e, "arena_used");
    cbor_put_uint(e, mr_loaded() ? mr_arena_used() : 0);
    cbor_put_text(e, "cpu_load");
    cbor_put_float(e, (double)telemetry_cpu_load());
    if (port_temperature_c(&temp) == 0) {
        cbor_put_text(e, "temp_c");
        cbor_put_float(e, (double)temp);
    }
    if (port_supply_mv(&mv) == 0) {
        cbor_put_text(e, "vcc_mv");
        cbor_put_uint(e, mv);
    }
    cbor_put_text(e, "inferences");
    cbor_put_uint(e, rt.inferences);
    cbor_put_text(e, "last_latency_us");
    cbor_put_uint(e, rt.last_latency_us);
    cbor_put_text(e, "rx_dropped");
    cbor_put_uint(e, port_uart_rx_dropped());
    cbor_put_text(e, "frames_dropped");
    cbor_put_uint(e, runtime_frames_dropped());
    return MGMT_ERR_EOK;
}

/* Operator `op`'s output after an infer with preserve on, from byte `off`, one chunk. */
static int tensor(smp_ctx *ctx)
{
    uint64_t op = 0, off = 0;
    bool bad = false;
    mr_tensor_spec s;
    const uint8_t *data = NULL;

    if (!smp_req_uint(ctx, "op", &op, &bad))
        return MGMT_ERR_EINVAL;
    smp_req_uint(ctx, "off", &off, &bad);
    if (bad)
        return MGMT_ERR_EINVAL;
    if (!mr_loaded())
        return fail(ctx, MR_NO_MODEL);
    if (op >= mr_num_operators() || !mr_operator_output((size_t)op, &s, &data) || !data)
        return fail(ctx, MR_NOT_FOUND);
    if (off > s.bytes)
        return MGMT_ERR_EINVAL;
    size_t n = s.bytes - (size_t)off;
    if (n > SMP_MTU - TENSOR_OVERHEAD)
        n = SMP_MTU - TENSOR_OVERHEAD;
    rt.hold_until_ms = port_millis() + HOLD_MS;
    cbor_enc *e = &ctx->rsp;
    cbor_put_text(e, "op");
    cbor_put_uint(e, op);
    cbor_put_text(e, "ops");
    cbor_put_uint(e, mr_num_operators());
    cbor_put_text(e, "off");
    cbor_put_uint(e, off);
    cbor_put_text(e, "len");
    cbor_put_uint(e, n);
    cbor_put_text(e, "total");
    cbor_put_uint(e, s.bytes);
    cbor_put_text(e, "data");
    cbor_put_bytes(e, data + off, n);
    if (off == 0) {
        cbor_put_text(e, "spec");
        put_spec(e, &s);
    }
    return MGMT_ERR_EOK;
}

static const smp_handler handlers[] = {
    [0] = {model_info, NULL},
    [1] = {NULL, load_model},
    [2] = {NULL, stream},
    [3] = {NULL, infer},
    [4] = {stats, NULL},
    [5] = {tensor, NULL},
};

static smp_group group = {GROUP_RUNTIME, "tinyops runtime", handlers, 6, NULL, NULL};

void runtime_mgmt_register(void)
{
    smp_register_group(&group);
}
