/* The runtime group's state (runtime.h's `rt`): class labels (given, from a labels file
 * beside the model, or class_<i>), and the record that survives a reset
 * (/lfs/.runtime-state: path, sha256 hex, labels), restored at boot if the file still
 * verifies. The group's commands are in runtime_mgmt.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"
#include "sha256.h"
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

rt_state rt;

int runtime_file_sha256(const char *path, size_t size, uint8_t digest[32])
{
    sha256_ctx sc;
    uint8_t buf[256];
    sha256_init(&sc);
    for (size_t pos = 0; pos < size;) {
        size_t k = size - pos < sizeof(buf) ? size - pos : sizeof(buf);
        if (port_storage_read(path, pos, buf, k) != 0)
            return -EIO;
        sha256_update(&sc, buf, k);
        pos += k;
    }
    sha256_final(&sc, digest);
    return 0;
}

/* ---- labels ---------------------------------------------------------------------------- */
size_t runtime_class_count(void)
{
    mr_tensor_spec s;
    size_t n = 1;
    if (!mr_output_spec(0, &s))
        return 0;
    for (uint8_t i = 0; i < s.ndim; i++)
        n *= (size_t)(s.shape[i] > 0 ? s.shape[i] : 1);
    return n;
}

/* Split text lines into labels; returns how many. */
static size_t parse_lines(const char *text, size_t n, char out[][RT_LABEL_MAX])
{
    size_t count = 0, i = 0;
    while (i < n && count < RT_MAX_LABELS) {
        size_t start = i;
        while (i < n && text[i] != '\n')
            i++;
        size_t end = i++;
        while (end > start && (text[end - 1] == '\r' || text[end - 1] == ' '))
            end--;
        while (start < end && text[start] == ' ')
            start++;
        if (end == start)
            continue;
        size_t len = end - start < RT_LABEL_MAX - 1 ? end - start : RT_LABEL_MAX - 1;
        memcpy(out[count], text + start, len);
        out[count++][len] = 0;
    }
    return count;
}

/* labels in a file beside the model: <stem>.labels, <stem>.txt, <dir>/labels.txt */
size_t runtime_labels_near(const char *path, char out[][RT_LABEL_MAX])
{
    char cand[FS_PATH_MAX + 8];
    char text[512];
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    size_t stem = dot && dot > slash ? (size_t)(dot - path) : strlen(path);
    size_t dir = (size_t)(slash - path);
    for (int k = 0; k < 3; k++) {
        if (k == 0)
            snprintf(cand, sizeof(cand), "%.*s.labels", (int)stem, path);
        else if (k == 1)
            snprintf(cand, sizeof(cand), "%.*s.txt", (int)stem, path);
        else
            snprintf(cand, sizeof(cand), "%.*s/labels.txt", (int)dir, path);
        size_t size;
        if (port_storage_size(cand, &size) != 0 || size == 0)
            continue;
        if (size > sizeof(text))
            size = sizeof(text);
        if (port_storage_read(cand, 0, (uint8_t *)text, size) != 0)
            continue;
        size_t n = parse_lines(text, size, out);
        if (n)
            return n;
    }
    return 0;
}

/* exactly the model's class count (up to RT_MAX_LABELS): given ones, then class_<i> */
void runtime_fit_labels(void)
{
    size_t n = runtime_class_count();
    if (n > RT_MAX_LABELS)
        n = RT_MAX_LABELS;
    for (size_t i = rt.nlabels; i < n; i++)
        snprintf(rt.labels[i], RT_LABEL_MAX, "class_%u", (unsigned)i);
    rt.nlabels = n;
    for (size_t i = 0; i < n; i++) /* labels become JSON keys in telemetry lines */
        for (char *c = rt.labels[i]; *c; c++)
            if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
                *c = '_';
}

/* ---- persisted state: path, sha256 (hex), labels; one per line ------------------------------ */
void runtime_save_state(void)
{
    char text[FS_PATH_MAX + 70 + RT_MAX_LABELS * RT_LABEL_MAX];
    size_t len = (size_t)snprintf(text, sizeof(text), "%s\n", rt.path);
    for (int i = 0; i < 32; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%02x", rt.sha256[i]);
    text[len++] = '\n';
    for (size_t i = 0; i < rt.nlabels; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\n", rt.labels[i]);
    port_storage_write(RT_STATE_PATH, 0, (const uint8_t *)text, len);
}

static void restore_state(void)
{
    char text[FS_PATH_MAX + 70 + RT_MAX_LABELS * RT_LABEL_MAX];
    char lines[2 + RT_MAX_LABELS][FS_PATH_MAX + 8]; /* paths; 64 hex digits; labels */
    size_t size, n = 0, i = 0;
    if (port_storage_size(RT_STATE_PATH, &size) != 0 || size > sizeof(text) ||
        port_storage_read(RT_STATE_PATH, 0, (uint8_t *)text, size) != 0)
        return;
    while (i < size && n < 2 + RT_MAX_LABELS) { /* split lines (paths may be longer) */
        size_t start = i;
        while (i < size && text[i] != '\n')
            i++;
        size_t len = i++ - start;
        if (len >= sizeof(lines[0]))
            return;
        memcpy(lines[n], text + start, len);
        lines[n++][len] = 0;
    }
    if (n < 2 || !fs_path_ok(lines[0]) || strlen(lines[1]) != 64)
        return;
    uint8_t want[32], got[32];
    for (int k = 0; k < 32; k++) {
        unsigned v;
        if (sscanf(lines[1] + 2 * k, "%2x", &v) != 1)
            return;
        want[k] = (uint8_t)v;
    }
    if (port_storage_size(lines[0], &size) != 0 || runtime_file_sha256(lines[0], size, got) ||
        memcmp(want, got, 32) != 0)
        return; /* the file changed since: start without a model */
    if (mr_load_file(lines[0], &size) != MR_OK)
        return;
    strcpy(rt.path, lines[0]);
    memcpy(rt.sha256, got, 32);
    rt.size = size;
    rt.nlabels = 0;
    for (size_t k = 2; k < n && rt.nlabels < RT_MAX_LABELS; k++)
        if (lines[k][0] && strlen(lines[k]) < RT_LABEL_MAX)
            strcpy(rt.labels[rt.nlabels++], lines[k]);
    runtime_fit_labels();
}

void runtime_init(void)
{
    memset(&rt, 0, sizeof(rt));
    rt.stream_on = true;
    rt.period_ms = 100;
    rt.fields = RT_FIELD_SCORES | RT_FIELD_LATENCY | RT_FIELD_RESOURCES;
    rt.summary_period_ms = 10000;
    rt.summary_restart = true;
    restore_state();
}
