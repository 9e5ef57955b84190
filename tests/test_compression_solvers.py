"""The batched L-BFGS and the trust-region Newton behind compress."""

import torch

from nonlin_explorer.compression._solvers import Chart, fd_hessian, lbfgs, newton

f64 = torch.float64


def test_lbfgs_candidates_do_not_interact():
    """Each row is its own problem: a hard companion does not change an easy row's path."""
    scales = torch.tensor([1.0, 1e3], dtype=f64)

    def fun(x):  # row r: sum_i s_r (x_i - r - 1)^2 + 0.1 x_i^4
        r = torch.arange(x.shape[0], dtype=f64)[:, None]
        return (scales[: x.shape[0], None] * (x - r - 1) ** 2 + 0.1 * x**4).sum(1)

    both = lbfgs(fun, torch.zeros(2, 5, dtype=f64), ftol=1e-15, gtol=1e-12)
    alone = lbfgs(fun, torch.zeros(1, 5, dtype=f64), ftol=1e-15, gtol=1e-12)
    assert torch.allclose(both.x[0], alone.x[0], atol=1e-9)
    grad = 2 * scales[:, None] * (both.x - torch.tensor([[1.0], [2.0]], dtype=f64)) + 0.4 * both.x**3
    assert float(grad.abs().max()) < 1e-6


class _Rosenbrock(Chart):
    def __init__(self, x):
        self.x, self.dim = x, 2

    def evaluate(self, delta):
        p = self.x + delta
        return (1 - p[:, 0]) ** 2 + 100 * (p[:, 1] - p[:, 0] ** 2) ** 2

    def move(self, delta):
        return _Rosenbrock(self.x + delta)


def test_newton_solves_rosenbrock_in_few_steps():
    chart, f, iterations, _, history, _ = newton(_Rosenbrock(torch.tensor([-1.2, 1.0], dtype=f64)), max_iter=100,
                                                 ftol=0.0)
    assert torch.allclose(chart.x, torch.ones(2, dtype=f64), atol=1e-6) and f < 1e-12
    assert iterations < 60
    assert all(b <= a for a, b in zip(history, history[1:]))


def test_fd_hessian_of_a_quadratic():
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=f64)
    g, H = fd_hessian(lambda x: 0.5 * ((x @ A) * x).sum(1), torch.tensor([1.0, -1.0], dtype=f64))
    assert torch.allclose(H, A, atol=1e-8) and torch.allclose(g, A @ torch.tensor([1.0, -1.0], dtype=f64))
