"""Equiangular tight frames: the simplex ETF exactly, the Welch bound, and the search for M > d + 1."""

import math

import pytest
import torch

from nonlin_explorer.compression import (
    coherence,
    etf_search,
    is_etf,
    random_rotation,
    simplex_etf,
    simplex_gram,
    welch_bound,
)

f64 = torch.float64


@pytest.mark.parametrize("M, d", [(2, 1), (3, 2), (4, 3), (4, 20), (6, 5), (11, 10), (7, 30)])
def test_simplex_etf_properties_to_1e_10(M, d):
    for U in (simplex_etf(M, d), simplex_etf(M, d, seed=3), simplex_etf(M, d, rotation=random_rotation(d, 4))):
        assert U.shape == (M, d) and U.dtype == f64
        assert torch.allclose(U.norm(dim=1), torch.ones(M, dtype=f64), atol=1e-12, rtol=0)
        assert torch.allclose(U @ U.T, simplex_gram(M), atol=1e-12, rtol=0)
        assert float(U.sum(0).abs().max()) < 1e-12  # the vertices sum to zero
        assert torch.linalg.matrix_rank(U).item() == M - 1
        assert is_etf(U, tol=1e-10)
        assert is_etf(U, tol=1e-10, full_space=True) == (M == d + 1)
        assert math.isclose(coherence(U), 1 / (M - 1), rel_tol=1e-12)


def test_simplex_gram_values():
    G = simplex_gram(4)
    assert torch.equal(torch.diagonal(G), torch.ones(4, dtype=f64))
    assert torch.allclose(G[~torch.eye(4, dtype=torch.bool)], torch.full((12,), -1 / 3, dtype=f64), atol=1e-16)
    assert torch.allclose(G, (4 / 3) * (torch.eye(4, dtype=f64) - torch.ones(4, 4, dtype=f64) / 4), atol=1e-15)


def test_welch_bound():
    assert math.isclose(welch_bound(6, 3), 1 / math.sqrt(5), rel_tol=1e-15)
    assert math.isclose(welch_bound(4, 3), 1 / 3, rel_tol=1e-15)  # M = d + 1: the simplex meets it
    assert math.isclose(welch_bound(10, 5), 1 / 3, rel_tol=1e-15)
    assert welch_bound(3, 5) == 0.0


def test_random_rotation_is_orthogonal():
    R = random_rotation(7, seed=1)
    assert torch.allclose(R @ R.T, torch.eye(7, dtype=f64), atol=1e-13)
    assert not torch.allclose(R, random_rotation(7, seed=2))


@pytest.mark.parametrize("M, d", [(6, 3), (10, 5)])
def test_search_finds_the_etfs_that_exist(M, d):
    res = etf_search(M, d, seed=0)
    assert abs(res.gap) < 1e-8
    assert is_etf(res.U, tol=1e-6, full_space=True)


def test_search_reports_the_gap_where_no_etf_exists():
    res = etf_search(5, 3, seed=0)  # 5 lines in R^3: best coherence 1/sqrt(5) > Welch's sqrt(1/6)
    assert res.coherence >= 1 / math.sqrt(5) - 1e-9
    assert res.gap > 0.03
    assert not is_etf(res.U, tol=1e-6)


def test_search_for_small_m_returns_simplex_or_orthonormal():
    assert etf_search(3, 5).coherence == 0.0
    res = etf_search(4, 3)
    assert math.isclose(res.coherence, welch_bound(4, 3), rel_tol=1e-12)


def test_is_etf_rejects_non_frames():
    U = torch.randn(4, 3, dtype=f64)
    assert not is_etf(U / U.norm(dim=1, keepdim=True))
    assert not is_etf(2 * simplex_etf(4, 3))


@pytest.mark.parametrize("call, message", [
    (lambda: simplex_etf(5, 3), "needs d >= M - 1"),
    (lambda: simplex_etf(3, 0), "d must be >= 1"),
    (lambda: simplex_etf(0, 3), "M must be >= 1"),
    (lambda: simplex_etf(3, 3, rotation=torch.ones(3, 3)), "orthogonal"),
    (lambda: simplex_etf(3, 3, rotation=torch.eye(2)), "3 x 3"),
    (lambda: simplex_etf(3, 3, rotation=torch.eye(3), seed=1), "not both"),
    (lambda: welch_bound(3, 0), "d must be >= 1"),
    (lambda: coherence(torch.zeros(2, 3)), "zero row"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
