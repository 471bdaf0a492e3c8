#include "semihosting.h"

/* Operation numbers and exit reasons from the ARM semihosting specification. */
#define SYS_WRITE0 0x04u
#define SYS_EXIT 0x18u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN 0x20023u

/* r0 = operation, r1 = argument; the host answers in r0. The "memory"
 * clobber makes the compiler store whatever r1 points to before the trap. */
static uint32_t semihosting_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihosting_write0(const char *s)
{
    (void)semihosting_call(SYS_WRITE0, s);
}

void semihosting_exit(int32_t status)
{
    if (status == 0) {
        /* On 32-bit ARM, SYS_EXIT takes the reason itself (not a block);
         * "application exit" is success on every host. */
        (void)semihosting_call(SYS_EXIT, (const void *)ADP_STOPPED_APPLICATION_EXIT);
    } else {
        /* 32-bit SYS_EXIT cannot carry a status; SYS_EXIT_EXTENDED (semihosting
         * 2.0, supported by qemu) takes {reason, status}. */
        const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
        (void)semihosting_call(SYS_EXIT_EXTENDED, block);
        /* Still here: the host lacks the extension. Any reason other than
         * "application exit" makes it report a failure. */
        (void)semihosting_call(SYS_EXIT, (const void *)ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN);
    }
    /* Only reached if a host ignored both requests. */
    for (;;) {
    }
}
