"""Model adapters: layout, inference, training, errors, and the PyTorch adapter."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from qora.errors import InvalidInput, InvalidType
from qora.filtering import MutualInformationFilter
from qora.models import MLP, ModelAdapter, SoftmaxRegression, TorchAdapter

try:
    import torch
except ImportError:
    torch = None


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return train_test_split(
        d.data / 16.0, d.target, test_size=300, random_state=0, stratify=d.target
    )


def test_parameter_counts():
    assert SoftmaxRegression(64, 10).n_params == (64 + 1) * 10
    assert MLP().n_params == 64 * 32 + 32 + 32 * 10 + 10 == 2410
    assert MLP((5, 7, 3, 2)).n_params == 6 * 7 + 8 * 3 + 4 * 2


def test_adapters_satisfy_the_protocol():
    assert isinstance(SoftmaxRegression(4, 3), ModelAdapter)
    assert isinstance(MLP(), ModelAdapter)

    class DuckTyped:
        n_params = 1

        def predict_proba(self, params, X): ...

        def predict(self, params, X): ...

    assert isinstance(DuckTyped(), ModelAdapter)
    assert not isinstance(object(), ModelAdapter)


def test_flat_layout_is_w_out_by_in_then_b_per_layer():
    rng = np.random.default_rng(0)
    m = MLP((5, 4, 3))
    p = rng.normal(size=m.n_params)
    (W1, b1), (W2, b2) = m.unflatten(p)
    assert W1.shape == (4, 5) and b1.shape == (4,) and W2.shape == (3, 4) and b2.shape == (3,)
    np.testing.assert_array_equal(p[:20], W1.ravel())  # row-major W, then b
    np.testing.assert_array_equal(p[20:24], b1)
    np.testing.assert_array_equal(p[24:36], W2.ravel())
    np.testing.assert_array_equal(p[36:], b2)
    np.testing.assert_array_equal(m.flatten([(W1, b1), (W2, b2)]), p.astype(np.float32))
    X = rng.normal(size=(6, 5))
    z = np.maximum(X @ W1.T + b1, 0) @ W2.T + b2
    expect = np.exp(z - z.max(1, keepdims=True))
    expect /= expect.sum(1, keepdims=True)
    np.testing.assert_allclose(m.predict_proba(p, X), expect, rtol=1e-12)
    np.testing.assert_array_equal(m.predict(p, X), expect.argmax(1))


def test_softmax_is_stable_for_huge_weights():
    m = SoftmaxRegression(3, 4)
    p = np.full(m.n_params, 1e30)
    prob = m.predict_proba(p, np.ones((2, 3)))
    assert np.all(np.isfinite(prob))
    np.testing.assert_allclose(prob.sum(1), 1.0)


@pytest.mark.parametrize("model", [SoftmaxRegression(5, 3), MLP((5, 4, 6, 3))])
def test_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(1)
    p = model.init_params(3).astype(np.float64)
    X, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    _, g = model.loss_and_grad(p, X, y)
    num = np.empty_like(p)
    for i in range(p.size):
        e = np.zeros_like(p)
        e[i] = 1e-6
        num[i] = (model.loss_and_grad(p + e, X, y)[0] - model.loss_and_grad(p - e, X, y)[0]) / 2e-6
    np.testing.assert_allclose(g, num, atol=1e-7)
    np.testing.assert_array_equal(model.grad(p, X, y), g)


@pytest.mark.parametrize(
    "model, epochs, lr", [(SoftmaxRegression(64, 10), 10, 0.5), (MLP(), 20, 0.3)]
)
def test_training_learns_digits(digits, model, epochs, lr):
    X_train, X_test, y_train, y_test = digits
    p0 = model.init_params(0)
    assert p0.dtype == np.float32 and p0.shape == (model.n_params,)
    p0_copy = p0.copy()
    p = model.train(p0, X_train, y_train, epochs=epochs, lr=lr, seed=0)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p0, p0_copy)  # input untouched
    assert np.mean(model.predict(p, X_test) == y_test) > 0.9
    np.testing.assert_array_equal(
        p, model.train(p0, X_train, y_train, epochs=epochs, lr=lr, seed=0)
    )
    assert not np.array_equal(p, model.train(p0, X_train, y_train, epochs=epochs, lr=lr, seed=1))
    np.testing.assert_array_equal(model.train(p0, X_train, y_train, epochs=0), p0)


def test_init_params_are_seeded():
    m = MLP()
    np.testing.assert_array_equal(m.init_params(3), m.init_params(3))
    assert not np.array_equal(m.init_params(3), m.init_params(4))
    s = SoftmaxRegression(64, 10).init_params(0)
    assert np.all(s[640:] == 0) and 0.005 < s[:640].std() < 0.02


def test_model_errors():
    m = SoftmaxRegression(4, 3)
    p = m.init_params()
    X = np.zeros((2, 4))
    with pytest.raises(InvalidInput, match=r"params must have shape \(15,\), got \(14,\)"):
        m.predict(p[:-1], X)
    with pytest.raises(InvalidInput, match=r"X must have shape \(m, 4\), got \(2, 5\)"):
        m.predict(p, np.zeros((2, 5)))
    bad = p.copy()
    bad[3] = np.nan
    with pytest.raises(InvalidInput, match=r"Non-finite value nan in params at \[3\]"):
        m.predict_proba(bad, X)
    with pytest.raises(InvalidInput, match=r"y labels must be in \[0, 3\), got range \[0, 3\]"):
        m.train(p, X, np.array([0, 3]))
    with pytest.raises(InvalidType, match="y must hold integer class labels"):
        m.train(p, X, np.array([0.0, 1.0]))
    with pytest.raises(InvalidInput, match="lr must be a finite number > 0"):
        m.train(p, X, np.array([0, 1]), lr=0)
    with pytest.raises(InvalidInput, match="epochs must be >= 0"):
        m.train(p, X, np.array([0, 1]), epochs=-1)
    with pytest.raises(InvalidInput, match="batch_size must be >= 1"):
        m.train(p, X, np.array([0, 1]), batch_size=0)
    with pytest.raises(InvalidType, match="X must be a numeric array"):
        m.predict(p, np.array([["a"] * 4]))
    with pytest.raises(InvalidInput, match="layer_sizes needs at least 2 sizes"):
        MLP((64,))
    with pytest.raises(InvalidInput, match="at least 2 classes"):
        MLP((64, 1))
    with pytest.raises(InvalidType, match=r"layer_sizes\[1\] must be an int"):
        MLP((64, 3.5, 10))
    with pytest.raises(InvalidInput, match=r"expected W \(3, 4\) and b \(3,\)"):
        m.flatten([(np.zeros((4, 3)), np.zeros(3))])


# ---- PyTorch ------------------------------------------------------------------------------------


def test_importing_models_and_filtering_never_imports_torch():
    code = "import sys, qora.models, qora.filtering; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_adapter_without_torch_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match="pip install torch"):
        TorchAdapter(object())


def test_torch_adapter_matches_the_numpy_models(digits):
    """With torch: the same flat vector means the same model to both adapters.
    Without torch: constructing the adapter is the documented ImportError."""
    if torch is None:
        with pytest.raises(ImportError, match="pip install torch"):
            TorchAdapter(object())
        return

    X_train, X_test, y_train, _ = digits
    # softmax regression == nn.Linear
    sr = SoftmaxRegression(64, 10)
    p = sr.train(sr.init_params(0), X_train[:300], y_train[:300], epochs=5, lr=0.5)
    lin = torch.nn.Linear(64, 10)
    ta = TorchAdapter(lin, n_features=64)
    assert ta.n_params == sr.n_params and isinstance(ta, ModelAdapter)
    before = ta.get_params()
    np.testing.assert_allclose(ta.predict_proba(p, X_test), sr.predict_proba(p, X_test), atol=1e-5)
    np.testing.assert_array_equal(ta.predict(p, X_test), sr.predict(p, X_test))
    np.testing.assert_array_equal(ta.get_params(), before)  # the wrapped module is untouched
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.as_tensor(p), lin.parameters())
    np.testing.assert_array_equal(ta.get_params(), p)  # get_params reads the live module

    # MLP == nn.Sequential(Linear, ReLU, Linear)
    mlp = MLP((64, 32, 10))
    q = mlp.init_params(1)
    seq = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    tm = TorchAdapter(seq)
    np.testing.assert_allclose(tm.predict_proba(q, X_test), mlp.predict_proba(q, X_test), atol=1e-5)

    # and the filter gives the same verdict through either adapter
    rng = np.random.default_rng(0)
    honest = [
        sr.train(p, X_train[k::4], y_train[k::4], epochs=1, lr=0.1, seed=k) - p for k in range(4)
    ]
    w = rng.normal(size=p.size)
    updates = np.vstack(honest + [w * np.linalg.norm(p) / np.linalg.norm(w) - p])
    r_np = MutualInformationFilter(sr, X_test).filter(p, updates)
    r_t = MutualInformationFilter(ta, X_test).filter(p, updates)
    assert r_np.flagged == r_t.flagged == [4]

    with pytest.raises(InvalidType, match="torch.nn.Module"):
        TorchAdapter(object())
    with pytest.raises(InvalidInput, match=r"params must have shape \(650,\)"):
        ta.predict(p[:-1], X_test)
    with pytest.raises(InvalidInput, match=r"X must have shape \(m, 64\)"):
        ta.predict(p, X_test[:, :10])
