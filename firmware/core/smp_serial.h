/* SMP over a serial console, framed as Zephyr's uart_mcumgr and MCUboot's boot_serial do.
 *
 * A packet travels as base64 of [length BE16][packet][CRC16-XMODEM BE16], where length
 * counts packet + CRC, cut into lines: the first starts with 06 09, the others with 04 14,
 * each ends with '\n' and is at most SMP_LINE_MAX bytes, newline included. Every line's
 * base64 decodes on its own (chunks of whole 4-character groups).
 *
 * Receiving: bytes go in one at a time; a complete packet with a good CRC comes out. Any
 * line that is not a frame (text, garbage), a line longer than SMP_LINE_MAX, bad base64, a
 * bad length or CRC, or a frame cut by a new start line is dropped and counted. The
 * reassembly buffer is fixed; nothing here waits.
 */
#ifndef TINYOPS_SMP_SERIAL_H
#define TINYOPS_SMP_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smp_config.h"

#define SMP_LINE_MAX 128 /* bytes per console line, newline included */

typedef struct {
    uint32_t frames;      /* packets delivered */
    uint32_t text_lines;  /* lines that were not frames */
    uint32_t long_lines;  /* longer than SMP_LINE_MAX */
    uint32_t bad_frames;  /* bad base64, length or CRC */
    uint32_t cut_frames;  /* a frame left unfinished by a new start line */
    uint32_t orphan_cont; /* continuation lines without a frame */
} smp_serial_stats;

typedef struct {
    uint8_t line[SMP_LINE_MAX];
    size_t line_len;
    bool line_too_long;
    uint8_t frame[2 + SMP_MTU + 2]; /* length, packet, CRC */
    size_t frame_len;
    size_t expected; /* packet + CRC bytes the length field announced; 0: no frame open */
    smp_serial_stats stats;
} smp_serial_rx;

void smp_serial_rx_init(smp_serial_rx *rx);
/* Feed one byte; true when it completed a packet (*pkt, *len valid until the next call). */
bool smp_serial_rx_byte(smp_serial_rx *rx, uint8_t byte, const uint8_t **pkt, size_t *len);

/* True while a frame is partly received: a frame line being read, or a frame with lines to
 * come. The main loop runs no stream inference then (SMP wins over the stream). */
bool smp_serial_rx_busy(const smp_serial_rx *rx);

/* Encode and write one packet as console lines through `write`. */
typedef void (*smp_serial_write_fn)(const uint8_t *buf, size_t len);
void smp_serial_send(const uint8_t *pkt, size_t len, smp_serial_write_fn write);

uint16_t crc16_xmodem(uint16_t crc, const uint8_t *p, size_t n);
/* base64: decode `n` characters (a multiple of 4) into out; -1 on bad input or no room */
int base64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
size_t base64_encode(const uint8_t *in, size_t n, uint8_t *out);

#endif
