/* SMP console framing: see smp_serial.h. */
#include "smp_serial.h"

#include <string.h>

uint16_t crc16_xmodem(uint16_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= (uint16_t)(*p++ << 8);
        for (int i = 0; i < 8; i++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int base64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad) {
                return -1; /* data after padding */
            } else if ((v[k] = b64_value(in[i + k])) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        size_t take = (size_t)(3 - pad);
        if (take > cap - o)
            return -1;
        for (size_t k = 0; k < take; k++)
            out[o++] = (uint8_t)(w >> (16 - 8 * k));
    }
    return (int)o;
}

size_t base64_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            w |= in[i + 2];
        out[o++] = (uint8_t)B64[w >> 18 & 63];
        out[o++] = (uint8_t)B64[w >> 12 & 63];
        out[o++] = i + 1 < n ? (uint8_t)B64[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? (uint8_t)B64[w & 63] : '=';
    }
    return o;
}

void smp_serial_rx_init(smp_serial_rx *rx)
{
    memset(rx, 0, sizeof(*rx));
}

bool smp_serial_rx_busy(const smp_serial_rx *rx)
{
    return rx->expected != 0 ||
           (rx->line_len && !rx->line_too_long && (rx->line[0] == 0x06 || rx->line[0] == 0x04));
}

static void drop_frame(smp_serial_rx *rx)
{
    rx->expected = 0;
    rx->frame_len = 0;
}

/* One whole line (without '\n'): true when it completed a packet. */
static bool take_line(smp_serial_rx *rx, const uint8_t *line, size_t n, size_t *pkt_len)
{
    bool start = n >= 2 && line[0] == 0x06 && line[1] == 0x09;
    bool cont = n >= 2 && line[0] == 0x04 && line[1] == 0x14;

    if (!start && !cont) {
        rx->stats.text_lines++;
        return false;
    }
    if (cont && !rx->expected) {
        rx->stats.orphan_cont++;
        return false;
    }
    if (start && rx->expected) {
        rx->stats.cut_frames++;
        drop_frame(rx);
    }
    size_t have = start ? 0 : rx->frame_len;
    int got = base64_decode(line + 2, n - 2, rx->frame + have, sizeof(rx->frame) - have);
    if (got < 0 || (start && got < 2)) {
        rx->stats.bad_frames++;
        drop_frame(rx);
        return false;
    }
    rx->frame_len = have + (size_t)got;
    if (start) {
        rx->expected = (size_t)rx->frame[0] << 8 | rx->frame[1];
        if (rx->expected < 2 + 8 || rx->expected > SMP_MTU + 2) {
            rx->stats.bad_frames++;
            drop_frame(rx);
            return false;
        }
    }
    size_t body = rx->frame_len - 2;
    if (body < rx->expected)
        return false; /* more lines to come */
    bool good = body == rx->expected && crc16_xmodem(0, rx->frame + 2, body) == 0;
    *pkt_len = rx->expected - 2;
    drop_frame(rx);
    if (!good) {
        rx->stats.bad_frames++;
        return false;
    }
    rx->stats.frames++;
    return true;
}

bool smp_serial_rx_byte(smp_serial_rx *rx, uint8_t byte, const uint8_t **pkt, size_t *len)
{
    if (byte != '\n') {
        if (rx->line_len < SMP_LINE_MAX - 1)
            rx->line[rx->line_len++] = byte;
        else
            rx->line_too_long = true;
        return false;
    }
    size_t n = rx->line_len;
    bool too_long = rx->line_too_long;
    rx->line_len = 0;
    rx->line_too_long = false;
    if (too_long) {
        rx->stats.long_lines++;
        if (rx->expected) { /* a frame that lost a line cannot be completed */
            rx->stats.bad_frames++;
            drop_frame(rx);
        }
        return false;
    }
    if (!take_line(rx, rx->line, n, len))
        return false;
    *pkt = rx->frame + 2; /* the frame buffer holds it until the next byte */
    return true;
}

void smp_serial_send(const uint8_t *pkt, size_t len, smp_serial_write_fn write)
{
    /* 93 raw bytes -> 124 base64 characters: 2 + 124 + 1 = 127 bytes a line */
    enum { RAW_PER_LINE = 93 };
    uint8_t line[2 + 124 + 1];
    uint8_t chunk[RAW_PER_LINE];
    size_t total = 2 + len + 2, pos = 0;
    uint16_t crc = crc16_xmodem(0, pkt, len);
    bool first = true;

    while (pos < total) {
        size_t n = 0;
        for (; n < RAW_PER_LINE && pos < total; n++, pos++) {
            if (pos < 2)
                chunk[n] = (uint8_t)((len + 2) >> (pos ? 0 : 8));
            else if (pos < 2 + len)
                chunk[n] = pkt[pos - 2];
            else
                chunk[n] = (uint8_t)(crc >> (pos == 2 + len ? 8 : 0));
        }
        line[0] = first ? 0x06 : 0x04;
        line[1] = first ? 0x09 : 0x14;
        size_t m = base64_encode(chunk, n, line + 2);
        line[2 + m] = '\n';
        write(line, 3 + m);
        first = false;
    }
}
