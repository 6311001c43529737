"""Bad input never reaches C unchecked: each mistake raises a clear error that
names what was expected and what came."""

from __future__ import annotations

import numpy as np
import pytest

from qora import InvalidInput, InvalidType, native


def updates(n=5, d=3, dtype=np.float32):
    return np.arange(n * d, dtype=np.float64).reshape(n, d).astype(dtype)


@pytest.mark.parametrize("mode", ["float32", "q16_16"])
@pytest.mark.parametrize("bad, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("method", ["fedavg", "trimmed_mean", "median", "krum"])
def test_non_finite_values_are_refused_with_their_position(mode, bad, shown, method):
    x = updates()
    x[1, 0] = bad
    call = {"fedavg": lambda: native.fedavg(x, mode=mode),
            "trimmed_mean": lambda: native.trimmed_mean(x, 1, mode=mode),
            "median": lambda: native.median(x, mode=mode),
            "krum": lambda: native.krum(x, 1, mode=mode)}[method]
    with pytest.raises(InvalidInput, match=rf"Non-finite value {shown} in update 1 at \[0\]"):
        call()


def test_non_finite_value_deep_in_a_large_input_is_found():
    x = np.zeros((20, 300_000), np.float32)
    x[13, 299_999] = np.nan
    with pytest.raises(ValueError, match=r"update 13 at \[299999\]"):
        native.trimmed_mean(x, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64])
def test_float32_mode_refuses_other_dtypes(dtype):
    with pytest.raises(TypeError, match=f"needs float32 updates, got {np.dtype(dtype).name}"):
        native.median(updates(dtype=dtype))


def test_q16_mode_accepts_int32_raw_and_float32_but_not_int64():
    assert native.median(updates(dtype=np.int32), mode="q16_16").raw.tolist() == [6, 7, 8]
    assert native.median(updates(), mode="q16_16").raw.tolist() == [6 << 16, 7 << 16, 8 << 16]
    with pytest.raises(InvalidType, match="needs float32 or int32 updates, got int64"):
        native.median(updates(dtype=np.int64), mode="q16_16")


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_wrong_rank_is_refused(shape):
    with pytest.raises(InvalidInput, match=r"must be 2-D \(n clients, d parameters\), got shape"):
        native.median(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(0, 4), (4, 0)])
def test_empty_input_is_refused(shape):
    with pytest.raises(InvalidInput, match=r"empty input: n=\d+ clients, d=\d+ parameters"):
        native.fedavg(np.zeros(shape, np.float32))


def test_lists_are_refused_with_the_type_named():
    with pytest.raises(InvalidType, match="got list"):
        native.median([[1.0, 2.0]])


def test_trimming_everything_is_refused():
    with pytest.raises(InvalidInput, match=r"trimmed_mean needs 2k < n: n=5, k=3"):
        native.trimmed_mean(updates(), 3)
    with pytest.raises(InvalidInput, match="k must be >= 0, got -1"):
        native.trimmed_mean(updates(), -1)
    with pytest.raises(InvalidType, match="k must be an integer, got float"):
        native.trimmed_mean(updates(), 1.5)


def test_krum_bounds_name_n_f_and_m():
    with pytest.raises(InvalidInput, match=r"krum needs n >= 2f\+3: n=4, f=1"):
        native.krum(updates(n=4), 1)
    with pytest.raises(InvalidInput, match=r"multi_krum needs 1 <= m <= n-2f-2: n=7, f=1, m=4"):
        native.multi_krum(updates(n=7), 1, 4)
    with pytest.raises(InvalidInput, match=r"multi_krum needs 1 <= m <= n-2f-2: n=7, f=1, m=0"):
        native.multi_krum(updates(n=7), 1, 0)


def test_krum_edge_of_each_bound_is_accepted():
    assert native.krum(updates(n=5), 1).selected.tolist() == [1]  # n = 2f + 3
    assert len(native.multi_krum(updates(n=7), 1, 3).selected) == 3  # m = n - 2f - 2


@pytest.mark.parametrize("weights, message", [
    ([1, 2], r"weights must have shape \(5,\)"),
    ([1, 1, -1, 1, 1], r"weights must be >= 0, got -1(\.0)? for client 2"),
    ([0, 0, 0, 0, 0], "weights are all zero"),
    ([1, 1, np.nan, 1, 1], "Non-finite weight nan for client 2"),
])
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(InvalidInput, match=message):
        native.fedavg(updates(), np.array(weights, dtype=np.float64))


def test_q16_weights_must_be_sample_counts():
    with pytest.raises(InvalidInput, match="sample counts: they must be integers"):
        native.fedavg(updates(), [1, 1.5, 1, 1, 1], mode="q16_16")
    with pytest.raises(InvalidInput, match="below 2"):
        native.fedavg(updates(), [1, 2**33, 1, 1, 1], mode="q16_16")


def test_unknown_mode_and_bad_thread_count_are_refused():
    with pytest.raises(InvalidInput, match="mode must be one of"):
        native.median(updates(), mode="float16")
    with pytest.raises(InvalidInput, match="threads must be >= 1, got 0"):
        native.median(updates(), threads=0)


def test_too_many_clients_is_refused():
    with pytest.raises(InvalidInput, match="at most 65535 clients per call, got n=65536"):
        native.median(np.zeros((65536, 1), np.float32))


def test_errors_are_also_builtin_errors():
    assert issubclass(InvalidInput, ValueError) and issubclass(InvalidType, TypeError)


def test_saturation_is_reported_not_hidden():
    x = np.array([[40000.0], [1.0], [2.0]], np.float32)  # 40000 > Q16.16 max
    assert native.median(x, mode="q16_16").saturated
    assert not native.median(x[1:], mode="q16_16").saturated
