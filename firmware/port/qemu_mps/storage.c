/* Storage that survives a reset: each SMP path is a host file in QEMU's working directory
 * (the `--state` folder), reached through semihosting. "/lfs/model-a.tflite" is stored as
 * "lfs_model-a.tflite"; paths with other characters or ".." are refused (-ENOENT). */
#include <errno.h>
#include <string.h>

#include "semihost.h"
#include "tinyops/port.h"

#ifndef TINYOPS_STORAGE_FILE_MAX
#define TINYOPS_STORAGE_FILE_MAX (2u * 1024u * 1024u)
#endif

static int host_name(const char *path, char *out, size_t cap) {
    size_t n = 0;
    while (*path == '/') path++;
    if (*path == '\0' || strstr(path, "..") != NULL) return -ENOENT;
    for (; *path; path++) {
        char c = *path;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_' || c == '/';
        if (!ok || n + 1 >= cap) return -ENOENT;
        out[n++] = c == '/' ? '_' : c;
    }
    out[n] = '\0';
    return 0;
}

int port_storage_size(const char *path, size_t *size) {
    char name[96];
    if (host_name(path, name, sizeof name) != 0) return -ENOENT;
    int h = semihost_open(name, SH_MODE_RB);
    if (h < 0) return -ENOENT;
    long len = semihost_flen(h);
    semihost_close(h);
    if (len < 0) return -EIO;
    *size = (size_t)len;
    return 0;
}

int port_storage_read(const char *path, size_t offset, uint8_t *buf, size_t len) {
    char name[96];
    if (host_name(path, name, sizeof name) != 0) return -ENOENT;
    int h = semihost_open(name, SH_MODE_RB);
    if (h < 0) return -ENOENT;
    int rc = 0;
    if (semihost_seek(h, offset) != 0 || semihost_read(h, buf, len) != len) rc = -EIO;
    semihost_close(h);
    return rc;
}

int port_storage_write(const char *path, size_t offset, const uint8_t *buf, size_t len) {
    char name[96];
    if (host_name(path, name, sizeof name) != 0) return -ENOENT;
    if (offset + len > TINYOPS_STORAGE_FILE_MAX) return -EFBIG;
    if (offset != 0) {
        size_t size = 0;
        int rc = port_storage_size(path, &size);
        if (rc != 0) return rc;
        if (size != offset) return -EIO; /* writes append at the current end */
    }
    /* QEMU's semihosting "ab" truncates the file: extend with "r+b" and a seek instead */
    int h = semihost_open(name, offset == 0 ? SH_MODE_WB : SH_MODE_RPB);
    if (h < 0) return -EIO;
    if (offset != 0 && semihost_seek(h, offset) != 0) {
        semihost_close(h);
        return -EIO;
    }
    size_t done = len ? semihost_write(h, buf, len) : 0;
    semihost_close(h);
    return done == len ? 0 : -ENOSPC;
}

int port_storage_remove(const char *path) {
    char name[96];
    if (host_name(path, name, sizeof name) != 0) return -ENOENT;
    return semihost_remove(name) == 0 ? 0 : -ENOENT;
}

size_t port_storage_capacity(void) { return TINYOPS_STORAGE_FILE_MAX; }
