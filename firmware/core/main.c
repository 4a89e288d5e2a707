/* The TinyOps runtime's main loop: UART bytes -> SMP console framing -> dispatch -> answer,
 * and the telemetry stream's timer. Nothing here blocks: the loop idles in port_idle() only
 * when no byte is waiting, for at most the time until the next stream period.
 *
 * SMP wins over the stream: before each stream inference the loop drains the UART and
 * answers every complete frame; while a frame is partly received the due inference is
 * skipped (not queued). So an answer waits at most for the one inference under way. */
#include "groups.h"
#include "runtime.h"
#include "smp_serial.h"
#include "tinyops/model_runtime.h"
#include "tinyops/port.h"

static smp_serial_rx rx;
static uint8_t answer[SMP_MTU];
static uint32_t frames_out;
static uint32_t last_rx_ms; /* when the UART last gave bytes */

/* A frame left half received for this long (a host gone mid-frame, stray bytes) no longer
 * holds the stream back; the frame itself is still completed or dropped as usual. */
#define RX_STALE_MS 3000

uint32_t runtime_frames_out(void) { return frames_out; }
const smp_serial_stats *runtime_serial_stats(void) { return &rx.stats; }

uint32_t runtime_frames_dropped(void)
{
    const smp_serial_stats *s = &rx.stats;
    return s->long_lines + s->bad_frames + s->cut_frames + s->orphan_cont;
}

static void banner(void)
{
    static const char hello[] = "tinyops-fw: SMP console ready\n";
    port_uart_write((const uint8_t *)hello, sizeof(hello) - 1);
}

/* Read everything the UART holds, answering each complete frame; the bytes read. */
static size_t serve_uart(void)
{
    uint8_t chunk[64];
    size_t total = 0, n;

    while ((n = port_uart_read(chunk, sizeof(chunk))) > 0) {
        total += n;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *pkt;
            size_t len;
            if (!smp_serial_rx_byte(&rx, chunk[i], &pkt, &len))
                continue;
            void (*after)(void) = NULL;
            size_t m = smp_handle(pkt, len, answer, sizeof(answer), &after);
            if (m) {
                smp_serial_send(answer, m, port_uart_write);
                frames_out++;
            }
            if (after)
                after();
        }
    }
    return total;
}

int main(void)
{
    port_init();
    os_mgmt_register();
    fs_mgmt_register();
    stat_mgmt_register();
    enum_mgmt_register();
    runtime_mgmt_register();
    smp_serial_rx_init(&rx);
    runtime_init();
    telemetry_init();
    banner();

    for (;;) {
        size_t n = serve_uart();
        uint32_t now = port_millis();
        if (n)
            last_rx_ms = now;
        bool busy = smp_serial_rx_busy(&rx) && now - last_rx_ms < RX_STALE_MS;
        telemetry_poll(now, busy);
        if (n == 0) {
            uint32_t wait = telemetry_wait_ms(port_millis());
            uint64_t t0 = port_micros();
            port_idle(wait);
            telemetry_account_idle(port_micros() - t0);
        }
    }
}
