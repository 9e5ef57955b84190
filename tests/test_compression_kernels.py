"""Gaussian kernels E[s(x.z) s(y.z)]: closed forms, special values, gradients everywhere, quadrature error."""

import math

import pytest
import torch

from nonlin_explorer.compression import ACTIVATIONS, get_activation, kernel_error, kernel_matrix, random_target, relu_k
from nonlin_explorer.compression.kernels import QuadratureTanh, gauss_hermite, hermite_coefficients, relu_k_prime
from nonlin_explorer.compression.loss import PopulationLoss

f64 = torch.float64


def _rows(n, d, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=f64) * scale / math.sqrt(d)


def test_relu_k_special_values():
    rho = torch.tensor([1.0, -1.0, 0.0], dtype=f64)
    assert torch.allclose(relu_k(rho), torch.tensor([0.5, 0.0, 1 / (2 * math.pi)], dtype=f64), atol=1e-15)
    assert torch.allclose(relu_k_prime(rho), torch.tensor([0.5, 0.0, 0.25], dtype=f64), atol=1e-15)


def test_relu_k_hermite_series():
    rho = torch.linspace(-0.3, 0.3, 13, dtype=f64)
    series = (1 / (2 * math.pi) + rho / 4 + rho**2 / (4 * math.pi) + rho**4 / (48 * math.pi)
              + rho**6 / (160 * math.pi))
    assert torch.allclose(relu_k(rho), series, atol=2e-7)


def test_relu_diagonal_is_half_squared_norm_exactly():
    V = _rows(5, 7, 0, 3.0)
    K = kernel_matrix(V, None, "relu")
    assert torch.allclose(torch.diagonal(K), (V * V).sum(1) / 2, rtol=1e-15, atol=0)
    assert torch.allclose(K, K.T, atol=1e-15)


def test_linear_and_erf_closed_forms():
    X, Y = _rows(3, 4, 1), _rows(2, 4, 2)
    assert torch.allclose(kernel_matrix(X, Y, "linear"), X @ Y.T, atol=1e-15)
    ax, ay = 1 + 2 * (X * X).sum(1), 1 + 2 * (Y * Y).sum(1)
    expected = (2 / math.pi) * torch.arcsin(2 * (X @ Y.T) / torch.sqrt(ax[:, None] * ay[None, :]))
    assert torch.allclose(kernel_matrix(X, Y, "erf"), expected, atol=1e-15)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_kernel_matches_monte_carlo(name):
    X, Y = _rows(3, 4, 3, 1.2), _rows(2, 4, 4, 1.2)
    z = torch.randn(1_000_000, 4, generator=torch.Generator().manual_seed(5), dtype=f64)
    act = get_activation(name)
    prod = act(z @ X.T)[:, :, None] * act(z @ Y.T)[:, None, :]
    mean, se = prod.mean(0), prod.std(0) / math.sqrt(z.shape[0])
    # 6 entries per activation, 36 in all: 4 standard errors keeps chance failures negligible.
    assert ((kernel_matrix(X, Y, name) - mean).abs() <= 4 * se).all()


@pytest.mark.parametrize("name", ["relu", "linear", "erf", "tanh", "gelu", "softplus"])
def test_gradients_match_finite_differences(name):
    X = _rows(3, 3, 6).requires_grad_()
    Y = _rows(2, 3, 7).requires_grad_()
    fn = lambda A, B: kernel_matrix(A, B, name, quad_points=100)
    assert torch.autograd.gradcheck(fn, (X, Y), atol=1e-6)
    assert torch.autograd.gradcheck(lambda A: kernel_matrix(A, None, name, quad_points=100), (X,), atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradients_finite_at_coincident_antipodal_and_zero_rows(name):
    X = _rows(2, 3, 8)
    Y = torch.stack([X[0], -X[1], torch.zeros(3, dtype=f64), 2.0 * X[0]]).requires_grad_()
    K = kernel_matrix(X, Y, name)
    (gY,) = torch.autograd.grad(K.sum(), Y)
    assert torch.isfinite(gY).all()
    G = kernel_matrix(Y, None, name)  # the Gram of Y includes rho = 1 (rows 0 and 3) and a zero row
    (gG,) = torch.autograd.grad(G.sum(), Y)
    assert torch.isfinite(gG).all()


def test_relu_gradient_at_rho_plus_minus_one_is_the_derivative():
    x = _rows(1, 4, 9)
    for y0 in (x[0] * 1.7, -x[0] * 0.6):  # coincident and antipodal directions
        y = y0.clone().requires_grad_()
        (g,) = torch.autograd.grad(kernel_matrix(x, y[None], "relu").sum(), y)
        eps = 1e-6
        fd = torch.stack([(kernel_matrix(x, (y0 + eps * e)[None], "relu") - kernel_matrix(x, (y0 - eps * e)[None],
                                                                                         "relu")).sum() / (2 * eps)
                          for e in torch.eye(4, dtype=f64)])
        assert torch.allclose(g, fd, atol=1e-8)
    # Coincident: grad_y = (pi * x) / (2 pi) = x / 2; antipodal: grad_y = 0.
    y = (x[0] * 1.7).clone().requires_grad_()
    (g,) = torch.autograd.grad(kernel_matrix(x, y[None], "relu").sum(), y)
    assert torch.allclose(g, x[0] / 2, atol=1e-12)


def test_relu_gradient_at_zero_row_is_the_average_direction():
    x = _rows(1, 5, 10)
    y = torch.zeros(1, 5, dtype=f64, requires_grad=True)
    (g,) = torch.autograd.grad(kernel_matrix(x, y, "relu").sum(), y)
    assert torch.allclose(g[0], x[0] / 4, atol=1e-15)


def test_batched_candidates_equal_one_by_one():
    W = _rows(6, 3, 11)
    V = torch.stack([_rows(2, 3, s) for s in range(4)])
    K = kernel_matrix(W, V, "relu")
    assert K.shape == (4, 6, 2)
    for r in range(4):
        assert torch.allclose(K[r], kernel_matrix(W, V[r], "relu"), atol=1e-15)


def test_gauss_hermite_weights_integrate_gaussian_moments():
    z, w = gauss_hermite(20)
    assert torch.allclose(torch.stack([(w * z**k).sum() for k in (0, 2, 4, 6)]),
                          torch.tensor([1.0, 1.0, 3.0, 15.0], dtype=f64), atol=1e-11)


def test_quadrature_error_estimate_bounds_the_actual_error():
    X, Y = _rows(3, 3, 12, 1.5), _rows(2, 3, 13, 1.5)
    reference = kernel_matrix(X, Y, "gelu", quad_points=300)
    for n in (16, 32, 64):
        actual = (kernel_matrix(X, Y, "gelu", quad_points=n) - reference).abs()
        estimate = kernel_error(X, Y, "gelu", quad_points=n)
        assert (estimate >= actual).all()
    fine, coarse = kernel_error(X, Y, "gelu", quad_points=64), kernel_error(X, Y, "gelu", quad_points=16)
    assert float(fine.max()) < float(coarse.max())
    assert float(kernel_error(X, Y, "relu").abs().max()) == 0.0


def _tanh_rows(scale):
    """Rows with every case the series must handle: generic cosines, parallel, antiparallel and zero rows."""
    X, Y = _rows(12, 5, 14, scale), _rows(6, 5, 15, scale)
    Y[0], Y[1], Y[2] = X[0], -0.5 * X[1], 0.0
    return X, Y


def test_tanh_series_matches_fine_quadrature_values_and_gradients():
    X, Y = _tanh_rows(1.0)
    reference = QuadratureTanh(400)
    assert torch.allclose(kernel_matrix(X, Y, "tanh", quad_points=200), kernel_matrix(X, Y, reference),
                          atol=1e-10, rtol=0)
    assert torch.allclose(kernel_matrix(X, None, "tanh", quad_points=200), kernel_matrix(X, None, reference),
                          atol=1e-10, rtol=0)
    C = torch.randn(12, 6, generator=torch.Generator().manual_seed(16), dtype=f64)
    grads = []
    for act in (get_activation("tanh", quad_points=200), reference):
        Xr, Yr = X.clone().requires_grad_(), Y.clone().requires_grad_()
        (kernel_matrix(Xr, Yr, act) * C).sum().backward()
        grads.append((Xr.grad, Yr.grad))
    # Near-parallel pairs use 2-D quadrature, whose 200- and 400-point rules differ by ~3e-9 in these gradients.
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-8, rtol=0)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-8, rtol=0)


def test_tanh_series_entries_are_exact_to_tolerance_and_the_error_estimate_holds():
    X, Y = _tanh_rows(1.0)
    fine = kernel_matrix(X, Y, QuadratureTanh(400))
    series_pairs = (torch.nn.functional.normalize(X, dim=1) @ torch.nn.functional.normalize(Y, dim=1).T).abs() <= 0.8
    assert float((kernel_matrix(X, Y, "tanh") - fine)[series_pairs].abs().max()) <= 1e-12
    assert ((kernel_matrix(X, Y, "tanh") - fine).abs() <= kernel_error(X, Y, "tanh")).all()


def test_tanh_hermite_coefficients_satisfy_parseval_and_known_values():
    r = torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=f64)
    beta, tail = hermite_coefficients(torch.tanh, r, 80)
    assert float(beta[0].abs().max()) == 0.0  # tanh(0 g) = 0
    assert float(beta[:, 0::2].abs().max()) <= 1e-15  # odd function: even coefficients vanish
    z, w = gauss_hermite(400)
    assert torch.allclose(beta[:, 1], (torch.tanh(r[:, None] * z) * z * w).sum(1), atol=1e-14)  # E[tanh(rg) g]
    assert float(tail[1:3, -1].max()) <= 1e-11  # 80 terms carry E tanh(rg)^2 but 3e-12 at r <= 1
    assert bool((tail[:, 1:] <= tail[:, :-1] + 1e-15).all())  # tails only shrink


def test_tanh_loss_equals_the_quadrature_loss():
    t = random_target(60, 16, seed=3, activation="tanh")
    V, b = _rows(4, 16, 17), torch.tensor([0.3, -0.2, 0.1, 0.4], dtype=f64)
    series = PopulationLoss(t.a, t.W, "tanh", quad_points=160)
    quad = PopulationLoss(t.a, t.W, QuadratureTanh(160))
    # The two agree to about 5e-12 of the energy (the 160-point rule's own error is of that order).
    assert abs(float(series.energy) - float(quad.energy)) <= 1e-10 * float(quad.energy)
    assert abs(float(series(b, V)) - float(quad(b, V))) <= 1e-10 * float(quad.energy)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="unknown activation 'sigmoid'"):
        kernel_matrix(_rows(2, 3, 0), None, "sigmoid")
    with pytest.raises(ValueError, match="same last dimension"):
        kernel_matrix(_rows(2, 3, 0), _rows(2, 4, 1))
    with pytest.raises(ValueError, match="quad_points"):
        get_activation("tanh", quad_points=1)
