"""Q16.16 aggregators: the pure-Python, integers-only reference.

Defines, bit for bit, the Q16.16 results of shared_c/include/qora/aggregate.h.
Valid MicroPython (no typing, no f-strings, no dataclasses, ints only).

Input: ``rows`` is a list of n lists of d ints (Q16.16 values), ``d`` the
number of columns (given explicitly so that n == 0 is expressible).

Every aggregator returns a dict:
    'status'   0 or a negative status code (qora/status.h)
    'out'      d Q16.16 ints            ([] on error)
    'dev_sq'   n uint64 ints (Q32)     ([] on error): sum_t (x_i[t] - out[t])^2,
               saturated at 2^64 - 1
    'flags'    0 or 1: OR of every saturation event
and, for krum / multi_krum,
    'scores'   n uint64 ints            ([] on error)
    'selected' m client indices         ([] on error)

Check order: n == 0 or d == 0 -> ERR_EMPTY; n > MAX_CLIENTS -> ERR_N; then
the method's bound (trimmed mean 2k >= n -> ERR_K; krum n < 2f + 3 -> ERR_F;
multi_krum m == 0 or m > n - 2f - 2 -> ERR_M; fedavg all weights 0 ->
ERR_WEIGHTS). (The C API also checks NULL pointers, stride < d -> ERR_STRIDE
after ERR_N, and the scratch size; those have no counterpart here.)
"""

from . import q16

UINT64_MAX = q16.UINT64_MAX


def _result(status, out, dev_sq, flags):
    return {"status": status, "out": out, "dev_sq": dev_sq, "flags": flags}


def _error(status, krum=False):
    r = _result(status, [], [], 0)
    if krum:
        r["scores"] = []
        r["selected"] = []
    return r


def deviation_sq(rows, d, center):
    """(dev_sq list, flags): dev_sq[i] = sum_t (rows[i][t] - center[t])^2,
    exact then saturated at 2^64 - 1 (flags = 1 if any saturated)."""
    dev = []
    flags = 0
    for row in rows:
        s = 0
        for t in range(d):
            diff = row[t] - center[t]
            s += diff * diff
        if s > UINT64_MAX:
            s = UINT64_MAX
            flags = 1
        dev.append(s)
    return dev, flags


def deviation_finish(dev_sq):
    """L2 deviations in unsigned Q16.16: [sqrt_round_u64(v) for v in dev_sq]."""
    return [q16.sqrt_round_u64(v) for v in dev_sq]


def _with_deviation(status, rows, d, out, flags):
    dev, fl = deviation_sq(rows, d, out)
    return _result(status, out, dev, flags | fl)


def fedavg(rows, d, weights=None):
    """FedAvg with integer (uint32) weights; None means all 1.

    Per column: acc = sum over i = 0..n-1, in that order, of w_i * x_i[t],
    each addition saturating to int64 (flag); W = sum w_i (exact);
    out = from_i64_sat(div_round_i64(acc, W)). All weights 0 -> ERR_WEIGHTS."""
    n = len(rows)
    if n == 0 or d == 0:
        return _error(q16.ERR_EMPTY)
    if n > q16.MAX_CLIENTS:
        return _error(q16.ERR_N)
    if weights is None:
        weights = [1] * n
    total = 0
    for w in weights[:n]:
        total += w
    if total == 0:
        return _error(q16.ERR_WEIGHTS)
    flags = 0
    out = []
    for t in range(d):
        acc = 0
        for i in range(n):
            acc, fl = q16.sat_add_i64(acc, weights[i] * rows[i][t])
            flags |= fl
        v, fl = q16.from_i64_sat(q16.div_round_i64(acc, total))
        flags |= fl
        out.append(v)
    return _with_deviation(q16.OK, rows, d, out, flags)


def trimmed_mean(rows, d, k):
    """Per column: sort, sum sorted positions k..n-k-1 exactly,
    out = div_round_i64(sum, n - 2k). Needs 2k < n (ERR_K)."""
    n = len(rows)
    if n == 0 or d == 0:
        return _error(q16.ERR_EMPTY)
    if n > q16.MAX_CLIENTS:
        return _error(q16.ERR_N)
    if 2 * k >= n:
        return _error(q16.ERR_K)
    out = []
    for t in range(d):
        col = sorted([rows[i][t] for i in range(n)])
        s = 0
        for j in range(k, n - k):
            s += col[j]
        out.append(q16.div_round_i64(s, n - 2 * k))
    return _with_deviation(q16.OK, rows, d, out, 0)


def median(rows, d):
    """Per column: odd n the middle sorted value; even n
    div_round_i64(a + b, 2) of the two middle values."""
    n = len(rows)
    if n == 0 or d == 0:
        return _error(q16.ERR_EMPTY)
    if n > q16.MAX_CLIENTS:
        return _error(q16.ERR_N)
    out = []
    h = n // 2
    for t in range(d):
        col = sorted([rows[i][t] for i in range(n)])
        if n & 1:
            out.append(col[h])
        else:
            out.append(q16.div_round_i64(col[h - 1] + col[h], 2))
    return _with_deviation(q16.OK, rows, d, out, 0)


def sqdist(rows, d):
    """(n x n matrix as list of lists, flags): dist[i][j] = sum_t
    (x_i[t] - x_j[t])^2 exact, saturated at 2^64 - 1 (flag); diagonal 0."""
    n = len(rows)
    dist = [[0] * n for _ in range(n)]
    flags = 0
    for i in range(n):
        ri = rows[i]
        for j in range(i + 1, n):
            rj = rows[j]
            s = 0
            for t in range(d):
                diff = ri[t] - rj[t]
                s += diff * diff
            if s > UINT64_MAX:
                s = UINT64_MAX
                flags = 1
            dist[i][j] = s
            dist[j][i] = s
    return dist, flags


def krum_select(dist, n, f, m):
    """(status, scores, selected, flags) from a finished distance matrix.

    score(i) = sum of the n - f - 2 smallest dist[i][j], j != i, saturated at
    2^64 - 1 (flag); selected = the m indices with the smallest (score, index),
    in that order. Bounds as for multi_krum."""
    if n == 0:
        return q16.ERR_EMPTY, [], [], 0
    if n > q16.MAX_CLIENTS:
        return q16.ERR_N, [], [], 0
    if n < 2 * f + 3:
        return q16.ERR_F, [], [], 0
    if m == 0 or m > n - 2 * f - 2:
        return q16.ERR_M, [], [], 0
    keep = n - f - 2
    flags = 0
    scores = []
    for i in range(n):
        ds = sorted([dist[i][j] for j in range(n) if j != i])
        s = 0
        for j in range(keep):
            s += ds[j]
        if s > UINT64_MAX:
            s = UINT64_MAX
            flags = 1
        scores.append(s)
    order = sorted([(scores[i], i) for i in range(n)])
    selected = [order[j][1] for j in range(m)]
    return q16.OK, scores, selected, flags


def multi_krum(rows, d, f, m):
    """Multi-Krum (Blanchard et al. 2017) on exact integer distances.

    out = row selected[0] if m == 1, else per column
    div_round_i64(sum of the selected rows, m)."""
    n = len(rows)
    if n == 0 or d == 0:
        return _error(q16.ERR_EMPTY, True)
    if n > q16.MAX_CLIENTS:
        return _error(q16.ERR_N, True)
    if n < 2 * f + 3:
        return _error(q16.ERR_F, True)
    if m == 0 or m > n - 2 * f - 2:
        return _error(q16.ERR_M, True)
    dist, flags = sqdist(rows, d)
    status, scores, selected, fl = krum_select(dist, n, f, m)
    flags |= fl
    if m == 1:
        out = list(rows[selected[0]])
    else:
        out = []
        for t in range(d):
            s = 0
            for i in selected:
                s += rows[i][t]
            out.append(q16.div_round_i64(s, m))
    r = _with_deviation(status, rows, d, out, flags)
    r["scores"] = scores
    r["selected"] = selected
    return r


def krum(rows, d, f):
    """Krum = multi_krum with m = 1."""
    return multi_krum(rows, d, f, 1)


# ---- deterministic test data -------------------------------------------------
def xorshift32(state):
    """One step of Marsaglia's xorshift32 on a nonzero uint32 state:
    s ^= s << 13 (mod 2^32); s ^= s >> 17; s ^= s << 5 (mod 2^32).
    Returns the new state, which is also the output."""
    s = state & 0xFFFFFFFF
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    return s


def prng_values(seed, count, lo_bits, state=None):
    """(values, state). Starting from state (default seed; must be nonzero),
    for each value: state = xorshift32(state); v = state (uint32);
    value = (v >> (32 - lo_bits)) - 2^(lo_bits - 1), in
    [-2^(lo_bits-1), 2^(lo_bits-1)), for 1 <= lo_bits <= 32."""
    if state is None:
        state = seed & 0xFFFFFFFF
    if state == 0:
        raise ValueError("xorshift32 seed must be nonzero")
    if lo_bits < 1 or lo_bits > 32:
        raise ValueError("lo_bits must be in 1..32")
    sh = 32 - lo_bits
    off = 1 << (lo_bits - 1)
    vals = []
    for _ in range(count):
        state = xorshift32(state)
        vals.append((state >> sh) - off)
    return vals, state


def prng_matrix(seed, n, d, lo_bits):
    """n rows of d int32 values, filled in row-major order (row 0 column 0,
    row 0 column 1, ...). state = seed (nonzero uint32); for each element:
    state = xorshift32(state); value = (state >> (32 - lo_bits))
    - 2^(lo_bits - 1). In C, on the uint32 state, with no right shift of a
    negative number: (int32_t)((int64_t)(state >> (32 - lo_bits))
    - ((int64_t)1 << (lo_bits - 1)))."""
    vals, _ = prng_values(seed, n * d, lo_bits)
    return [vals[i * d:(i + 1) * d] for i in range(n)]


def prng_weights(state, n, w_bits):
    """(weights, state) continuing the stream after a matrix: for each client,
    state = xorshift32(state); w = state >> (32 - w_bits) (a uint32,
    1 <= w_bits <= 32)."""
    sh = 32 - w_bits
    ws = []
    for _ in range(n):
        state = xorshift32(state)
        ws.append(state >> sh)
    return ws, state


def prng_case(seed, n, d, lo_bits, w_bits=0):
    """(rows, weights or None): prng_matrix(seed, n, d, lo_bits), then, when
    w_bits > 0, n weights drawn by prng_weights from the state the matrix
    left (i.e. the stream continues)."""
    vals, state = prng_values(seed, n * d, lo_bits)
    rows = [vals[i * d:(i + 1) * d] for i in range(n)]
    if w_bits:
        ws, state = prng_weights(state, n, w_bits)
        return rows, ws
    return rows, None
