/*
 * hello.c - smoke test for the Xtensa lx106 QEMU port.
 *
 * Prints a few lines, checks 32/64-bit multiplication and division of
 * negative numbers against values computed on the host (exact, truncating C
 * semantics), runs a pseudo-random checksum over 64-bit mul/div/mod and exits
 * with status 3 if everything matched (1 otherwise), proving that both the
 * text and the exit status reach the host.
 */
#include <stdint.h>

void port_write(const char *s);
void port_exit(int code);

static int failures;

static void put_i64(int64_t v)
{
    char buf[24];
    char *p = buf + sizeof buf;
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;

    *--p = '\0';
    do {
        *--p = (char)('0' + (int)(u % 10u)); /* __umoddi3 */
        u /= 10u;                            /* __udivdi3 */
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }
    port_write(p);
}

static void put_hex64(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[19];
    int i;

    buf[0] = '0';
    buf[1] = 'x';
    for (i = 0; i < 16; i++) {
        buf[2 + i] = digits[(v >> (60 - 4 * i)) & 0xFu];
    }
    buf[18] = '\0';
    port_write(buf);
}

static void check(const char *what, int64_t got, int64_t want)
{
    port_write(what);
    port_write(" = ");
    put_i64(got);
    if (got == want) {
        port_write("  ok\n");
    } else {
        port_write("  FAIL, expected ");
        put_i64(want);
        port_write("\n");
        failures++;
    }
}

/* volatile stops GCC from folding the arithmetic at compile time. */
static volatile int64_t v_a = -123456789012LL, v_b = 987654;
static volatile int64_t v_min32 = -2147483648LL;
static volatile int64_t v_c = -3037000499LL, v_d = 3037000499LL;
static volatile int64_t v_big = -1234567890123456789LL, v_pos = 1234567890123456789LL;
static volatile int64_t v_max = INT64_MAX;
static volatile uint64_t v_umax = UINT64_MAX;
static volatile int32_t v_q1 = -98304, v_q2 = 147456; /* Q16.16: -1.5, 2.25 */
static volatile int32_t v_m100 = -100, v_7 = 7;
static volatile uint32_t v_u32 = 0xFFFFFFFFu;

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Mixes products, quotients and remainders of random signed 64-bit values of
   all magnitudes; the expected value was computed by the same code on x86-64. */
static uint64_t arith_checksum(void)
{
    uint64_t state = 0x9E3779B97F4A7C15ull;
    uint64_t acc = 0;
    int i;

    for (i = 0; i < 2000; i++) {
        int64_t a = (int64_t)(xorshift64(&state) >> (i % 61));
        int64_t b = (int64_t)(xorshift64(&state) >> ((i * 7) % 63));
        if (i & 1) {
            a = (int64_t)(0u - (uint64_t)a); /* negate without signed overflow */
        }
        if (i & 2) {
            b = (int64_t)(0u - (uint64_t)b);
        }
        if (b == 0) {
            b = 3;
        }
        acc = (acc << 5 | acc >> 59) ^ ((uint64_t)a * (uint64_t)b);
        if (!(a == INT64_MIN && b == -1)) {
            acc += (uint64_t)(a / b);
            acc ^= (uint64_t)(a % b);
        }
        acc += (uint64_t)a / (uint64_t)b + (uint64_t)a % ((uint64_t)b | 1u);
        acc ^= (uint64_t)((int64_t)(int32_t)a * (int32_t)b);
    }
    return acc;
}

int main(void)
{
    uint64_t sum;

    port_write("Hello from Xtensa lx106 (call0) on qemu-system-xtensa -M sim\n");
    port_write("int64 arithmetic:\n");

    check("-123456789012 * 987654", v_a * v_b, -121932591494857848LL);
    check("-2147483648 * -2147483648", v_min32 * v_min32, 4611686018427387904LL);
    check("-3037000499 * 3037000499", v_c * v_d, -9223372030926249001LL);
    check("INT64_MAX * 3 (wraps)",
          (int64_t)((uint64_t)v_max * 3u), 9223372036854775805LL);
    check("-1234567890123456789 / 1000", v_big / 1000, -1234567890123456LL);
    check("-1234567890123456789 % 1000", v_big % 1000, -789);
    check("1234567890123456789 / -7", v_pos / -7, -176366841446208112LL);
    check("1234567890123456789 % -7", v_pos % -7, 5);
    check("-INT64_MAX / 3", -v_max / 3, -3074457345618258602LL);
    check("-INT64_MAX % 3", -v_max % 3, -1);
    check("UINT64_MAX / 10", (int64_t)(v_umax / 10u), 1844674407370955161LL);
    check("UINT64_MAX % 10", (int64_t)(v_umax % 10u), 5);
    check("Q16.16 -1.5 * 2.25 (raw)", (int64_t)v_q1 * v_q2, -14495514624LL);
    check("Q16.16 -1.5 * 2.25 >> 16", ((int64_t)v_q1 * v_q2) >> 16, -221184);

    port_write("int32 arithmetic:\n");
    check("-100 / 7", v_m100 / v_7, -14);
    check("-100 % 7", v_m100 % v_7, -2);
    check("0xFFFFFFFF / 3", (int64_t)(v_u32 / 3u), 1431655765);

    sum = arith_checksum();
    port_write("checksum of 2000 random 64-bit mul/div/mod = ");
    put_hex64(sum);
    if (sum == 0x5228264c1a21e352ull) {
        port_write("  ok\n");
    } else {
        port_write("  FAIL\n");
        failures++;
    }

    if (failures == 0) {
        port_write("all checks passed; exiting with status 3\n");
        port_exit(3);
    }
    port_write("checks FAILED; exiting with status 1\n");
    port_exit(1);
    return 1;
}
