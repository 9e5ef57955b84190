"""The exact population loss ``L(b, V) = E_{x ~ N(0, I_d)} (f*(x) - g(x))^2`` of a compressed network.

``f*(x) = sum_i a_i s(w_i.x)`` (the target, N units) and ``g(x) = sum_j b_j s(v_j.x)`` (M units). Expanding
the square, ``L = a^T K(W,W) a - 2 a^T K(W,V) b + b^T K(V,V) b`` with the Gaussian kernel ``K`` of
:mod:`.kernels`. The first term (the target's energy, O(N^2 d)) does not depend on ``(b, V)``: it is computed
once, so each evaluation costs O(NMd + M^2 d).
"""

from __future__ import annotations

import torch

from nonlin_explorer.compression._checks import HasFirstLayer, as_tensor, check_student, check_target
from nonlin_explorer.compression.kernels import Activation, get_activation, kernel_error, kernel_matrix

_ENERGY_CHUNK = 1 << 20  # kernel entries per block when summing the target's energy


class PopulationLoss(HasFirstLayer):
    """Exact loss for one target ``(a, W)``: call it with ``(b, V)``; batched over leading dimensions.

    ``loss(b, V)`` takes ``b`` (..., M) and ``V`` (..., M, d) and returns the loss with shape ``(...)``,
    differentiable in ``b`` and ``V`` with finite gradients everywhere.
    """

    def __init__(self, a, W, activation: str | Activation = "relu", *, quad_points: int | None = None,
                 device=None, dtype=None):
        self.W = as_tensor("W", W, ndim=2, device=device, dtype=dtype)
        self.a = as_tensor("a", a, ndim=1, device=self.W.device, dtype=self.W.dtype)
        check_target(self.a, self.W)
        self.activation = get_activation(activation, quad_points=quad_points)
        self.energy = self._energy()
        self._energy_error = None

    def _energy(self) -> torch.Tensor:
        """``E f*(x)^2 = a^T K(W, W) a``, in row blocks so memory stays O(N * block); the kernel is symmetric, so
        each block pairs its rows with themselves (a Gram matrix, exact on its diagonal) and with the rows after it
        (counted twice)."""
        with torch.no_grad():
            N, a, W = self.N, self.a, self.W
            rows = N if N * N <= _ENERGY_CHUNK else max(1, _ENERGY_CHUNK // N)
            total = torch.zeros((), dtype=self.dtype, device=self.device)
            for s in range(0, N, rows):
                e = min(N, s + rows)
                total = total + a[s:e] @ kernel_matrix(W[s:e], None, self.activation) @ a[s:e]
                if e < N:
                    total = total + 2.0 * (a[s:e] @ kernel_matrix(W[s:e], W[e:], self.activation) @ a[e:])
            return total

    @property
    def energy_error(self) -> torch.Tensor:
        """Bound on the quadrature error of :attr:`energy` (zero for closed-form kernels)."""
        if self._energy_error is None:
            if self.activation.exact:
                self._energy_error = torch.zeros((), dtype=self.dtype, device=self.device)
            else:
                aa = self.a.abs()
                total = torch.zeros((), dtype=self.dtype, device=self.device)
                rows = max(1, _ENERGY_CHUNK // self.N)
                for s in range(0, self.N, rows):
                    total = total + aa[s:s + rows] @ kernel_error(self.W[s:s + rows], self.W, self.activation) @ aa
                self._energy_error = total
        return self._energy_error

    def check(self, b, V) -> tuple[torch.Tensor, torch.Tensor]:
        """``(b, V)`` as tensors on this loss's device, shapes and values checked."""
        V = V if isinstance(V, torch.Tensor) and V.dtype == self.dtype and V.device == self.device else \
            as_tensor("V", V, min_ndim=2, device=self.device, dtype=self.dtype)
        b = b if isinstance(b, torch.Tensor) and b.dtype == self.dtype and b.device == self.device else \
            as_tensor("b", b, min_ndim=1, device=self.device, dtype=self.dtype)
        if V.ndim < 2:
            raise ValueError(f"V must have shape (..., M, d), got {tuple(V.shape)}")
        if not bool(torch.isfinite(V.detach()).all()) or not bool(torch.isfinite(b.detach()).all()):
            raise ValueError("b and V must be finite (no NaN or inf)")
        check_student(b, V, self.d)
        return b, V

    def cross(self, V: torch.Tensor) -> torch.Tensor:
        """``h_j = E[f*(x) s(v_j.x)] = sum_i a_i K(w_i, v_j)``, shape (..., M)."""
        return torch.einsum("n,...nm->...m", self.a, kernel_matrix(self.W, V, self.activation))

    def gram(self, V: torch.Tensor) -> torch.Tensor:
        """``K(V, V)``, shape (..., M, M): the compressed network's own kernel."""
        return kernel_matrix(V, None, self.activation)

    def evaluate(self, b: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """The loss without input checks (the optimizer's hot path)."""
        G = self.gram(V)
        quad = (b[..., None, :] @ G @ b[..., :, None])[..., 0, 0]
        return self.energy - 2.0 * (self.cross(V) * b).sum(-1) + quad

    def __call__(self, b, V) -> torch.Tensor:
        b, V = self.check(b, V)
        return self.evaluate(b, V)

    def optimal_b(self, V: torch.Tensor, ridge: float = 1e-12) -> torch.Tensor:
        """The exact least-squares output weights for fixed ``V``: ``b* = K(V,V)^-1 h``."""
        G, h = self.gram(V), self.cross(V)
        return _ridge_solve(G, h, ridge)

    def reduced(self, V: torch.Tensor, ridge: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
        """``min_b L(b, V) = energy - h^T K(V,V)^-1 h`` (variable projection) and the minimizing ``b``."""
        G, h = self.gram(V), self.cross(V)
        b = _ridge_solve(G, h, ridge)
        return self.energy - (h * b).sum(-1), b

    def error(self, b, V) -> torch.Tensor:
        """Bound on the quadrature error of ``L(b, V)`` (zero for closed-form kernels)."""
        b, V = self.check(b, V)
        if self.activation.exact:
            return torch.zeros(torch.broadcast_shapes(b.shape[:-1], V.shape[:-2]), dtype=self.dtype,
                               device=self.device)
        with torch.no_grad():
            bb = b.detach().abs()
            e_wv = kernel_error(self.W, V.detach(), self.activation)
            e_vv = kernel_error(V.detach(), None, self.activation)
            cross = 2.0 * (torch.einsum("n,...nm->...m", self.a.abs(), e_wv) * bb).sum(-1)
            quad = (bb[..., None, :] @ e_vv @ bb[..., :, None])[..., 0, 0]
            return self.energy_error + cross + quad


def _ridge_solve(G: torch.Tensor, h: torch.Tensor, ridge: float) -> torch.Tensor:
    """Solve ``(G + ridge * mean(diag G) I) b = h`` by Cholesky (G is a PSD kernel Gram matrix)."""
    M = G.shape[-1]
    scale = torch.diagonal(G, dim1=-2, dim2=-1).mean(-1).clamp_min(torch.finfo(G.dtype).tiny)
    eye = torch.eye(M, dtype=G.dtype, device=G.device)
    A = G + (ridge * scale)[..., None, None] * eye
    L, info = torch.linalg.cholesky_ex(A)
    if bool((info > 0).any()):  # numerically indefinite (duplicated units): a least-squares solve still works
        return torch.linalg.lstsq(A, h[..., None]).solution[..., 0]
    return torch.cholesky_solve(h[..., None], L)[..., 0]


def population_loss(a, W, b, V, activation: str | Activation = "relu", *, quad_points: int | None = None,
                    return_error: bool = False, device=None, dtype=None):
    """Exact ``E_x (sum_i a_i s(w_i.x) - sum_j b_j s(v_j.x))^2``, ``x ~ N(0, I_d)``; differentiable in b, V.

    ``a`` (N,), ``W`` (N, d), ``b`` (..., M), ``V`` (..., M, d): leading dimensions of ``b``/``V`` batch
    several candidates. With ``return_error=True`` returns ``(loss, error_bound)``; the bound is zero for
    the closed-form activations (relu, linear, erf) and a quadrature error estimate otherwise.
    """
    if device is None and isinstance(V, torch.Tensor):
        device = V.device
    loss_fn = PopulationLoss(a, W, activation, quad_points=quad_points, device=device, dtype=dtype)
    value = loss_fn(b, V)
    if return_error:
        return value, loss_fn.error(b, V)
    return value
