/* The TFLM glue as the core sees it: load a model atomically, describe it, run it.
 *
 * Implemented in C++ on TensorFlow Lite Micro (firmware/tflm/). The core (C) calls only these
 * functions. A load builds a second interpreter beside the running one and switches only when
 * the new model verified and allocated; on any failure the running model is untouched.
 */
#ifndef TINYOPS_MODEL_RUNTIME_H
#define TINYOPS_MODEL_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes of the runtime group (resources/protocol/runtime_group.md, "Errors"). */
enum mr_rc {
    MR_OK = 0,
    MR_NO_MODEL = 1,
    MR_BAD_MODEL = 2,
    MR_ARENA_TOO_SMALL = 3,
    MR_BAD_INPUT = 4,
    MR_NOT_FOUND = 5,
    MR_DIGEST_MISMATCH = 6,
    MR_TOO_LARGE = 7,
};

enum mr_dtype { MR_INT8, MR_UINT8, MR_INT16, MR_INT32, MR_FLOAT32 };

#define MR_MAX_DIMS 6
#define MR_MAX_NAME 48

typedef struct {
    char name[MR_MAX_NAME];
    enum mr_dtype dtype;
    uint8_t ndim;
    int32_t shape[MR_MAX_DIMS];
    float scale;
    int32_t zero_point;
    size_t bytes;
} mr_tensor_spec;

/* Load `len` bytes of a .tflite. The bytes are copied into the runtime's own model buffer
 * (the one the running model does not use). Verifies the FlatBuffer before use. */
enum mr_rc mr_load(const uint8_t *model, size_t len);
/* Same, reading the file from port storage in pieces into the spare buffer. */
enum mr_rc mr_load_file(const char *path, size_t *size_out);

bool mr_loaded(void);
size_t mr_model_capacity(void);   /* largest model a buffer holds */
size_t mr_arena_size(void);       /* the static arena per interpreter */
size_t mr_arena_used(void);       /* interpreter->arena_used_bytes() of the running model */
size_t mr_num_inputs(void);
size_t mr_num_outputs(void);
bool mr_input_spec(size_t i, mr_tensor_spec *out);
bool mr_output_spec(size_t i, mr_tensor_spec *out);

/* One inference: `in` is the raw input tensor 0 (its exact byte size, else MR_BAD_INPUT);
 * output tensor 0 is copied to `out`. Latency from port_micros(). */
enum mr_rc mr_infer(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                    size_t *out_len, uint32_t *latency_us);

/* Per-layer outputs for divergence reports: after mr_infer with preserve on, operator `op`'s
 * first output tensor (raw bytes, spec). Returns false when out of range or not preserved. */
void mr_set_preserve(bool on);
size_t mr_num_operators(void);
bool mr_operator_output(size_t op, mr_tensor_spec *spec, const uint8_t **data);

/* The runtime's version string, e.g. "tinyops-fw 0.1.0 tflm 90b983c2 cmsis-nn". */
const char *mr_version(void);

/* Appended by the build/glue side (fw): the operators this firmware registers, in the order
 * of firmware/tflm/ops.def (the one declaration of the op set). mr_registered_op returns NULL
 * past the end. For model-info's "ops" field. */
size_t mr_num_registered_ops(void);
const char *mr_registered_op(size_t i);

#ifdef __cplusplus
}
#endif
#endif
