/* The SMP server: 8-byte header, a handler table per group (like Zephyr's
 * mgmt_register_group), errors as Zephyr writes them.
 *
 * A handler reads its request map (ctx->req) and writes its answer's fields into the open
 * response map (ctx->rsp). It returns MGMT_ERR_EOK, a general MGMT_ERR_* code (the answer
 * becomes {"rc": code}), or SMP_GROUP_ERR after smp_group_error(): SMP version 2 requests get
 * {"err": {"group": g, "rc": rc}} (plus any fields the handler added with it), version 1
 * requests {"rc": legacy code} via the group's translate function.
 */
#ifndef TINYOPS_SMP_H
#define TINYOPS_SMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbor.h"
#include "smp_config.h"

enum mgmt_err {
    MGMT_ERR_EOK = 0,
    MGMT_ERR_EUNKNOWN = 1,
    MGMT_ERR_ENOMEM = 2,
    MGMT_ERR_EINVAL = 3,
    MGMT_ERR_ETIMEOUT = 4,
    MGMT_ERR_ENOENT = 5,
    MGMT_ERR_EBADSTATE = 6,
    MGMT_ERR_EMSGSIZE = 7,
    MGMT_ERR_ENOTSUP = 8,
    MGMT_ERR_ECORRUPT = 9,
    MGMT_ERR_EBUSY = 10,
    MGMT_ERR_EACCESSDENIED = 11,
};
#define SMP_GROUP_ERR (-1)

enum smp_op { SMP_OP_READ = 0, SMP_OP_READ_RSP = 1, SMP_OP_WRITE = 2, SMP_OP_WRITE_RSP = 3 };

typedef struct smp_ctx {
    uint8_t version; /* 0: SMP v1, 1: SMP v2 */
    uint8_t op;
    uint16_t group;
    uint8_t seq;
    uint8_t cmd;
    cbor_val req;     /* the request body: a map (checked) */
    cbor_enc rsp;     /* the response body, its map open */
    uint16_t err_group;
    int32_t err_rc;
    void (*after_send)(void); /* e.g. reset, once the answer is out */
} smp_ctx;

typedef int (*smp_handler_fn)(smp_ctx *ctx);

typedef struct {
    smp_handler_fn read;
    smp_handler_fn write;
} smp_handler;

typedef struct smp_group {
    uint16_t id;
    const char *name; /* the enumeration group's details */
    const smp_handler *handlers;
    uint16_t count; /* commands 0..count-1 */
    int (*legacy_rc)(int32_t rc); /* group rc -> MGMT_ERR for v1 requests (NULL: EUNKNOWN) */
    struct smp_group *next;
} smp_group;

void smp_register_group(smp_group *g);
const smp_group *smp_groups(void); /* sorted by name, as Zephyr's iterable section */

/* Handle one request packet; writes the answer (if any) to `out`, returns its length (0:
 * no answer). ctx_out, when not NULL, receives the context (for after_send). */
size_t smp_handle(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap,
                  void (**after_send)(void));

int smp_group_error(smp_ctx *ctx, int32_t rc);

/* Request field helpers: false when absent; *bad set when present with the wrong type. */
bool smp_req_uint(smp_ctx *ctx, const char *key, uint64_t *out, bool *bad);
bool smp_req_bool(smp_ctx *ctx, const char *key, bool *out, bool *bad);
bool smp_req_text(smp_ctx *ctx, const char *key, const char **s, size_t *n, bool *bad);
bool smp_req_bytes(smp_ctx *ctx, const char *key, const uint8_t **p, size_t *n, bool *bad);

/* Copy a text field into a NUL-terminated buffer; false if absent/too long/has NUL. */
bool smp_req_cstr(smp_ctx *ctx, const char *key, char *buf, size_t cap, bool *bad);

#endif
