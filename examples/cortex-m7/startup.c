/* Reset and fault handling for the Cortex-M7: the vector table, the C runtime
 * set-up the toolchain's crt0 would do (no libc here), the FPU, a stack guard,
 * and fault handlers that report over semihosting. */
#include <stdint.h>

#include "common.h"
#include "semihosting.h"

/* Exit status of the emulation when a fault or an unexpected exception is
 * taken (main returns 0 or 1 itself). */
#define EXIT_FAULT 2

/* System control block registers (ARMv7-M architecture reference manual). */
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define MPU_CTRL (*(volatile uint32_t *)0xE000ED94u)
#define MPU_RNR (*(volatile uint32_t *)0xE000ED98u)
#define MPU_RBAR (*(volatile uint32_t *)0xE000ED9Cu)
#define MPU_RASR (*(volatile uint32_t *)0xE000EDA0u)

#define SHCSR_MEMFAULTENA (1u << 16)
#define SHCSR_BUSFAULTENA (1u << 17)
#define SHCSR_USGFAULTENA (1u << 18)
#define CFSR_MSTKERR (1u << 4)
#define CFSR_MMARVALID (1u << 7)
#define CFSR_STKERR (1u << 12)
#define CFSR_BFARVALID (1u << 15)

/* Defined by link.ld. */
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_guard[], __stack_top[];

int main(void);
void reset_handler(void);
void fault_entry(void);

/* Only the 16 system exceptions: the firmware enables no interrupt, so no
 * external vector can be taken. Every exception but reset goes to the fault
 * reporter, which names it from IPSR. */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top, /* initial main stack pointer */
    reset_handler,
    fault_entry, /* NMI */
    fault_entry, /* HardFault */
    fault_entry, /* MemManage */
    fault_entry, /* BusFault */
    fault_entry, /* UsageFault */
    0,
    0,
    0,
    0,
    fault_entry, /* SVCall */
    fault_entry, /* DebugMonitor */
    0,
    fault_entry, /* PendSV */
    fault_entry, /* SysTick */
};

/* Makes the 32 bytes below the stack inaccessible (MPU region 0, no access,
 * execute-never); everything else keeps the default memory map
 * (PRIVDEFENA). */
static void stack_guard_enable(void)
{
    MPU_RNR = 0;
    MPU_RBAR = (uint32_t)__stack_guard;
    /* XN, AP = no access, SIZE = 4 (2^(4+1) = 32 bytes), ENABLE. */
    MPU_RASR = (1u << 28) | (0u << 24) | (4u << 1) | 1u;
    MPU_CTRL = (1u << 2) | 1u;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

void reset_handler(void)
{
    /* The library and this code use the hard-float ABI: grant full access to
     * the FPU (CP10, CP11) before any floating-point instruction runs. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0;
    }

    stack_guard_enable();
    /* Report MemManage, BusFault and UsageFault under their own names rather
     * than escalated to HardFault. */
    SCB_SHCSR |= SHCSR_MEMFAULTENA | SHCSR_BUSFAULTENA | SHCSR_USGFAULTENA;

    semihosting_exit(main());
}

static const char *exception_name(uint32_t number)
{
    switch (number) {
    case 2:
        return "NMI";
    case 3:
        return "HardFault";
    case 4:
        return "MemManage fault";
    case 5:
        return "BusFault";
    case 6:
        return "UsageFault";
    case 11:
        return "SVCall";
    case 12:
        return "DebugMonitor";
    case 14:
        return "PendSV";
    case 15:
        return "SysTick";
    default:
        return "unexpected interrupt";
    }
}

static void write_hex(const char *label, uint32_t value)
{
    char hex[11];
    semihosting_write0(label);
    semihosting_write0(fmt_hex32(hex, value));
}

/* `frame`: the stack pointer at the time of the exception, where the core
 * pushed r0-r3, r12, lr, pc and xPSR, unless pushing them faulted. */
__attribute__((used, noreturn)) static void fault_report(const uint32_t *frame)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    uint32_t cfsr = SCB_CFSR;
    semihosting_write0("fault: ");
    semihosting_write0(exception_name(ipsr & 0x1ffu));
    write_hex(" CFSR=", cfsr);
    write_hex(" HFSR=", SCB_HFSR);
    if (cfsr & CFSR_MMARVALID) {
        write_hex(" MMFAR=", SCB_MMFAR);
    }
    if (cfsr & CFSR_BFARVALID) {
        write_hex(" BFAR=", SCB_BFAR);
    }
    if (cfsr & (CFSR_MSTKERR | CFSR_STKERR)) {
        semihosting_write0(" (stacking failed: stack overflow?)");
    } else {
        write_hex(" PC=", frame[6]);
        write_hex(" LR=", frame[5]);
    }
    semihosting_write0("\n");
    semihosting_exit(EXIT_FAULT);
}

/* The reporter's own stack: after a stack overflow the main stack is
 * unusable, and running on the main stack's top could overwrite the
 * exception frame being reported. */
#define FAULT_STACK_BYTES 512
#define STRINGIFY(x) #x
#define XSTRINGIFY(x) STRINGIFY(x)
__attribute__((used, aligned(8))) static uint8_t fault_stack[FAULT_STACK_BYTES];

/* Picks the stack the exception frame went to (EXC_RETURN bit 2), then moves
 * to the reporter's stack; nothing returns from here. */
__attribute__((naked)) void fault_entry(void)
{
    __asm__ volatile("tst lr, #4\n\t"
                     "ite eq\n\t"
                     "mrseq r0, msp\n\t"
                     "mrsne r0, psp\n\t"
                     "ldr r1, =fault_stack + " XSTRINGIFY(FAULT_STACK_BYTES) "\n\t"
                     "mov sp, r1\n\t"
                     "b fault_report\n\t"
                     ".ltorg");
}
