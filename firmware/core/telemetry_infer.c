/* The stream's inference (telemetry.c calls it once per period): the synthetic vibration
 * window (signal.c) quantized to the model's input tensor, one mr_infer, and the output
 * turned into class probabilities. */
#include <math.h>
#include <string.h>

#include "runtime.h"
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

#ifndef TELEMETRY_INPUT_MAX
#define TELEMETRY_INPUT_MAX 16384 /* bytes of the input tensor the stream can feed */
#endif
#define OUTPUT_MAX 1024
#define WINDOW 128

static uint8_t input[TELEMETRY_INPUT_MAX];
static uint8_t output[OUTPUT_MAX];
static float window[WINDOW * 3];

/* ---- one inference on the sensor window ---------------------------------------------- */
static bool quantize(const mr_tensor_spec *s, size_t *n_bytes)
{
    static const uint8_t size_of[] = {1, 1, 2, 4, 4};
    size_t elem = size_of[s->dtype], count = s->bytes / elem;
    if (s->bytes > sizeof(input) || !count)
        return false;
    for (size_t i = 0; i < count; i++) {
        float x = window[i % (WINDOW * 3)]; /* repeated or cut to the tensor's size */
        if (s->dtype == MR_FLOAT32) {
            memcpy(input + 4 * i, &x, 4);
            continue;
        }
        float q = s->scale > 0 ? roundf(x / s->scale) + (float)s->zero_point : roundf(x);
        float lo = s->dtype == MR_INT8 ? -128.f : s->dtype == MR_UINT8 ? 0.f
                 : s->dtype == MR_INT16 ? -32768.f : -2147483648.f;
        float hi = s->dtype == MR_INT8 ? 127.f : s->dtype == MR_UINT8 ? 255.f
                 : s->dtype == MR_INT16 ? 32767.f : 2147483520.f;
        q = q < lo ? lo : q > hi ? hi : q;
        if (s->dtype == MR_INT8 || s->dtype == MR_UINT8) {
            input[i] = (uint8_t)(int8_t)(int32_t)q;
            if (s->dtype == MR_UINT8)
                input[i] = (uint8_t)(int32_t)q;
        } else if (s->dtype == MR_INT16) {
            int16_t v = (int16_t)q;
            memcpy(input + 2 * i, &v, 2);
        } else {
            int32_t v = (int32_t)q;
            memcpy(input + 4 * i, &v, 4);
        }
    }
    *n_bytes = s->bytes;
    return true;
}

/* Output tensor -> probabilities (kept when they already are, softmax otherwise). */
static size_t scores(const mr_tensor_spec *s, size_t out_len, float *p)
{
    static const uint8_t size_of[] = {1, 1, 2, 4, 4};
    size_t n = out_len / size_of[s->dtype];
    if (n > RT_MAX_LABELS)
        n = RT_MAX_LABELS;
    float sumv = 0, maxv = -1e30f;
    bool prob = true;
    for (size_t i = 0; i < n; i++) {
        float v;
        if (s->dtype == MR_FLOAT32) {
            memcpy(&v, output + 4 * i, 4);
        } else {
            int32_t q;
            if (s->dtype == MR_INT8)
                q = (int8_t)output[i];
            else if (s->dtype == MR_UINT8)
                q = output[i];
            else if (s->dtype == MR_INT16) {
                int16_t h;
                memcpy(&h, output + 2 * i, 2);
                q = h;
            } else
                memcpy(&q, output + 4 * i, 4);
            v = s->scale > 0 ? (float)(q - s->zero_point) * s->scale : (float)q;
        }
        p[i] = v;
        sumv += v;
        maxv = v > maxv ? v : maxv;
        prob = prob && v >= -1e-6f && v <= 1.0f + 1e-6f;
    }
    if (prob && fabsf(sumv - 1.0f) < 0.05f) {
        for (size_t i = 0; i < n; i++)
            p[i] = p[i] < 0 ? 0 : p[i] > 1 ? 1 : p[i];
        return n;
    }
    sumv = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] = expf(p[i] - maxv);
        sumv += p[i];
    }
    for (size_t i = 0; i < n; i++)
        p[i] /= sumv;
    return n;
}

/* Runs the model on a fresh window; returns classes scored (0: no inference). */
size_t telemetry_run_once(int state, float *p, uint32_t *latency)
{
    mr_tensor_spec is, os;
    size_t in_len, out_len = 0;
    if (!mr_loaded() || !mr_input_spec(0, &is) || !mr_output_spec(0, &os))
        return 0;
    signal_window(state, window, WINDOW);
    if (!quantize(&is, &in_len) || os.bytes > sizeof(output))
        return 0;
    mr_set_preserve(false);
    if (mr_infer(input, in_len, output, sizeof(output), &out_len, latency) != MR_OK)
        return 0;
    rt.inferences++;
    rt.last_latency_us = *latency;
    return scores(&os, out_len, p);
}
