/* The TinyOps port for QEMU's mps2/mps3 machines: UART0 with an RX interrupt into a ring,
 * SysTick time, WFI idle, SYSRESETREQ reset, heap figures. Storage: storage.c (semihosting).
 *
 * QEMU models no DWT cycle counter on these machines (DWT_CYCCNT reads 0), so the
 * microsecond clock is SysTick: 10 ms ticks plus the counter's current value. QEMU is not
 * cycle-accurate: the times are host wall time as the emulated CPU saw it. */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <string.h>

#include "board.h"
#include "tinyops/port.h"

#define RX_RING 8192u /* power of two; holds a 4 KB SMP frame in base64 (~5.5 KB) */

static volatile uint8_t rx_ring[RX_RING];
static volatile uint32_t rx_head; /* written by the ISR */
static volatile uint32_t rx_tail; /* written by port_uart_read */
static volatile uint32_t rx_dropped;
static volatile uint32_t ticks;
static bool initialised;

void UART0RX_Handler(void) {
    UART0->intstatus = 2u; /* clear first: a byte arriving during the loop raises it again */
    while (UART0->state & 2u) {
        uint8_t byte = (uint8_t)UART0->data;
        uint32_t next = (rx_head + 1u) & (RX_RING - 1u);
        if (next == rx_tail) {
            rx_dropped++;
        } else {
            rx_ring[rx_head] = byte;
            rx_head = next;
        }
    }
    if (UART0->intstatus & 8u) UART0->intstatus = 8u; /* RX overrun: counted by the host side */
}

void SysTick_Handler(void) { ticks++; }

void port_init(void) {
    if (initialised) return;
    initialised = true;
    UART0->bauddiv = BOARD_SYSCLK_HZ / 115200u;
    UART0->ctrl = 1u | 2u | 8u; /* TX, RX, RX interrupt */
    NVIC_ISER[BOARD_UART0_RX_IRQ / 32] = 1u << (BOARD_UART0_RX_IRQ % 32);
    SYST_RVR = BOARD_SYSCLK_HZ / TICK_HZ - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
}

size_t port_uart_read(uint8_t *buf, size_t cap) {
    size_t n = 0;
    while (n < cap && rx_tail != rx_head) {
        buf[n++] = rx_ring[rx_tail];
        rx_tail = (rx_tail + 1u) & (RX_RING - 1u);
    }
    return n;
}

void port_uart_write(const uint8_t *buf, size_t len) {
    for (size_t i = 0; i < len; i++) {
        while (UART0->state & 1u) {
        }
        UART0->data = buf[i];
    }
}

uint32_t port_uart_rx_dropped(void) { return rx_dropped; }

uint64_t port_micros(void) {
    uint32_t t1, t2, val, pending;
    do {
        t1 = ticks;
        val = SYST_CVR;
        pending = SCB_ICSR & (1u << 26); /* wrapped, handler not run yet (e.g. IRQs masked) */
        t2 = ticks;
    } while (t1 != t2);
    if (pending) t1++;
    uint32_t reload = SYST_RVR + 1u;
    uint64_t elapsed = (uint64_t)(reload - 1u - val) * 1000000u / BOARD_SYSCLK_HZ;
    return (uint64_t)t1 * (1000000u / TICK_HZ) + elapsed;
}

uint32_t port_millis(void) { return (uint32_t)(port_micros() / 1000u); }

void port_idle(uint32_t max_ms) {
    uint32_t start = port_millis();
    while (rx_tail == rx_head && port_millis() - start < max_ms) {
        __asm__ volatile("wfi");
    }
}

int port_temperature_c(float *celsius) {
    (void)celsius;
    return -ENOTSUP; /* QEMU's mps2 has no temperature sensor */
}

int port_supply_mv(uint32_t *millivolts) {
    (void)millivolts;
    return -ENOTSUP;
}

extern char __heap_start[], __heap_end[];
extern char *port_heap_brk(void);

void port_heap(uint32_t *free_bytes, uint32_t *total_bytes) {
    struct mallinfo mi = mallinfo();
    uint32_t never_claimed = (uint32_t)(__heap_end - port_heap_brk());
    if (free_bytes) *free_bytes = never_claimed + (uint32_t)mi.fordblks;
    if (total_bytes) *total_bytes = (uint32_t)(__heap_end - __heap_start);
}

const char *port_board_id(void) { return BOARD_ID; }

void port_reset(void) {
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ: QEMU resets the machine */
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}
