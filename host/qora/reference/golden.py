"""Golden vectors for the C core, generated from the pure-Python reference.

Run as ``python -m qora.reference.golden OUT.h`` (from a tree where ``qora``
is importable, e.g. ``PYTHONPATH=host``) to write the C header that
shared_c/tests/vectors/run_vectors.c includes as "golden_vectors.h"; the
committed copy is shared_c/tests/vectors/golden_vectors.h. The output is a
pure function of this file and the reference: no clock, no randomness.

``expected_lines()`` gives the exact lines (without newlines) that
qora_run_vectors() emits on a target where every case passes:
    case <name> ok crc=<8 lower-case hex>     one per case, in header order
    summary <passed>/<total>

Canonical serialization (the CRC is over these bytes, all little-endian):
  aggregator case:
    status int32, flags uint32, and when status == 0:
    out[d] int32, dev_sq[n] uint64, dev[n] uint32 (qora_deviation_finish_q16
    of dev_sq), and for krum / multi_krum: scores[n] uint64, selected[m] uint32.
  scalar groups (one case per function, entries in order):
    q16_from_f32      status int32, q int32 (SENTINEL when the call must leave
                      *out untouched), flags uint32
    q16_to_f32        bits uint32
    q16_add/sub/mul/div/sqrt, q16_from_i64_sat     r int32, flags uint32
    isqrt64           isqrt uint32, sqrt_round uint32
    div_round_i64     r int64
    sat_add_i64       r int64, flags uint32
    sat_add_u64       r uint64, flags uint32
    q16_from_f32_array   per array: status int32, flags uint32, then
                      bad_index uint32 on error; out[0..converted-1] int32
    q16_to_f32_array  bits uint32 of every element
  flags are serialized without the runner's canary bit (FLAG_CANARY).
CRC-32: IEEE 802.3 (reflected, polynomial 0xEDB88320, init 0xFFFFFFFF,
final xor 0xFFFFFFFF), i.e. zlib.crc32.

PRNG cases store only (seed, n, d, lo_bits, w_bits) and the CRC; the data
comes from reference.aggregate.prng_case (xorshift32, defined there).
"""

import struct
import sys
import zlib

from . import aggregate as A
from . import q16 as Q

FORMAT_VERSION = 1
SENTINEL = 0x5A5A5A5A  # what the runner puts in *out before q16_from_f32
FLAG_CANARY = 0x100    # set in every flags word before a call; must survive

I32_MIN = Q.INT32_MIN
I32_MAX = Q.INT32_MAX
I64_MIN = Q.INT64_MIN
I64_MAX = Q.INT64_MAX
U64_MAX = Q.UINT64_MAX
ONE = Q.ONE

FEDAVG = 0
TRIMMED_MEAN = 1
MEDIAN = 2
KRUM = 3
MULTI_KRUM = 4
METHOD_NAMES = ["QORA_GV_FEDAVG", "QORA_GV_TRIMMED_MEAN", "QORA_GV_MEDIAN",
                "QORA_GV_KRUM", "QORA_GV_MULTI_KRUM"]


# ---- serialization --------------------------------------------------------------
def _i32(v):
    return struct.pack("<i", v)


def _u32(v):
    return struct.pack("<I", v)


def _i64(v):
    return struct.pack("<q", v)


def _u64(v):
    return struct.pack("<Q", v)


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def _xorshift_stream(seed):
    s = seed
    while True:
        s = A.xorshift32(s)
        yield s


# ---- scalar cases ----------------------------------------------------------------
def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def from_f32_inputs():
    pats = [
        0x00000000, 0x80000000,              # +0, -0
        0x00000001, 0x80000001,              # smallest subnormals
        0x007FFFFF, 0x807FFFFF,              # largest subnormals
        0x00800000, 0x80800000,              # smallest normals
        0x37000000, 0xB7000000,              # +-2^-17: a tie at 0.5 ulp -> +-1
        0x36FFFFFF, 0xB6FFFFFF,              # just below the tie -> 0
        0x37000001, 0xB7000001,              # just above the tie -> +-1
        0x36800000, 0xB6800000,              # +-2^-18 -> 0
    ]
    ulp = 2.0 ** -16
    for k in (1.5, 2.5, 3.5, 1000.5, 1.25, 1.75, 7.0):
        pats.append(f32_bits(k * ulp))
        pats.append(f32_bits(-k * ulp))
    for x in (1.0, -1.0, 0.5, -0.5, 3.14159265, -3.14159265, 1.0 / 3, -1.0 / 3,
              0.1, -0.1, 100.0, -12345.678, 32767.5, -32767.5):
        pats.append(f32_bits(x))
    pats += [
        0x46FFFFFF, 0xC6FFFFFF,              # +-(32768 - 2^-9): in range
        0x47000000,                          # 32768.0 -> saturates to INT32_MAX
        0xC7000000,                          # -32768.0 -> INT32_MIN exactly, no flag
        0xC7000001,                          # -(32768 + 2^-8) -> saturates
        0x47800000, 0xC7800000,              # +-65536
        f32_bits(1e10), f32_bits(-1e10),
        0x7F7FFFFF, 0xFF7FFFFF,              # +-FLT_MAX
        0x7F800000, 0xFF800000,              # +-Inf
        0x7FC00000, 0xFFC00000,              # quiet NaNs
        0x7F800001, 0x7FBFFFFF, 0xFFFFFFFF,  # signalling / other NaNs
    ]
    g = _xorshift_stream(0x1234567)
    for _ in range(48):
        r = next(g)
        e = 100 + r % 47               # exponents around the Q16.16 range
        mant = next(g) & 0x7FFFFF
        sign = (r >> 31) & 1
        pats.append((sign << 31) | (e << 23) | mant)
    return pats


def to_f32_inputs():
    vals = [0, 1, -1, 2, -2, 3, ONE, -ONE, ONE + 1, I32_MAX, I32_MIN, I32_MIN + 1,
            (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 24) + 2, (1 << 24) + 3,
            -((1 << 24) + 1), -((1 << 24) + 3), (1 << 25) + 2, (1 << 25) + 6,
            (1 << 25) + 3, -((1 << 25) + 5), 0x7FFFFFC0, 0x7FFFFF80, 0x7FFFFF7F,
            0x7FFFFF81, -0x7FFFFF80, -0x7FFFFFC0, 12345678, -87654321]
    g = _xorshift_stream(0xC0FFEE)
    for _ in range(32):
        r = next(g)
        vals.append((r >> (r & 15)) - (1 << 31 >> (r & 15)))
    return vals


ARITH_EDGES = [0, 1, -1, 3, -3, 32768, -32768, ONE, -ONE, 2 * ONE, 0x40000000,
               -0x40000000, I32_MAX, I32_MIN, I32_MIN + 1, 12345]


def arith_pairs(seed):
    pairs = [(a, b) for a in ARITH_EDGES for b in ARITH_EDGES]
    g = _xorshift_stream(seed)
    for _ in range(24):
        a = next(g) - (1 << 31)
        b = (next(g) - (1 << 31)) >> (next(g) & 15)
        pairs.append((a, b))
    return pairs


def sqrt_inputs():
    vals = [0, 1, 2, 3, 4, ONE, 2 * ONE, 4 * ONE, 9 * ONE, I32_MAX, I32_MAX - 1,
            -1, I32_MIN, -ONE, 12345, 0x10000000]
    g = _xorshift_stream(0xABCDEF)
    for _ in range(16):
        vals.append(next(g) >> 1)
    return vals


def isqrt_inputs():
    vals = [0, 1, 2, 3, 4, 5, 8, 9, 10, U64_MAX, U64_MAX - 1,
            (1 << 64) - (1 << 32), (1 << 64) - (1 << 32) + 1, (1 << 64) - (1 << 32) - 1,
            1 << 62, 1 << 63, (1 << 63) - 1]
    for r in (2, 3, 255, 65535, 65536, 1 << 31, (1 << 32) - 1, 3037000499, 123456789):
        for x in (r * r - 1, r * r, r * r + 1, r * r + r, r * r + r + 1):
            if 0 <= x <= U64_MAX and x not in vals:
                vals.append(x)
    g = _xorshift_stream(0x5EED)
    for _ in range(16):
        vals.append((next(g) << 32) | next(g))
    return vals


def div_round_inputs():
    pairs = [(1, 2), (-1, 2), (3, 2), (-3, 2), (5, 2), (-5, 2), (1, 3), (-1, 3),
             (2, 3), (-2, 3), (0, 5), (7, 7), (-7, 7), (1, U64_MAX), (-1, U64_MAX),
             (I64_MIN, 1), (I64_MIN, 2), (I64_MIN, 3), (I64_MIN, U64_MAX),
             (I64_MIN, 1 << 63), (I64_MIN, (1 << 63) + 1), (I64_MAX, 1), (I64_MAX, 2),
             (I64_MAX, U64_MAX), (I64_MAX, 1 << 63), (I64_MIN + 1, 2), (I64_MIN + 1, 4),
             (-(1 << 62), 1 << 63), ((1 << 62), 1 << 63), (-15, 10), (15, 10),
             (-25, 10), (-24, 10), (-26, 10)]
    g = _xorshift_stream(0xD1D1)
    for _ in range(16):
        num = ((next(g) << 32) | next(g)) - (1 << 63)
        den = ((next(g) << 32) | next(g)) >> (next(g) & 63)
        if den == 0:
            den = 1
        pairs.append((num, den))
    return pairs


def sat_i64_inputs():
    return [(1, 2), (-5, 3), (I64_MAX, 1), (I64_MIN, -1), (I64_MAX, I64_MIN),
            (I64_MAX, I64_MAX), (I64_MIN, I64_MIN), (I64_MAX - 1, 1), (I64_MIN + 1, -1),
            (I64_MIN + 1, -2), (I64_MAX, 0), (0, I64_MIN), (1 << 62, 1 << 62),
            (-(1 << 62), -(1 << 62) - 1)]


def sat_u64_inputs():
    return [(0, 0), (1, 2), (U64_MAX, 0), (U64_MAX, 1), (1 << 63, 1 << 63),
            (1 << 63, (1 << 63) - 1), (U64_MAX, U64_MAX), (U64_MAX - 5, 5), (U64_MAX - 5, 6)]


def from_i64_inputs():
    return [0, -1, 1, I32_MAX, I32_MAX + 1, I32_MIN, I32_MIN - 1, I64_MAX, I64_MIN,
            1 << 40, -(1 << 40)]


NAN = 0x7FC00000
INF = 0x7F800000
F32_ARRAYS = [
    [f32_bits(1.0), f32_bits(-2.5), f32_bits(40000.0), f32_bits(0.25), NAN,
     f32_bits(3.0), f32_bits(4.0)],
    [0xFF800000, f32_bits(1.0)],
    [f32_bits(1.0), f32_bits(-1e9), f32_bits(2.0 ** -17), 0x80000000, 0x00000001,
     f32_bits(-7.75)],
    [f32_bits(5.5), INF],
]


def scalar_groups():
    """[(name, kind, entries, blob)] where entries are the tuples stored in the
    header and blob the canonical serialization of the expected results."""
    groups = []

    ents = []
    blob = b""
    for u in from_f32_inputs():
        st, q, fl = Q.from_f32_bits(u)
        if q is None:
            q = SENTINEL
        ents.append((u, st, q, fl))
        blob += _i32(st) + _i32(q) + _u32(fl)
    groups.append(("q16_from_f32", "from_f32", ents, blob))

    ents = []
    blob = b""
    for q in to_f32_inputs():
        b = Q.to_f32_bits(q)
        ents.append((q, b))
        blob += _u32(b)
    groups.append(("q16_to_f32", "to_f32", ents, blob))

    for name, fn, seed in (("add", Q.add, 11), ("sub", Q.sub, 12), ("mul", Q.mul, 13),
                           ("div", Q.div, 14)):
        ents = []
        blob = b""
        for a, b in arith_pairs(seed):
            r, fl = fn(a, b)
            ents.append((a, b, r, fl))
            blob += _i32(r) + _u32(fl)
        groups.append(("q16_" + name, name, ents, blob))

    ents = []
    blob = b""
    for a in sqrt_inputs():
        r, fl = Q.sqrt(a)
        ents.append((a, 0, r, fl))
        blob += _i32(r) + _u32(fl)
    groups.append(("q16_sqrt", "sqrt", ents, blob))

    ents = []
    blob = b""
    for v in from_i64_inputs():
        r, fl = Q.from_i64_sat(v)
        ents.append((v, r, fl))
        blob += _i32(r) + _u32(fl)
    groups.append(("q16_from_i64_sat", "from_i64", ents, blob))

    ents = []
    blob = b""
    for x in isqrt_inputs():
        a = Q.isqrt64(x)
        b = Q.sqrt_round_u64(x)
        ents.append((x, a, b))
        blob += _u32(a) + _u32(b)
    groups.append(("isqrt64", "isqrt", ents, blob))

    ents = []
    blob = b""
    for num, den in div_round_inputs():
        r = Q.div_round_i64(num, den)
        ents.append((num, den, r))
        blob += _i64(r)
    groups.append(("div_round_i64", "div_round", ents, blob))

    ents = []
    blob = b""
    for a, b in sat_i64_inputs():
        r, fl = Q.sat_add_i64(a, b)
        ents.append((a, b, r, fl))
        blob += _i64(r) + _u32(fl)
    groups.append(("sat_add_i64", "sat_i64", ents, blob))

    ents = []
    blob = b""
    for a, b in sat_u64_inputs():
        r, fl = Q.sat_add_u64(a, b)
        ents.append((a, b, r, fl))
        blob += _u64(r) + _u32(fl)
    groups.append(("sat_add_u64", "sat_u64", ents, blob))

    ents = []
    blob = b""
    for arr in F32_ARRAYS:
        st = Q.OK
        flags = 0
        outs = []
        bad = 0
        for idx, u in enumerate(arr):
            s, q, fl = Q.from_f32_bits(u)
            if s != Q.OK:
                st = s
                bad = idx
                break
            flags |= fl
            outs.append(q)
        ents.append((arr, st, flags, bad, outs))
        blob += _i32(st) + _u32(flags)
        if st != Q.OK:
            blob += _u32(bad)
        for q in outs:
            blob += _i32(q)
    groups.append(("q16_from_f32_array", "from_f32_array", ents, blob))

    ents = []
    blob = b""
    for q in to_f32_inputs():
        b = Q.to_f32_bits(q)
        ents.append((q, b))
        blob += _u32(b)
    groups.append(("q16_to_f32_array", "to_f32_array", ents, blob))
    return groups


# ---- aggregator cases ------------------------------------------------------------
def _case(name, method, rows=None, d=None, param=0, m=0, weights=None, stride=None,
          seed=0, n=None, lo_bits=0, w_bits=0):
    if rows is not None:
        n = len(rows)
        if d is None:
            d = len(rows[0])
    if method == KRUM:
        m = 1
    if stride is None:
        stride = d
    return {"name": name, "method": method, "rows": rows, "n": n, "d": d,
            "param": param, "m": m, "weights": weights, "stride": stride,
            "seed": seed, "lo_bits": lo_bits, "w_bits": w_bits}


def _col(*cols):
    """rows from columns: _col([a0, a1, a2], [b0, b1, b2]) -> [[a0, b0], ...]"""
    n = len(cols[0])
    return [[c[i] for c in cols] for i in range(n)]


MX = I32_MAX
MN = I32_MIN


def explicit_cases():
    c = []
    # -- fedavg
    c.append(_case("fedavg_round_thirds", FEDAVG,
                   _col([1, 0, 0], [1, 1, 0], [-1, 0, 0], [-1, -1, 0], [2, 2, 1], [-2, -2, -1],
                        [ONE, 2 * ONE, -ONE], [MX, MX, MX], [MN, MN, MN], [MX, MN, 0])))
    c.append(_case("fedavg_ties_half", FEDAVG,
                   _col([1, 0], [-1, 0], [3, 0], [-3, 0], [MX, MN], [MN, MN + 1]), stride=9))
    c.append(_case("fedavg_weights", FEDAVG,
                   [[ONE, -3, 7, MX], [2 * ONE, 5, -7, MX], [-ONE * 100, 1, 1, MN],
                    [ONE // 2, -1, 0, 0]], weights=[1, 2, 0, 5]))
    c.append(_case("fedavg_weights_one_nonzero", FEDAVG,
                   [[1, 2, 3], [4, 5, 6], [-7, -8, -9]], weights=[0, 0, 3]))
    c.append(_case("fedavg_weights_all_zero", FEDAVG,
                   [[1, 2, 3], [4, 5, 6], [7, 8, 9]], weights=[0, 0, 0]))
    c.append(_case("fedavg_acc_saturate_then_down", FEDAVG,
                   [[MX, MN, MX, 5], [MX, MN, MX, 6], [MN, MX, MX, -7]],
                   weights=[0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]))
    c.append(_case("fedavg_acc_saturate_high", FEDAVG,
                   [[MX, MN, 1], [MX, MN, 2]], weights=[0xFFFFFFFF, 0xFFFFFFFF], stride=4))
    # weight sums at 2^32 (exact without saturation) and just above (saturates)
    c.append(_case("fedavg_weights_total_2p32", FEDAVG,
                   [[MN, MX, MN, 1], [MN, MX, MX, -1]], weights=[0x80000000, 0x80000000]))
    c.append(_case("fedavg_weights_total_2p32_plus1", FEDAVG,
                   [[MN, MX, MN, 1], [MN, MX, MX, -1]], weights=[0x80000000, 0x80000001]))
    c.append(_case("fedavg_dev_saturate", FEDAVG,
                   [[MN, MN, 0], [MX, MX, 0]], weights=[1, 0]))
    c.append(_case("fedavg_n1_d1", FEDAVG, [[-12345]]))
    c.append(_case("fedavg_d1", FEDAVG, [[-5], [2], [2], [-1]]))
    c.append(_case("fedavg_empty_n0", FEDAVG, [], d=3))
    c.append(_case("fedavg_empty_d0", FEDAVG, [[], [], []], d=0))
    c.append(_case("fedavg_stride_small", FEDAVG, [[1, 2, 3], [4, 5, 6]], stride=2))
    # -- trimmed mean
    c.append(_case("trimmed_mean_k0_mean", TRIMMED_MEAN,
                   _col([1, 1, 0], [-1, -1, 0], [-2, 0, 0], [MX, MX, MX], [MN, MN, MN],
                        [MN, MX, MN]), param=0))
    c.append(_case("trimmed_mean_k1_n5", TRIMMED_MEAN,
                   _col([1, 2, 3, 4, 1000], [-ONE, ONE, 3, 3, 3], [MN, MN, 0, MX, MX],
                        [5, 5, 5, 5, 5], [-1, -2, -2, -1, 0]), param=1, stride=7))
    c.append(_case("trimmed_mean_bound_n5_k2", TRIMMED_MEAN,
                   _col([9, 1, 5, 3, 7], [MN, MX, 0, -1, 1], [-3, -3, -3, 4, 4]), param=2))
    c.append(_case("trimmed_mean_bound_n6_k2", TRIMMED_MEAN,
                   _col([9, 1, 5, 4, 7, 0], [-1, -2, -100, 100, -1, -2], [MN, MN, MN, MX, MX, MX],
                        [3, 3, 3, 3, 3, 3]), param=2))
    c.append(_case("trimmed_mean_bound_n2_k0", TRIMMED_MEAN,
                   _col([MN, MX], [-1, -2], [MN, MN]), param=0))
    c.append(_case("trimmed_mean_err_k_n4", TRIMMED_MEAN,
                   _col([1, 2, 3, 4]), param=2))
    c.append(_case("trimmed_mean_err_k_n5", TRIMMED_MEAN,
                   _col([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]), param=3))
    c.append(_case("trimmed_mean_err_k_n1", TRIMMED_MEAN, [[7]], param=1))
    c.append(_case("trimmed_mean_dev_saturate", TRIMMED_MEAN,
                   [[MN, MN, MN], [MX, MX, MX], [MN, MN, MN]], param=1))
    c.append(_case("trimmed_mean_d1", TRIMMED_MEAN, [[-3], [-4], [100], [-4], [MN]], param=1))
    c.append(_case("trimmed_mean_empty_n0", TRIMMED_MEAN, [], d=2, param=0))
    c.append(_case("trimmed_mean_empty_d0", TRIMMED_MEAN, [[], []], d=0, param=0))
    # -- median
    c.append(_case("median_odd_n5", MEDIAN,
                   _col([5, 1, 4, 2, 3], [MN, MX, MN, MX, 0], [-1, -1, -1, 7, 7],
                        [ONE, -ONE, 0, 2 * ONE, -2 * ONE])))
    c.append(_case("median_even_n4", MEDIAN,
                   _col([1, 2, 3, 4], [-1, -2, -3, -4], [0, 1, 0, 1], [-1, 0, -1, 0],
                        [MN, MN, MX, MX], [MX, MX, MX, 0], [MN, MN, MN, MN + 1]), stride=8))
    c.append(_case("median_even_n2_extremes", MEDIAN,
                   _col([MN, MX], [MN, MN], [MX, MX], [MX, MX - 2], [-2, 1], [2, -1])))
    c.append(_case("median_n1", MEDIAN, [[MN, MX, 0, -1]]))
    c.append(_case("median_d1", MEDIAN, [[3], [-1], [-2], [10], [-7], [0]]))
    c.append(_case("median_dev_saturate", MEDIAN, [[MN, MN], [MX, MX], [MX, MX]]))
    c.append(_case("median_empty_n0", MEDIAN, [], d=4))
    c.append(_case("median_stride_small", MEDIAN, [[1, 2, 3]], stride=1))
    # -- krum / multi-krum
    # rows 1 and 3 are identical and the best: the tie goes to index 1.
    c.append(_case("krum_tie_lower_index", KRUM,
                   [[4, 4], [1, 1], [0, 3], [1, 1], [50, -50]], param=1))
    c.append(_case("krum_all_equal", KRUM, [[7, -7, 7]] * 5, param=1))
    c.append(_case("multi_krum_all_equal", MULTI_KRUM, [[7, -7, 7]] * 7, param=1, m=3))
    c.append(_case("krum_bound_n3_f0", KRUM, [[1, 1], [2, 2], [10, 10]], param=0))
    c.append(_case("krum_bound_n7_f2", KRUM,
                   [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [100, 0, 0], [0, -100, 0],
                    [MX, MN, MX]], param=2, stride=5))
    c.append(_case("multi_krum_bound_m", MULTI_KRUM,
                   [[-1, 0, 2 * ONE], [-2, 1, ONE], [-2, 0, -ONE], [-1, 1, 0], [-2, 0, 3],
                    [9000, 9000, 9000], [-9000, 0, 0], [0, 0, MX], [5, 5, 5]],
                   param=2, m=3))
    c.append(_case("multi_krum_m1", MULTI_KRUM,
                   [[3, 3], [2, 2], [3, 2], [2, 3], [-100, 100]], param=1, m=1))
    c.append(_case("multi_krum_round_neg", MULTI_KRUM,
                   [[-1, 1, -3], [0, 0, 0], [0, 0, -1], [-1, 0, 0], [0, 1, 0], [1000, 1000, 1000],
                    [-1000, 5, 5]], param=1, m=3))
    c.append(_case("krum_dist_saturate", KRUM,
                   [[MN, MN, MN], [MX, MX, MX], [MN, MN, MN], [MX, MX, MX], [0, 0, 0]], param=1))
    c.append(_case("krum_score_saturate", KRUM,
                   [[MN, MN], [MX, MX], [MN, MX], [MX, MN], [0, 0], [MN, 0], [0, MX]], param=0))
    c.append(_case("multi_krum_dist_saturate", MULTI_KRUM,
                   [[MN, MN, MN], [MX, MX, MX], [MN, MN, MN], [MX, MX, MX], [0, 0, 0],
                    [1, 1, 1]], param=1, m=2))
    c.append(_case("krum_d1", KRUM, [[5], [-5], [6], [MX], [4]], param=1))
    c.append(_case("krum_err_f_n4", KRUM, [[1], [2], [3], [4]], param=1))
    c.append(_case("krum_err_f_n6_f2", KRUM, [[1], [2], [3], [4], [5], [6]], param=2))
    c.append(_case("multi_krum_err_f", MULTI_KRUM, [[1], [2], [3], [4]], param=1, m=1))
    c.append(_case("multi_krum_err_m0", MULTI_KRUM, [[1], [2], [3], [4], [5]], param=1, m=0))
    c.append(_case("multi_krum_err_m_big", MULTI_KRUM,
                   [[1], [2], [3], [4], [5], [6], [7]], param=1, m=4))
    c.append(_case("multi_krum_err_m_big_bound", MULTI_KRUM,
                   [[1], [2], [3], [4], [5]], param=1, m=2))
    c.append(_case("krum_empty_n0", KRUM, [], d=2, param=1))
    c.append(_case("krum_empty_d0", KRUM, [[]] * 5, d=0, param=1))
    c.append(_case("multi_krum_empty_n0", MULTI_KRUM, [], d=1, param=0, m=0))
    c.append(_case("krum_stride_small", KRUM, [[1, 2]] * 5, param=1, stride=1))
    return c


def prng_cases():
    c = []
    for seed, n, d, lo, stride in ((0x9E3779B9, 7, 4096, 20, 4096),
                                   (0x00C0FFEE, 20, 1000, 24, 1003),
                                   (0x0BADCAFE, 10, 257, 31, 257),
                                   (0xDEADBEEF, 10, 257, 32, 260)):
        tag = "n%d_d%d_b%d" % (n, d, lo)
        c.append(_case("prng_fedavg_" + tag, FEDAVG, n=n, d=d, stride=stride, seed=seed,
                       lo_bits=lo))
        c.append(_case("prng_fedavg_w_" + tag, FEDAVG, n=n, d=d, stride=stride,
                       seed=seed ^ 0x5555, lo_bits=lo, w_bits=32 if lo >= 31 else 12))
        k_lo = 1
        k_hi = (n - 1) // 2
        c.append(_case("prng_trimmed_mean_k%d_" % k_lo + tag, TRIMMED_MEAN, n=n, d=d,
                       stride=stride, seed=seed + 1, lo_bits=lo, param=k_lo))
        c.append(_case("prng_trimmed_mean_k%d_" % k_hi + tag, TRIMMED_MEAN, n=n, d=d,
                       stride=stride, seed=seed + 2, lo_bits=lo, param=k_hi))
        c.append(_case("prng_median_" + tag, MEDIAN, n=n, d=d, stride=stride, seed=seed + 3,
                       lo_bits=lo))
        f = (n - 3) // 2
        c.append(_case("prng_krum_f%d_" % f + tag, KRUM, n=n, d=d, stride=stride,
                       seed=seed + 4, lo_bits=lo, param=f))
        f2 = max(0, f - 1)
        m = n - 2 * f2 - 2
        c.append(_case("prng_multi_krum_f%d_m%d_" % (f2, m) + tag, MULTI_KRUM, n=n, d=d,
                       stride=stride, seed=seed + 5, lo_bits=lo, param=f2, m=m))
    # partial saturation: some Krum scores saturate, the selection still discriminates
    c.append(_case("prng_krum_f3_n10_d257_b28", KRUM, n=10, d=257, stride=257, seed=0x2468ACE,
                   lo_bits=28, param=3))
    c.append(_case("prng_multi_krum_f2_m4_n10_d257_b28", MULTI_KRUM, n=10, d=257, stride=259,
                   seed=0x2468ACE, lo_bits=28, param=2, m=4))
    # odd n for the median, even d split
    c.append(_case("prng_median_n9_d64_b32", MEDIAN, n=9, d=64, stride=64, seed=77, lo_bits=32))
    c.append(_case("prng_trimmed_mean_k4_n9_d64_b32", TRIMMED_MEAN, n=9, d=64, stride=64,
                   seed=78, lo_bits=32, param=4))
    return c


def all_cases():
    return explicit_cases() + prng_cases()


def case_rows(c):
    """(rows, weights) of a case (PRNG cases generated here)."""
    if c["rows"] is not None:
        return c["rows"], c["weights"]
    return A.prng_case(c["seed"], c["n"], c["d"], c["lo_bits"], c["w_bits"])


def run_case(c):
    """Reference result dict of a case, with 'dev' and the 'crc'."""
    rows, weights = case_rows(c)
    d = c["d"]
    n = c["n"]
    meth = c["method"]
    krum = meth in (KRUM, MULTI_KRUM)
    if n > 0 and d > 0 and c["stride"] < d:
        r = {"status": Q.ERR_STRIDE, "out": [], "dev_sq": [], "flags": 0}
        if krum:
            r["scores"] = []
            r["selected"] = []
    elif meth == FEDAVG:
        r = A.fedavg(rows, d, weights)
    elif meth == TRIMMED_MEAN:
        r = A.trimmed_mean(rows, d, c["param"])
    elif meth == MEDIAN:
        r = A.median(rows, d)
    elif meth == KRUM:
        r = A.krum(rows, d, c["param"])
    else:
        r = A.multi_krum(rows, d, c["param"], c["m"])
    r["dev"] = A.deviation_finish(r["dev_sq"]) if r["status"] == Q.OK else []
    blob = _i32(r["status"]) + _u32(r["flags"])
    if r["status"] == Q.OK:
        blob += b"".join(_i32(v) for v in r["out"])
        blob += b"".join(_u64(v) for v in r["dev_sq"])
        blob += b"".join(_u32(v) for v in r["dev"])
        if krum:
            blob += b"".join(_u64(v) for v in r["scores"])
            blob += b"".join(_u32(v) for v in r["selected"])
    r["crc"] = crc32(blob)
    return r


# ---- expected output -------------------------------------------------------------
def expected_lines():
    """The exact lines qora_run_vectors() emits when every case passes."""
    lines = []
    for name, _kind, _ents, blob in scalar_groups():
        lines.append("case %s ok crc=%08x" % (name, crc32(blob)))
    for c in all_cases():
        lines.append("case %s ok crc=%08x" % (c["name"], run_case(c)["crc"]))
    lines.append("summary %d/%d" % (len(lines), len(lines)))
    return lines


# ---- C emission ------------------------------------------------------------------
def _ci32(v):
    if v == I32_MIN:
        return "(-2147483647 - 1)"
    return "%d" % v


def _cu32(v):
    return "0x%08Xu" % v


def _ci64(v):
    if v == I64_MIN:
        return "(-INT64_C(9223372036854775807) - 1)"
    return "INT64_C(%d)" % v


def _cu64(v):
    return "UINT64_C(0x%016X)" % v


def _array(out, ctype, name, vals, fmt, per_line=6):
    out.append("static const %s %s[%d] = {" % (ctype, name, max(1, len(vals))))
    if not vals:
        out.append("    0")
    for i in range(0, len(vals), per_line):
        out.append("    " + ", ".join(fmt(v) for v in vals[i:i + per_line]) + ",")
    out.append("};")


HEADER_TYPES = """
#define QORA_GV_FORMAT %(format)d
#define QORA_GV_SENTINEL 0x%(sentinel)08Xu
#define QORA_GV_FLAG_CANARY 0x%(canary)Xu

enum { QORA_GV_FEDAVG = 0, QORA_GV_TRIMMED_MEAN = 1, QORA_GV_MEDIAN = 2,
       QORA_GV_KRUM = 3, QORA_GV_MULTI_KRUM = 4 };

typedef struct { uint32_t in; int32_t status; int32_t q; uint32_t flags; } qora_gv_from_f32_t;
typedef struct { int32_t q; uint32_t bits; } qora_gv_to_f32_t;
typedef struct { int32_t a; int32_t b; int32_t r; uint32_t flags; } qora_gv_q16_op_t;
typedef struct { int64_t v; int32_t r; uint32_t flags; } qora_gv_from_i64_t;
typedef struct { uint64_t x; uint32_t isqrt; uint32_t sqrt_round; } qora_gv_isqrt_t;
typedef struct { int64_t num; uint64_t den; int64_t r; } qora_gv_div_round_t;
typedef struct { int64_t a; int64_t b; int64_t r; uint32_t flags; } qora_gv_sat_i64_t;
typedef struct { uint64_t a; uint64_t b; uint64_t r; uint32_t flags; } qora_gv_sat_u64_t;
typedef struct {
    const uint32_t *in; uint32_t count;
    int32_t status; uint32_t flags; uint32_t bad_index;
    const int32_t *out; uint32_t converted;
} qora_gv_f32_array_t;

/* One aggregator case. x == NULL: the n x d data (and weights when
 * w_bits > 0) come from the xorshift32 stream of `seed` (see prng in
 * run_vectors.c and reference/aggregate.py). The expected arrays are NULL
 * for PRNG cases and for error cases; crc covers everything.             */
typedef struct {
    const char *name;
    int method;
    uint32_t n, d, stride;
    uint32_t param; /* k (trimmed mean) or f (krum, multi_krum) */
    uint32_t m;     /* multi_krum (1 for krum) */
    const int32_t *x;
    const uint32_t *weights; /* NULL: all 1 (passed as NULL) unless w_bits */
    uint32_t seed;
    uint32_t lo_bits, w_bits;
    int32_t status;
    uint32_t flags;
    const int32_t *out;
    const uint64_t *dev_sq;
    const uint32_t *dev;
    const uint64_t *scores;
    const uint32_t *selected;
    uint32_t crc;
} qora_gv_agg_case_t;
"""


def header_text():
    out = []
    out.append("/* Generated by `python -m qora.reference.golden` from the pure-Python")
    out.append(" * reference (host/qora/reference). Do not edit: regenerate.")
    out.append(" * Serialization and CRC: see host/qora/reference/golden.py. */")
    out.append("#ifndef QORA_GOLDEN_VECTORS_H")
    out.append("#define QORA_GOLDEN_VECTORS_H")
    out.append("")
    out.append("#include <stddef.h>")
    out.append("#include <stdint.h>")
    out.append(HEADER_TYPES % {"format": FORMAT_VERSION, "sentinel": SENTINEL,
                               "canary": FLAG_CANARY})

    groups = scalar_groups()
    group_crcs = []
    for name, kind, ents, blob in groups:
        crc = crc32(blob)
        group_crcs.append((name, crc))
        out.append("#define QORA_GV_CRC_%s 0x%08Xu" % (name.upper(), crc))
        if kind == "from_f32":
            out.append("static const qora_gv_from_f32_t qora_gv_%s[] = {" % name)
            for u, st, q, fl in ents:
                out.append("    {%s, %d, %s, %du}," % (_cu32(u), st, _ci32(q), fl))
        elif kind in ("to_f32", "to_f32_array"):
            out.append("static const qora_gv_to_f32_t qora_gv_%s[] = {" % name)
            for q, b in ents:
                out.append("    {%s, %s}," % (_ci32(q), _cu32(b)))
        elif kind in ("add", "sub", "mul", "div", "sqrt"):
            out.append("static const qora_gv_q16_op_t qora_gv_%s[] = {" % name)
            for a, b, r, fl in ents:
                out.append("    {%s, %s, %s, %du}," % (_ci32(a), _ci32(b), _ci32(r), fl))
        elif kind == "from_i64":
            out.append("static const qora_gv_from_i64_t qora_gv_%s[] = {" % name)
            for v, r, fl in ents:
                out.append("    {%s, %s, %du}," % (_ci64(v), _ci32(r), fl))
        elif kind == "isqrt":
            out.append("static const qora_gv_isqrt_t qora_gv_%s[] = {" % name)
            for x, a, b in ents:
                out.append("    {%s, %s, %s}," % (_cu64(x), _cu32(a), _cu32(b)))
        elif kind == "div_round":
            out.append("static const qora_gv_div_round_t qora_gv_%s[] = {" % name)
            for num, den, r in ents:
                out.append("    {%s, %s, %s}," % (_ci64(num), _cu64(den), _ci64(r)))
        elif kind == "sat_i64":
            out.append("static const qora_gv_sat_i64_t qora_gv_%s[] = {" % name)
            for a, b, r, fl in ents:
                out.append("    {%s, %s, %s, %du}," % (_ci64(a), _ci64(b), _ci64(r), fl))
        elif kind == "sat_u64":
            out.append("static const qora_gv_sat_u64_t qora_gv_%s[] = {" % name)
            for a, b, r, fl in ents:
                out.append("    {%s, %s, %s, %du}," % (_cu64(a), _cu64(b), _cu64(r), fl))
        elif kind == "from_f32_array":
            for idx, (arr, st, fl, bad, outs) in enumerate(ents):
                _array(out, "uint32_t", "qora_gv_f32_array_in_%d" % idx, arr, _cu32)
                _array(out, "int32_t", "qora_gv_f32_array_out_%d" % idx, outs, _ci32)
            out.append("static const qora_gv_f32_array_t qora_gv_%s[] = {" % name)
            for idx, (arr, st, fl, bad, outs) in enumerate(ents):
                out.append("    {qora_gv_f32_array_in_%d, %du, %d, %du, %du, "
                           "qora_gv_f32_array_out_%d, %du}," % (idx, len(arr), st, fl, bad,
                                                                idx, len(outs)))
        else:
            raise AssertionError(kind)
        out.append("};")
        out.append("")

    cases = all_cases()
    results = [run_case(c) for c in cases]
    max_n = 1
    max_d = 1
    max_x = 1
    max_m = 1
    for idx, (c, r) in enumerate(zip(cases, results)):
        n, d = c["n"], c["d"]
        max_n = max(max_n, n)
        max_d = max(max_d, d)
        max_x = max(max_x, n * max(c["stride"], d))
        max_m = max(max_m, c["m"])
        p = "qora_gv_c%d_" % idx
        if c["rows"] is not None and n * d > 0:
            _array(out, "int32_t", p + "x", [v for row in c["rows"] for v in row], _ci32, 8)
        if c["weights"] is not None and c["rows"] is not None:
            _array(out, "uint32_t", p + "w", c["weights"], _cu32)
        if c["rows"] is not None and r["status"] == Q.OK:
            _array(out, "int32_t", p + "out", r["out"], _ci32, 8)
            _array(out, "uint64_t", p + "dev_sq", r["dev_sq"], _cu64, 3)
            _array(out, "uint32_t", p + "dev", r["dev"], _cu32)
            if c["method"] in (KRUM, MULTI_KRUM):
                _array(out, "uint64_t", p + "scores", r["scores"], _cu64, 3)
                _array(out, "uint32_t", p + "selected", r["selected"], _cu32)
    out.append("")
    out.append("static const qora_gv_agg_case_t qora_gv_agg_cases[] = {")
    for idx, (c, r) in enumerate(zip(cases, results)):
        p = "qora_gv_c%d_" % idx
        explicit = c["rows"] is not None
        ok = r["status"] == Q.OK
        krum = c["method"] in (KRUM, MULTI_KRUM)
        x = p + "x" if explicit and c["n"] * c["d"] > 0 else "NULL"
        w = p + "w" if explicit and c["weights"] is not None else "NULL"
        res = [p + "out", p + "dev_sq", p + "dev"] if explicit and ok else ["NULL"] * 3
        res += [p + "scores", p + "selected"] if explicit and ok and krum else ["NULL"] * 2
        out.append("    {\"%s\", %s, %du, %du, %du, %du, %du, %s, %s, 0x%08Xu, %du, %du, %d, %du,"
                   % (c["name"], METHOD_NAMES[c["method"]], c["n"], c["d"], c["stride"],
                      c["param"], c["m"], x, w, c["seed"], c["lo_bits"], c["w_bits"],
                      r["status"], r["flags"]))
        out.append("     %s, 0x%08Xu}," % (", ".join(res), r["crc"]))
    out.append("};")
    out.append("")
    out.append("#define QORA_GV_AGG_CASES (sizeof qora_gv_agg_cases / sizeof qora_gv_agg_cases[0])")
    out.append("#define QORA_GV_MAX_N %du" % max_n)
    out.append("#define QORA_GV_MAX_D %du" % max_d)
    out.append("#define QORA_GV_MAX_M %du" % max_m)
    out.append("#define QORA_GV_MAX_X %du /* int32 elements of the largest matrix */" % max_x)
    # Scratch: an upper bound for a reasonable implementation (an n x n uint64
    # distance matrix with scores and indices, or an int64 per column and a
    # block of n columns of int32); a target may lower or raise it with -D.
    scratch = 1024 + 16 * max_n * max_n + 16 * max_n * 64 + 8 * max_d
    out.append("#ifndef QORA_GV_SCRATCH_BYTES")
    out.append("#define QORA_GV_SCRATCH_BYTES %du" % scratch)
    out.append("#endif")
    out.append("#define QORA_GV_TOTAL_CASES %du" % (len(groups) + len(cases)))
    out.append("")
    out.append("#endif /* QORA_GOLDEN_VECTORS_H */")
    return "\n".join(out) + "\n"


def write_header(path):
    text = header_text()
    with open(path, "w") as fh:
        fh.write(text)
    return text


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if len(argv) != 1:
        sys.stderr.write("usage: python -m qora.reference.golden OUT.h\n")
        return 2
    write_header(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
