/* The host port: port.h on Linux, so the core runs natively for tests.
 *
 *   tinyops-fw-host --state DIR [--board ID] [--capacity BYTES]
 *
 * The UART is a pseudo terminal, announced on stdout as Zephyr's native_sim does
 * ("uart connected to pseudotty: /dev/pts/N"). Storage is files under DIR ("/lfs/x" is
 * DIR/lfs/x). Reset re-executes the program and keeps the pty (its fd is passed on with
 * --pty-fd), as a board keeps its USB-serial adapter. No temperature or supply sensor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tinyops/port.h"

#define MAX_ARGS 32

static int master = -1, slave = -1;
static char state_dir[PATH_MAX] = ".";
static char board[64] = "host-native";
static size_t capacity = 1024 * 1024;
static struct timespec boot;
static uint32_t tx_dropped;
static char *args[MAX_ARGS + 3];
static char argbuf[4096];
static int nargs;

/* main(void) has no argv: read our own command line */
static void read_cmdline(void)
{
    int fd = open("/proc/self/cmdline", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, argbuf, sizeof(argbuf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return;
    argbuf[n] = 0;
    for (char *p = argbuf; p < argbuf + n && nargs < MAX_ARGS; p += strlen(p) + 1)
        args[nargs++] = p;
}

static void open_pty(void)
{
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) {
        perror("tinyops-fw-host: pty");
        exit(1);
    }
    printf("uart connected to pseudotty: %s\n", ptsname(master));
    fflush(stdout);
}

void port_init(void)
{
    int pty_fd = -1;
    read_cmdline();
    for (int i = 1; i + 1 < nargs; i++) {
        if (!strcmp(args[i], "--state"))
            snprintf(state_dir, sizeof(state_dir), "%s", args[++i]);
        else if (!strcmp(args[i], "--board"))
            snprintf(board, sizeof(board), "%s", args[++i]);
        else if (!strcmp(args[i], "--capacity"))
            capacity = (size_t)strtoul(args[++i], NULL, 10);
        else if (!strcmp(args[i], "--pty-fd"))
            pty_fd = atoi(args[++i]);
    }
    if (pty_fd >= 0) {
        master = pty_fd;
        printf("uart connected to pseudotty: %s (after reset)\n", ptsname(master));
        fflush(stdout);
    } else {
        open_pty();
    }
    /* keep the other side open (raw) so the master never reads EIO between clients */
    slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    struct termios t;
    if (slave >= 0 && tcgetattr(slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(slave, TCSANOW, &t);
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    clock_gettime(CLOCK_MONOTONIC, &boot);
}

size_t port_uart_read(uint8_t *buf, size_t cap)
{
    ssize_t n = read(master, buf, cap);
    return n > 0 ? (size_t)n : 0;
}

void port_uart_write(const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(master, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return;
        /* nobody reads: wait a little, then drop rather than hang */
        struct pollfd p = {master, POLLOUT, 0};
        if (poll(&p, 1, 200) <= 0) {
            tx_dropped++;
            return;
        }
    }
}

uint32_t port_uart_rx_dropped(void)
{
    return 0; /* the kernel's pty buffer applies back-pressure: nothing is dropped */
}

uint64_t port_micros(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - boot.tv_sec) * 1000000u +
           (uint64_t)((now.tv_nsec - boot.tv_nsec) / 1000);
}

uint32_t port_millis(void)
{
    return (uint32_t)(port_micros() / 1000u);
}

void port_idle(uint32_t max_ms)
{
    struct pollfd p = {master, POLLIN, 0};
    poll(&p, 1, (int)(max_ms > 1000 ? 1000 : max_ms));
}

/* ---- storage: files under the state directory -------------------------------------------- */
static int host_path(const char *path, char *out, size_t cap, int make_dirs)
{
    if (path[0] != '/' || strstr(path, "..") ||
        (size_t)snprintf(out, cap, "%s%s", state_dir, path) >= cap)
        return -EINVAL;
    if (make_dirs) {
        for (char *p = out + strlen(state_dir) + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = 0;
            mkdir(out, 0755);
            *p = '/';
        }
    }
    return 0;
}

int port_storage_size(const char *path, size_t *size)
{
    char hp[PATH_MAX];
    struct stat st;
    if (host_path(path, hp, sizeof(hp), 0) || stat(hp, &st) || !S_ISREG(st.st_mode))
        return -ENOENT;
    *size = (size_t)st.st_size;
    return 0;
}

int port_storage_read(const char *path, size_t offset, uint8_t *buf, size_t len)
{
    char hp[PATH_MAX];
    if (host_path(path, hp, sizeof(hp), 0))
        return -ENOENT;
    int fd = open(hp, O_RDONLY);
    if (fd < 0)
        return -ENOENT;
    ssize_t n = pread(fd, buf, len, (off_t)offset);
    close(fd);
    return n == (ssize_t)len ? 0 : -EIO;
}

int port_storage_write(const char *path, size_t offset, const uint8_t *buf, size_t len)
{
    char hp[PATH_MAX];
    size_t size = 0;
    if (offset + len > capacity)
        return -EFBIG;
    if (host_path(path, hp, sizeof(hp), 1))
        return -EINVAL;
    if (offset && (port_storage_size(path, &size) || size != offset))
        return -EIO;
    int fd = open(hp, O_WRONLY | O_CREAT | (offset ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0)
        return -EIO;
    ssize_t n = len ? write(fd, buf, len) : 0;
    int rc = n == (ssize_t)len && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    return rc;
}

int port_storage_remove(const char *path)
{
    char hp[PATH_MAX];
    if (host_path(path, hp, sizeof(hp), 0))
        return -ENOENT;
    return unlink(hp) ? -ENOENT : 0;
}

size_t port_storage_capacity(void)
{
    return capacity;
}

int port_temperature_c(float *celsius)
{
    (void)celsius;
    return -ENOTSUP;
}

int port_supply_mv(uint32_t *millivolts)
{
    (void)millivolts;
    return -ENOTSUP;
}

void port_heap(uint32_t *free_bytes, uint32_t *total_bytes)
{
    struct mallinfo2 m = mallinfo2();
    *free_bytes = (uint32_t)m.fordblks;
    *total_bytes = (uint32_t)m.arena;
}

const char *port_board_id(void)
{
    return board;
}

void port_reset(void)
{
    static char fdarg[16];
    int n = 0;
    char *argv[MAX_ARGS + 3];
    snprintf(fdarg, sizeof(fdarg), "%d", master);
    for (int i = 0; i < nargs; i++) {
        if (!strcmp(args[i], "--pty-fd") && i + 1 < nargs) {
            i++;
            continue;
        }
        argv[n++] = args[i];
    }
    argv[n++] = "--pty-fd";
    argv[n++] = fdarg;
    argv[n] = NULL;
    tcdrain(master);
    fcntl(master, F_SETFD, 0); /* the pty survives the exec */
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_NONBLOCK);
    if (slave >= 0)
        close(slave);
    fflush(stdout);
    execv("/proc/self/exe", argv);
    perror("tinyops-fw-host: reset");
    _exit(1);
}
