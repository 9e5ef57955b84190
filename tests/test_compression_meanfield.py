"""The mean-field objective: its constants, its optimum (the simplex ETF for M <= d + 1), and its accuracy."""

import math

import numpy as np
import pytest
import torch

from nonlin_explorer.compression import (
    compress,
    equiangular_value,
    make_target,
    meanfield_loss,
    meanfield_optimum,
    meanfield_solution,
    meanfield_value,
    random_target,
    relu_k,
    simplex_etf,
    simplex_value,
    sphere_kernel_mean,
)
from nonlin_explorer.compression.meanfield import expected_scales, scaling_factors

f64 = torch.float64


def test_sphere_kernel_mean_exact_values():
    assert math.isclose(sphere_kernel_mean(1), 0.25, rel_tol=1e-14)
    assert math.isclose(sphere_kernel_mean(2), 2 / math.pi**2, rel_tol=1e-14)
    d = 200
    assert abs(sphere_kernel_mean(d) - (1 / (2 * math.pi) + 1 / (4 * math.pi * d))) < 1 / d**2


@pytest.mark.parametrize("d", [3, 20])
def test_sphere_kernel_mean_matches_sampling(d):
    u = torch.randn(400_000, d, generator=torch.Generator().manual_seed(d), dtype=f64)
    k = relu_k(u[:, 0] / u.norm(dim=1))
    assert abs(float(k.mean()) - sphere_kernel_mean(d)) <= 4 * float(k.std()) / math.sqrt(u.shape[0])


def test_equiangular_value_is_largest_at_the_simplex_cosine():
    M = 5
    rhos = np.linspace(-1 / (M - 1), 0.9, 50)
    values = [equiangular_value(M, r) for r in rhos]
    assert values[0] == max(values) and math.isclose(values[0], simplex_value(M), rel_tol=1e-14)
    assert math.isclose(float(meanfield_value(simplex_etf(M, 7))), simplex_value(M), rel_tol=1e-10)


@pytest.mark.parametrize("M, d", [(3, 5), (4, 5), (5, 5), (6, 5), (6, 10), (11, 10)])
def test_meanfield_optimum_is_the_simplex_etf(M, d):
    opt = meanfield_optimum(M, d)
    off = opt.gram[~torch.eye(M, dtype=torch.bool)]
    assert float((off + 1 / (M - 1)).abs().max()) < 1e-10
    assert math.isclose(opt.value, simplex_value(M), rel_tol=1e-10)


def test_meanfield_optimum_beyond_d_plus_one_is_not_equiangular():
    opt = meanfield_optimum(7, 3)
    off = opt.gram[~torch.eye(7, dtype=torch.bool)]
    assert float(off.max() - off.min()) > 0.5
    assert opt.simplex_value is None
    # F can only grow with M (extra units may get c_j = 0), and here it strictly beats the 4-simplex of R^3.
    assert opt.value > simplex_value(4) + 0.01


def test_solution_is_consistent_with_the_objective():
    t = random_target(300, 6, seed=1)
    sol = meanfield_solution(t, 4)
    A, S2 = expected_scales(t)
    c_d = sphere_kernel_mean(6)
    assert math.isclose(sol.scale, A, rel_tol=1e-14)
    assert math.isclose(sol.loss, sol.energy - (A * c_d) ** 2 * simplex_value(4), rel_tol=1e-10)
    assert math.isclose(float(meanfield_loss(sol.b, sol.V, scale=A, s2=S2)), sol.loss, rel_tol=1e-10)
    # c* = A c_d G^-1 1 minimizes the objective: moving b raises it.
    assert float(meanfield_loss(sol.b * 1.01, sol.V, scale=A, s2=S2)) > sol.loss
    # Equal output weights on a simplex ETF.
    assert float(sol.b.max() - sol.b.min()) < 1e-12


def test_expected_and_empirical_scaling_factors_agree_for_wide_targets():
    t = random_target(20_000, 8, seed=2)
    (A, S2), (A_emp, S2_emp) = scaling_factors(t), scaling_factors(t, expected=False)
    assert abs(A_emp / A - 1) < 0.03 and abs(S2_emp / S2 - 1) < 0.1
    user = make_target(t.a[:50], t.W[:50])  # no distribution known: sums are used
    assert expected_scales(user) is None
    assert math.isclose(scaling_factors(user)[0], float(user.a @ user.W.norm(dim=1)), rel_tol=1e-14)


def test_meanfield_needs_relu():
    with pytest.raises(ValueError, match="derived for relu"):
        meanfield_solution(random_target(20, 3, activation="tanh"), 2)


@pytest.mark.slow
def test_exact_optimum_approaches_meanfield_at_rate_sqrt_d_over_n():
    """|L*_exact - L_bar*| / E f*^2 shrinks like N^-1/2 (measured slope about -0.6 over N = 125..16000)."""
    d, M, Ns = 10, 4, [250, 1000, 4000]
    gaps = []
    for N in Ns:
        per_seed = []
        for seed in range(4):
            t = random_target(N, d, seed=seed)
            exact = compress(t, M=M, restarts=2)
            mf = compress(t, M=M, method="meanfield")
            per_seed.append(abs(exact.loss - mf.meanfield_loss) / exact.energy)
        gaps.append(float(np.mean(per_seed)))
    slope = np.polyfit(np.log(Ns), np.log(gaps), 1)[0]
    assert -0.8 < slope < -0.35
    scaled = np.array(gaps) * np.sqrt(np.array(Ns) / d)  # the sqrt(d/N) law: roughly constant
    assert scaled.max() / scaled.min() < 2.0


def test_one_dimension_has_two_directions_only():
    import torch

    from nonlin_explorer.compression import compress

    with pytest.raises(ValueError, match="d = 1 there are two directions only"):
        compress(torch.ones(10), torch.randn(10, 1), M=3, method="meanfield")
    assert compress(torch.ones(10), torch.randn(10, 1), M=2, method="meanfield").M == 2
