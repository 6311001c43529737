# Xtensa lx106 (ESP8266 core, call0 ABI) on QEMU's `sim` machine; see README.md here.
# Its libgcc lacks the 64-bit multiply and every division helper, so the port
# brings its own (muldi3.c, divdi3.c); it has no libc, so mem.c stands in.
CC             = xtensa-lx106-elf-gcc
ARCH_FLAGS     = -mlongcalls
TARGET_CFLAGS  = -isystem xtensa/include
TARGET_LDFLAGS =
PORT_SRCS      = xtensa/start.S xtensa/port.c xtensa/muldi3.c xtensa/divdi3.c
COMMON_SRCS    = xtensa/mem.c
LDSCRIPT       = xtensa/link.ld
# `sim` ignores the ELF entry and resets at 0x50000000, where link.ld puts start.S.
QEMU_CMD       = qemu-system-xtensa -M sim -cpu lx106 -nographic -monitor none -semihosting
