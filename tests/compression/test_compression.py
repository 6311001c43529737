"""qora.compression: round trips, error bounds, PowerSGD behaviour, ratios, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qora.compression import (
    HEADER_BYTES,
    Compressed,
    Int8Quantizer,
    NoCompression,
    PowerSGD,
    Q16Packer,
    Zstd,
    compression_ratio,
    get_compressor,
    model_layout,
    relative_error,
)
from qora.errors import InvalidInput, InvalidType
from qora.models import MLP

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALL_NAMES = ["none", "q16", "zstd", "int8", "int8-stochastic", "zstd+int8", "zstd+q16",
             "powersgd", "powersgd:1", "powersgd:2", "zstd+powersgd:2"]

finite_f32 = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
vectors = hnp.arrays(np.float32, st.integers(1, 300), elements=finite_f32)


def _mlp_layers(seed: int = 0, scale: float = 0.01) -> list[np.ndarray]:
    model = MLP()
    d = (np.random.default_rng(seed).normal(size=model.n_params) * scale).astype(np.float32)
    return [a.copy() for wb in model.unflatten(d) for a in wb]


# ---- round trips -----------------------------------------------------------------------------


@SETTINGS
@given(k=hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(-(2**23), 2**23)))
def test_q16_exact_on_the_grid(k):
    # Prepare: values k / 2^16 with |k| <= 2^23 are float32 numbers on the Q16.16 grid
    x = (k.astype(np.float64) / 65536.0).astype(np.float32)
    assert np.array_equal(x.astype(np.float64) * 65536.0, k.astype(np.float64))
    c = Q16Packer()
    # Execute
    packed = c.compress(x)
    # Assert
    assert np.array_equal(c.decompress(packed), x)
    assert len(packed.payload) == 4 * x.size and packed.meta["saturated"] is False


@SETTINGS
@given(x=vectors)
def test_q16_error_is_half_a_step_and_saturation_is_flagged(x):
    c = Q16Packer()
    packed = c.compress(x)
    r = c.decompress(packed)
    inside = np.abs(x) < 32767
    assert np.all(np.abs(r[inside].astype(np.float64) - x[inside]) <= 2.0**-17 + 1e-12)
    big = Q16Packer().compress(np.array([40000.0, -1e6, 1.0], np.float32))
    assert big.meta["saturated"] is True
    assert Q16Packer().decompress(big)[0] == pytest.approx(32768.0, abs=1e-3)


@SETTINGS
@given(x=vectors, stochastic=st.booleans())
def test_int8_error_bounded_by_the_scale(x, stochastic):
    c = Int8Quantizer(stochastic=stochastic, seed=1)
    packed = c.compress(x)
    r = c.decompress(packed)
    scale = float(np.frombuffer(packed.payload[:4], "<f4")[0])
    assert scale == pytest.approx(float(np.max(np.abs(x))) / 127, rel=1e-6, abs=1e-45)
    bound = (scale if stochastic else scale / 2) * (1 + 1e-5) + 1e-30
    assert np.all(np.abs(r.astype(np.float64) - x) <= bound)
    assert len(packed.payload) == 4 + x.size


def test_int8_per_tensor_scale_per_layer():
    layers = [np.array([[1.0, -2.0], [0.5, 0.0]], np.float32), np.array([100.0, 3.0], np.float32)]
    packed = Int8Quantizer().compress(layers)
    scales = np.frombuffer(packed.payload[:8], "<f4")
    assert scales.tolist() == pytest.approx([2.0 / 127, 100.0 / 127])
    r = Int8Quantizer().decompress(packed)
    assert np.abs(r[0] - layers[0]).max() <= scales[0] / 2 + 1e-7
    zero = Int8Quantizer().compress(np.zeros(5, np.float32))
    assert np.array_equal(Int8Quantizer().decompress(zero), np.zeros(5, np.float32))


def test_int8_stochastic_rounding_is_unbiased():
    # Prepare: values at fractional positions of the step, where round-to-nearest is biased
    x = np.array([127.0, 0.3, -0.3, 0.5, 0.75, -2.1, 10.49, 63.5], np.float32)
    scale = 1.0  # max|x| / 127
    n = 4000
    stoch, det = Int8Quantizer(stochastic=True, seed=7), Int8Quantizer()
    # Execute
    mean = np.mean([stoch.decompress(stoch.compress(x)) for _ in range(n)], axis=0)
    det_r = det.decompress(det.compress(x))
    # Assert: within 5 standard errors (a Bernoulli step has std <= scale / 2)
    assert np.all(np.abs(mean - x) <= 5 * (scale / 2) / math.sqrt(n))
    assert np.abs(det_r[1] - x[1]) == pytest.approx(0.3, abs=1e-6)  # nearest is biased here
    assert abs(mean[1] - x[1]) < 0.05


@SETTINGS
@given(x=vectors, inner=st.sampled_from([None, "int8", "q16", "powersgd:2", "int8-stochastic"]))
def test_zstd_is_lossless_over_its_inner(x, inner):
    # Prepare: two inner instances with the same seed see the same sequence
    a = get_compressor(inner) if inner else NoCompression()
    b = Zstd(get_compressor(inner) if inner else None)
    for _ in range(2):  # twice: stateful inners must stay in step
        ca, cb = a.compress(x), b.compress(x)
        assert np.array_equal(a.decompress(ca), b.decompress(cb))
        assert cb.method == ("zstd" if inner is None else f"zstd+{inner.split(':')[0]}")
    assert np.array_equal(NoCompression().decompress(NoCompression().compress(x)), x)


def test_zstd_shrinks_redundant_payloads():
    x = np.zeros(4096, np.float32)
    x[::64] = 1.0
    c = get_compressor("zstd")
    packed = c.compress(x)
    assert packed.nbytes < x.nbytes / 20
    assert np.array_equal(c.decompress(packed), x)


# ---- PowerSGD ---------------------------------------------------------------------------------


def _low_rank(rows: int, cols: int, r: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, r)) @ rng.normal(size=(r, cols))).astype(np.float32)


@SETTINGS
@given(rows=st.integers(8, 60), cols=st.integers(8, 60), r=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_powersgd_reconstructs_rank_r_matrices(rows, cols, r, seed):
    m = _low_rank(rows, cols, r, seed)
    c = PowerSGD(rank=r, power_iterations=1, error_feedback=False, seed=seed)
    assert relative_error(m, c.decompress(c.compress(m))) < 1e-4


def test_powersgd_power_iterations_approach_the_best_rank_r_error():
    # Prepare: rank-3 signal with a decaying spectrum plus noise: not exactly low rank
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.normal(size=(48, 48)))
    v, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    s = np.array([10.0, 6.0, 4.0] + [0.3 * 0.9**i for i in range(29)])
    m = (u[:, :32] * s @ v.T).astype(np.float32)
    best = math.sqrt(np.sum(s[3:] ** 2) / np.sum(s**2))  # Eckart-Young
    errors = []
    for iters in (1, 2, 8):
        c = PowerSGD(rank=3, power_iterations=iters, error_feedback=False, seed=0)
        errors.append(relative_error(m, c.decompress(c.compress(m))))
    # Assert: more iterations never worse here, and 8 reach the optimum
    assert errors[0] >= errors[1] >= errors[2] - 1e-6
    assert errors[2] == pytest.approx(best, rel=1e-3)


def test_powersgd_error_feedback_running_sums_converge():
    # Prepare: a persistent full-rank drift plus noise, compressed at rank 1
    rng = np.random.default_rng(0)
    drift = rng.normal(size=(20, 15)).astype(np.float32)
    deltas = [(drift + rng.normal(size=drift.shape)).astype(np.float32) for _ in range(300)]
    gaps = {}
    for ef in (True, False):
        c = PowerSGD(rank=1, error_feedback=ef, seed=1)
        sum_true = np.zeros(drift.shape)
        sum_sent = np.zeros(drift.shape)
        worst_memory = 0.0
        for d in deltas:
            sum_true += d
            sum_sent += c.decompress(c.compress(d))
            if ef:
                # Assert: what is still owed is exactly the memory (sum sent + memory = sum true)
                assert np.allclose(sum_true - sum_sent, c.error_memory, atol=1e-3)
                worst_memory = max(worst_memory, float(np.linalg.norm(c.error_memory)))
        gaps[ef] = np.linalg.norm(sum_true - sum_sent) / np.linalg.norm(sum_true)
        if ef:
            # the residual stays bounded (a few deltas' worth) instead of growing with t
            assert worst_memory < 10 * max(np.linalg.norm(d) for d in deltas)
    assert gaps[True] < 0.05
    assert gaps[False] > 0.5


def test_powersgd_warm_start_changes_the_second_call():
    rng = np.random.default_rng(5)
    u, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    m = (u[:, :30] * (0.8 ** np.arange(30)) @ rng.normal(size=(30, 30))).astype(np.float32)
    warm = PowerSGD(rank=2, error_feedback=False, warm_start=True, seed=0)
    cold = PowerSGD(rank=2, error_feedback=False, warm_start=False, seed=0)
    w1, c1 = warm.compress(m), cold.compress(m)
    assert w1.payload == c1.payload  # same seed, same first Q
    w2, c2 = warm.compress(m), cold.compress(m)
    q_bytes = slice(4 * 2 * 40, None)  # payload = P (40 x 2) then Q (30 x 2)
    assert w2.payload[q_bytes] != c2.payload[q_bytes]
    assert w2.payload[q_bytes] != w1.payload[q_bytes]
    # reusing Q is one more power iteration: the second call fits no worse
    assert relative_error(m, warm.decompress(w2)) <= relative_error(m, warm.decompress(w1)) + 1e-6


def test_powersgd_layers_biases_raw_and_flat_near_square():
    layers = _mlp_layers()
    c = PowerSGD(rank=4, error_feedback=False)
    packed = c.compress(layers)
    # W1 (32, 64) and W2 (10, 32) as P, Q; both biases raw
    assert len(packed.payload) == 4 * (4 * (32 + 64) + 32 + 4 * (10 + 32) + 10)
    r = c.decompress(packed)
    assert isinstance(r, list) and [a.shape for a in r] == [a.shape for a in layers]
    assert np.array_equal(r[1], layers[1]) and np.array_equal(r[3], layers[3])
    flat = np.concatenate([a.ravel() for a in layers])
    packed_flat = PowerSGD(rank=4).compress(flat)  # 2410 -> 50 x 49
    assert len(packed_flat.payload) == 4 * 4 * (50 + 49)
    assert PowerSGD().decompress(packed_flat).shape == (2410,)
    # with the model's layout the flat vector is compressed like the list of layers
    lay = PowerSGD(rank=4, error_feedback=False, layout=model_layout(MLP()))
    packed_lay = lay.compress(flat)
    assert packed_lay.payload == packed.payload
    assert np.array_equal(lay.decompress(packed_lay), np.concatenate([a.ravel() for a in r]))


def test_powersgd_sends_small_matrices_raw():
    m = np.arange(12, dtype=np.float32).reshape(3, 4)  # rank 4 factors: 4*(3+4) > 12
    c = PowerSGD(rank=4)
    packed = c.compress(m)
    assert packed.meta["plans"] == [("raw", 0)]
    assert np.array_equal(c.decompress(packed), m)


def test_powersgd_zero_delta_then_warm_start_recovers():
    m = _low_rank(20, 10, 2, 1)
    c = PowerSGD(rank=2, error_feedback=False)
    assert np.array_equal(c.decompress(c.compress(np.zeros_like(m))), np.zeros_like(m))
    assert relative_error(m, c.decompress(c.compress(m))) < 1e-4


# ---- structure, ratios ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES)
def test_structure_preserved(name):
    layers = _mlp_layers(1)
    c = get_compressor(name)
    r = c.decompress(c.compress(layers))
    assert isinstance(r, list) and len(r) == 4
    assert all(a.shape == b.shape and a.dtype == np.float32 for a, b in zip(r, layers))
    flat = np.concatenate([a.ravel() for a in layers])
    c2 = get_compressor(name)
    rf = c2.decompress(c2.compress(flat))
    assert isinstance(rf, np.ndarray) and rf.shape == flat.shape and rf.dtype == np.float32
    assert relative_error(flat, rf) < (1.0 if name.startswith(("powersgd", "zstd+powersgd"))
                                       else 0.02)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_ratio_is_float32_bytes_over_payload_plus_header(name):
    flat = np.concatenate([a.ravel() for a in _mlp_layers(2)])
    packed = get_compressor(name).compress(flat)
    assert packed.nbytes == len(packed.payload) + HEADER_BYTES
    assert compression_ratio(flat.nbytes, packed) == flat.nbytes / (len(packed.payload) + 16)
    expected = {"none": 4 * 2410, "q16": 4 * 2410, "int8": 4 + 2410, "int8-stochastic": 4 + 2410,
                "powersgd": 4 * 4 * 99, "powersgd:1": 4 * 99, "powersgd:2": 4 * 2 * 99}
    if name in expected:
        assert len(packed.payload) == expected[name]


def test_relative_error_definition():
    a = [np.array([3.0, 0.0], np.float32), np.array([[4.0]], np.float32)]
    b = [np.array([3.0, 1.0], np.float32), np.array([[4.0]], np.float32)]
    assert relative_error(a, b) == pytest.approx(1 / 5)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.zeros(3), np.ones(3)) == math.inf
    with pytest.raises(InvalidInput, match="structure"):
        relative_error(a, [b[0]])
    with pytest.raises(InvalidInput, match="structure"):
        relative_error(np.zeros(3), np.zeros(4))


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_refused(name, bad):
    x = np.ones(10, np.float32)
    x[3] = bad
    with pytest.raises(InvalidInput, match=r"Non-finite .* at \[3\]"):
        get_compressor(name).compress(x)
    with pytest.raises(InvalidInput, match=r"delta\[1\]"):
        get_compressor(name).compress([np.ones(2, np.float32), x])


def test_float64_overflowing_float32_refused():
    with pytest.raises(InvalidInput, match="float32"):
        Int8Quantizer().compress(np.array([1.0, 1e300]))


def test_bad_types_and_parameters():
    with pytest.raises(InvalidType):
        Int8Quantizer().compress(np.array([True, False]))
    with pytest.raises(InvalidType):
        Int8Quantizer().compress("abc")
    with pytest.raises(InvalidType):
        Int8Quantizer().compress([np.ones(2), "x"])
    with pytest.raises(InvalidInput, match="empty list"):
        Int8Quantizer().compress([])
    with pytest.raises(InvalidInput, match="rank must be >= 1"):
        PowerSGD(rank=0)
    with pytest.raises(InvalidInput, match="rank must be >= 1"):
        get_compressor("powersgd:0")
    with pytest.raises(InvalidType, match="rank"):
        PowerSGD(rank=2.5)
    with pytest.raises(InvalidInput, match="power_iterations"):
        PowerSGD(power_iterations=0)
    with pytest.raises(InvalidType, match="stochastic"):
        Int8Quantizer(stochastic="yes")
    with pytest.raises(InvalidInput, match="unknown compressor"):
        get_compressor("gzip")
    with pytest.raises(InvalidInput, match="integer"):
        get_compressor("powersgd:x")
    with pytest.raises(InvalidInput, match="level"):
        Zstd(level=99)
    with pytest.raises(InvalidType, match="inner"):
        Zstd(inner="int8")


def test_mismatched_structure_refused():
    c = PowerSGD(rank=2)
    c.compress(_mlp_layers())
    with pytest.raises(InvalidInput, match="holds state"):
        c.compress(_mlp_layers()[:2])
    with pytest.raises(InvalidInput, match="holds state"):
        c.compress(np.zeros(2410, np.float32))
    c.reset()
    c.compress(np.zeros(2410, np.float32))  # fine after reset
    with pytest.raises(InvalidInput, match="flat vector of 2410"):
        Int8Quantizer(layout=model_layout(MLP())).compress(np.zeros(2400, np.float32))


def test_decompress_checks_method_and_payload():
    x = np.ones(10, np.float32)
    packed = Int8Quantizer().compress(x)
    with pytest.raises(InvalidInput, match="cannot decompress"):
        Q16Packer().decompress(packed)
    with pytest.raises(InvalidInput, match="payload has"):
        Int8Quantizer().decompress(Compressed("int8", packed.payload[:-1], packed.meta))
    with pytest.raises(InvalidType):
        Int8Quantizer().decompress(b"raw bytes")
    z = get_compressor("zstd+int8").compress(x)
    with pytest.raises(InvalidInput, match="corrupt"):
        get_compressor("zstd+int8").decompress(Compressed(z.method, b"\x00" * 20, z.meta))
    p = PowerSGD(rank=2).compress(np.ones((8, 8), np.float32))
    with pytest.raises(InvalidInput, match="payload has"):
        PowerSGD().decompress(Compressed("powersgd", p.payload[:-4], p.meta))


def test_server_side_instance_decodes_without_state():
    # the server holds one stateless decoder; clients hold their own stateful instances
    clients = [PowerSGD(rank=2, seed=i) for i in range(3)]
    server = PowerSGD(rank=2)
    layers = _mlp_layers(4)
    for c in clients:
        packed = c.compress(layers)
        assert all(np.array_equal(a, b) for a, b in
                   zip(server.decompress(packed), c.decompress(packed)))
