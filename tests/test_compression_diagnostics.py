"""Diagnostics: ETF distance, alignment with the target's linear part, Monte Carlo loss with its interval."""

import math

import pytest
import torch

from nonlin_explorer.compression import (
    alignment,
    cosine_gram,
    etf_distance,
    etf_search,
    monte_carlo_loss,
    population_loss,
    random_target,
    simplex_etf,
)

f64 = torch.float64


def test_etf_distance_is_zero_on_etfs_and_measures_the_worst_cosine():
    assert etf_distance(3.0 * simplex_etf(4, 6, seed=1)) < 1e-14  # lengths do not matter
    assert etf_distance(etf_search(6, 3).U) < 1e-8  # M > d + 1: equiangular at Welch's bound
    V = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=f64)  # cosine 0 where the simplex has -1
    assert math.isclose(etf_distance(V), 1.0, rel_tol=1e-15)
    assert etf_distance(torch.ones(1, 3)) == 0.0


def test_cosine_gram_handles_zero_rows():
    G = cosine_gram(torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=f64))
    assert torch.allclose(G, torch.tensor([[1, 0, 2**-0.5], [0, 1, 0], [2**-0.5, 0, 1]], dtype=f64), atol=1e-15)


def test_alignment_with_the_linear_direction():
    t = random_target(50, 4, seed=0)
    m = t.linear_direction()
    orth = torch.linalg.qr(torch.stack([m, torch.randn(4, dtype=f64)], 1))[0][:, 1]
    al = alignment(torch.stack([3 * m, -m, orth, torch.zeros(4, dtype=f64)]), t)
    assert torch.allclose(al, torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=f64), atol=1e-12)
    with pytest.raises(ValueError, match="d = 4 columns"):
        alignment(torch.ones(2, 3), t)


def test_monte_carlo_interval_and_reproducibility():
    t = random_target(20, 3, seed=1)
    b, V = torch.tensor([0.3, -0.2], dtype=f64), torch.randn(2, 3, dtype=f64)
    mc = monte_carlo_loss(t, None, b, V, n_samples=200_000, seed=4, batch_size=30_000)
    again = monte_carlo_loss(t, None, b, V, n_samples=200_000, seed=4, batch_size=50_000)
    assert math.isclose(mc.mean, again.mean, rel_tol=1e-12)  # batching does not change the estimate
    assert mc.ci_low < mc.mean < mc.ci_high
    assert math.isclose(mc.ci_high - mc.mean, 1.959963984540054 * mc.std_error, rel_tol=1e-9)
    exact = float(population_loss(t.a, t.W, b, V))
    assert mc.contains(exact)
    assert not mc.contains(exact * 1.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 1}, "n_samples must be >= 2"),
    ({"confidence": 1.5}, "confidence must be in"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
])
def test_monte_carlo_bad_arguments(kwargs, message):
    t = random_target(5, 2, seed=2)
    with pytest.raises(ValueError, match=message):
        monte_carlo_loss(t, None, torch.ones(1), torch.ones(1, 2), **kwargs)
