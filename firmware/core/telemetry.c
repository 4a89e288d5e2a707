/* The telemetry stream: one inference on the synthetic vibration per period, printed as a
 * JSON line (raw mode) or gathered into one summary line per summary period; and the CPU
 * load, measured from the time the main loop spends in port_idle(). Line formats:
 * resources/protocol/runtime_group.md, "Telemetry lines". */
#include <math.h>
#include <string.h>

#include "runtime.h"
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

#define LINE_MAX_LEN 1024
#define HIST_BINS 10
#define LAT_SAMPLES 256 /* latencies kept per summary period (a uniform sample beyond) */
#define LOAD_PERIOD_US 500000u

static uint32_t next_due_ms;

static struct {
    uint64_t since_us, idle_us;
    float load;
    bool sampled;
} cpu;

static struct {
    uint32_t started_ms;
    uint32_t counts[RT_MAX_LABELS];
    uint32_t hist[HIST_BINS];
    uint32_t lat[LAT_SAMPLES];
    uint32_t nlat, seen_lat;
    uint32_t seed;
} sum;

/* ---- a JSON line ------------------------------------------------------------------- */
static char line[LINE_MAX_LEN];
static size_t len;
static bool compact; /* summary lines are compact, raw lines as Python's json.dumps */

static void add(const char *s)
{
    size_t n = strlen(s);
    if (n > sizeof(line) - 2 - len)
        n = sizeof(line) - 2 - len;
    memcpy(line + len, s, n);
    len += n;
}

static void add_uint(uint64_t v)
{
    char b[24];
    int i = (int)sizeof(b) - 1;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    add(b + i);
}

static void add_fixed(double v, int decimals) /* shortest form of round(v, decimals) */
{
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    if (v != v || v > 1e12 || v < -1e12) {
        add("null");
        return;
    }
    if (v < 0) {
        add("-");
        v = -v;
    }
    uint64_t q = (uint64_t)(v * (double)scale + 0.5);
    add_uint(q / scale);
    uint64_t frac = q % scale;
    char b[24];
    int n = 0;
    b[n++] = '.';
    for (uint64_t d = scale / 10; d; d /= 10)
        b[n++] = (char)('0' + frac / d % 10);
    while (n > 2 && b[n - 1] == '0')
        n--; /* keep one decimal as Python prints floats */
    b[n] = 0;
    add(b);
}

static void key(const char *k)
{
    if (line[len - 1] != '{')
        add(compact ? "," : ", ");
    add("\"");
    add(k);
    add(compact ? "\":" : "\": ");
}

static void add_text(const char *s) /* labels are plain; quotes and controls are dropped */
{
    char c[2] = {0, 0};
    add("\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            continue;
        c[0] = *s;
        add(c);
    }
    add("\"");
}

/* ---- CPU load ------------------------------------------------------------------------- */
void telemetry_account_idle(uint64_t idle_us)
{
    uint64_t now = port_micros();
    cpu.idle_us += idle_us;
    uint64_t elapsed = now - cpu.since_us;
    if (elapsed >= LOAD_PERIOD_US) {
        float busy = 1.0f - (float)cpu.idle_us / (float)elapsed;
        busy = busy < 0 ? 0 : busy > 1 ? 1 : busy;
        cpu.load = cpu.sampled ? 0.7f * cpu.load + 0.3f * busy : busy;
        cpu.sampled = true;
        cpu.since_us = now;
        cpu.idle_us = 0;
    }
}

float telemetry_cpu_load(void)
{
    return cpu.load;
}

static void resources(void)
{
    uint32_t heap_free = 0, heap_total = 0, mv;
    float temp;
    port_heap(&heap_free, &heap_total);
    key("arena_used");
    add_uint(mr_loaded() ? mr_arena_used() : 0);
    key("heap_free");
    add_uint(heap_free);
    key("cpu_load");
    add_fixed(cpu.load, 4);
    if (port_temperature_c(&temp) == 0) {
        key("temp_c");
        add_fixed(temp, 2);
    }
    if (port_supply_mv(&mv) == 0) {
        key("vcc_mv");
        add_uint(mv);
    }
}

/* ---- summary mode ------------------------------------------------------------------------ */
void telemetry_summary_reset(void)
{
    uint32_t seed = sum.seed;
    memset(&sum, 0, sizeof(sum));
    sum.seed = seed ? seed : 12345u;
    sum.started_ms = port_millis();
}

static void summary_add(const float *p, size_t n, uint32_t latency)
{
    size_t top = 0;
    for (size_t i = 1; i < n; i++)
        if (p[i] > p[top])
            top = i;
    sum.counts[top]++;
    int bin = (int)(p[top] * HIST_BINS);
    sum.hist[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
    if (sum.nlat < LAT_SAMPLES) {
        sum.lat[sum.nlat++] = latency;
    } else { /* reservoir sampling keeps a uniform sample of the period */
        sum.seed = sum.seed * 1103515245u + 12345u;
        uint32_t j = (sum.seed >> 8) % (sum.seen_lat + 1);
        if (j < LAT_SAMPLES)
            sum.lat[j] = latency;
    }
    sum.seen_lat++;
}

static void add_percentile(double q)
{
    uint32_t s[LAT_SAMPLES];
    uint32_t n = sum.nlat;
    if (!n) {
        add("null");
        return;
    }
    memcpy(s, sum.lat, n * sizeof(s[0]));
    for (uint32_t i = 1; i < n; i++) /* insertion sort */
        for (uint32_t j = i; j && s[j - 1] > s[j]; j--) {
            uint32_t t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    uint32_t k = (uint32_t)(q * n);
    add_uint(s[k < n ? k : n - 1]);
}

static void summary_line(uint32_t now)
{
    uint32_t n = 0;
    for (size_t i = 0; i < rt.nlabels; i++)
        n += sum.counts[i];
    key("summary");
    add("{");
    key("period_ms");
    add_uint(now - sum.started_ms);
    key("n");
    add_uint(n);
    key("counts");
    add("{");
    for (size_t i = 0; i < rt.nlabels; i++) {
        key(rt.labels[i]);
        add_uint(sum.counts[i]);
    }
    add("}");
    key("confidence_hist");
    add("[");
    for (int i = 0; i < HIST_BINS; i++) {
        if (i)
            add(",");
        add_uint(sum.hist[i]);
    }
    add("]");
    key("latency_us_p50");
    add_percentile(0.5);
    key("latency_us_p95");
    add_percentile(0.95);
    add("}");
}

/* ---- the stream ------------------------------------------------------------------------- */
void telemetry_init(void)
{
    cpu.since_us = port_micros();
    next_due_ms = port_millis() + rt.period_ms;
    telemetry_summary_reset();
}

uint32_t telemetry_wait_ms(uint32_t now_ms)
{
    if (!rt.stream_on)
        return 100;
    int32_t d = (int32_t)(next_due_ms - now_ms);
    return d <= 0 ? 0 : (uint32_t)d;
}

void telemetry_poll(uint32_t now, bool skip)
{
    float p[RT_MAX_LABELS];
    uint32_t latency = 0;
    size_t n = 0;

    if (!rt.stream_on || (int32_t)(now - next_due_ms) < 0)
        return;
    next_due_ms += rt.period_ms;
    if ((int32_t)(now - next_due_ms) >= 0) /* fell behind: no burst to catch up */
        next_due_ms = now + rt.period_ms;
    if (skip)
        return;
    if (rt.summary_restart) {
        telemetry_summary_reset();
        rt.summary_restart = false;
    }
    int state = signal_state_at(now);
    bool held = (int32_t)(now - rt.hold_until_ms) < 0 && rt.hold_until_ms;
    if ((rt.fields & (RT_FIELD_SCORES | RT_FIELD_LATENCY)) && !held)
        n = telemetry_run_once(state, p, &latency);
    if (n > rt.nlabels)
        n = rt.nlabels;

    len = 0;
    compact = rt.summary;
    add("{");
    key("t");
    add_uint(now);
    if (rt.summary) {
        if (n)
            summary_add(p, n, latency);
        if (now - sum.started_ms < rt.summary_period_ms)
            return;
        summary_line(now);
        telemetry_summary_reset();
    } else {
        if (n && (rt.fields & RT_FIELD_SCORES)) {
            key("scores");
            add("{");
            for (size_t i = 0; i < n; i++) {
                key(rt.labels[i]);
                add_fixed(p[i], 4);
            }
            add("}");
        }
        if (n && (rt.fields & RT_FIELD_LATENCY)) {
            key("latency_us");
            add_uint(latency);
        }
    }
    if (rt.fields & RT_FIELD_RESOURCES)
        resources();
    key("state");
    add_text(signal_state_name(state));
    add("}");
    line[len++] = '\n';
    port_uart_write((const uint8_t *)line, len);
}
