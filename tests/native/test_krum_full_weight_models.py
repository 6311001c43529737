"""Krum on full-weight models: the case where the |a|^2 + |b|^2 - 2ab expansion
in float32 (Flower's new-API Krum) cancels catastrophically and picks the wrong
client. Our Krum subtracts directly and must pick float64 brute force's client."""

from __future__ import annotations

import numpy as np
import pytest

from qora import native

N, D, F = 20, 1_000_000, 4


@pytest.fixture(scope="module")
def clients() -> np.ndarray:
    rng = np.random.default_rng(2024)
    shared = rng.standard_normal(D, dtype=np.float32)
    return shared + rng.normal(0.0, 1e-3, (N, D)).astype(np.float32)


def krum_scores(dist: np.ndarray, f: int) -> np.ndarray:
    n = len(dist)
    return np.array([np.sort(np.delete(dist[i], i))[: n - f - 2].sum() for i in range(n)])


def brute_force_dist(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    dist = np.zeros((N, N))
    for i in range(N):
        dist[i] = ((x64 - x64[i]) ** 2).sum(axis=1)
    return dist


def expansion_dist_f32(x: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float32)
    return sq[:, None] + sq[None, :] - 2 * (x @ x.T)


@pytest.mark.slow
def test_krum_picks_the_brute_force_client_where_the_expansion_fails(clients):
    truth = krum_scores(brute_force_dist(clients), F)
    best = int(np.argmin(truth))
    expansion = krum_scores(expansion_dist_f32(clients), F)
    # The case is genuinely hard: the expansion's scores are far off and it
    # picks another client.
    assert np.max(np.abs(expansion - truth) / truth) > 0.05
    assert int(np.argmin(expansion)) != best
    for mode in ("float32", "q16_16"):
        res = native.krum(clients, F, mode=mode)
        assert int(res.selected[0]) == best, mode
    res = native.krum(clients, F)
    np.testing.assert_allclose(res.scores, truth, rtol=1e-6)
