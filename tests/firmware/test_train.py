"""The node's Q16.16 training (firmware/core/src/train.c, qnode/train.h) gives the bits of the
integer reference (qora.reference.train) and of the numpy twin (Q16Model): one SGD step on random
shapes and saturating values, the visiting order, whole epochs of qn_train on digits, qn_predict.

The C runs in one harness process per module (tests/firmware/train_harness.c, gcc with ASan +
UBSan, spoken to over stdin / stdout); the same code is built warning-free by gcc and clang,
cross-compiled for Cortex-M4 and RV32, and run on both under QEMU against reference vectors.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cbuild import CORE, ROOT, SANITIZE, STRICT, compile_ok, require, run
from qora.native import to_q16
from qora.reference import train as R
from qora.sim.data import load_digits
from qora.sim import fixed as F
from qora.sim.fixed import Q16Model

HERE = Path(__file__).resolve().parent
FW = ROOT / "firmware" / "core"
TRAIN_SOURCES = [str(FW / "src" / "train.c"), str(FW / "src" / "fixmath.c")]
INCLUDES = [f"-I{FW / 'include'}", f"-I{CORE / 'include'}"]
TARGETS_DIR = CORE / "tests" / "targets"
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
MAX_BATCH = 256                              # QN_TRAIN_MAX_BATCH
REAL_SIZES = [(64, 10), (64, 32, 10)]

# What the objects may call: each other and shared_c. No libc, no libgcc helper.
ALLOWED_UNDEFINED = {"qn_exp_q30", "qn_softmax_q16", "qora_div_round_i64", "qora_q16_mul"}
CROSS = {
    "cortex-m4": ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb"]),
    "rv32": ("riscv64-unknown-elf-gcc", ["-march=rv32imc", "-mabi=ilp32"]),
}


# ---- the harness ------------------------------------------------------------------------------


class TrainHarness:
    """One train_harness process; each call sends arrays of 32-bit words and reads int32s."""

    SIZES, SGD, ORDER, TRAIN, PREDICT, SELFTEST, EXP, SOFTMAX = range(1, 9)

    def __init__(self, exe: Path) -> None:
        self.proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    def _died(self) -> AssertionError:
        self.proc.kill()
        err = self.proc.stderr.read().decode(errors="replace")
        return AssertionError(f"train_harness died (ASan / UBSan report?):\n{err[-4000:]}")

    def call(self, cmd: int, *arrays) -> np.ndarray:
        parts = [struct.pack("<II", cmd, len(arrays))]
        for a in arrays:
            w = (np.asarray(a, dtype=np.int64).ravel() & 0xFFFFFFFF).astype("<u4")
            parts += [struct.pack("<I", w.size), w.tobytes()]
        try:
            self.proc.stdin.write(b"".join(parts))
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            raise self._died()
        n = struct.unpack("<I", head)[0]
        return np.frombuffer(self.proc.stdout.read(4 * n), dtype="<i4").astype(np.int64)

    def close(self) -> None:
        self.proc.stdin.close()
        rc = self.proc.wait(timeout=30)
        err = self.proc.stderr.read().decode(errors="replace")
        assert rc == 0 and not err.strip(), f"train_harness exited {rc}:\n{err[-4000:]}"

    # -- the API --

    def sizes(self, sizes, max_batch: int) -> tuple[int, int]:
        n, scratch = self.call(self.SIZES, list(sizes), [max_batch]).tolist()
        return n, scratch

    def scratch_for(self, sizes, batch: int) -> int:
        return self.sizes(sizes, batch)[1]

    def sgd(self, sizes, X, y, params, idx, lr_q, scratch=None, misalign=0):
        if scratch is None:
            scratch = self.scratch_for(sizes, max(1, min(len(idx), MAX_BATCH)))
        out = self.call(self.SGD, list(sizes), X, y, params, idx, [lr_q, scratch, misalign])
        return int(out[0]), out[1:]

    def order(self, seed: int, m: int) -> list[int]:
        return (self.call(self.ORDER, [seed, m]) & 0xFFFFFFFF).tolist()

    def train(self, sizes, X, y, params, epochs, batch_size, lr_q, seed, scratch=None,
              misalign=0, m=None):
        m = len(y) if m is None else m
        if scratch is None:
            scratch = self.scratch_for(sizes, max(1, min(batch_size, m)))
        out = self.call(self.TRAIN, list(sizes), X, y, params,
                        [m, epochs, batch_size, lr_q, seed, scratch, misalign])
        return int(out[0]), out[1:]

    def predict(self, sizes, X, params, scratch=None, misalign=0) -> list[int]:
        X = np.asarray(X)
        if scratch is None:
            scratch = self.scratch_for(sizes, 1)
        return self.call(self.PREDICT, list(sizes), X, params,
                         [X.shape[0], scratch, misalign]).tolist()


@pytest.fixture(scope="module")
def train_harness(tmp_path_factory):
    require("gcc")
    exe = tmp_path_factory.mktemp("train-harness") / "train_harness"
    compile_ok(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE, *INCLUDES,
                f"-I{FW / 'src'}",
                *TRAIN_SOURCES, str(CORE / "src" / "q16.c"), str(HERE / "train_harness.c"),
                "-o", str(exe)])
    h = TrainHarness(exe)
    yield h
    h.close()


@pytest.fixture(scope="module")
def digits():
    d = load_digits(seed=0)
    return (to_q16(d.X_train)[0].astype(np.int64), d.y_train.astype(np.int64),
            to_q16(d.X_test)[0].astype(np.int64), d.y_test.astype(np.int64))


def _mixed(rng: np.random.Generator, n: int, scale: float, p_extreme: float) -> np.ndarray:
    """Q16.16 ints: mostly N(0, scale), some INT32_MIN / MAX, some uniform over int32."""
    v = np.rint(rng.normal(0, scale, size=n) * 65536)
    kind = rng.random(n)
    v = np.where(kind < p_extreme / 2, rng.choice([I32_MIN, I32_MAX], size=n), v)
    v = np.where((kind >= p_extreme / 2) & (kind < p_extreme),
                 rng.integers(I32_MIN, I32_MAX, size=n, endpoint=True), v)
    return np.clip(v, I32_MIN, I32_MAX).astype(np.int64)


# ---- exp and softmax (fixmath.c) ----------------------------------------------------------------


def test_exp_q30_matches_reference_on_every_input(train_harness):
    x = np.arange(R.EXP_MIN - 3, 1, dtype=np.int64)        # all 1,048,580 values, and below
    got = train_harness.call(TrainHarness.EXP, x)
    assert np.array_equal(got, F.exp_q30(x))
    # against the reference itself: the 39 inputs whose [R3] rounding is an exact tie, and a sample
    t = np.array(R.EXP2_TABLE, dtype=np.int64)
    u = ((-x[x >= R.EXP_MIN]) * R.LOG2E_Q30 + (1 << 21)) >> 22
    f = u & 0xFFFFFF
    ties = x[x >= R.EXP_MIN][((t[f >> 16] - t[(f >> 16) + 1]) * (f & 0xFFFF) & 0xFFFF) == 0x8000]
    assert len(ties) == 39
    for v in np.concatenate([ties, x[::997], x[:5]]).tolist():       # x[:3] < EXP_MIN: 0
        assert got[v - int(x[0])] == R.exp_q30(v)


# logits [0, -745669, -831703, -45428] give e = [2^30, 12288, 3306, 536855318], S = 3 * 2^29, and
# p_1 = 12288 * 2^16 / S = 0.5 exactly: [R5] rounds the tie away from zero, to 1.
SOFTMAX_TIE_ROW = [0, -745669, -831703, -45428]


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.integers(I32_MIN, I32_MAX),
                                        st.integers(-20 * 65536, 20 * 65536),
                                        st.sampled_from([I32_MIN, I32_MAX, 0, R.EXP_MIN])),
                              min_size=1, max_size=12), min_size=1, max_size=4))
def test_softmax_matches_reference(train_harness, rows):
    for z in rows:
        assert train_harness.call(TrainHarness.SOFTMAX, [len(z)], z).tolist() == R.softmax_q16(z)


def test_softmax_rounds_an_exact_tie_away_from_zero(train_harness):
    want = [43691, 1, 0, 21845]
    assert R.softmax_q16(SOFTMAX_TIE_ROW) == want
    assert F.softmax_q16(np.array([SOFTMAX_TIE_ROW])).tolist() == [want]
    assert train_harness.call(TrainHarness.SOFTMAX, [4], SOFTMAX_TIE_ROW).tolist() == want


# ---- one SGD step -----------------------------------------------------------------------------


@st.composite
def step_case(draw, real: bool):
    if real:
        sizes = draw(st.sampled_from(REAL_SIZES))
    else:
        n_hidden = draw(st.integers(0, 3))       # up to QN_TRAIN_MAX_LAYERS layers
        sizes = tuple(draw(st.lists(st.integers(1, 9), min_size=n_hidden + 1,
                                    max_size=n_hidden + 1)))
        sizes += (draw(st.integers(2, 6)),)
    seed = draw(st.integers(0, 2**32 - 1))
    w_scale = draw(st.sampled_from([0.01, 0.3, 4.0, 30000.0]))
    x_scale = draw(st.sampled_from([0.5, 1.0, 40.0]))
    p_extreme = draw(st.sampled_from([0.0, 0.05, 0.5]))
    batch = draw(st.integers(1, 32))
    n_rows = batch + draw(st.integers(0, 6))
    lr_q = draw(st.one_of(st.sampled_from([6554, 32768, 65536, 1, I32_MAX, I32_MIN]),
                          st.integers(I32_MIN, I32_MAX)))
    misalign = draw(st.integers(0, 7))
    rng = np.random.default_rng(seed)
    params = _mixed(rng, R.n_params(sizes), w_scale, p_extreme)
    X = _mixed(rng, n_rows * sizes[0], x_scale, p_extreme).reshape(n_rows, sizes[0])
    X[:, rng.random(sizes[0]) < 0.3] = 0        # zero columns, as in digits
    y = rng.integers(0, sizes[-1], size=n_rows)
    idx = rng.integers(0, n_rows, size=batch)   # repeats and any order
    return sizes, params, X, y, idx, lr_q, misalign


def _check_step(train_harness, case):
    sizes, params, X, y, idx, lr_q, misalign = case
    # Execute
    status, got = train_harness.sgd(sizes, X, y, params, idx, lr_q, misalign=misalign)
    want = R.sgd_step_q16(params.tolist(), sizes, X[idx].tolist(), y[idx].tolist(), lr_q)
    twin = Q16Model(sizes).train_step(params, X[idx], y[idx], lr_q)
    # Assert
    assert status == 0
    assert got.tolist() == want
    assert twin.tolist() == want


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step_case(real=False))
def test_sgd_step_matches_reference_on_random_shapes(train_harness, case):
    _check_step(train_harness, case)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step_case(real=True))
def test_sgd_step_matches_reference_on_softmax_and_mlp(train_harness, case):
    _check_step(train_harness, case)


def test_sgd_step_with_a_full_batch_of_extremes(train_harness):
    """Every parameter and input at INT32_MIN / INT32_MAX: all accumulators at their bounds."""
    rng = np.random.default_rng(1)
    sizes = (64, 32, 10)
    params = rng.choice([I32_MIN, I32_MAX], size=R.n_params(sizes)).astype(np.int64)
    X = rng.choice([I32_MIN, I32_MAX], size=(MAX_BATCH, 64)).astype(np.int64)
    y = rng.integers(0, 10, size=MAX_BATCH)
    idx = np.arange(MAX_BATCH)
    status, got = train_harness.sgd(sizes, X, y, params, idx, I32_MAX)
    assert status == 0
    assert got.tolist() == Q16Model(sizes).train_step(params, X, y, I32_MAX).tolist()


# ---- visiting order ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(seed=st.one_of(st.integers(0, 2**32 - 1),
                      st.sampled_from([0, 1, R.NODE_SEED_ZERO, R.MASK32])),
       m=st.one_of(st.integers(0, 40), st.integers(0, 3000)))
def test_node_order_matches_reference(train_harness, seed, m):
    got = train_harness.order(seed, m)
    assert got == R.node_order(seed, m)
    assert sorted(got) == list(range(m))


def test_node_order_is_xorshift32_fisher_yates():
    # Marsaglia's xorshift32 (13, 17, 5) from state 1 first gives 270369; that draw picks the
    # swap partner of the last index: j = 270369 % m.
    assert R.node_order(1, 270370)[-1] == 270369
    assert R.node_order(1, 10) == [3, 1, 0, 2, 6, 7, 8, 5, 4, 9]     # pinned
    assert R.node_order(0, 50) == R.node_order(R.NODE_SEED_ZERO, 50)
    assert R.node_order(5, 0) == [] and R.node_order(5, 1) == [0]
    with pytest.raises(ValueError):
        R.node_order(2**32, 3)


# ---- qn_train ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", REAL_SIZES, ids=str)
def test_train_full_epochs_on_digits_bit_exact(train_harness, digits, sizes):
    X, y = digits[0], digits[1]                 # 1,347 rows: the last batch has 3
    model = Q16Model(sizes)
    p0 = model.init_params(3)
    settings_ = dict(epochs=2, batch_size=32, lr_q=6554, seed=7)
    # Execute
    status, got = train_harness.train(sizes, X, y, p0, **settings_, misalign=5)
    want = R.train_node_q16(p0.tolist(), sizes, X.tolist(), y.tolist(), **settings_)
    twin = model.train_node(p0, X, y, **settings_)
    # Assert
    assert status == 0
    assert got.tolist() == want
    assert twin.tolist() == want
    # it learned (chance is 10 %; two epochs at lr 0.1 reach 72 % (MLP) and 83 % (softmax))
    assert (model.predict(got, digits[2]) == digits[3]).mean() > 0.6


def test_train_epochs_use_seed_plus_epoch_wrapping(train_harness, digits):
    """Epoch e uses node_order(seed + e mod 2^32): from seed 2^32 - 1 the second epoch is seed 0
    (which xorshift32 replaces); batch_size > m gives one batch of all m rows."""
    X, y = digits[0][:150], digits[1][:150]
    sizes = (64, 10)
    p0 = Q16Model(sizes).init_params(1)
    for batch_size in (7, 200):
        want = p0.tolist()
        for e, seed in enumerate((R.MASK32, 0, 1)):
            assert (R.MASK32 + e) & R.MASK32 == seed
            want = R.train_epoch_q16(want, sizes, X.tolist(), y.tolist(), 6554, batch_size,
                                     R.node_order(seed, len(y)))
        status, got = train_harness.train(sizes, X, y, p0, 3, batch_size, 6554, R.MASK32)
        assert status == 0 and got.tolist() == want
        assert R.train_node_q16(p0.tolist(), sizes, X.tolist(), y.tolist(), 3, batch_size, 6554,
                                R.MASK32) == want


def test_train_with_no_rows_or_no_epochs_changes_nothing(train_harness, digits):
    sizes = (64, 10)
    p0 = Q16Model(sizes).init_params(0)
    X, y = digits[0][:10], digits[1][:10]
    assert train_harness.train(sizes, X, y, p0, 0, 4, 6554, 1)[1].tolist() == p0.tolist()
    assert train_harness.train(sizes, X, y, p0, 3, 4, 6554, 1, m=0)[1].tolist() == p0.tolist()
    assert R.train_node_q16(p0.tolist(), sizes, [], [], 3, 4, 6554, 1) == p0.tolist()
    assert Q16Model(sizes).train_node(p0, X[:0], y[:0], 3, 4, 6554, 1).tolist() == p0.tolist()


# ---- qn_predict -------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", REAL_SIZES, ids=str)
def test_predict_matches_reference(train_harness, digits, sizes):
    rng = np.random.default_rng(2)
    model = Q16Model(sizes)
    Xte = digits[2][:120]
    for params in (model.init_params(4), _mixed(rng, model.n_params, 2.0, 0.2)):
        want = [R.predict_q16(params.tolist(), sizes, r) for r in Xte.tolist()]
        assert train_harness.predict(sizes, Xte, params, misalign=3) == want
        assert model.predict(params, Xte).tolist() == want
    # ties: all-zero parameters give equal logits, and the lowest class wins
    assert train_harness.predict(sizes, Xte[:3], np.zeros(model.n_params, np.int64)) == [0, 0, 0]


# ---- sizes and bad input ----------------------------------------------------------------------


def _documented_scratch(sizes, batch):
    """docs/fixed-point-training.md, "On the node": 8 * max fan_in + 4 * batch * (hidden widths
    + the two delta buffers' widths) + 7 bytes of alignment slack."""
    L = len(sizes) - 1
    width = [0, 0]
    for k in range(L):
        b = (L - 1 - k) & 1
        width[b] = max(width[b], sizes[k + 1])
    return 8 * max(sizes[:-1]) + 4 * batch * (sum(sizes[1:-1]) + width[0] + width[1]) + 7


def test_scratch_sizes_are_the_documented_ones(train_harness):
    assert train_harness.sizes((64, 32, 10), 32) == (2410, 9991)
    assert train_harness.sizes((64, 10), 32) == (650, 1799)
    assert train_harness.sizes((64, 32, 10), 1) == (2410, 815)
    for sizes in [(64, 10), (64, 32, 10), (3, 9, 2, 7), (5, 4, 3, 2, 2), (1, 1)]:
        for batch in (1, 2, 31, 32, MAX_BATCH):
            assert train_harness.sizes(sizes, batch) == (R.n_params(sizes),
                                                   _documented_scratch(sizes, batch))


def test_bad_arguments_are_refused_and_change_nothing(train_harness, digits):
    # the NULL pointers and degenerate calls that cannot travel through the pipe
    assert train_harness.call(TrainHarness.SELFTEST).tolist() == [0]
    X, y = digits[0][:40], digits[1][:40].copy()
    sizes = (64, 32, 10)
    p0 = Q16Model(sizes).init_params(0)
    idx = np.arange(32)
    need = train_harness.scratch_for(sizes, 32)
    assert train_harness.sgd(sizes, X, y, p0, idx, 6554, scratch=need)[0] == 0
    refused = [
        train_harness.sgd(sizes, X, y, p0, idx, 6554, scratch=need - 1),               # scratch
        train_harness.sgd(sizes, X, y, p0, idx[:0], 6554),                             # batch 0
        train_harness.sgd(sizes, np.zeros((MAX_BATCH + 1, 64)), np.zeros(MAX_BATCH + 1), p0,
                          np.arange(MAX_BATCH + 1), 6554, scratch=10**6),        # batch 257
        train_harness.sgd((64,), X, y, p0, idx, 6554, scratch=10**5),                  # one size
        train_harness.sgd((64, 0, 10), X, y, p0, idx, 6554, scratch=10**5),            # width 0
        train_harness.sgd((64, 4, 4, 4, 4, 10), X, y, p0, idx, 6554, scratch=10**5),   # 5 layers
        train_harness.train(sizes, X, y, p0, 1, 32, 6554, 1, scratch=need - 1),
        train_harness.train(sizes, X, y, p0, 1, 0, 6554, 1, scratch=10**5),      # batch_size 0
        train_harness.train(sizes, X, y, p0, 1, MAX_BATCH + 1, 6554, 1, scratch=10**6),
    ]
    y[39] = 10                                  # one label out of range, outside the batch
    refused.append(train_harness.train(sizes, X, y, p0, 1, 8, 6554, 1))
    y[39], y[idx[5]] = 0, 10                    # one inside it (labels are 0..9)
    refused.append(train_harness.sgd(sizes, X, y, p0, idx, 6554))
    for status, params in refused:
        assert status == -1
        assert params.tolist() == p0.tolist()
    short = train_harness.scratch_for(sizes, 1) - 1
    assert train_harness.predict(sizes, X[:2], p0, scratch=short) == [-1, -1]


# ---- builds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_train_builds_strict_without_warnings(cc, opt, tmp_path):
    require(cc)
    for src in TRAIN_SOURCES:
        obj = tmp_path / (Path(src).stem + ".o")
        compile_ok([cc, *STRICT, opt, *INCLUDES, "-c", src, "-o", str(obj)])


def _undefined(nm: str, obj: Path) -> set[str]:
    proc = run([nm, "-u", str(obj)])
    assert proc.returncode == 0, proc.stderr
    return {line.split()[-1] for line in proc.stdout.splitlines() if line.strip()}


@pytest.mark.parametrize("target", list(CROSS))
def test_train_cross_compiles_without_helpers(target, tmp_path):
    """Objects for the boards at -Os, strict and freestanding (only <stdint.h> / <stddef.h>):
    no libc and no libgcc call (64-bit multiplies are inline, divisions go through shared_c)."""
    cc, arch = CROSS[target]
    require(cc)
    nm = cc.replace("-gcc", "-nm")
    undefined: set[str] = set()
    for src in TRAIN_SOURCES:
        obj = tmp_path / (Path(src).stem + ".o")
        compile_ok([cc, *arch, *STRICT, "-Os", "-ffreestanding", *INCLUDES, "-c", src,
                    "-o", str(obj)])
        undefined |= _undefined(nm, obj)
    assert undefined <= ALLOWED_UNDEFINED, undefined - ALLOWED_UNDEFINED


def _c_array(name: str, ctype: str, values) -> str:
    body = ",".join(str(int(v)) for v in values)
    return f"static const {ctype} {name}[] = {{{body}}};\n"


def _i32_literal(v: int) -> str:
    return "(-2147483647 - 1)" if v == I32_MIN else str(v)


@pytest.mark.cross_target
@pytest.mark.parametrize("target", list(CROSS))
def test_train_runs_bit_exact_on_emulated_board(target, digits, tmp_path):
    """One epoch of the MLP over 100 digits rows under QEMU (-Os, the board build) gives the
    reference's parameters; so do the order and the predictions."""
    cc, _ = CROSS[target]
    require(cc)
    require("qemu-system-arm" if target == "cortex-m4" else "qemu-system-riscv32")
    sizes = (64, 32, 10)
    X, y = digits[0][:100], digits[1][:100]
    p0 = Q16Model(sizes).init_params(5)
    cfg = dict(epochs=1, batch_size=32, lr_q=32768, seed=2024)
    want = R.train_node_q16(p0.tolist(), sizes, X.tolist(), y.tolist(), **cfg)
    pred = [R.predict_q16(want, sizes, r) for r in X.tolist()]
    order_seed, order_m = 0, 300
    header = "".join([
        f"#define N_SIZES {len(sizes)}\n#define SIZES {{{','.join(map(str, sizes))}}}\n",
        f"#define SIZE_IN {sizes[0]}\n#define N_PARAMS {len(want)}\n#define M_ROWS {len(y)}\n",
        f"#define EPOCHS {cfg['epochs']}\n#define BATCH {cfg['batch_size']}\n",
        f"#define LR_Q {cfg['lr_q']}\n#define SEED {cfg['seed']}u\n",
        f"#define ORDER_SEED {order_seed}u\n#define ORDER_M {order_m}\n",
        "static const int32_t X[] = {" + ",".join(map(_i32_literal, X.ravel().tolist())) + "};\n",
        _c_array("Y", "uint8_t", y),
        "static const int32_t P0[] = {" + ",".join(map(_i32_literal, p0.tolist())) + "};\n",
        "static const int32_t WANT[] = {" + ",".join(map(_i32_literal, want)) + "};\n",
        _c_array("PRED_WANT", "uint8_t", pred),
        _c_array("ORDER_WANT", "uint32_t", R.node_order(order_seed, order_m)),
    ])
    (tmp_path / "train_vectors.h").write_text(header)
    elf = tmp_path / f"train-{target}.elf"
    srcs = " ".join([*TRAIN_SOURCES, str(CORE / "src" / "q16.c"), str(HERE / "train_target.c")])
    flags = " ".join([*INCLUDES, f"-I{tmp_path}", "-Wpedantic", "-Wconversion", "-Wshadow"])
    build = run(["make", "-s", "-C", str(TARGETS_DIR), f"TARGET={target}", "WERROR=1", "OPT=-Os",
                 f"SRCS={srcs}", f"CFLAGS_EXTRA={flags}", f"OUT={elf}"])
    assert build.returncode == 0, f"build for {target} failed:\n{build.stdout}\n{build.stderr}"
    proc = run(["make", "-s", "-C", str(TARGETS_DIR), f"TARGET={target}", f"OUT={elf}",
                "QEMU_TIMEOUT=60", "run"], timeout=120)
    assert proc.returncode == 0, f"{target}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert proc.stdout.split("\n")[:3] == ["node_order ok", "train ok", "predict ok"]


# ---- the reference on MicroPython -------------------------------------------------------------


MP_SCRIPT = """\
import sys
print('impl ' + sys.implementation.name)
for seed in (0, 1, 12345, 0x9E3779B9, 0xFFFFFFFF):
    print(repr(train.node_order(seed, 37)))
p = [((i * 7919) % 20001 - 10000) * 7 for i in range(train.n_params((5, 4, 3)))]
X = [[((r * 31 + c * 17) % 9 - 4) * 16384 for c in range(5)] for r in range(11)]
y = [r % 3 for r in range(11)]
print(repr(train.train_node_q16(p, (5, 4, 3), X, y, 3, 4, 40000, 0xFFFFFFFE)))
print('done')
"""


def test_node_order_and_train_node_run_the_same_on_micropython(tmp_path):
    node = shutil.which("node")
    mp_dir = ROOT / "tools" / "micropython"
    meta = (mp_dir / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
            / "package.json")
    if node is None or not meta.exists():
        pytest.fail("node and the MicroPython npm package are needed: run scripts/setup.sh "
                    "(it does `npm ci --prefix tools/micropython`)")
    assert json.loads(meta.read_text())["version"]
    ref = ROOT / "host" / "qora" / "reference"
    cp, mp = tmp_path / "cp.py", tmp_path / "mp.py"
    cp.write_text("from qora.reference import train\n" + MP_SCRIPT)
    mp.write_text("from qref import train\n" + MP_SCRIPT)
    out_cp = subprocess.run([sys.executable, str(cp)], capture_output=True, text=True,
                            timeout=120, check=True).stdout.splitlines()
    proc = subprocess.run([node, str(mp_dir / "run.mjs"), str(mp), "--package", "qref",
                           str(ref / "q16.py"), str(ref / "train.py")], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out_mp = proc.stdout.splitlines()
    assert out_cp[0] == "impl cpython" and out_mp[0] == "impl micropython"
    assert out_cp[-1] == "done" and len(out_cp) == 8
    assert out_mp[1:] == out_cp[1:]
