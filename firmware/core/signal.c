/* A synthetic 3-axis vibration of a rotating machine whose condition changes over time,
 * ported from device_drivers/virtual/signal.py (same physics, own random numbers): the
 * bundled example model (resources/examples/vibration) is trained on that generator. */
#include <math.h>
#include <stdint.h>

#include "runtime.h"

#define SAMPLE_RATE_HZ 1000.0f
#define RPM 2940.0f
#define TWO_PI 6.28318530718f

static const char *const STATES[] = {"normal", "imbalance", "bearing_fault"};

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float uniform(float lo, float hi) /* xorshift64* */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    uint64_t r = (rng * 0x2545F4914F6CDD1Dull) >> 40; /* 24 bits */
    return lo + (hi - lo) * (float)r / 16777216.0f;
}

static float normal(float sigma) /* Box-Muller */
{
    float u = uniform(1e-7f, 1.0f), v = uniform(0.0f, 1.0f);
    return sigma * sqrtf(-2.0f * logf(u)) * cosf(TWO_PI * v);
}

const char *signal_state_name(int state)
{
    return STATES[state >= 0 && state < 3 ? state : 0];
}

/* Dwell 4-12 s in a state, then change to one of the two others. */
int signal_state_at(uint32_t t_ms)
{
    static int state = 0;
    static uint32_t next_change_ms = 0;
    static uint64_t srng = 0x2545F4914F6CDD1Dull;
    while (t_ms >= next_change_ms) {
        srng ^= srng << 13;
        srng ^= srng >> 7;
        srng ^= srng << 17;
        if (next_change_ms)
            state = (state + 1 + (int)(srng >> 63)) % 3;
        next_change_ms += 4000u + (uint32_t)((srng >> 20) % 8001u);
    }
    return state;
}

void signal_window(int state, float *xyz, size_t n)
{
    float t0 = uniform(0.0f, 10.0f);
    float f1 = RPM / 60.0f * uniform(0.97f, 1.03f);
    float phase[3] = {uniform(0, TWO_PI), uniform(0, TWO_PI), uniform(0, TWO_PI)};
    float base = 0.05f * uniform(0.7f, 1.3f);
    float amp = 0.0f, resonance = 0.0f, bpfo = 3.58f * f1;

    if (state == 1)
        amp = uniform(0.3f, 0.6f);
    if (state == 2) {
        resonance = uniform(280.0f, 340.0f);
        amp = uniform(0.25f, 0.5f);
    }
    for (size_t i = 0; i < n; i++) {
        /* keep the phase argument small: float time from t0 plus the sample index */
        float t = t0 + (float)i / SAMPLE_RATE_HZ;
        float *x = xyz + 3 * i;
        for (int axis = 0; axis < 3; axis++) {
            float radial = axis < 2 ? 1.0f : 0.3f;
            x[axis] = base * radial * sinf(TWO_PI * f1 * t + phase[axis]);
            x[axis] += 0.3f * base * sinf(TWO_PI * 2.0f * f1 * t + 2.0f * phase[axis]);
        }
        if (state == 1) { /* imbalance: strong 1x on the radial axes, 90 degrees apart */
            x[0] += amp * sinf(TWO_PI * f1 * t + phase[0]);
            x[1] += amp * cosf(TWO_PI * f1 * t + phase[0]);
            x[2] += 0.1f * amp * sinf(TWO_PI * f1 * t + phase[2]);
        } else if (state == 2) { /* bearing fault: impacts at ~3.6x ringing a resonance */
            float since = fmodf(t, 1.0f / bpfo);
            float ring = expf(-since * 90.0f) * sinf(TWO_PI * resonance * since);
            for (int axis = 0; axis < 3; axis++)
                x[axis] += amp * (axis != 1 ? 1.0f : 0.6f) * ring;
        }
        for (int axis = 0; axis < 3; axis++)
            x[axis] += normal(0.02f);
        x[2] += 1.0f; /* gravity on z */
    }
}
