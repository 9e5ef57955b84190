"""Targets: random (i.i.d. sub-Gaussian weights), user-given, or read from a trained torch model."""

import math

import pytest
import torch
from torch import nn

from nonlin_explorer.compression import (
    make_target,
    monte_carlo_loss,
    random_target,
    target_from_module,
    weight_distribution,
)

f64 = torch.float64


def test_random_target_matches_the_paper_setup():
    t = random_target(2000, 20, seed=0)
    assert t.a.shape == (2000,) and t.W.shape == (2000, 20) and t.W.dtype == f64
    assert t.activation == "relu"
    # a_i = (1 + g_i) / N: N a has mean 1 and standard deviation 1.
    assert abs(float((t.N * t.a).mean()) - 1.0) < 4 / math.sqrt(2000)
    assert abs(float((t.N * t.a).std()) - 1.0) < 0.1
    # w_i has i.i.d. N(0, 1/d) entries: E|w|^2 = 1.
    assert abs(float((t.W**2).sum(1).mean()) - 1.0) < 0.02
    assert t.info == {"kind": "random", "N": 2000, "d": 20, "weight_dist": "gaussian", "a_mean": 1.0, "a_std": 1.0,
                      "normalize": True, "seed": 0}


def test_weight_distributions():
    rad = random_target(50, 16, weight_dist="rademacher", seed=1)
    assert torch.equal(rad.W.abs(), torch.full((50, 16), 0.25, dtype=f64))
    sph = random_target(50, 16, weight_dist="sphere", seed=1)
    assert torch.allclose(sph.W.norm(dim=1), torch.ones(50, dtype=f64), atol=1e-15)
    raw = random_target(50, 16, a_mean=2.0, a_std=0.0, normalize=False, seed=1)
    assert torch.equal(raw.a, torch.full((50,), 2.0, dtype=f64))


def test_seeds_reproduce_and_differ():
    assert torch.equal(random_target(30, 5, seed=3).W, random_target(30, 5, seed=3).W)
    assert not torch.equal(random_target(30, 5, seed=3).W, random_target(30, 5, seed=4).W)


def test_target_evaluates_like_its_formula_and_linear_direction_is_half_sum():
    t = random_target(40, 6, seed=5)
    x = torch.randn(7, 6, dtype=f64)
    assert torch.allclose(t(x), torch.relu(x @ t.W.T) @ t.a, atol=1e-15)
    assert torch.allclose(t.linear_direction(), (t.a @ t.W) / 2, atol=1e-15)
    assert math.isclose(t.scale(), float(t.a @ t.W.norm(dim=1)), rel_tol=1e-15)


def test_linear_direction_is_the_correlation_with_the_input():
    t = random_target(30, 4, seed=6, a_mean=0.5)
    x = torch.randn(400_000, 4, generator=torch.Generator().manual_seed(7), dtype=f64)
    samples = t(x)[:, None] * x
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(x.shape[0])
    assert ((t.linear_direction() - mean).abs() <= 4 * se).all()


def test_energy_is_the_mean_square_output():
    t = random_target(30, 4, seed=8)
    mc = monte_carlo_loss(t, None, torch.zeros(1, dtype=f64), torch.zeros(1, 4, dtype=f64), n_samples=1_000_000)
    assert mc.contains(t.energy)


def test_target_from_a_trained_module():
    torch.manual_seed(0)
    for act, name in ((nn.ReLU(), "relu"), (nn.Tanh(), "tanh"), (nn.GELU(), "gelu"), (nn.Softplus(), "softplus"),
                      (nn.Identity(), "linear")):
        model = nn.Sequential(nn.Linear(5, 9, bias=False), act, nn.Linear(9, 1, bias=False)).double()
        t = target_from_module(model)
        assert t.activation == name and t.W.shape == (9, 5)
        x = torch.randn(11, 5, dtype=f64)
        with torch.no_grad():
            assert torch.allclose(t(x), model(x)[:, 0], atol=1e-12)


def test_module_with_zero_bias_is_accepted_but_nonzero_bias_is_not():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="biases must be absent or zero"):
        target_from_module(model)
    with torch.no_grad():
        model[0].bias.zero_()
        model[2].bias.zero_()
    assert target_from_module(model).N == 4


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU()), "expected nn.Sequential"),
    (nn.Sequential(nn.Linear(3, 4, bias=False), nn.Sigmoid(), nn.Linear(4, 1, bias=False)), "unsupported activation"),
    (nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False)), "one output"),
    (nn.Sequential(nn.Linear(3, 4, bias=False), nn.GELU("tanh"), nn.Linear(4, 1, bias=False)), "approximate"),
])
def test_bad_modules(model, message):
    with pytest.raises(ValueError, match=message):
        target_from_module(model)


@pytest.mark.parametrize("kwargs, message", [
    ({"N": 0, "d": 3}, "N must be >= 1"),
    ({"N": 5, "d": 0}, "d must be >= 1"),
    ({"N": 5, "d": 2.5}, "d must be an integer"),
    ({"N": 5, "d": 3, "weight_dist": "cauchy"}, "unknown weight_dist"),
    ({"N": 5, "d": 3, "a_std": -1.0}, "a_std must be >= 0"),
    ({"N": 5, "d": 3, "a_mean": math.nan}, "a_mean must be a finite number"),
    ({"N": 5, "d": 3, "activation": "sigmoid"}, "unknown activation"),
])
def test_random_target_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        random_target(**kwargs)


def test_make_target_checks_its_input():
    t = make_target([1.0, -2.0], [[1.0, 0.0], [0.0, 1.0]])
    assert t.W.dtype == f64 and t.N == 2 and t.d == 2
    with pytest.raises(ValueError, match="a must have shape"):
        make_target([1.0, 2.0, 3.0], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="contains NaN"):
        make_target([1.0, math.nan], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="must be an array of numbers"):
        make_target(["x", "y"], [[1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "uniform"])
def test_weights_follow_the_requested_mean_and_covariance(kind):
    cov = torch.tensor([[0.5, 0.2, 0.0], [0.2, 0.3, 0.0], [0.0, 0.0, 0.1]], dtype=f64)
    t = random_target(60_000, 3, weight_dist=kind, w_mean=[1.0, -0.5, 0.0], w_cov=cov, seed=5)
    assert torch.allclose(t.W.mean(0), torch.tensor([1.0, -0.5, 0.0], dtype=f64), atol=0.01)
    X = t.W - t.W.mean(0)
    assert torch.allclose(X.T @ X / t.N, cov, atol=0.01)
    assert t.info["w_mean"] == [1.0, -0.5, 0.0] and t.distribution.kind == kind


def test_a_number_as_mean_points_along_e1_and_the_default_law_is_unchanged():
    t = random_target(5000, 4, w_mean=0.5, seed=0)
    se = 1 / math.sqrt(4 * 5000)  # entries N(0, 1/4)
    assert abs(float(t.W[:, 0].mean()) - 0.5) < 4 * se and float(t.W[:, 1:].mean(0).abs().max()) < 4 * se
    plain = random_target(50, 4, seed=0)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(plain.W, torch.randn(50, 4, generator=g, dtype=f64) / 2.0)  # N(0, I/d), bit for bit
    assert "w_mean" not in plain.info and plain.distribution.centred_isotropic()


def test_law_moments_and_quasi_samples():
    law = weight_distribution(5, "uniform", mean=0.3, cov=0.2)
    X = law.quasi_sample(1 << 14)
    assert abs(float(X[:, 0].mean()) - 0.3) < 1e-3 and abs(float(X[:, 1].var()) - 0.2) < 2e-3
    assert float(X.abs().max()) <= 0.3 + math.sqrt(3 * 0.2) + 1e-12  # uniform: bounded support
    assert math.isclose(law.mean_square_norm(), 0.09 + 5 * 0.2, rel_tol=1e-12)
    assert abs(law.mean_norm() - float(X.norm(dim=1).mean())) < 5e-3
    g = weight_distribution(20)
    assert abs(g.mean_norm() - float(g.quasi_sample(1 << 15).norm(dim=1).mean())) < 2e-3


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "sphere", "mean": 0.5}, "'sphere' has no mean or covariance"),
    ({"mean": [1.0, 2.0]}, "w_mean must be a number or a vector of length d = 3"),
    ({"mean": math.inf}, "w_mean must be a finite number"),
    ({"cov": -1.0}, "w_cov must be >= 0"),
    ({"cov": [1.0, -1.0, 1.0]}, "variances must be >= 0"),
    ({"cov": [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]}, "w_cov must be symmetric"),
    ({"cov": [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]}, "positive semi-definite"),
    ({"cov": [[1.0, 0.0], [0.0, 1.0]]}, "w_cov must be a number, a length-3 vector or a 3 x 3 matrix"),
])
def test_bad_weight_laws(kwargs, message):
    with pytest.raises(ValueError, match=message):
        weight_distribution(3, **kwargs)
