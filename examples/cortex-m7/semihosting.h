/* ARM semihosting: the debugger or emulator (here qemu with
 * -semihosting-config enable=on) services requests the program raises with
 * `bkpt 0xAB`, so the firmware can print and exit without any UART driver. */
#ifndef SEMIHOSTING_H
#define SEMIHOSTING_H

#include <stdint.h>

/* Writes a NUL-terminated string to the host's console. */
void semihosting_write0(const char *s);

/* Ends the emulation with `status` as the host's exit status (0 = success). */
__attribute__((noreturn)) void semihosting_exit(int32_t status);

#endif
