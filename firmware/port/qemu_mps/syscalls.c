/* The newlib system calls the firmware links against: a heap between the end of .bss and
 * the stack's reserve, stdout/stderr to the host's stderr (semihosting), nothing else. */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>

#include "semihost.h"

extern char __heap_start[], __heap_end[];
static char *brk = __heap_start;

char *port_heap_brk(void) { return brk; }

void *_sbrk(ptrdiff_t incr) {
    if (brk + incr > __heap_end || brk + incr < __heap_start) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *old = brk;
    brk += incr;
    return old;
}

int _write(int fd, const char *buf, int len) {
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    static int handle = -2;
    if (handle == -2) handle = semihost_open(":tt", SH_MODE_AB);
    return handle >= 0 ? (int)semihost_write(handle, buf, (size_t)len) : len;
}

int _read(int fd, char *buf, int len) {
    (void)fd; (void)buf; (void)len;
    errno = EBADF;
    return -1;
}

int _close(int fd) { (void)fd; return -1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return -1; }
int _isatty(int fd) { return fd <= 2; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int code) { semihost_exit(code); }
