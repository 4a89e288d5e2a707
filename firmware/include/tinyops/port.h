/* The port layer: the only functions the TinyOps runtime core needs from a board.
 *
 * A new board implements this list (see docs/firmware.md); the core never includes a vendor
 * header. One port today: QEMU's mps2/mps3 machines (firmware/port/qemu_mps/), plus a host
 * port (firmware/port/host/) that runs the core natively for tests.
 */
#ifndef TINYOPS_PORT_H
#define TINYOPS_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called once before anything else: clocks, UART (with its RX interrupt), cycle counter. */
void port_init(void);

/* UART. Received bytes are buffered by the port (an RX interrupt into a ring); a full ring
 * drops bytes and counts them. port_uart_read returns how many bytes it copied (0: none). */
size_t port_uart_read(uint8_t *buf, size_t cap);
void port_uart_write(const uint8_t *buf, size_t len);
uint32_t port_uart_rx_dropped(void);

/* Time: milliseconds since boot, and a free-running microsecond clock for latency. */
uint32_t port_millis(void);
uint64_t port_micros(void);

/* Wait for an interrupt or at most `max_ms` (idle time is measured around it for CPU load). */
void port_idle(uint32_t max_ms);

/* Storage that survives a reset. Files are named by SMP paths ("/lfs/model-a.tflite").
 * Returns 0 or a negative errno-style value (-ENOENT, -ENOSPC, -EIO, -EFBIG). */
int port_storage_size(const char *path, size_t *size);
int port_storage_read(const char *path, size_t offset, uint8_t *buf, size_t len);
/* offset 0 truncates; writes append at `offset` (== current size) */
int port_storage_write(const char *path, size_t offset, const uint8_t *buf, size_t len);
int port_storage_remove(const char *path);
size_t port_storage_capacity(void); /* bytes a single file may hold */

/* Optional sensors: return 0 and fill the value, or -ENOTSUP where the port has none
 * (the telemetry then leaves the field out rather than invent it). */
int port_temperature_c(float *celsius);
int port_supply_mv(uint32_t *millivolts);

/* Heap figures for stats/telemetry (what the port's allocator reports). */
void port_heap(uint32_t *free_bytes, uint32_t *total_bytes);

/* The board's name as the runtime reports it ("qemu-mps2-an386"). */
const char *port_board_id(void);

/* Reset the system (the SMP OS reset command, after its answer has been sent). */
void port_reset(void) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif
