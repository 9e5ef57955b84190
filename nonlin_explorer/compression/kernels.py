"""Gaussian kernels ``K(x, y) = E_z[s(x.z) s(y.z)]``, ``z ~ N(0, I_d)``: the building block of the exact loss.

Every activation gives the kernel matrix between the rows of ``X`` (..., n, d) and ``Y`` (..., m, d) and a
hand-coded backward pass, so gradients are finite everywhere (coincident or antipodal rows, zero rows).

* ``relu``: the degree-1 arc-cosine kernel (Cho & Saul 2009, halved),
  ``|x||y| k(rho)``, ``k(rho) = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi)``. Its derivative
  ``k'(rho) = (pi - arccos rho) / (2 pi)`` is finite, so
  ``grad_y K = (|x| sin t * y/|y| + (pi - t) x) / (2 pi)``, ``t = arccos rho``. Autograd through ``arccos``
  would give ``inf - inf`` at ``rho = +-1``; we code the gradient instead. At ``y = 0`` the kernel is not
  differentiable (it is a cone); we return the average of the directional gradients, ``x / 4``.
* ``linear``: ``x.y``. ``erf``: ``(2/pi) arcsin(2 x.y / sqrt((1 + 2|x|^2)(1 + 2|y|^2)))`` (exact).
* ``tanh``, ``gelu``, ``softplus``: Gauss-Hermite quadrature over the 2-D projection
  ``(x.z, y.z) = (|x| g1, |y| (rho g1 + sqrt(1 - rho^2) g2))``, which stays valid when the covariance is
  singular. Gradients by Stein's lemma, ``grad_y K = x E[s'(x.z) s'(y.z)] + y E[s(x.z) s''(y.z)]``: smooth
  expectations computed by the same quadrature, so finite everywhere. The error estimate is the change
  from a rule with half as many points (conservative: Gauss-Hermite converges geometrically for these).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from scipy.special import roots_hermitenorm

from nonlin_explorer.compression._checks import check_int

TWO_PI = 2.0 * math.pi
ACTIVATIONS = ("relu", "linear", "erf", "tanh", "gelu", "softplus")
DEFAULT_QUAD_POINTS = 64
_PAIR_CHUNK = 1 << 22  # quadrature: pairs * points^2 evaluated at once


@lru_cache(maxsize=32)
def _gauss_hermite_np(n: int):
    """Nodes and weights with ``sum_k w_k f(z_k) ~ E f(z)``, ``z ~ N(0, 1)`` (probabilists' Hermite)."""
    z, w = roots_hermitenorm(n)  # stable for large n (numpy's hermegauss overflows past ~150 points)
    return z, w / w.sum()


def gauss_hermite(n: int, *, device=None, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``n``-point Gauss-Hermite rule for the standard normal: nodes and weights (weights sum to 1)."""
    if int(n) != n or n < 1:
        raise ValueError(f"the number of quadrature points must be a positive integer, got {n!r}")
    z, w = _gauss_hermite_np(int(n))
    return torch.as_tensor(z, device=device, dtype=dtype), torch.as_tensor(w, device=device, dtype=dtype)


def _norms_and_cosines(X, Y, same: bool):
    """Row norms, dot products and safe cosines (0 where a row is zero) of two stacks of vectors."""
    nx = torch.linalg.vector_norm(X, dim=-1)
    ny = nx if same else torch.linalg.vector_norm(Y, dim=-1)
    dot = X @ Y.mT
    nn = nx[..., :, None] * ny[..., None, :]
    pos = nn > 0
    rho = torch.where(pos, dot / torch.where(pos, nn, torch.ones_like(nn)), torch.zeros_like(nn))
    rho = rho.clamp(-1.0, 1.0)
    if same:  # a vector with itself: exactly rho = 1 (keeps the gradient exact on the diagonal)
        eye = torch.eye(rho.shape[-1], dtype=torch.bool, device=rho.device)
        rho = torch.where(eye & pos, torch.ones_like(rho), rho)
    return nx, ny, dot, nn, rho


def _unit(X, nx):
    """Rows scaled to unit length; zero rows stay zero."""
    pos = nx > 0
    return X / torch.where(pos, nx, torch.ones_like(nx))[..., None]


class Activation:
    """An activation ``s`` with its Gaussian kernel, the kernel's gradients and pointwise values."""

    name = "?"
    exact = True  # closed form (no quadrature error)
    homogeneous = False  # s(c z) = c s(z) for c > 0: the norm of v can move into b

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, X, Y, same):
        """Kernel matrix and what the backward pass needs."""
        raise NotImplementedError

    def backward(self, X, Y, G, saved, same, need_x=True, need_y=True):
        """Gradients of ``sum(G * K)`` with respect to X and Y (None where not needed)."""
        raise NotImplementedError

    def linear_coefficient(self, r: torch.Tensor) -> torch.Tensor:
        """``E[s'(r g)]``, ``g ~ N(0,1)``: by Stein, ``E[s(w.z) z] = E[s'(|w| g)] w``."""
        raise NotImplementedError

    def kernel_error(self, X, Y) -> torch.Tensor:
        """Estimated absolute error of each kernel entry (zero for closed forms)."""
        return torch.zeros(X.shape[:-2] + (X.shape[-2], Y.shape[-2]), dtype=X.dtype, device=X.device)

    def __repr__(self):
        return f"<activation {self.name}>"


class ReLU(Activation):
    name = "relu"
    homogeneous = True

    def __call__(self, z):
        return torch.relu(z)

    def forward(self, X, Y, same):
        nx, ny, dot, nn, rho = _norms_and_cosines(X, Y, same)
        t = torch.arccos(rho)
        sin = torch.sqrt((1.0 - rho * rho).clamp_min(0.0))
        if same:
            eye = torch.eye(rho.shape[-1], dtype=torch.bool, device=rho.device)
            t = torch.where(eye & (nn > 0), torch.zeros_like(t), t)
            sin = torch.where(eye & (nn > 0), torch.zeros_like(sin), sin)
        K = (nn * sin + (math.pi - t) * dot) / TWO_PI
        return K, (nx, ny, t, sin)

    def backward(self, X, Y, G, saved, same, need_x=True, need_y=True):
        nx, ny, t, sin = saved
        Gt = G * (math.pi - t)
        Gs = G * sin
        gX = gY = None
        if need_y:
            gY = (_unit(Y, ny) * (Gs.mT @ nx[..., :, None]) + Gt.mT @ X) / TWO_PI
        if need_x:
            gX = (_unit(X, nx) * (Gs @ ny[..., :, None]) + Gt @ Y) / TWO_PI
        return gX, gY

    def linear_coefficient(self, r):
        return torch.full_like(r, 0.5)


class Linear(Activation):
    name = "linear"
    homogeneous = True

    def __call__(self, z):
        return z

    def forward(self, X, Y, same):
        return X @ Y.mT, ()

    def backward(self, X, Y, G, saved, same, need_x=True, need_y=True):
        return (G @ Y if need_x else None), (G.mT @ X if need_y else None)

    def linear_coefficient(self, r):
        return torch.ones_like(r)


class Erf(Activation):
    name = "erf"

    def __call__(self, z):
        return torch.erf(z)

    def forward(self, X, Y, same):
        ax = 1.0 + 2.0 * (X * X).sum(-1)
        ay = ax if same else 1.0 + 2.0 * (Y * Y).sum(-1)
        S = torch.sqrt(ax[..., :, None] * ay[..., None, :])
        q = (2.0 * (X @ Y.mT) / S).clamp(-1.0, 1.0)  # |q| < 1 always; the clamp guards rounding
        K = (2.0 / math.pi) * torch.arcsin(q)
        return K, (ax, ay, S, q)

    def backward(self, X, Y, G, saved, same, need_x=True, need_y=True):
        ax, ay, S, q = saved
        D = G * (2.0 / math.pi) / torch.sqrt((1.0 - q * q).clamp_min(1e-300))
        gX = gY = None
        if need_y:
            gY = (D * 2.0 / S).mT @ X - Y * (2.0 * (D * q).sum(-2) / ay)[..., None]
        if need_x:
            gX = (D * 2.0 / S) @ Y - X * (2.0 * (D * q).sum(-1) / ax)[..., None]
        return gX, gY

    def linear_coefficient(self, r):
        return 2.0 / math.sqrt(math.pi) / torch.sqrt(1.0 + 2.0 * r * r)


class QuadratureActivation(Activation):
    """A smooth activation whose kernel is computed by 2-D Gauss-Hermite quadrature."""

    exact = False

    def __init__(self, n_points: int = DEFAULT_QUAD_POINTS):
        if int(n_points) != n_points or n_points < 2:
            raise ValueError(f"quad_points must be an integer >= 2, got {n_points!r}")
        self.n_points = int(n_points)

    def d1(self, z):
        raise NotImplementedError

    def d2(self, z):
        raise NotImplementedError

    def expect(self, f, g, nx, ny, rho, n_points=None):
        """``E[f(x.z) g(y.z)]`` for every pair, from norms and cosines (shape of ``rho``)."""
        n = n_points or self.n_points
        z, w = gauss_hermite(n, device=rho.device, dtype=rho.dtype)
        shape = rho.shape
        a = nx[..., :, None].expand(shape).reshape(-1)
        r = rho.reshape(-1)
        ny_b = ny[..., None, :].expand(shape).reshape(-1)
        b = ny_b * r
        c = ny_b * torch.sqrt((1.0 - r * r).clamp_min(0.0))
        out = torch.empty_like(r)
        step = max(1, _PAIR_CHUNK // (n * n))
        for s in range(0, r.numel(), step):
            e = slice(s, s + step)
            F = f(a[e, None] * z) * w  # (P, n): outer node z1
            y2 = b[e, None, None] * z[:, None] + c[e, None, None] * z  # (P, n1, n2)
            out[e] = torch.einsum("pk,pkl,l->p", F, g(y2), w)
        return out.reshape(shape)

    def forward(self, X, Y, same):
        nx, ny, _, _, rho = _norms_and_cosines(X, Y, same)
        return self.expect(self, self, nx, ny, rho), (nx, ny, rho)

    def backward(self, X, Y, G, saved, same, need_x=True, need_y=True):
        nx, ny, rho = saved
        K11 = G * self.expect(self.d1, self.d1, nx, ny, rho)
        gX = gY = None
        if need_y:
            gY = K11.mT @ X + Y * (G * self.expect(self, self.d2, nx, ny, rho)).sum(-2)[..., None]
        if need_x:
            gX = K11 @ Y + X * (G * self.expect(self.d2, self, nx, ny, rho)).sum(-1)[..., None]
        return gX, gY

    def kernel_error(self, X, Y):
        nx, ny, _, _, rho = _norms_and_cosines(X, Y, X is Y)
        fine = self.expect(self, self, nx, ny, rho)
        coarse = self.expect(self, self, nx, ny, rho, n_points=max(2, self.n_points // 2))
        return (fine - coarse).abs()

    def linear_coefficient(self, r):
        z, w = gauss_hermite(self.n_points, device=r.device, dtype=r.dtype)
        return (self.d1(r[..., None] * z) * w).sum(-1)

    def __repr__(self):
        return f"<activation {self.name}, {self.n_points}-point Gauss-Hermite>"


class Tanh(QuadratureActivation):
    name = "tanh"

    def __call__(self, z):
        return torch.tanh(z)

    def d1(self, z):
        return 1.0 - torch.tanh(z) ** 2

    def d2(self, z):
        th = torch.tanh(z)
        return -2.0 * th * (1.0 - th * th)


def _phi(z):
    return torch.exp(-0.5 * z * z) / math.sqrt(TWO_PI)


def _Phi(z):
    return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))


class GELU(QuadratureActivation):
    """The exact GELU, ``z Phi(z)``."""

    name = "gelu"

    def __call__(self, z):
        return z * _Phi(z)

    def d1(self, z):
        return _Phi(z) + z * _phi(z)

    def d2(self, z):
        return (2.0 - z * z) * _phi(z)


class Softplus(QuadratureActivation):
    name = "softplus"

    def __call__(self, z):
        return torch.nn.functional.softplus(z)

    def d1(self, z):
        return torch.sigmoid(z)

    def d2(self, z):
        s = torch.sigmoid(z)
        return s * (1.0 - s)


_CLASSES = {"relu": ReLU, "linear": Linear, "erf": Erf, "tanh": Tanh, "gelu": GELU, "softplus": Softplus}


def get_activation(activation: str | Activation = "relu", *, quad_points: int | None = None) -> Activation:
    """The :class:`Activation` for a name in :data:`ACTIVATIONS` (instances pass through). ``quad_points`` (an
    integer >= 2, checked even where the kernel is exact) sets the quadrature of the smooth ones."""
    if quad_points is not None:
        quad_points = check_int("quad_points", quad_points, minimum=2)
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str) or activation.lower() not in _CLASSES:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    cls = _CLASSES[activation.lower()]
    if issubclass(cls, QuadratureActivation):
        return cls(quad_points or DEFAULT_QUAD_POINTS)
    return cls()


class _PairKernel(torch.autograd.Function):
    """``K_ij = E[s(x_i.z) s(y_j.z)]`` with the activation's hand-coded backward pass."""

    @staticmethod
    def forward(ctx, X, Y, act, same):
        K, saved = act.forward(X, Y, same)
        ctx.act, ctx.same, ctx.n_saved = act, same, len(saved)
        ctx.save_for_backward(X, Y, *saved)
        return K

    @staticmethod
    def backward(ctx, G):
        X, Y, *saved = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gX, gY = ctx.act.backward(X, Y, G, tuple(saved), ctx.same, need_x, need_y)
        gX = gX.sum_to_size(X.shape) if need_x else None
        gY = gY.sum_to_size(Y.shape) if need_y else None
        return gX, gY, None, None


def kernel_matrix(X: torch.Tensor, Y: torch.Tensor | None = None, activation: str | Activation = "relu",
                  *, quad_points: int | None = None) -> torch.Tensor:
    """``K_ij = E_z[s(x_i.z) s(y_j.z)]`` for rows of ``X`` (..., n, d) and ``Y`` (..., m, d); differentiable.

    ``Y=None`` means ``Y = X`` (a Gram matrix, exact on its diagonal). Batch dimensions broadcast.
    """
    act = get_activation(activation, quad_points=quad_points)
    same = Y is None or Y is X
    if same:
        Y = X
    if X.shape[-1] != Y.shape[-1]:
        raise ValueError(f"X and Y must have the same last dimension, got {tuple(X.shape)} and {tuple(Y.shape)}")
    if same:
        # One tensor in two slots: autograd adds both slots' gradients, as the chain rule wants.
        return _PairKernel.apply(X, X, act, True)
    return _PairKernel.apply(X, Y, act, False)


def kernel_error(X: torch.Tensor, Y: torch.Tensor | None = None, activation: str | Activation = "relu",
                 *, quad_points: int | None = None) -> torch.Tensor:
    """Estimated absolute quadrature error of each entry of :func:`kernel_matrix` (zeros if closed form)."""
    act = get_activation(activation, quad_points=quad_points)
    with torch.no_grad():
        return act.kernel_error(X.detach(), X.detach() if Y is None else Y.detach())


def relu_k(rho: torch.Tensor) -> torch.Tensor:
    """The normalized arc-cosine kernel ``k(rho) = (sqrt(1-rho^2) + (pi - arccos rho) rho) / (2 pi)``."""
    rho = rho.clamp(-1.0, 1.0)
    return (torch.sqrt((1.0 - rho * rho).clamp_min(0.0)) + (math.pi - torch.arccos(rho)) * rho) / TWO_PI


def relu_k_prime(rho: torch.Tensor) -> torch.Tensor:
    """``k'(rho) = (pi - arccos rho) / (2 pi)``: finite on all of [-1, 1]."""
    return (math.pi - torch.arccos(rho.clamp(-1.0, 1.0))) / TWO_PI
