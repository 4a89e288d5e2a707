/* Arm semihosting (QEMU: -semihosting-config enable=on,target=native): host files for the
 * port's storage, the host's stderr for TFLM's log, and an exit code for the self-test. */
#ifndef TINYOPS_SEMIHOST_H
#define TINYOPS_SEMIHOST_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { SH_OPEN = 0x01, SH_CLOSE = 0x02, SH_WRITE = 0x05, SH_READ = 0x06, SH_SEEK = 0x0A,
       SH_FLEN = 0x0C, SH_REMOVE = 0x0E, SH_EXIT = 0x18, SH_EXIT_EXTENDED = 0x20 };
enum { SH_MODE_RB = 1, SH_MODE_RPB = 3, SH_MODE_WB = 5, SH_MODE_AB = 9 };

int32_t semihost_call(int32_t op, void *arg);
int semihost_open(const char *path, int mode);     /* handle >= 0, or -1 */
int semihost_close(int handle);
size_t semihost_write(int handle, const void *buf, size_t len); /* bytes written */
size_t semihost_read(int handle, void *buf, size_t len);        /* bytes read */
int semihost_seek(int handle, size_t pos);
long semihost_flen(int handle);
int semihost_remove(const char *path);
void semihost_stderr(const char *text);
void semihost_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif
