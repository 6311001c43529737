"""Q16.16 fixed point: the pure-Python, integers-only reference.

This module defines, bit for bit, the results of shared_c/include/qora/q16.h.
It uses only int arithmetic (``struct`` is used solely to get at the bits of a
float in the ``from_f32`` / ``to_f32`` conveniences) and is valid MicroPython:
no typing, no f-strings, no dataclasses, no int.bit_length, no math.isqrt.

Conventions:
  * a Q16.16 value is a Python int in [INT32_MIN, INT32_MAX] holding x * 2^16;
  * every arithmetic function returns ``(value, flags)`` where flags is 0 or
    FLAG_SATURATED (1) when the result was clamped to its range;
  * rounding is to nearest, ties away from zero, unless stated otherwise.
"""

import struct

# ---- status codes (qora/status.h) -------------------------------------------
OK = 0
ERR_NULL = -1
ERR_EMPTY = -2
ERR_STRIDE = -3
ERR_K = -4
ERR_F = -5
ERR_M = -6
ERR_SCRATCH = -7
ERR_NONFINITE = -8
ERR_WEIGHTS = -9
ERR_N = -10

# most clients one aggregator call accepts (qora/status.h)
MAX_CLIENTS = 65535

FLAG_SATURATED = 1

# ---- ranges -----------------------------------------------------------------
FRAC_BITS = 16
ONE = 65536
INT32_MIN = -2147483648
INT32_MAX = 2147483647
UINT32_MAX = 4294967295
INT64_MIN = -9223372036854775808
INT64_MAX = 9223372036854775807
UINT64_MAX = 18446744073709551615
Q16_MIN = INT32_MIN
Q16_MAX = INT32_MAX


def _clamp(v, lo, hi):
    """(clamped v, flags)"""
    if v < lo:
        return lo, FLAG_SATURATED
    if v > hi:
        return hi, FLAG_SATURATED
    return v, 0


def _bitlen(v):
    """Number of bits of a non-negative int (0 for 0)."""
    n = 0
    while v >= 65536:
        v >>= 16
        n += 16
    while v:
        v >>= 1
        n += 1
    return n


# ---- integer helpers ----------------------------------------------------------
def div_round_i64(num, den):
    """num / den rounded half away from zero; num an int64, den > 0 a uint64.

    Exact (the result of |num| // den with the remainder deciding the
    rounding: up when 2 * remainder >= den)."""
    if den <= 0:
        raise ValueError("div_round_i64: den must be > 0")
    if num < 0:
        mag = -num
        neg = True
    else:
        mag = num
        neg = False
    q = mag // den
    r = mag - q * den
    if r >= den - r:
        q += 1
    if neg:
        return -q
    return q


def isqrt64(x):
    """floor(sqrt(x)) for 0 <= x <= 2^64 - 1 (digit by digit, exact)."""
    if x < 0:
        raise ValueError("isqrt64: negative")
    r = 0
    bit = 1 << 62
    while bit > x:
        bit >>= 2
    while bit:
        if x >= r + bit:
            x -= r + bit
            r = (r >> 1) + bit
        else:
            r >>= 1
        bit >>= 2
    return r


def sqrt_round_u64(x):
    """sqrt(x) rounded to nearest, clamped to 2^32 - 1.

    r = isqrt(x); r += 1 if x - r*r > r. (No ties exist for integer x: x is
    closer to (r + 1)^2 side exactly when x - r^2 >= r + 1.)"""
    r = isqrt64(x)
    if x - r * r > r:
        r += 1
    if r > UINT32_MAX:
        r = UINT32_MAX
    return r


def sat_add_i64(a, b):
    """(a + b clamped to [INT64_MIN, INT64_MAX], flags)"""
    return _clamp(a + b, INT64_MIN, INT64_MAX)


def sat_add_u64(a, b):
    """(a + b clamped to [0, UINT64_MAX], flags); a, b are uint64."""
    return _clamp(a + b, 0, UINT64_MAX)


def from_i64_sat(v):
    """(v clamped to the Q16.16 range, flags)"""
    return _clamp(v, INT32_MIN, INT32_MAX)


# ---- conversion ---------------------------------------------------------------
def from_f32_bits(u):
    """qora_q16_from_f32 on the IEEE-754 binary32 bit pattern u (a uint32).

    Returns (status, q, flags): status OK with q = x * 2^16 rounded to nearest,
    ties away from zero, saturated to int32 (flags = 1 when saturated); or
    (ERR_NONFINITE, None, 0) for NaN and +-Inf. Subnormals and -0 give 0."""
    u &= 0xFFFFFFFF
    neg = (u >> 31) & 1
    e = (u >> 23) & 0xFF
    frac = u & 0x7FFFFF
    if e == 0xFF:
        return ERR_NONFINITE, None, 0
    if e == 0:
        m = frac
        e = 1
    else:
        m = frac | 0x800000
    # |x| = m * 2^(e - 150); |x| * 2^16 = m * 2^(e - 134)
    s = e - 134
    if s >= 0:
        if s > 40:  # m >= 1 makes it >= 2^41: saturates whatever the sign
            s = 40
        mag = m << s
    else:
        sh = -s
        if sh > 40:  # m < 2^24 makes |x| * 2^16 < 2^-16: rounds to 0
            mag = 0
        else:
            mag = m >> sh
            rem = m - (mag << sh)
            if rem >= (1 << (sh - 1)):
                mag += 1
    if mag == 0:
        return OK, 0, 0
    if neg:
        q, fl = _clamp(-mag, INT32_MIN, INT32_MAX)
    else:
        q, fl = _clamp(mag, INT32_MIN, INT32_MAX)
    return OK, q, fl


def from_f32(x):
    """from_f32_bits on the binary32 nearest to the Python float x."""
    return from_f32_bits(struct.unpack("<I", struct.pack("<f", x))[0])


def to_f32_bits(q):
    """q / 2^16 as the nearest binary32 (ties to even), as its uint32 bits.

    Built from integers only: exact for |q| < 2^24, correctly rounded above.
    0 gives +0.0 (bits 0)."""
    if q == 0:
        return 0
    if q < 0:
        sign = 0x80000000
        mag = -q
    else:
        sign = 0
        mag = q
    n = _bitlen(mag)
    if n > 24:
        sh = n - 24
        m = mag >> sh
        rem = mag - (m << sh)
        half = 1 << (sh - 1)
        if rem > half or (rem == half and (m & 1)):
            m += 1
            if m == 0x1000000:
                m >>= 1
                sh += 1
        p = sh - 16
    else:
        m = mag << (24 - n)
        p = n - 24 - 16
    # value = m * 2^p with 2^23 <= m < 2^24 -> unbiased exponent p + 23
    biased = p + 23 + 127
    return sign | (biased << 23) | (m - 0x800000)


def to_f32(q):
    """to_f32_bits as a Python float."""
    return struct.unpack("<f", struct.pack("<I", to_f32_bits(q)))[0]


# ---- saturating Q16.16 arithmetic -----------------------------------------
def add(a, b):
    return _clamp(a + b, INT32_MIN, INT32_MAX)


def sub(a, b):
    return _clamp(a - b, INT32_MIN, INT32_MAX)


def mul(a, b):
    """a * b / 2^16, the exact product rounded half away from zero, saturated."""
    return _clamp(div_round_i64(a * b, ONE), INT32_MIN, INT32_MAX)


def div(a, b):
    """a * 2^16 / b rounded half away from zero, saturated.

    b == 0: Q16_MAX (a > 0), Q16_MIN (a < 0), 0 (a == 0); flag when a != 0."""
    if b == 0:
        if a > 0:
            return Q16_MAX, FLAG_SATURATED
        if a < 0:
            return Q16_MIN, FLAG_SATURATED
        return 0, 0
    num = a * ONE
    if b < 0:
        num = -num
        b = -b
    return _clamp(div_round_i64(num, b), INT32_MIN, INT32_MAX)


def sqrt(a):
    """sqrt(a) in Q16.16 = sqrt_round_u64(a * 2^16); a < 0 gives (0, flag)."""
    if a < 0:
        return 0, FLAG_SATURATED
    return sqrt_round_u64(a << 16), 0
