"""The exact population loss: agrees with sampling, has finite gradients everywhere, costs O(NMd) per step."""

import math

import pytest
import torch

from nonlin_explorer.compression import ACTIVATIONS, PopulationLoss, monte_carlo_loss, population_loss
from nonlin_explorer.compression import loss as loss_module

f64 = torch.float64


def _instance(seed, N=12, d=4, M=3):
    """Random target and student, mixed-sign output weights."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(N, d, generator=g, dtype=f64) / math.sqrt(d)
    a = torch.randn(N, generator=g, dtype=f64)
    V = torch.randn(M, d, generator=g, dtype=f64) / math.sqrt(d)
    b = torch.randn(M, generator=g, dtype=f64)
    return a, W, b, V


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_closed_form_within_three_standard_errors_of_monte_carlo(name):
    a, W, b, V = _instance(1)
    assert (a > 0).any() and (a < 0).any() and (b > 0).any() and (b < 0).any()
    exact = float(population_loss(a, W, b, V, name))
    mc = monte_carlo_loss(a, W, b, V, name, n_samples=1_000_000, seed=2)
    assert abs(exact - mc.mean) <= 3 * mc.std_error
    assert mc.std_error < 0.01 * exact  # the check has teeth: the interval is narrow


def test_student_equal_to_target_has_zero_loss():
    a, W, _, _ = _instance(3)
    for name in ("relu", "linear", "erf", "tanh"):
        assert abs(float(population_loss(a, W, a, W, name))) < 1e-12 * float(population_loss(a, W, 0 * a, W, name))


def test_loss_is_energy_minus_cross_plus_gram():
    a, W, b, V = _instance(4)
    fn = PopulationLoss(a, W)
    h, G = fn.cross(V), fn.gram(V)
    assert math.isclose(float(fn(b, V)), float(fn.energy - 2 * h @ b + b @ G @ b), rel_tol=1e-14)
    assert math.isclose(float(fn(torch.zeros(3, dtype=f64), V)), float(fn.energy), rel_tol=1e-15)
    assert fn.a.dtype == f64 and fn(b, V).dtype == f64


def test_batched_candidates():
    a, W, _, _ = _instance(5)
    fn = PopulationLoss(a, W)
    Vs = torch.stack([_instance(s)[3] for s in range(6)]).reshape(2, 3, 3, 4)
    bs = torch.stack([_instance(s)[2] for s in range(6)]).reshape(2, 3, 3)
    out = fn(bs, Vs)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert math.isclose(float(out[i, j]), float(fn(bs[i, j], Vs[i, j])), rel_tol=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradient_finite_at_rho_plus_minus_one_and_zero_norm(name):
    a, W, _, _ = _instance(6, N=5, d=3)
    V = torch.stack([W[0], -W[1], torch.zeros(3, dtype=f64), 1.3 * W[0], W[2]]).requires_grad_()
    b = torch.tensor([0.5, -1.0, 0.7, 0.2, 0.0], dtype=f64, requires_grad=True)
    L = population_loss(a, W, b, V, name)
    gb, gV = torch.autograd.grad(L, (b, V))
    assert torch.isfinite(gb).all() and torch.isfinite(gV).all()


def test_relu_gradient_at_coincident_and_antipodal_units_matches_finite_differences():
    a, W, _, _ = _instance(7, N=5, d=3)
    fn = PopulationLoss(a, W)
    V0 = torch.stack([W[0], -W[1], 1.3 * W[0]])
    b = torch.tensor([0.5, -1.0, 0.2], dtype=f64)
    V = V0.clone().requires_grad_()
    (g,) = torch.autograd.grad(fn(b, V), V)
    eps = 1e-6
    for r in range(3):
        for c in range(3):
            E = torch.zeros_like(V0)
            E[r, c] = eps
            fd = (fn(b, V0 + E) - fn(b, V0 - E)) / (2 * eps)
            assert abs(float(fd - g[r, c])) < 1e-7


def test_optimal_b_zeroes_the_b_gradient_and_reduced_is_the_minimum():
    a, W, _, V = _instance(8)
    fn = PopulationLoss(a, W)
    b = fn.optimal_b(V).requires_grad_()
    (gb,) = torch.autograd.grad(fn(b, V), b)
    assert float(gb.abs().max()) < 1e-10 * float(fn.cross(V).abs().max())  # the solve's ridge is 1e-12
    value, b2 = fn.reduced(V)
    assert math.isclose(float(value), float(fn(b2, V)), rel_tol=1e-12)
    assert float(value) <= float(fn(b.detach() + 1e-3, V))


def test_a_step_never_recomputes_the_target_energy(monkeypatch):
    """The O(N^2 d) energy is computed at construction; evaluations touch only N x M and M x M kernels."""
    a, W, b, V = _instance(9, N=40)
    fn = PopulationLoss(a, W)
    shapes = []
    original = loss_module.kernel_matrix

    def spy(X, Y=None, *args, **kwargs):
        shapes.append((X.shape[-2], (X if Y is None else Y).shape[-2]))
        return original(X, Y, *args, **kwargs)

    monkeypatch.setattr(loss_module, "kernel_matrix", spy)
    fn(b, V)
    fn.reduced(V)
    assert shapes and all(s != (40, 40) for s in shapes)


def test_quadrature_error_bound():
    a, W, b, V = _instance(10)
    value, err = population_loss(a, W, b, V, "tanh", quad_points=24, return_error=True)
    reference = population_loss(a, W, b, V, "tanh", quad_points=200)
    assert abs(float(value - reference)) <= float(err)
    assert float(err) > 0
    _, err_relu = population_loss(a, W, b, V, "relu", return_error=True)
    assert float(err_relu) == 0.0


@pytest.mark.parametrize("args, message", [
    ((torch.ones(3, 1), torch.ones(3, 2), torch.ones(2), torch.ones(2, 2)), "a must have 1 dimension"),
    ((torch.ones(3), torch.ones(3), torch.ones(2), torch.ones(2, 2)), "W must have 2 dimension"),
    ((torch.ones(4), torch.ones(3, 2), torch.ones(2), torch.ones(2, 2)), "a must have shape"),
    ((torch.ones(3), torch.ones(3, 2), torch.ones(3), torch.ones(2, 2)), "b must have shape"),
    ((torch.ones(3), torch.ones(3, 2), torch.ones(2), torch.ones(2, 3)), "d = 2 columns"),
    ((torch.ones(3), torch.ones(3, 0), torch.ones(2), torch.ones(2, 0)), "d >= 1"),
    ((torch.tensor([1.0, math.nan, 0.0]), torch.ones(3, 2), torch.ones(2), torch.ones(2, 2)), "a contains NaN"),
    ((torch.ones(3), torch.ones(3, 2) * math.inf, torch.ones(2), torch.ones(2, 2)), "W contains NaN or inf"),
    ((torch.ones(3), torch.ones(3, 2), torch.tensor([1.0, math.inf]), torch.ones(2, 2)), "finite"),
    ((torch.ones(3), torch.ones(3, 2), torch.ones(2), torch.full((2, 2), math.nan)), "finite"),
])
def test_bad_input_gives_clear_errors(args, message):
    with pytest.raises(ValueError, match=message):
        population_loss(*args)


def test_unknown_activation():
    a, W, b, V = _instance(11)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        population_loss(a, W, b, V, "swish")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    a, W, b, V = _instance(12)
    cpu = population_loss(a, W, b, V)
    gpu = population_loss(a.cuda(), W.cuda(), b.cuda(), V.cuda())
    assert gpu.device.type == "cuda"
    assert math.isclose(float(cpu), float(gpu), rel_tol=1e-12)
