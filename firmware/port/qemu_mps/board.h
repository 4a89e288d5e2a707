/* The QEMU mps2/mps3 machines this port runs on: one block of facts per machine.
 * The build passes -DTINYOPS_MACHINE_AN385 (Cortex-M3), _AN386 (Cortex-M4F) or _AN547 (M55). */
#ifndef TINYOPS_QEMU_BOARD_H
#define TINYOPS_QEMU_BOARD_H

#include <stdint.h>

#if defined(TINYOPS_MACHINE_AN547)
#define BOARD_ID "qemu-mps3-an547"
#define BOARD_UART0_BASE 0x49303000u /* CMSDK UART0 of the SSE-300 subsystem */
#define BOARD_UART0_RX_IRQ 33        /* QEMU mps2-tz: UART0 RX = SSE IRQ 33 */
#define BOARD_SYSCLK_HZ 32000000u
#elif defined(TINYOPS_MACHINE_AN386)
#define BOARD_ID "qemu-mps2-an386"
#define BOARD_UART0_BASE 0x40004000u
#define BOARD_UART0_RX_IRQ 0
#define BOARD_SYSCLK_HZ 25000000u
#else
#define BOARD_ID "qemu-mps2-an385"
#define BOARD_UART0_BASE 0x40004000u
#define BOARD_UART0_RX_IRQ 0
#define BOARD_SYSCLK_HZ 25000000u
#endif

/* CMSDK APB UART registers */
typedef struct {
    volatile uint32_t data;
    volatile uint32_t state;     /* bit0 TX full, bit1 RX full, bit2/3 TX/RX overrun */
    volatile uint32_t ctrl;      /* bit0 TX en, bit1 RX en, bit2 TX irq, bit3 RX irq, bit5 RX ovr irq */
    volatile uint32_t intstatus; /* write 1 to clear: bit0 TX, bit1 RX, bit2 TX ovr, bit3 RX ovr */
    volatile uint32_t bauddiv;
} cmsdk_uart_t;

#define UART0 ((cmsdk_uart_t *)BOARD_UART0_BASE)

/* Cortex-M system registers used by the port (CMSIS names, without pulling in a device header) */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

#define TICK_HZ 100u /* SysTick period 10 ms; finer time comes from the counter value */

#endif
