/* The TinyOps runtime's state, shared by its SMP group (runtime_mgmt.c) and the telemetry
 * stream (telemetry.c). */
#ifndef TINYOPS_RUNTIME_H
#define TINYOPS_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "groups.h"
#include "smp_serial.h"

#define RT_MAX_LABELS 16
#define RT_LABEL_MAX 32
#define RT_DEFAULT_PATH "/lfs/model.tflite"
#define RT_STATE_PATH "/lfs/.runtime-state"
#define RT_PROTOCOL 1

enum { RT_FIELD_SCORES = 1, RT_FIELD_LATENCY = 2, RT_FIELD_RESOURCES = 4 };

typedef struct {
    /* the running model */
    char path[FS_PATH_MAX];
    uint8_t sha256[32];
    size_t size;
    char labels[RT_MAX_LABELS][RT_LABEL_MAX];
    size_t nlabels;
    /* counters */
    uint32_t inferences;
    uint32_t last_latency_us;
    uint32_t loads;
    uint32_t load_failures;
    /* the stream */
    bool stream_on;
    uint32_t period_ms;
    uint8_t fields;
    bool summary;
    uint32_t summary_period_ms;
    bool summary_restart; /* a new summary period starts with the next inference */
    uint32_t hold_until_ms; /* no stream inference before (preserved tensors being read) */
} rt_state;

extern rt_state rt;

/* Boot: defaults, then the model the persisted state names (if it still verifies). */
void runtime_init(void);

/* runtime_state.c, for the group's commands (runtime_mgmt.c). */
size_t runtime_class_count(void); /* classes of the loaded model's output */
size_t runtime_labels_near(const char *path, char out[][RT_LABEL_MAX]); /* labels file */
void runtime_fit_labels(void); /* rt.labels to the class count (class_<i> filled in) */
void runtime_save_state(void); /* write /lfs/.runtime-state */
int runtime_file_sha256(const char *path, size_t size, uint8_t digest[32]); /* 0: ok */

/* Telemetry (telemetry.c): called by the main loop. */
void telemetry_init(void);
/* Runs the stream when due; `skip`: a frame is partly received, the due period passes
 * without an inference (not queued). */
void telemetry_poll(uint32_t now_ms, bool skip);
uint32_t telemetry_wait_ms(uint32_t now_ms); /* how long the loop may idle */
void telemetry_account_idle(uint64_t idle_us);
float telemetry_cpu_load(void);
void telemetry_summary_reset(void);
/* telemetry_infer.c: one inference on the signal of `state`; the classes written to p
 * (0: none), its latency in us. */
size_t telemetry_run_once(int state, float *p, uint32_t *latency);

/* Console lines/frames the SMP framing dropped since boot (main.c owns the receiver). */
uint32_t runtime_frames_dropped(void);
uint32_t runtime_frames_out(void); /* answers sent */
const smp_serial_stats *runtime_serial_stats(void);

/* The synthetic vibration (signal.c): fills n samples x 3 axes (g) for the state at t. */
int signal_state_at(uint32_t t_ms);
void signal_window(int state, float *xyz, size_t n);
const char *signal_state_name(int state);

#endif
