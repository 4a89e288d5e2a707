/* TEST DOUBLE of firmware/include/tinyops/model_runtime.h, for the host tests of the
 * firmware core's protocol only. It is not TensorFlow Lite Micro and classifies nothing:
 * the real glue (firmware/tflm/) is tested in QEMU. What it does is enough to exercise every
 * path of the runtime group: a file is a "model" when it carries the TFLite FlatBuffer
 * identifier "TFL3" at offset 4 (else MR_BAD_MODEL); loads are atomic (two buffers, switch
 * on success); the model has one int8 [1,128,3] input, one int8 [1,3] output and two
 * "operators" whose outputs can be preserved for the tensor command. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

#define CAPACITY (256 * 1024)
#define IN_BYTES (128 * 3)

static uint8_t buffers[2][CAPACITY];
static int running = -1; /* buffer of the running model */
static size_t model_len;
static bool preserve;
static bool preserved;
static int8_t op0[IN_BYTES];
static int8_t op1[3];

static enum mr_rc verify(const uint8_t *m, size_t len)
{
    if (len > CAPACITY)
        return MR_TOO_LARGE;
    if (len < 16 || memcmp(m + 4, "TFL3", 4) != 0)
        return MR_BAD_MODEL;
    return MR_OK;
}

enum mr_rc mr_load(const uint8_t *model, size_t len)
{
    enum mr_rc rc = verify(model, len);
    if (rc != MR_OK)
        return rc;
    int spare = running == 0 ? 1 : 0;
    memcpy(buffers[spare], model, len);
    running = spare;
    model_len = len;
    preserved = false;
    return MR_OK;
}

enum mr_rc mr_load_file(const char *path, size_t *size_out)
{
    size_t size;
    if (port_storage_size(path, &size) != 0)
        return MR_NOT_FOUND;
    if (size > CAPACITY)
        return MR_TOO_LARGE;
    int spare = running == 0 ? 1 : 0;
    if (port_storage_read(path, 0, buffers[spare], size) != 0)
        return MR_NOT_FOUND;
    enum mr_rc rc = verify(buffers[spare], size);
    if (rc != MR_OK)
        return rc; /* the running model's buffer was not touched */
    running = spare;
    model_len = size;
    preserved = false;
    *size_out = size;
    return MR_OK;
}

bool mr_loaded(void) { return running >= 0; }
size_t mr_model_capacity(void) { return CAPACITY; }
size_t mr_arena_size(void) { return 65536; }
size_t mr_arena_used(void) { return running >= 0 ? 4096 + model_len % 1000 : 0; }
size_t mr_num_inputs(void) { return running >= 0; }
size_t mr_num_outputs(void) { return running >= 0; }

static void spec(mr_tensor_spec *s, const char *name, int32_t n, float scale, int32_t zp)
{
    memset(s, 0, sizeof(*s));
    strcpy(s->name, name);
    s->dtype = MR_INT8;
    s->ndim = n == 3 ? 2 : 3;
    s->shape[0] = 1;
    s->shape[1] = n == 3 ? 3 : 128;
    s->shape[2] = 3;
    s->scale = scale;
    s->zero_point = zp;
    s->bytes = (size_t)n;
}

bool mr_input_spec(size_t i, mr_tensor_spec *out)
{
    if (running < 0 || i)
        return false;
    spec(out, "serving_default_input:0", IN_BYTES, 0.0078125f, -1);
    return true;
}

bool mr_output_spec(size_t i, mr_tensor_spec *out)
{
    if (running < 0 || i)
        return false;
    spec(out, "StatefulPartitionedCall:0", 3, 0.00390625f, -128);
    return true;
}

/* "inference": op0 = |x|, op1 = the mean magnitude of each axis; output = op1 */
enum mr_rc mr_infer(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                    size_t *out_len, uint32_t *latency_us)
{
    uint64_t t0 = port_micros();
    int32_t acc[3] = {0, 0, 0};
    if (running < 0)
        return MR_NO_MODEL;
    if (in_len != IN_BYTES || out_cap < 3)
        return MR_BAD_INPUT;
    for (size_t i = 0; i < IN_BYTES; i++) {
        int v = (int8_t)in[i];
        op0[i] = (int8_t)(v < 0 ? (v == -128 ? 127 : -v) : v);
        acc[i % 3] += op0[i];
    }
    for (int k = 0; k < 3; k++) {
        op1[k] = (int8_t)(acc[k] / 128 - 128);
        out[k] = (uint8_t)op1[k];
    }
    *out_len = 3;
    preserved = preserve;
    const char *slow = getenv("TINYOPS_DOUBLE_INFER_MS"); /* a slow model, for the loop's tests */
    if (slow) {
        long ms = atol(slow);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    *latency_us = (uint32_t)(port_micros() - t0) + 1;
    return MR_OK;
}

void mr_set_preserve(bool on) { preserve = on; }
size_t mr_num_operators(void) { return running >= 0 ? 2 : 0; }

bool mr_operator_output(size_t op, mr_tensor_spec *s, const uint8_t **data)
{
    if (running < 0 || !preserved || op > 1)
        return false;
    if (op == 0) {
        spec(s, "abs", IN_BYTES, 0.0078125f, -1);
        *data = (const uint8_t *)op0;
    } else {
        spec(s, "mean", 3, 0.00390625f, -128);
        *data = (const uint8_t *)op1;
    }
    return true;
}

static const char *const registered[] = {"ABS", "MEAN"};
size_t mr_num_registered_ops(void) { return 2; }
const char *mr_registered_op(size_t i) { return i < 2 ? registered[i] : NULL; }

const char *mr_version(void) { return "tinyops-fw 0.1.0 test-double (no TFLM)"; }
