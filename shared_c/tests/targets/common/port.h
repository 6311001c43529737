/*
 * port.h - the only interface between a portable bare-metal test program and
 * the target it runs on (QEMU + semihosting; see ../README.md).
 *
 * Each target directory (cortex-m4/, rv32/, xtensa/, ...) provides exactly
 * these two functions in its port.c.  The startup code of every port calls
 * main() after setting up the stack and zeroing .bss; if main() returns, its
 * return value is passed to port_exit().
 */
#ifndef QORA_TARGET_PORT_H
#define QORA_TARGET_PORT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Write a NUL-terminated string to the host's stdout.  No newline is added. */
void port_write(const char *s);

/*
 * Stop the program and make the QEMU process exit with status `code`
 * (the host sees code & 0xff).  Never returns.
 */
void port_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* QORA_TARGET_PORT_H */
