"""Q16.16 training: the numpy Q16Model is bit-identical to the integer reference
(qora.reference.train), the fixed-point exp / softmax are as accurate as
docs/fixed-point-training.md states, the Q16.16 models learn digits about as well as the
float32 ones, and the reference is valid MicroPython (mpy-cross, and the real VM)."""

from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal, getcontext
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from qora.errors import InvalidInput
from qora.models import MLP, SoftmaxRegression
from qora.native import from_q16, to_q16
from qora.reference import train as R
from qora.sim import fixed as F
from qora.sim.models import Q16Model, make_model
from cbuild import mpy_cross

ROOT = Path(__file__).resolve().parents[2]
TRAIN_PY = ROOT / "host" / "qora" / "reference" / "train.py"
Q16_PY = ROOT / "host" / "qora" / "reference" / "q16.py"
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
SIZES = [(64, 10), (64, 32, 10)]

# Documented bounds (docs/fixed-point-training.md, measured exhaustively / on 1.2M rows)
EXP_Q16_MAX_ERR_LSB = 0.56        # |exp_q16(x) - 2^16 e^(x/2^16)|, all x in [-16, 0]
EXP_Q30_MAX_ERR = 1000            # |exp_q30(x) - 2^30 e^x| in units of 2^-30
SOFTMAX_MAX_ERR_LSB = 0.532       # |p_j - 2^16 softmax_j| (analytic; measured max 0.5157)

# float32 vs Q16.16 on digits (same init, order, lr, batch, epochs): stated in the doc
TRAIN_SETTINGS = dict(epochs=20, lr=0.5, batch_size=32, seed=1)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[:1437], perm[1437:]
    return X[tr], y[tr], X[te], y[te]


# ---- exp / softmax ----------------------------------------------------------------------------


def test_exp_table_and_constant_are_the_documented_roundings():
    getcontext().prec = 60
    ln2 = Decimal(2).ln()
    assert len(R.EXP2_TABLE) == 257
    for i, v in enumerate(R.EXP2_TABLE):
        exact = Decimal(2**30) * (-(Decimal(i) / 256) * ln2).exp()
        assert v == int(exact.to_integral_value(ROUND_HALF_UP)), i
        assert abs(exact - int(exact) - Decimal("0.5")) > Decimal("0.005")  # no near-ties
    assert R.EXP2_TABLE[0] == 2**30 and R.EXP2_TABLE[256] == 2**29
    assert sum(R.EXP2_TABLE) == 199087924107
    assert R.LOG2E_Q30 == int((Decimal(2**30) / ln2).to_integral_value(ROUND_HALF_UP))


def test_exp_numpy_matches_reference_and_error_bound():
    x = np.arange(R.EXP_MIN - 3, 1, dtype=np.int64)
    e30, e16 = F.exp_q30(x), F.exp_q16(x)
    # bit-exact with the reference on a sample (every 97th point and the edges)
    near_min = x[(x > R.EXP_MIN - 3) & (x < R.EXP_MIN + 3)]
    sample = np.concatenate([x[::97], x[:40], x[-40:], near_min])
    for v in sample.tolist():
        i = v - int(x[0])
        assert R.exp_q30(v) == e30[i], v
        assert R.exp_q16(v) == e16[i], v
    ok = x >= R.EXP_MIN
    assert not e30[~ok].any() and not e16[~ok].any()
    ref = np.exp(x[ok] / 65536.0)
    assert np.abs(e16[ok] - ref * 65536).max() <= EXP_Q16_MAX_ERR_LSB
    assert np.abs(e30[ok] - ref * 2**30).max() <= EXP_Q30_MAX_ERR
    assert e30[-1] == 2**30 and e16[-1] == 65536
    with pytest.raises(ValueError):
        R.exp_q30(1)


logit = st.one_of(st.integers(I32_MIN, I32_MAX), st.integers(-20 * 65536, 20 * 65536),
                  st.sampled_from([I32_MIN, I32_MAX, 0, R.EXP_MIN, -R.EXP_MIN]))


@settings(max_examples=300, deadline=None)
@given(st.lists(logit, min_size=2, max_size=12))
def test_softmax_reference_is_close_to_float_and_sums_to_one(z):
    p = R.softmax_q16(z)
    zf = np.array(z, dtype=np.float64) / 65536.0
    ef = np.exp(zf - zf.max())
    pf = ef / ef.sum() * 65536
    assert np.abs(np.array(p) - pf).max() <= SOFTMAX_MAX_ERR_LSB
    assert abs(sum(p) - 65536) <= len(z) // 2
    assert all(v >= 0 for v in p)
    assert F.softmax_q16(np.array([z])).tolist() == [p]


def test_softmax_error_on_many_rows():
    rng = np.random.default_rng(0)
    for spread in (0.01, 1.0, 8.0, 1000.0):
        z = np.clip(np.rint(rng.normal(0, spread, size=(50000, 10)) * 65536), I32_MIN, I32_MAX)
        p = F.softmax_q16(z.astype(np.int64))
        zf = z / 65536.0
        ef = np.exp(zf - zf.max(1, keepdims=True))
        pf = ef / ef.sum(1, keepdims=True) * 65536
        assert np.abs(p - pf).max() <= SOFTMAX_MAX_ERR_LSB
        assert np.abs(p.sum(1) - 65536).max() <= 5


# ---- bit-exactness: numpy train_step == reference sgd_step_q16 -------------------------------


def _mixed(rng: np.random.Generator, n: int, scale: float, p_extreme: float) -> np.ndarray:
    """Q16.16 ints: mostly N(0, scale), some INT32_MIN / MAX, some uniform over int32."""
    v = np.rint(rng.normal(0, scale, size=n) * 65536)
    kind = rng.random(n)
    v = np.where(kind < p_extreme / 2, rng.choice([I32_MIN, I32_MAX], size=n), v)
    v = np.where((kind >= p_extreme / 2) & (kind < p_extreme),
                 rng.integers(I32_MIN, I32_MAX, size=n, endpoint=True), v)
    return np.clip(v, I32_MIN, I32_MAX).astype(np.int64)


@st.composite
def small_case(draw):
    n_hidden = draw(st.integers(0, 2))
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=n_hidden + 1, max_size=n_hidden + 1)))
    sizes = sizes + (draw(st.integers(2, 4)),)
    q = st.one_of(st.integers(I32_MIN, I32_MAX), st.integers(-3 * 65536, 3 * 65536),
                  st.sampled_from([I32_MIN, I32_MAX, 0, 1, -1, 32768, -32768]))
    params = draw(st.lists(q, min_size=R.n_params(sizes), max_size=R.n_params(sizes)))
    batch = draw(st.integers(1, 5))
    X = [draw(st.lists(q, min_size=sizes[0], max_size=sizes[0])) for _ in range(batch)]
    y = draw(st.lists(st.integers(0, sizes[-1] - 1), min_size=batch, max_size=batch))
    lr_q = draw(st.one_of(st.integers(1, 65536), st.integers(I32_MIN, I32_MAX)))
    return sizes, params, X, y, lr_q


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_case())
def test_train_step_matches_reference_small_nets(case):
    sizes, params, X, y, lr_q = case
    want = R.sgd_step_q16(params, sizes, X, y, lr_q)
    got = Q16Model(sizes).train_step(np.array(params), np.array(X, dtype=np.int64),
                                     np.array(y), lr_q)
    assert got.dtype == np.int32
    assert got.tolist() == want


@settings(max_examples=25, deadline=None)
@given(sizes=st.sampled_from(SIZES), seed=st.integers(0, 2**32 - 1),
       w_scale=st.sampled_from([0.01, 0.3, 4.0, 30000.0]), x_scale=st.sampled_from([0.5, 40.0]),
       p_extreme=st.sampled_from([0.0, 0.05, 0.5]), batch=st.integers(1, 4),
       lr_q=st.sampled_from([6554, 32768, 65536, 1, I32_MAX, I32_MIN]))
def test_train_step_matches_reference_real_sizes(sizes, seed, w_scale, x_scale, p_extreme,
                                                 batch, lr_q):
    rng = np.random.default_rng(seed)
    model = Q16Model(sizes)
    params = _mixed(rng, model.n_params, w_scale, p_extreme)
    X = _mixed(rng, batch * sizes[0], x_scale, p_extreme).reshape(batch, sizes[0])
    X[:, rng.random(sizes[0]) < 0.3] = 0            # zeros, as in digits
    y = rng.integers(0, sizes[-1], size=batch)
    want = R.sgd_step_q16(params.tolist(), sizes, X.tolist(), y.tolist(), lr_q)
    assert model.train_step(params, X, y, lr_q).tolist() == want
    # the forward pass too, row by row
    acts = model.forward(params, X)
    for r in range(batch):
        ref = R.forward_q16(params.tolist(), sizes, X[r].tolist())
        assert [a[r].tolist() for a in acts] == ref


@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_full_epoch_on_digits_slice_matches_reference(sizes, digits):
    X, y = digits[0][:160], digits[1][:160]
    Xq = to_q16(X)[0]
    model = Q16Model(sizes)
    p0 = model.init_params(3)
    order = np.random.default_rng(5).permutation(len(y))
    want = R.train_epoch_q16(p0.tolist(), sizes, Xq.tolist(), y.tolist(), 6554, 32, order.tolist())
    assert model.train_epoch(p0, Xq, y, 6554, 32, order).tolist() == want
    # train() visits rows in qora.models' order: default_rng(seed).permutation per epoch
    order = np.random.default_rng(11).permutation(len(y))
    want = R.train_epoch_q16(p0.tolist(), sizes, Xq.tolist(), y.tolist(), 6554, 25, order.tolist())
    assert model.train(p0, Xq, y, epochs=1, lr=0.1, batch_size=25, seed=11).tolist() == want
    assert want != p0.tolist()


# ---- learning ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,margin,floor", [("softmax", 0.03, 0.95), ("mlp", 0.05, 0.95)])
def test_q16_learns_digits_like_float32(kind, margin, floor, digits):
    Xtr, ytr, Xte, yte = digits
    fm, qm = make_model(kind, "float32"), make_model(kind, "q16_16")
    pf = fm.train(fm.init_params(0), Xtr, ytr, **TRAIN_SETTINGS)
    pq = qm.train(qm.init_params(0), to_q16(Xtr)[0], ytr, **TRAIN_SETTINGS)
    acc_f = float((fm.predict(pf, Xte) == yte).mean())
    acc_q = float((qm.predict(pq, to_q16(Xte)[0]) == yte).mean())
    assert acc_q >= floor, (acc_f, acc_q)
    assert acc_q >= acc_f - margin, (acc_f, acc_q)
    # float in, float out: the same integer training behind a float interface
    pq_f = qm.train(qm.init_params(0).astype(np.float32) / 65536, Xtr, ytr, **TRAIN_SETTINGS)
    assert pq_f.dtype == np.float32
    np.testing.assert_array_equal(pq_f, from_q16(pq))


# ---- API --------------------------------------------------------------------------------------


def test_make_model_and_init():
    assert isinstance(make_model("softmax", "float32"), SoftmaxRegression)
    assert isinstance(make_model("mlp", "float32"), MLP)
    q = make_model("mlp", "q16_16")
    assert isinstance(q, Q16Model) and q.layer_sizes == (64, 32, 10) and q.n_params == 2410
    assert make_model("softmax", "q16_16").layer_sizes == (64, 10)
    for bad in [("cnn", "float32"), ("mlp", "float16")]:
        with pytest.raises(InvalidInput):
            make_model(*bad)
    p = q.init_params(7)
    assert p.dtype == np.int32
    np.testing.assert_array_equal(p, to_q16(MLP((64, 32, 10)).init_params(7))[0])
    np.testing.assert_array_equal(make_model("softmax", "q16_16").init_params(7),
                                  to_q16(SoftmaxRegression(64, 10).init_params(7))[0])
    with pytest.raises(InvalidInput):
        q.train_step(p, np.zeros((0, 64), np.int64), np.zeros(0, np.int64), 6554)
    with pytest.raises(ValueError):
        R.sgd_step_q16(p.tolist(), (64, 32, 10), [], [], 6554)


def test_predict_is_argmax_of_logits_like_reference(digits):
    model = Q16Model((64, 32, 10))
    p = model.init_params(1)
    Xq = to_q16(digits[2][:20])[0]
    got = model.predict(p, Xq).tolist()
    assert got == [R.predict_q16(p.tolist(), (64, 32, 10), r) for r in Xq.tolist()]
    probs = model.predict_proba(p, Xq)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4)


# ---- MicroPython ------------------------------------------------------------------------------



def test_reference_compiles_with_mpy_cross(tmp_path):
    for path in (TRAIN_PY, Q16_PY):
        out = tmp_path / (path.stem + ".mpy")
        proc = subprocess.run([*mpy_cross(), "-o", str(out), str(path)], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert out.stat().st_size > 0


def test_reference_is_integer_only_and_plain():
    tree = ast.parse(TRAIN_PY.read_text())
    for node in ast.walk(tree):
        where = "train.py:%s" % getattr(node, "lineno", "?")
        assert not isinstance(node, (ast.JoinedStr, ast.AnnAssign, ast.NamedExpr)), where
        if isinstance(node, ast.arguments):
            assert all(a.annotation is None for a in node.args + node.kwonlyargs), where
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None, where
        if isinstance(node, ast.Constant):
            assert not isinstance(node.value, float), "float literal at " + where
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            assert not isinstance(node.op, ast.Div), "true division at " + where
        assert not isinstance(node, ast.Import), "import at " + where
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, "absolute import at " + where
        if isinstance(node, ast.Attribute):
            assert node.attr != "bit_length", where


MP_SCRIPT = """\
import sys
print('impl ' + sys.implementation.name)
s = 12345
def rnd():
    global s
    s = (s * 1103515245 + 12345) & 0x7FFFFFFF
    return s
def q(scale):
    return (rnd() % (2 * scale + 1)) - scale
for x in (0, -1, -65536, -16 * 65536, -16 * 65536 + 1, -777777):
    print(repr([train.exp_q30(x), train.exp_q16(x)]))
print(repr(train.softmax_q16([2147483647, -2147483648, 0, 65536, 70000])))
for sizes in ((6, 3), (6, 4, 3), (5, 3, 2, 3)):
    n = train.n_params(sizes)
    for scale in (70000, 2147483647):
        p = [q(scale) for _ in range(n)]
        X = [[q(65536) for _ in range(sizes[0])] for _ in range(5)]
        y = [rnd() % sizes[-1] for _ in range(5)]
        print(repr(train.forward_q16(p, sizes, X[0])))
        print(repr(train.sgd_step_q16(p, sizes, X[:3], y[:3], 6554)))
        print(repr(train.train_epoch_q16(p, sizes, X, y, 40000, 2, [4, 0, 3, 1, 2])))
print('done')
"""


def test_reference_runs_the_same_on_micropython(tmp_path):
    node = shutil.which("node")
    mp_dir = ROOT / "tools" / "micropython"
    meta = (mp_dir / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
            / "package.json")
    hint = "run scripts/setup.sh (it does `npm ci --prefix tools/micropython`)"
    if node is None or not meta.exists():
        pytest.fail("node and the MicroPython npm package are needed: " + hint)
    assert json.loads(meta.read_text())["version"]
    cp = tmp_path / "cp.py"
    mp = tmp_path / "mp.py"
    cp.write_text("from qora.reference import train\n" + MP_SCRIPT)
    mp.write_text("from qref import train\n" + MP_SCRIPT)
    out_cp = subprocess.run([sys.executable, str(cp)], capture_output=True, text=True,
                            timeout=120, check=True).stdout.splitlines()
    proc = subprocess.run([node, str(mp_dir / "run.mjs"), str(mp), "--package", "qref",
                           str(Q16_PY), str(TRAIN_PY)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out_mp = proc.stdout.splitlines()
    assert out_cp[0] == "impl cpython" and out_mp[0] == "impl micropython"
    assert out_cp[-1] == "done" and len(out_cp) > 20
    assert out_mp[1:] == out_cp[1:]


def test_float_facts_used_in_the_doc():
    # the exp cut-off rounds to 0 in Q16.16 anyway, and 0.1 converts to 6554
    assert math.exp(-16) * 65536 < 0.5
    assert int(to_q16(np.array([0.1], np.float32))[0][0]) == 6554
