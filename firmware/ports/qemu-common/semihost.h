/* Semihosting for the QEMU boards (ARM's "Semihosting for AArch32 and AArch64" v2 operations;
 * RISC-V uses the same ones): the board's console for diagnostics, its exit status for tests,
 * and files in QEMU's working directory as the board's flash. QEMU serves it with
 * -semihosting-config enable=on,target=native. Each port supplies the trap, sh_call(). */
#ifndef QEMU_SEMIHOST_H
#define QEMU_SEMIHOST_H
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of the port (the harness reads them from QEMU's exit status). */
#define PORT_EXIT_CONFIG 2     /* no valid config blob at the config address */
#define PORT_EXIT_FAULT 3      /* HardFault / an unexpected exception */

/* The port's trap: op in r0/a0, argument block pointer in r1/a1, result back in r0/a0. */
uint32_t sh_call(uint32_t op, const void *arg);

void sh_write0(const char *s);                 /* SYS_WRITE0: a NUL-terminated string */
void sh_write_hex(const char *label, uint32_t v);
void sh_exit(int status) __attribute__((noreturn));   /* SYS_EXIT_EXTENDED */
/* Whole-file helpers: 0 on success. sh_save writes "<name>.tmp" then renames it over name,
 * so a power cut (QEMU killed) leaves the old or the new state, never half of one. */
int sh_load(const char *name, void *buf, size_t n);
int sh_save(const char *name, const void *buf, size_t n);

#endif
