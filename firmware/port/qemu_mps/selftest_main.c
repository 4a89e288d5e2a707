/* The port + TFLM glue self-test (built with `--app selftest`; the runtime proper is the
 * core's main; `analyze --target` runs it as a probe, with a model and no inputs). Reads a model and N input tensors from storage ("/lfs/selftest-model.tflite",
 * "/lfs/selftest-input.bin"), then writes one JSON line per step to UART0 and exits QEMU
 * through semihosting:
 *   {"load":rc,"arena_used":n,"arena_size":n,"ops":["CONV_2D",...],"version":"...","board":"..."}
 *   {"i":k,"rc":rc,"out":"hex","latency_us":n}             for each input
 *   {"bad_load":rc,"still_same":true|false}                  a corrupted copy is refused
 *   {"preserve_ops":n,"last_op_equals_output":true|false}
 *   {"storage":rc,"reread_equal":true|false}                  a write survives a re-read
 */
#include <stdio.h>
#include <string.h>

#include "semihost.h"
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

static uint8_t input[64 * 1024];
static uint8_t output[16 * 1024];
static uint8_t first_out[16 * 1024];
static uint8_t scratch[64 * 1024];
static char line[40 * 1024];

static void emit(const char *text) {
    port_uart_write((const uint8_t *)text, strlen(text));
    port_uart_write((const uint8_t *)"\n", 1);
}

static void hex(char *dst, const uint8_t *src, size_t n) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 15];
    }
    dst[2 * n] = '\0';
}

int main(void) {
    port_init();
    size_t model_size = 0;
    enum mr_rc rc = mr_load_file("/lfs/selftest-model.tflite", &model_size);
    int n = snprintf(line, sizeof line, "{\"load\":%d,\"arena_used\":%u,\"arena_size\":%u,"
                     "\"version\":\"%s\",\"board\":\"%s\",\"ops\":[", (int)rc,
                     (unsigned)mr_arena_used(), (unsigned)mr_arena_size(), mr_version(),
                     port_board_id());
    for (size_t i = 0; mr_registered_op(i) != NULL; i++) {
        n += snprintf(line + n, sizeof line - n, "%s\"%s\"", i ? "," : "", mr_registered_op(i));
    }
    snprintf(line + n, sizeof line - n, "]}");
    emit(line);
    if (rc != MR_OK) semihost_exit(1);

    mr_tensor_spec in_spec;
    mr_input_spec(0, &in_spec);
    size_t inputs_size = 0;
    if (port_storage_size("/lfs/selftest-input.bin", &inputs_size) != 0) {
        semihost_exit(0); /* a probe: the load line (arena used) is all that was asked */
    }
    if (in_spec.bytes == 0 || in_spec.bytes > sizeof input) {
        emit("{\"error\":\"no input file\"}");
        semihost_exit(1);
    }
    size_t count = inputs_size / in_spec.bytes, first_len = 0;
    for (size_t k = 0; k < count; k++) {
        port_storage_read("/lfs/selftest-input.bin", k * in_spec.bytes, input, in_spec.bytes);
        size_t out_len = 0;
        uint32_t latency = 0;
        rc = mr_infer(input, in_spec.bytes, output, sizeof output, &out_len, &latency);
        if (k == 0) {
            memcpy(first_out, output, out_len);
            first_len = out_len;
        }
        n = snprintf(line, sizeof line, "{\"i\":%u,\"rc\":%d,\"latency_us\":%u,\"out\":\"",
                     (unsigned)k, (int)rc, (unsigned)latency);
        hex(line + n, output, out_len);
        strcat(line, "\"}");
        emit(line);
    }

    /* A corrupted copy (one byte of the root offset flipped) is refused; the model stays. */
    size_t piece = model_size < sizeof scratch ? model_size : sizeof scratch;
    port_storage_read("/lfs/selftest-model.tflite", 0, scratch, piece);
    scratch[0] ^= 0x5a;
    rc = mr_load(scratch, piece);
    port_storage_read("/lfs/selftest-input.bin", 0, input, in_spec.bytes);
    size_t out_len = 0;
    uint32_t latency = 0;
    mr_infer(input, in_spec.bytes, output, sizeof output, &out_len, &latency);
    snprintf(line, sizeof line, "{\"bad_load\":%d,\"still_same\":%s}", (int)rc,
             out_len == first_len && memcmp(output, first_out, out_len) == 0 ? "true" : "false");
    emit(line);

    /* Preserve all tensors: the last operator's output is the model's output. */
    mr_set_preserve(true);
    mr_infer(input, in_spec.bytes, output, sizeof output, &out_len, &latency);
    size_t ops = mr_num_operators();
    mr_tensor_spec spec;
    const uint8_t *data = NULL;
    int same = ops > 0 && mr_operator_output(ops - 1, &spec, &data) && spec.bytes == out_len &&
               memcmp(data, output, out_len) == 0;
    snprintf(line, sizeof line, "{\"preserve_ops\":%u,\"last_op_equals_output\":%s}",
             (unsigned)ops, same ? "true" : "false");
    emit(line);
    mr_set_preserve(false);

    static const uint8_t pattern[] = "tinyops storage";
    int wrc = port_storage_write("/lfs/selftest-written.bin", 0, pattern, sizeof pattern);
    if (wrc == 0) wrc = port_storage_write("/lfs/selftest-written.bin", sizeof pattern, pattern,
                                           sizeof pattern);
    size_t written = 0;
    port_storage_size("/lfs/selftest-written.bin", &written);
    uint8_t back[2 * sizeof pattern];
    int equal = written == sizeof back &&
                port_storage_read("/lfs/selftest-written.bin", sizeof pattern, back, sizeof pattern) == 0 &&
                memcmp(back, pattern, sizeof pattern) == 0;
    snprintf(line, sizeof line, "{\"storage\":%d,\"reread_equal\":%s}", wrc,
             equal ? "true" : "false");
    emit(line);
    semihost_exit(0);
}
