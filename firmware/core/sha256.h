/* SHA-256 (FIPS 180-4), written for this project; and the CRC-32 (IEEE) fs_mgmt offers. */
#ifndef TINYOPS_SHA256_H
#define TINYOPS_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t used;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n);
void sha256_final(sha256_ctx *c, uint8_t digest[32]);

uint32_t crc32_ieee_update(uint32_t crc, const uint8_t *p, size_t n); /* start with 0 */

#endif
