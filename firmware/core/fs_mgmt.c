/* File management (group 8) for model files, as Zephyr 4.4's fs_mgmt answers:
 * upload (offset/len/data), download, status, hash/checksum (sha256, crc32 = the default),
 * supported hash types, close. Files live under "/lfs/" in port storage. */
#include <errno.h>
#include <string.h>

#include "groups.h"
#include "sha256.h"
#include "tinyops/port.h"

enum {
    FS_FILE_INVALID_NAME = 2,
    FS_FILE_NOT_FOUND = 3,
    FS_FILE_WRITE_FAILED = 10,
    FS_FILE_OFFSET_NOT_VALID = 11,
    FS_FILE_OFFSET_LARGER_THAN_FILE = 12,
    FS_CHECKSUM_HASH_NOT_FOUND = 13,
    FS_MOUNT_POINT_NOT_FOUND = 14,
    FS_FILE_EMPTY = 16,
    FS_FILE_READ_FAILED = 7,
};

#define MOUNT "/lfs/"
#define DOWNLOAD_OVERHEAD 96 /* header, keys and offsets of a download answer */

static struct {
    char name[FS_PATH_MAX];
    size_t off; /* where the next chunk must start */
} upload;

bool fs_path_ok(const char *path)
{
    size_t n = strlen(path);
    if (n <= sizeof(MOUNT) - 1 || n >= FS_PATH_MAX || strncmp(path, MOUNT, 5) != 0)
        return false;
    if (strstr(path, "/../") || strstr(path, "//") || path[n - 1] == '/')
        return false;
    return strcmp(path + n - 3, "/..") != 0;
}

/* fs_mgmt_translate_error_code: the rc a version-1 request gets */
static int legacy_rc(int32_t rc)
{
    if (rc == FS_FILE_NOT_FOUND || rc == FS_MOUNT_POINT_NOT_FOUND)
        return MGMT_ERR_ENOENT;
    if (rc == FS_FILE_INVALID_NAME || rc == FS_CHECKSUM_HASH_NOT_FOUND)
        return MGMT_ERR_EINVAL;
    return MGMT_ERR_EUNKNOWN;
}

/* The request's file name; 0 or a group error code. */
static int32_t get_name(smp_ctx *ctx, char *name, bool must_exist, bool *bad)
{
    if (!smp_req_cstr(ctx, "name", name, FS_PATH_MAX, bad))
        return *bad ? FS_FILE_INVALID_NAME : -1;
    if (name[0] != '/') /* a relative path: Zephyr's fs_mgmt answers invalid name */
        return FS_FILE_INVALID_NAME;
    if (strncmp(name, MOUNT, 5) != 0)
        return must_exist ? FS_FILE_NOT_FOUND : FS_MOUNT_POINT_NOT_FOUND;
    if (!fs_path_ok(name))
        return FS_FILE_INVALID_NAME;
    return 0;
}

static int upload_chunk(smp_ctx *ctx)
{
    char name[FS_PATH_MAX];
    uint64_t off = 0, len = 0;
    const uint8_t *data = NULL;
    size_t n = 0;
    bool bad = false, has_len;

    int32_t e = get_name(ctx, name, false, &bad);
    if (e < 0)
        return MGMT_ERR_EINVAL;
    if (e)
        return smp_group_error(ctx, e);
    if (!smp_req_uint(ctx, "off", &off, &bad) || !smp_req_bytes(ctx, "data", &data, &n, &bad))
        return MGMT_ERR_EINVAL;
    has_len = smp_req_uint(ctx, "len", &len, &bad);
    if (bad)
        return MGMT_ERR_EINVAL;
    if (off == 0) {
        if (!has_len)
            return MGMT_ERR_EINVAL;
        strcpy(upload.name, name);
        upload.off = 0;
    } else if (strcmp(name, upload.name) != 0 || off != upload.off) {
        cbor_put_text(&ctx->rsp, "len");
        cbor_put_uint(&ctx->rsp, strcmp(name, upload.name) == 0 ? upload.off : 0);
        return smp_group_error(ctx, FS_FILE_OFFSET_NOT_VALID);
    }
    if (off + n > port_storage_capacity() || (has_len && len > port_storage_capacity()))
        return smp_group_error(ctx, FS_FILE_WRITE_FAILED);
    if (port_storage_write(name, (size_t)off, data, n) != 0) {
        upload.name[0] = 0;
        return smp_group_error(ctx, FS_FILE_WRITE_FAILED);
    }
    upload.off = (size_t)off + n;
    cbor_put_text(&ctx->rsp, "off");
    cbor_put_uint(&ctx->rsp, upload.off);
    return MGMT_ERR_EOK;
}

/* name of an existing file and its size; 0 or a group error */
static int32_t existing(smp_ctx *ctx, char *name, size_t *size, bool *bad)
{
    int32_t e = get_name(ctx, name, true, bad);
    if (e)
        return e;
    return port_storage_size(name, size) == 0 ? 0 : FS_FILE_NOT_FOUND;
}

static int download(smp_ctx *ctx)
{
    char name[FS_PATH_MAX];
    size_t size = 0;
    uint64_t off = 0;
    bool bad = false;
    int32_t e = existing(ctx, name, &size, &bad);
    if (e < 0 || (!smp_req_uint(ctx, "off", &off, &bad)))
        return MGMT_ERR_EINVAL;
    if (e)
        return smp_group_error(ctx, e);
    if (off > size)
        return smp_group_error(ctx, FS_FILE_OFFSET_LARGER_THAN_FILE);
    size_t n = size - (size_t)off;
    if (n > SMP_MTU - DOWNLOAD_OVERHEAD)
        n = SMP_MTU - DOWNLOAD_OVERHEAD;
    cbor_put_text(&ctx->rsp, "off");
    cbor_put_uint(&ctx->rsp, off);
    if (off == 0) {
        cbor_put_text(&ctx->rsp, "len");
        cbor_put_uint(&ctx->rsp, size);
    }
    cbor_put_text(&ctx->rsp, "data");
    uint8_t *at = cbor_put_bytes_reserve(&ctx->rsp, n);
    if (!at)
        return MGMT_ERR_ENOMEM;
    if (n && port_storage_read(name, (size_t)off, at, n) != 0)
        return smp_group_error(ctx, FS_FILE_READ_FAILED);
    return MGMT_ERR_EOK;
}

static int status(smp_ctx *ctx)
{
    char name[FS_PATH_MAX];
    size_t size = 0;
    bool bad = false;
    int32_t e = existing(ctx, name, &size, &bad);
    if (e < 0)
        return MGMT_ERR_EINVAL;
    if (e)
        return smp_group_error(ctx, e);
    cbor_put_text(&ctx->rsp, "len");
    cbor_put_uint(&ctx->rsp, size);
    return MGMT_ERR_EOK;
}

static int hash(smp_ctx *ctx)
{
    char name[FS_PATH_MAX], type[16] = "crc32";
    size_t size = 0;
    uint64_t off = 0, len = 0;
    bool bad = false, has_len;
    int32_t e = existing(ctx, name, &size, &bad);
    smp_req_cstr(ctx, "type", type, sizeof(type), &bad);
    smp_req_uint(ctx, "off", &off, &bad);
    has_len = smp_req_uint(ctx, "len", &len, &bad);
    if (e < 0 || bad)
        return MGMT_ERR_EINVAL;
    bool sha = strcmp(type, "sha256") == 0;
    if (!sha && strcmp(type, "crc32") != 0)
        return smp_group_error(ctx, FS_CHECKSUM_HASH_NOT_FOUND);
    if (has_len && len == 0)
        return MGMT_ERR_EINVAL;
    if (e)
        return smp_group_error(ctx, e);
    if (size == 0)
        return smp_group_error(ctx, FS_FILE_EMPTY);
    if (off >= size)
        return smp_group_error(ctx, FS_FILE_OFFSET_LARGER_THAN_FILE);
    size_t n = size - (size_t)off;
    if (has_len && len < n)
        n = (size_t)len;

    sha256_ctx sc;
    uint32_t crc = 0;
    uint8_t buf[256];
    sha256_init(&sc);
    for (size_t pos = 0; pos < n;) {
        size_t k = n - pos < sizeof(buf) ? n - pos : sizeof(buf);
        if (port_storage_read(name, (size_t)off + pos, buf, k) != 0)
            return smp_group_error(ctx, FS_FILE_READ_FAILED);
        if (sha)
            sha256_update(&sc, buf, k);
        else
            crc = crc32_ieee_update(crc, buf, k);
        pos += k;
    }
    cbor_put_text(&ctx->rsp, "type");
    cbor_put_text(&ctx->rsp, type);
    if (off) {
        cbor_put_text(&ctx->rsp, "off");
        cbor_put_uint(&ctx->rsp, off);
    }
    cbor_put_text(&ctx->rsp, "len");
    cbor_put_uint(&ctx->rsp, n);
    cbor_put_text(&ctx->rsp, "output");
    if (sha) {
        uint8_t digest[32];
        sha256_final(&sc, digest);
        cbor_put_bytes(&ctx->rsp, digest, sizeof(digest));
    } else {
        cbor_put_uint(&ctx->rsp, crc);
    }
    return MGMT_ERR_EOK;
}

static void hash_type(cbor_enc *e, const char *name, unsigned format, unsigned size)
{
    cbor_put_text(e, name);
    cbor_map_begin(e);
    cbor_put_text(e, "format");
    cbor_put_uint(e, format);
    cbor_put_text(e, "size");
    cbor_put_uint(e, size);
    cbor_map_end(e);
}

static int hash_types(smp_ctx *ctx)
{
    cbor_put_text(&ctx->rsp, "types");
    cbor_map_begin(&ctx->rsp);
    hash_type(&ctx->rsp, "crc32", 0, 4);
    hash_type(&ctx->rsp, "sha256", 1, 32);
    cbor_map_end(&ctx->rsp);
    return MGMT_ERR_EOK;
}

static int close_file(smp_ctx *ctx)
{
    (void)ctx;
    upload.name[0] = 0;
    upload.off = 0;
    return MGMT_ERR_EOK;
}

static const smp_handler handlers[] = {
    [0] = {download, upload_chunk},
    [1] = {status, NULL},
    [2] = {hash, NULL},
    [3] = {hash_types, NULL},
    [4] = {NULL, close_file},
};

static smp_group group = {GROUP_FS, "fs mgmt", handlers, 5, legacy_rc, NULL};

void fs_mgmt_register(void)
{
    smp_register_group(&group);
}
