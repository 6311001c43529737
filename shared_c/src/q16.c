/*
 * Qora Edge core — Q16.16 conversion, saturating arithmetic, exact integer roots.
 *
 * Everything here is integer-only. Magnitudes are handled as unsigned values and
 * the sign is applied last, so no negative value is ever shifted and no signed
 * operation can overflow. Rounding is half away from zero throughout.
 */
#include "qora/q16.h"

/* Bits of a float and back through a union, not memcpy: freestanding builds
 * turn memcpy into a real call. Reading the other member reinterprets the
 * bytes (C99 6.5.2.3, footnote 82). */
typedef union {
    uint32_t u;
    float f;
} f32_bits;

static void set_flag(uint32_t *flags)
{
    if (flags != NULL) {
        *flags |= QORA_FLAG_SATURATED;
    }
}

/* Apply a sign to a magnitude and clamp to the Q16.16 range. */
static qora_q16_t signed_sat32(int negative, uint64_t mag, uint32_t *flags)
{
    if (negative) {
        if (mag > 0x80000000u) {
            set_flag(flags);
            return INT32_MIN;
        }
        if (mag == 0x80000000u) {
            return INT32_MIN;
        }
        return (qora_q16_t)(-(int32_t)(uint32_t)mag);
    }
    if (mag > 0x7fffffffu) {
        set_flag(flags);
        return INT32_MAX;
    }
    return (qora_q16_t)(uint32_t)mag;
}

/* |v| as uint64 without overflowing on INT64_MIN. */
static uint64_t mag_i64(int64_t v)
{
    return v < 0 ? (uint64_t)(-(v + 1)) + 1u : (uint64_t)v;
}

qora_status qora_q16_from_f32(float x, qora_q16_t *out, uint32_t *flags)
{
    f32_bits bits;
    uint32_t u;
    uint32_t e;
    uint64_t mant;
    uint64_t mag;
    if (out == NULL) {
        return QORA_ERR_NULL;
    }
    bits.f = x;
    u = bits.u;
    e = (u >> 23) & 0xffu;
    if (e == 0xffu) {
        return QORA_ERR_NONFINITE;
    }
    if (e == 0u) {
        /* zero or subnormal: |x| * 2^16 < 2^-110, rounds to 0 */
        *out = 0;
        return QORA_OK;
    }
    mant = (uint64_t)((u & 0x7fffffu) | 0x800000u);
    /* x * 2^16 = mant * 2^(e - 150 + 16) */
    if (e >= 134u) {
        uint32_t s = e - 134u;
        mag = s >= 40u ? UINT64_MAX : mant << s;
    } else {
        uint32_t r = 134u - e;
        /* mant < 2^24: for r >= 25 the value is below one half and rounds to 0 */
        mag = r >= 25u ? 0u : (mant + ((uint64_t)1 << (r - 1u))) >> r;
    }
    *out = signed_sat32((u >> 31) != 0u, mag, flags);
    return QORA_OK;
}

float qora_q16_to_f32(qora_q16_t q)
{
    uint32_t mag;
    uint32_t sign;
    uint32_t mant;
    uint32_t p = 0;
    f32_bits bits;
    if (q == 0) {
        return 0.0f;
    }
    sign = q < 0 ? 0x80000000u : 0u;
    mag = q < 0 ? (uint32_t)(-(q + 1)) + 1u : (uint32_t)q;
    /* p = index of the highest set bit, by binary search (5 steps) */
    if ((mag >> 16) != 0u) {
        p += 16u;
    }
    if ((mag >> (p + 8u)) != 0u) {
        p += 8u;
    }
    if ((mag >> (p + 4u)) != 0u) {
        p += 4u;
    }
    if ((mag >> (p + 2u)) != 0u) {
        p += 2u;
    }
    if ((mag >> (p + 1u)) != 0u) {
        p += 1u;
    }
    if (p <= 23u) {
        mant = mag << (23u - p);
    } else {
        uint32_t shift = p - 23u;
        uint32_t rem = mag & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        mant = mag >> shift;
        if (rem > half || (rem == half && (mant & 1u) != 0u)) {
            mant++; /* nearest, ties to even */
            if (mant == 0x1000000u) {
                mant >>= 1;
                p++;
            }
        }
    }
    /* value = mant * 2^(p - 23) * 2^-16: biased exponent p - 16 + 127 */
    bits.u = sign | ((p + 111u) << 23) | (mant & 0x7fffffu);
    return bits.f;
}

qora_status qora_q16_from_f32_array(const float *in, size_t count, qora_q16_t *out,
                                    size_t *bad_index, uint32_t *flags)
{
    size_t i;
    if ((in == NULL || out == NULL) && count > 0u) {
        return QORA_ERR_NULL;
    }
    for (i = 0; i < count; i++) {
        if (qora_q16_from_f32(in[i], &out[i], flags) != QORA_OK) {
            if (bad_index != NULL) {
                *bad_index = i;
            }
            return QORA_ERR_NONFINITE;
        }
    }
    return QORA_OK;
}

void qora_q16_to_f32_array(const qora_q16_t *in, size_t count, float *out)
{
    size_t i;
    if (in == NULL || out == NULL) {
        return;
    }
    for (i = 0; i < count; i++) {
        out[i] = qora_q16_to_f32(in[i]);
    }
}

qora_q16_t qora_q16_from_i64_sat(int64_t v, uint32_t *flags)
{
    if (v > INT32_MAX) {
        set_flag(flags);
        return INT32_MAX;
    }
    if (v < INT32_MIN) {
        set_flag(flags);
        return INT32_MIN;
    }
    return (qora_q16_t)v;
}

qora_q16_t qora_q16_add(qora_q16_t a, qora_q16_t b, uint32_t *flags)
{
    return qora_q16_from_i64_sat((int64_t)a + (int64_t)b, flags);
}

qora_q16_t qora_q16_sub(qora_q16_t a, qora_q16_t b, uint32_t *flags)
{
    return qora_q16_from_i64_sat((int64_t)a - (int64_t)b, flags);
}

qora_q16_t qora_q16_mul(qora_q16_t a, qora_q16_t b, uint32_t *flags)
{
    int64_t p = (int64_t)a * (int64_t)b; /* |p| <= 2^62: exact */
    uint64_t mag = (mag_i64(p) + 0x8000u) >> 16;
    return signed_sat32(p < 0, mag, flags);
}

qora_q16_t qora_q16_div(qora_q16_t a, qora_q16_t b, uint32_t *flags)
{
    int64_t q;
    if (b == 0) {
        if (a == 0) {
            return 0;
        }
        set_flag(flags);
        return a > 0 ? INT32_MAX : INT32_MIN;
    }
    /* a * 2^16 fits in 48 bits; divide by |b| and apply b's sign afterwards */
    q = qora_div_round_i64((int64_t)a * 65536, mag_i64((int64_t)b));
    if (b < 0) {
        q = -q; /* |q| <= 2^47 */
    }
    return qora_q16_from_i64_sat(q, flags);
}

uint32_t qora_isqrt64(uint64_t x)
{
    /* Digit-by-digit square root: shifts and subtractions only, exact. */
    uint64_t rem = x;
    uint64_t res = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > rem) {
        bit >>= 2;
    }
    while (bit != 0u) {
        if (rem >= res + bit) {
            rem -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)res;
}

uint32_t qora_sqrt_round_u64(uint64_t x)
{
    uint32_t r = qora_isqrt64(x);
    uint64_t r2 = (uint64_t)r * r;
    /* round up when x - r^2 > r, i.e. x >= (r + 1/2)^2 (x is an integer) */
    if (x - r2 > (uint64_t)r) {
        return r == UINT32_MAX ? UINT32_MAX : r + 1u;
    }
    return r;
}

qora_q16_t qora_q16_sqrt(qora_q16_t a, uint32_t *flags)
{
    if (a < 0) {
        set_flag(flags);
        return 0;
    }
    /* sqrt(a / 2^16) * 2^16 = sqrt(a * 2^16) < 2^24 */
    return (qora_q16_t)qora_sqrt_round_u64((uint64_t)(uint32_t)a << 16);
}

/* q = a / b and *r = a % b for uint64 (b > 0).
 * On 64-bit hosts the CPU divides. On 32-bit targets a 64-bit `/` pulls in
 * libgcc's __udivmoddi4 (0.7 KiB on Cortex-M, 2.3 KiB on RV32, absent on
 * lx106), so divide here: by 16-bit divisors (the trimmed mean's keep count,
 * Krum's m) in four 32-bit steps, by larger ones bit by bit.
 * QORA_PORTABLE_DIV forces the 32-bit-target code on a 64-bit host (tests). */
static uint64_t divmod_u64(uint64_t a, uint64_t b, uint64_t *r)
{
#if SIZE_MAX > 0xFFFFFFFFu && !defined(QORA_PORTABLE_DIV)
    *r = a % b;
    return a / b;
#else
    uint64_t q = 0;
    uint64_t rem = 0;
    int bit;
    if (b <= 0xFFFFu) {
        uint32_t d = (uint32_t)b;
        uint32_t part = 0;
        for (bit = 48; bit >= 0; bit -= 16) {
            /* part < d < 2^16, so the next 32-bit dividend cannot overflow */
            uint32_t cur = (part << 16) | (uint32_t)((a >> bit) & 0xFFFFu);
            q = (q << 16) | (uint64_t)(cur / d);
            part = cur % d;
        }
        *r = part;
        return q;
    }
    for (bit = 63; bit >= 0; bit--) {
        /* rem < b before the shift, so the shifted value is below 2b; when it
         * reaches 2^64 (top set) it is certainly >= b, and rem - b, taken
         * modulo 2^64, is still the right remainder. */
        uint64_t top = rem >> 63;
        rem = (rem << 1) | ((a >> bit) & 1u);
        q <<= 1;
        if (top != 0u || rem >= b) {
            rem -= b;
            q |= 1u;
        }
    }
    *r = rem;
    return q;
#endif
}

int64_t qora_div_round_i64(int64_t num, uint64_t den)
{
    uint64_t mag = mag_i64(num);
    uint64_t q;
    uint64_t r;
    if (den == 0u) {
        return 0; /* documented precondition; never divide by zero */
    }
    q = divmod_u64(mag, den, &r);
    if (r >= den - r) {
        q++; /* 2r >= den: half or more rounds away from zero */
    }
    if (num < 0) {
        return q == 0u ? 0 : -(int64_t)(q - 1u) - 1;
    }
    return (int64_t)q;
}

int64_t qora_sat_add_i64(int64_t a, int64_t b, uint32_t *flags)
{
    if (b > 0 && a > INT64_MAX - b) {
        set_flag(flags);
        return INT64_MAX;
    }
    if (b < 0 && a < INT64_MIN - b) {
        set_flag(flags);
        return INT64_MIN;
    }
    return a + b;
}

uint64_t qora_sat_add_u64(uint64_t a, uint64_t b, uint32_t *flags)
{
    uint64_t s = a + b;
    if (s < a) {
        set_flag(flags);
        return UINT64_MAX;
    }
    return s;
}
