/* Vector table and reset for QEMU's mps2 (Cortex-M3/M4F) and mps3-an547 (Cortex-M55). */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "semihost.h"

extern uint32_t __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern void __libc_init_array(void);
extern int main(void);

void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UART0RX_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define NUM_IRQS 64

typedef void (*vector_t)(void);


__attribute__((section(".vectors"), used)) const vector_t vector_table[16 + NUM_IRQS] = {
    (vector_t)__stack_top, Reset_Handler, Default_Handler /* NMI */, HardFault_Handler,
    HardFault_Handler /* MemManage */, HardFault_Handler /* BusFault */,
    HardFault_Handler /* UsageFault */, 0, 0, 0, 0, Default_Handler /* SVC */,
    Default_Handler /* DebugMon */, 0, Default_Handler /* PendSV */, SysTick_Handler,
#define V(n) [16 + (n)] = (n) == BOARD_UART0_RX_IRQ ? UART0RX_Handler : Default_Handler
    V(0), V(1), V(2), V(3), V(4), V(5), V(6), V(7), V(8), V(9), V(10), V(11), V(12), V(13),
    V(14), V(15), V(16), V(17), V(18), V(19), V(20), V(21), V(22), V(23), V(24), V(25), V(26),
    V(27), V(28), V(29), V(30), V(31), V(32), V(33), V(34), V(35), V(36), V(37), V(38), V(39),
    V(40), V(41), V(42), V(43), V(44), V(45), V(46), V(47), V(48), V(49), V(50), V(51), V(52),
    V(53), V(54), V(55), V(56), V(57), V(58), V(59), V(60), V(61), V(62), V(63),
#undef V
};

/* newlib's __libc_init_array calls _init (crti.o is not linked: -nostartfiles). */
void _init(void) {}
void _fini(void) {}

void Reset_Handler(void) {
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access before any FP instruction */
    __asm__ volatile("dsb\n isb" ::: "memory");
#endif
    uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
    __libc_init_array();
    main();
    semihost_exit(0);
}

void Default_Handler(void) {
    semihost_stderr("tinyops-fw: unexpected interrupt, resetting\n");
    SCB_AIRCR = 0x05FA0004u;
    for (;;) {
    }
}

void HardFault_Handler(void) {
    semihost_stderr("tinyops-fw: fault, resetting\n");
    SCB_AIRCR = 0x05FA0004u;
    for (;;) {
    }
}
