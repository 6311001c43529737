"""Q16.16 training of the small dense models: the pure-Python, integers-only reference.

Defines, bit for bit, the integer training step that the numpy simulation
(qora.sim.fixed.Q16Model) and the C node firmware run: forward pass of a dense
ReLU network with a softmax output, the loss-free backward pass
(dL/dz = softmax - onehot), and one plain minibatch SGD step on the mean
cross-entropy gradient. docs/fixed-point-training.md describes the algorithm
step by step; every rounding point is marked ``[R#]`` here and there.
``node_order`` and ``train_node_q16`` define what the node's qn_train adds: its
visiting order (xorshift32 Fisher-Yates) and the epoch loop (the doc's "On the node").

Valid MicroPython: no typing, no f-strings, no floats, no int.bit_length; the
only import is the sibling q16 module. Wide intermediates (up to 2^63) need
long-int support (MICROPY_LONGINT_IMPL_MPZ, which the ESP32 and Unix/WebAssembly
ports have).

Conventions
-----------
* Every value is a Q16.16 int (x * 2^16, in [INT32_MIN, INT32_MAX]) unless
  stated; ``layer_sizes`` is (n_features, hidden..., n_classes): (64, 10) is
  softmax regression, (64, 32, 10) the MLP.
* Parameters are one flat list in the layout of qora.models: per layer W as
  (fan_out, fan_in) row-major, then b (fan_out,).
* rnd16(p) = p / 2^16 rounded half away from zero (exact on the magnitude);
  sat32(v) = v clamped to [INT32_MIN, INT32_MAX]. Neither rnd16 of a product
  of two int32 nor any accumulator below can leave int64 (bounds in the doc).
"""

from . import q16

ONE = 65536
HALF = 32768
INT32_MIN = -2147483648
INT32_MAX = 2147483647

# ---- exp: exp(x) = 2^(-u), u = -x * log2(e) -----------------------------------
# log2(e) in Q2.30, rounded to nearest: 1.4426950408889634 * 2^30 = 1549082004.68
LOG2E_Q30 = 1549082005
# exp(x) is 0 for x < EXP_MIN (= -16.0); exp(-16) * 2^16 = 0.0074 rounds to 0 anyway
EXP_MIN = -16 * ONE
# EXP2_TABLE[i] = round(2^30 * 2^(-i / 256)), i = 0..256 (half up; computed to
# 60 decimal digits, no entry is within 0.005 of a tie). Sum = 199087924107.
EXP2_TABLE = (
    1073741824, 1070838486, 1067942999, 1065055341, 1062175491, 1059303428,
    1056439131, 1053582579, 1050733751, 1047892626, 1045059183, 1042233401,
    1039415261, 1036604740, 1033801819, 1031006477, 1028218693, 1025438448,
    1022665720, 1019900489, 1017142735, 1014392438, 1011649578, 1008914134,
    1006186087, 1003465416, 1000752102, 998046124, 995347464, 992656100,
    989972014, 987295185, 984625594, 981963222, 979308048, 976660054,
    974019220, 971385527, 968758955, 966139485, 963527098, 960921775,
    958323496, 955732243, 953147997, 950570738, 948000448, 945437108,
    942880699, 940331203, 937788600, 935252872, 932724001, 930201967,
    927686753, 925178340, 922676710, 920181844, 917693724, 915212331,
    912737649, 910269657, 907808339, 905353676, 902905651, 900464244,
    898029440, 895601218, 893179563, 890764456, 888355878, 885953814,
    883558244, 881169153, 878786521, 876410331, 874040567, 871677210,
    869320244, 866969651, 864625413, 862287515, 859955938, 857630665,
    855311680, 852998965, 850692504, 848392279, 846098274, 843810471,
    841528855, 839253408, 836984114, 834720956, 832463917, 830212982,
    827968132, 825729353, 823496627, 821269938, 819049271, 816834607,
    814625932, 812423229, 810226483, 808035676, 805850792, 803671817,
    801498734, 799331526, 797170178, 795014675, 792865000, 790721137,
    788583072, 786450787, 784324269, 782203500, 780088465, 777979150,
    775875538, 773777614, 771685363, 769598769, 767517817, 765442492,
    763372778, 761308661, 759250125, 757197155, 755149737, 753107854,
    751071493, 749040637, 747015274, 744995386, 742980960, 740971982,
    738968435, 736970306, 734977579, 732990241, 731008277, 729031671,
    727060411, 725094480, 723133865, 721178552, 719228525, 717283772,
    715344277, 713410026, 711481005, 709557200, 707638598, 705725183,
    703816941, 701913860, 700015924, 698123120, 696235434, 694352853,
    692475362, 690602947, 688735596, 686873293, 685016026, 683163781,
    681316545, 679474303, 677637043, 675804750, 673977412, 672155015,
    670337545, 668524990, 666717336, 664914570, 663116678, 661323648,
    659535466, 657752119, 655973594, 654199878, 652430958, 650666822,
    648907455, 647152846, 645402981, 643657847, 641917433, 640181724,
    638450708, 636724373, 635002706, 633285695, 631573326, 629865587,
    628162466, 626463950, 624770026, 623080683, 621395908, 619715688,
    618040012, 616368866, 614702239, 613040119, 611382493, 609729349,
    608080675, 606436459, 604796689, 603161352, 601530438, 599903933,
    598281827, 596664106, 595050760, 593441776, 591837143, 590236848,
    588640881, 587049229, 585461881, 583878825, 582300049, 580725543,
    579155293, 577589290, 576027521, 574469975, 572916640, 571367506,
    569822560, 568281792, 566745190, 565212742, 563684439, 562160268,
    560640218, 559124278, 557612438, 556104685, 554601009, 553101399,
    551605844, 550114332, 548626854, 547143398, 545663953, 544188508,
    542717053, 541249576, 539786068, 538326517, 536870912,
)


def _rshift_round(v, s):
    """v / 2^s rounded half up, for v >= 0 and s >= 0 (= half away from zero)."""
    if s == 0:
        return v
    return (v + (1 << (s - 1))) >> s


def rnd16(p):
    """p / 2^16 rounded half away from zero: the per-product rounding [R1]."""
    if p < 0:
        return -((HALF - p) >> 16)
    return (p + HALF) >> 16


def sat32(v):
    """v clamped to the Q16.16 (int32) range."""
    if v < INT32_MIN:
        return INT32_MIN
    if v > INT32_MAX:
        return INT32_MAX
    return v


def _exp2_neg(x):
    """For EXP_MIN <= x <= 0: (v, n) with exp(x) ~= v * 2^-(30 + n), 2^29 < v <= 2^30.

    u = rnd((-x) * LOG2E_Q30 / 2^22)                 [R2]  u = -x * log2 e in Q8.24
    n = u >> 24, f = u & (2^24 - 1)                        2^-u = 2^-n * 2^-(f / 2^24)
    i = f >> 16, r = f & 0xFFFF                            table index, 16-bit position
    v = T[i] - rnd((T[i] - T[i+1]) * r / 2^16)        [R3]  linear interpolation, Q2.30
    """
    u = _rshift_round((-x) * LOG2E_Q30, 22)
    n = u >> 24
    f = u & 0xFFFFFF
    i = f >> 16
    r = f & 0xFFFF
    a = EXP2_TABLE[i]
    v = a - _rshift_round((a - EXP2_TABLE[i + 1]) * r, 16)
    return v, n


def exp_q30(x):
    """exp(x) for a Q16.16 x <= 0, as a Q2.30 int in [0, 2^30] (0 below EXP_MIN).

    = rnd(v / 2^n)                                     [R4]"""
    if x > 0:
        raise ValueError("exp_q30: x must be <= 0")
    if x < EXP_MIN:
        return 0
    v, n = _exp2_neg(x)
    return _rshift_round(v, n)


def exp_q16(x):
    """exp(x) for a Q16.16 x <= 0, as Q16.16: rnd(v / 2^(n + 14)) (one rounding)."""
    if x > 0:
        raise ValueError("exp_q16: x must be <= 0")
    if x < EXP_MIN:
        return 0
    v, n = _exp2_neg(x)
    return _rshift_round(v, n + 14)


def softmax_q16(logits_row):
    """Q16.16 softmax of one row of Q16.16 logits: a list of ints, sum 65536 +- n/2.

    m = max(z); e_j = exp_q30(z_j - m) (z_j - m formed exactly, in int64);
    S = sum e_j (>= 2^30: the max term is exactly 2^30);
    p_j = div_round_i64(e_j * 2^16, S)                [R5]"""
    m = logits_row[0]
    for z in logits_row:
        if z > m:
            m = z
    e = [exp_q30(z - m) for z in logits_row]
    s = 0
    for v in e:
        s += v
    return [q16.div_round_i64(v << 16, s) for v in e]


# ---- layout ----------------------------------------------------------------------
def layer_slices(layer_sizes):
    """[(w_offset, b_offset, fan_in, fan_out), ...] per layer, in the flat layout."""
    if len(layer_sizes) < 2:
        raise ValueError("layer_sizes needs at least (n_features, n_classes)")
    out = []
    off = 0
    for k in range(len(layer_sizes) - 1):
        fan_in = layer_sizes[k]
        fan_out = layer_sizes[k + 1]
        if fan_in < 1 or fan_out < 1:
            raise ValueError("layer sizes must be >= 1")
        out.append((off, off + fan_in * fan_out, fan_in, fan_out))
        off += (fan_in + 1) * fan_out
    return out


def n_params(layer_sizes):
    n = 0
    for k in range(len(layer_sizes) - 1):
        n += (layer_sizes[k] + 1) * layer_sizes[k + 1]
    return n


def _check(params_q, layer_sizes):
    sl = layer_slices(layer_sizes)
    if len(params_q) != n_params(layer_sizes):
        raise ValueError("params_q has the wrong length for layer_sizes")
    return sl


# ---- forward ---------------------------------------------------------------------
def _dense(params_q, w0, b0, fan_in, fan_out, h):
    """z_j = sat32(b_j + sum_i rnd16(W_ji * h_i)), the sum exact in int64  [R1]"""
    z = []
    for j in range(fan_out):
        acc = 0
        row = w0 + j * fan_in
        for i in range(fan_in):
            hi = h[i]
            if hi:
                p = params_q[row + i] * hi
                if p < 0:
                    acc -= (HALF - p) >> 16
                else:
                    acc += (p + HALF) >> 16
        z.append(sat32(params_q[b0 + j] + acc))
    return z


def _forward(params_q, sl, x_row_q):
    """(acts, logits): acts[k] is the input of layer k (acts[0] = x), hidden
    activations are ReLU(z) = max(z, 0); logits are the last layer's z."""
    acts = [x_row_q]
    h = x_row_q
    last = len(sl) - 1
    for k in range(len(sl)):
        w0, b0, fan_in, fan_out = sl[k]
        if len(h) != fan_in:
            raise ValueError("input row has the wrong length")
        z = _dense(params_q, w0, b0, fan_in, fan_out, h)
        if k == last:
            return acts, z
        h = [v if v > 0 else 0 for v in z]
        acts.append(h)


def logits_q16(params_q, layer_sizes, x_row_q):
    """The output layer's Q16.16 logits for one row."""
    return _forward(params_q, _check(params_q, layer_sizes), x_row_q)[1]


def forward_q16(params_q, layer_sizes, x_row_q):
    """Activations per layer for one row: [x, h_1, ..., h_{L-1}, p], where h_k are
    the ReLU outputs of the hidden layers and p = softmax_q16(logits)."""
    acts, z = _forward(params_q, _check(params_q, layer_sizes), x_row_q)
    return acts + [softmax_q16(z)]


def predict_q16(params_q, layer_sizes, x_row_q):
    """argmax of the logits (the lowest index wins ties)."""
    z = logits_q16(params_q, layer_sizes, x_row_q)
    best = 0
    for j in range(1, len(z)):
        if z[j] > z[best]:
            best = j
    return best


# ---- backward and SGD ------------------------------------------------------------
def grad_sum_q16(params_q, layer_sizes, X_q, y):
    """Sum over the rows of the per-row gradients, exact in (wide) ints.

    Per row: delta = softmax_q16(logits) - onehot(y) * 65536; then per layer
    k = L-1 .. 0 with input h = acts[k]:
      gW_ji += rnd16(delta_j * h_i)                                     [R1]
      gb_j  += delta_j
      (k > 0) delta'_i = sat32(sum_j rnd16(W_ji * delta_j)) if h_i > 0, else 0
                                                                        [R1, S]
    with the weights before the step. Returns a list of n_params ints."""
    sl = _check(params_q, layer_sizes)
    n_cls = layer_sizes[-1]
    if len(X_q) != len(y):
        raise ValueError("X_q and y differ in length")
    g = [0] * len(params_q)
    for s in range(len(X_q)):
        label = y[s]
        if label < 0 or label >= n_cls:
            raise ValueError("label out of range")
        acts, z = _forward(params_q, sl, X_q[s])
        delta = softmax_q16(z)
        delta[label] -= ONE
        for k in range(len(sl) - 1, -1, -1):
            w0, b0, fan_in, fan_out = sl[k]
            h = acts[k]
            for j in range(fan_out):
                dj = delta[j]
                if dj == 0:
                    continue
                g[b0 + j] += dj
                row = w0 + j * fan_in
                for i in range(fan_in):
                    hi = h[i]
                    if hi:
                        p = dj * hi
                        if p < 0:
                            g[row + i] -= (HALF - p) >> 16
                        else:
                            g[row + i] += (p + HALF) >> 16
            if k > 0:
                nd = []
                for i in range(fan_in):
                    if h[i] > 0:
                        acc = 0
                        for j in range(fan_out):
                            dj = delta[j]
                            if dj:
                                p = params_q[w0 + j * fan_in + i] * dj
                                if p < 0:
                                    acc -= (HALF - p) >> 16
                                else:
                                    acc += (p + HALF) >> 16
                        nd.append(sat32(acc))
                    else:
                        nd.append(0)
                delta = nd
    return g


def apply_grad_sum_q16(params_q, grad_sum, batch, lr_q):
    """w' = sat32(w - mul(lr_q, sat32(div_round_i64(gsum, batch))))      [R6, R7]"""
    if batch < 1:
        raise ValueError("batch must be >= 1")
    out = []
    for t in range(len(params_q)):
        gm = sat32(q16.div_round_i64(grad_sum[t], batch))
        step = q16.mul(lr_q, gm)[0]
        out.append(sat32(params_q[t] - step))
    return out


def sgd_step_q16(params_q, layer_sizes, X_q, y, lr_q):
    """One SGD step on the minibatch (X_q: list of rows of Q16.16 ints, y: labels):
    the mean gradient (sum in wide ints, divided by the batch size with rounding)
    times lr_q (q16.mul), subtracted with saturation. Returns new params."""
    if len(X_q) == 0:
        raise ValueError("empty batch")
    g = grad_sum_q16(params_q, layer_sizes, X_q, y)
    return apply_grad_sum_q16(params_q, g, len(X_q), lr_q)


def train_epoch_q16(params_q, layer_sizes, X_q, y, lr_q, batch_size, order):
    """One epoch: batches order[0:bs], order[bs:2bs], ... (the last may be
    smaller), one sgd_step_q16 each. ``order`` is the caller's visiting order."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    p = list(params_q)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        p = sgd_step_q16(p, layer_sizes, [X_q[i] for i in idx], [y[i] for i in idx], lr_q)
    return p


# ---- on the node: visiting order and the training loop of qn_train ------------------------
# A board has no numpy permutation; qnode/train.h's qn_node_order and qn_train are defined
# here (docs/fixed-point-training.md, "On the node").
MASK32 = 0xFFFFFFFF
# xorshift32 never leaves 0, so seed 0 starts from this state instead (2^32 / golden ratio)
NODE_SEED_ZERO = 0x9E3779B9


def node_order(seed, m):
    """The visiting order of ``m`` rows a node uses for ``seed`` (0 <= seed < 2^32).

    Fisher-Yates over [0, 1, ..., m-1] from the last index down, driven by xorshift32
    (state x = seed, or NODE_SEED_ZERO for seed 0; each draw is
    x ^= x << 13; x ^= x >> 17; x ^= x << 5, all mod 2^32, and returns the new x):
    for i = m-1 .. 1: j = next() % (i + 1); swap order[i], order[j]. Index 0 draws nothing."""
    if seed < 0 or seed > MASK32:
        raise ValueError("seed must be in [0, 2^32)")
    if m < 0:
        raise ValueError("m must be >= 0")
    x = seed if seed else NODE_SEED_ZERO
    order = list(range(m))
    for i in range(m - 1, 0, -1):
        x ^= (x << 13) & MASK32
        x ^= x >> 17
        x ^= (x << 5) & MASK32
        j = x % (i + 1)
        t = order[i]
        order[i] = order[j]
        order[j] = t
    return order


def train_node_q16(params_q, layer_sizes, X_q, y, epochs, batch_size, lr_q, seed):
    """What the node's qn_train computes: ``epochs`` epochs of train_epoch_q16 over the m rows
    of X_q, epoch e (0-based) visiting them in node_order((seed + e) mod 2^32, m), in batches
    of batch_size (the last may be smaller). m = 0 or epochs = 0 returns the params unchanged.
    Returns new params (a list)."""
    if len(X_q) != len(y):
        raise ValueError("X_q and y differ in length")
    if epochs < 0:
        raise ValueError("epochs must be >= 0")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if seed < 0 or seed > MASK32:
        raise ValueError("seed must be in [0, 2^32)")
    _check(params_q, layer_sizes)
    p = list(params_q)
    m = len(X_q)
    if m == 0:
        return p
    for e in range(epochs):
        order = node_order((seed + e) & MASK32, m)
        p = train_epoch_q16(p, layer_sizes, X_q, y, lr_q, batch_size, order)
    return p
