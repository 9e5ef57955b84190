"""The exact Riemannian Hessian of the ReLU loss agrees with finite differences, even at rho = +-1."""

import torch

from nonlin_explorer.compression import PopulationLoss
from nonlin_explorer.compression._hessian import relu_grad_hess
from nonlin_explorer.compression._solvers import fd_hessian

f64 = torch.float64


def _check(a, W, b, U, atol):
    fn = PopulationLoss(a, W)
    loss, g, H, B = relu_grad_hess(fn.a, fn.W, b, U, fn.energy)
    M, d = U.shape
    assert abs(float(loss - fn(b, U))) < 1e-12 * float(fn.energy)

    def chart(delta):
        Un = U + torch.einsum("mdk,bmk->bmd", B, delta[:, M:].reshape(-1, M, d - 1))
        return fn.evaluate(b + delta[:, :M], Un / Un.norm(dim=-1, keepdim=True))

    g2, H2 = fd_hessian(chart, torch.zeros(M * d, dtype=f64), h=1e-4)
    assert torch.isfinite(H).all()
    assert torch.allclose(g, g2, atol=1e-9)
    assert torch.allclose(H, H2, atol=atol)


def test_hessian_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    W, a = torch.randn(30, 5, generator=g, dtype=f64), torch.randn(30, generator=g, dtype=f64)
    U = torch.randn(3, 5, generator=g, dtype=f64)
    _check(a, W, torch.randn(3, generator=g, dtype=f64), U / U.norm(dim=1, keepdim=True), 1e-6)


def test_hessian_finite_at_coincident_and_antipodal_units():
    g = torch.Generator().manual_seed(1)
    W, a = torch.randn(20, 4, generator=g, dtype=f64), torch.randn(20, generator=g, dtype=f64)
    u0 = W[0] / W[0].norm()
    U = torch.stack([u0, -u0, torch.nn.functional.normalize(torch.randn(4, generator=g, dtype=f64), dim=0)])
    fn = PopulationLoss(a, W)
    _, grad, H, _ = relu_grad_hess(fn.a, fn.W, torch.tensor([0.5, -0.3, 0.2], dtype=f64), U, fn.energy)
    assert torch.isfinite(grad).all() and torch.isfinite(H).all()
    # The kernel's Hessian is continuous there: finite differences agree to their own accuracy.
    _check(a, W, torch.tensor([0.5, -0.3, 0.2], dtype=f64), U, 1e-3)
