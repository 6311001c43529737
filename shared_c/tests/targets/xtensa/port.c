/*
 * port.c - host I/O for the Xtensa lx106 target under QEMU (-semihosting).
 *
 * QEMU's Xtensa semihosting is the SIMCALL instruction with the call number
 * in a2 and arguments in a3..a5; the result comes back in a2 (errno in a3).
 *   SYS_exit  = 1 : a3 = exit status          -> QEMU process exits with it
 *   SYS_write = 4 : a3 = fd, a4 = buf, a5 = len -> write(2) on the host fd
 */
#include <stddef.h>
#include <stdint.h>

void port_write(const char *s);
void port_exit(int code);

#define XT_SYS_EXIT  1
#define XT_SYS_WRITE 4

static int32_t xt_simcall(int32_t nr, int32_t arg1, int32_t arg2, int32_t arg3)
{
    register int32_t a2 __asm__("a2") = nr;
    register int32_t a3 __asm__("a3") = arg1;
    register int32_t a4 __asm__("a4") = arg2;
    register int32_t a5 __asm__("a5") = arg3;

    __asm__ __volatile__("simcall"
                         : "+r"(a2), "+r"(a3)
                         : "r"(a4), "r"(a5)
                         : "memory");
    return a2;
}

void port_write(const char *s)
{
    size_t len = 0;

    while (s[len] != '\0') {
        len++;
    }
    while (len > 0) {
        int32_t n = xt_simcall(XT_SYS_WRITE, 1, (int32_t)(uintptr_t)s, (int32_t)len);
        if (n <= 0) {
            return; /* host write failed: nothing sensible left to do */
        }
        s += n;
        len -= (size_t)n;
    }
}

void port_exit(int code)
{
    for (;;) {
        (void)xt_simcall(XT_SYS_EXIT, (int32_t)code, 0, 0);
    }
}
