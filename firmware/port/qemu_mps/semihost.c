/* See semihost.h. On M-profile the call is `bkpt 0xAB` with r0 = operation, r1 = argument. */
#include "semihost.h"

#include <string.h>

int32_t semihost_call(int32_t op, void *arg) {
    register int32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int semihost_open(const char *path, int mode) {
    uint32_t args[3] = {(uint32_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
    return semihost_call(SH_OPEN, args);
}

int semihost_close(int handle) {
    uint32_t args[1] = {(uint32_t)handle};
    return semihost_call(SH_CLOSE, args);
}

size_t semihost_write(int handle, const void *buf, size_t len) {
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, (uint32_t)len};
    int32_t not_written = semihost_call(SH_WRITE, args);
    return not_written < 0 ? 0 : len - (size_t)not_written;
}

size_t semihost_read(int handle, void *buf, size_t len) {
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, (uint32_t)len};
    int32_t not_read = semihost_call(SH_READ, args);
    return not_read < 0 ? 0 : len - (size_t)not_read;
}

int semihost_seek(int handle, size_t pos) {
    uint32_t args[2] = {(uint32_t)handle, (uint32_t)pos};
    return semihost_call(SH_SEEK, args);
}

long semihost_flen(int handle) {
    uint32_t args[1] = {(uint32_t)handle};
    return semihost_call(SH_FLEN, args);
}

int semihost_remove(const char *path) {
    uint32_t args[2] = {(uint32_t)path, (uint32_t)strlen(path)};
    return semihost_call(SH_REMOVE, args);
}

void semihost_stderr(const char *text) {
    static int handle = -2;
    if (handle == -2) handle = semihost_open(":tt", SH_MODE_AB); /* ":tt" + append = stderr */
    if (handle >= 0) semihost_write(handle, text, strlen(text));
}

void semihost_exit(int code) {
    uint32_t args[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    semihost_call(SH_EXIT_EXTENDED, args);
    for (;;) {
    }
}
