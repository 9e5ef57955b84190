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
* ``tanh``: Mehler's Hermite series ``sum_k beta_k(|x|) beta_k(|y|) rho^k`` (odd k), each pair's truncation
  bounded through Parseval's tails; pairs the series cannot reach within ``SERIES_TOL`` (cosines near +-1) fall
  back to quadrature (:class:`Tanh`). ``QuadratureTanh`` is the quadrature alone.
* ``gelu``, ``softplus`` (and tanh's fallback): Gauss-Hermite quadrature over the 2-D projection
  ``(x.z, y.z) = (|x| g1, |y| (rho g1 + sqrt(1 - rho^2) g2))``, which stays valid when the covariance is
  singular. Gradients by Stein's lemma, ``grad_y K = x E[s'(x.z) s'(y.z)] + y E[s(x.z) s''(y.z)]``: smooth
  expectations computed by the same quadrature, so finite everywhere. The error estimate is the change
  from a rule with half as many points (conservative: Gauss-Hermite converges geometrically for these).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
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
    odd = False  # s(-z) = -s(z): (b, v) and (-b, -v) are the same unit
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
    odd = True

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
    odd = True

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


def _expect_pairs(f, g, nx, ny, rho, n):
    """``E[f(|x| g1) g(|y| (rho g1 + sqrt(1 - rho^2) g2))]`` for flat vectors of norms and cosines: an
    ``n x n`` Gauss-Hermite rule on the 2-D projection, in chunks of pairs."""
    z, w = gauss_hermite(n, device=rho.device, dtype=rho.dtype)
    b = ny * rho
    c = ny * torch.sqrt((1.0 - rho * rho).clamp_min(0.0))
    out = torch.empty_like(rho)
    step = max(1, _PAIR_CHUNK // (n * n))
    for s in range(0, rho.numel(), step):
        e = slice(s, s + step)
        F = f(nx[e, None] * z) * w  # (P, n): outer node z1
        y2 = b[e, None, None] * z[:, None] + c[e, None, None] * z  # (P, n1, n2)
        out[e] = torch.einsum("pk,pkl,l->p", F, g(y2), w)
    return out


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
        shape = rho.shape
        a = nx[..., :, None].expand(shape).reshape(-1)
        ny_b = ny[..., None, :].expand(shape).reshape(-1)
        return _expect_pairs(f, g, a, ny_b, rho.reshape(-1), n_points or self.n_points).reshape(shape)

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


class QuadratureTanh(QuadratureActivation):
    """tanh with every kernel entry from 2-D Gauss-Hermite quadrature (the reference :class:`Tanh` is checked
    against; O(points^2) per pair)."""

    name = "tanh"
    odd = True

    def __call__(self, z):
        return torch.tanh(z)

    def d1(self, z):
        return 1.0 - torch.tanh(z) ** 2

    def d2(self, z):
        th = torch.tanh(z)
        return -2.0 * th * (1.0 - th * th)


#: Hermite series (:class:`Tanh`): at most this many terms; pairs whose tail bound exceeds ``SERIES_TOL`` after
#: them, or whose ``|cosine|`` exceeds ``SERIES_RHO_CUT`` (the series converges like ``|rho|^k``), use quadrature.
SERIES_MAX_TERMS = 200
_FIRST_TERMS = 64  # tried first; SERIES_MAX_TERMS only when the bound needs more
SERIES_RHO_CUT = 0.8
SERIES_TOL = 1e-11
_ROUNDING = 1e-13  # added to the series bound in error estimates: rounding in the sums of terms


@lru_cache(maxsize=16)
def _hermite_functions_np(n: int, K: int):
    """Normalized Hermite polynomials ``He_k(z) / sqrt(k!)``, k = 0..K, at the n Gauss-Hermite nodes: (K + 1, n)."""
    z, _ = _gauss_hermite_np(n)
    h = np.empty((K + 1, n))
    h[0] = 1.0
    if K >= 1:
        h[1] = z
    for k in range(1, K):
        h[k + 1] = (z * h[k] - math.sqrt(k) * h[k - 1]) / math.sqrt(k + 1)
    return h


def hermite_coefficients(f, r: torch.Tensor, K: int, n_points: int | None = None):
    """``beta_k(r) = E[f(r g) He_k(g)] / sqrt(k!)``, k = 0..K, and the tails ``E f(r g)^2 - sum_{j<=k} beta_j^2``
    (Parseval: what the terms after k carry), for every entry of r; shapes ``r.shape + (K + 1,)``.

    A 1-D Gauss-Hermite rule with ``n_points`` nodes (default grows with ``max r``, whose tanh poles at
    ``+-i pi / (2 r)`` slow its convergence). Mehler's formula then gives, for unit ``u, v`` at cosine ``rho``,
    ``E[f(r u.z) g(q v.z)] = sum_k beta_k^f(r) beta_k^g(q) rho^k``."""
    r_max = float(r.abs().max()) if r.numel() else 0.0
    n = n_points or int(min(2000, max(200, math.ceil(100.0 * r_max * r_max))))
    z, w = gauss_hermite(n, device=r.device, dtype=r.dtype)
    F = f(r.reshape(-1, 1) * z)
    H = torch.as_tensor(_hermite_functions_np(n, K), device=r.device, dtype=r.dtype)
    beta = (F * w) @ H.T
    tail = ((F * F) @ w)[:, None] - (beta * beta).cumsum(-1)
    return beta.reshape(r.shape + (K + 1,)), tail.clamp_min(0.0).reshape(r.shape + (K + 1,))


_COEFFICIENT_CACHE: dict = {}
_CACHE_SIZE = 8  # sets of norms remembered: a target's weights are reused by every evaluation of its loss


def _cached_coefficients(f, r: torch.Tensor, K: int):
    """:func:`hermite_coefficients`, remembered for large sets of norms (keyed by their exact bytes): the target's
    norms recur in every loss evaluation."""
    if r.numel() < 256 or r.device.type != "cpu":
        return hermite_coefficients(f, r, K)
    key = (f, K, r.dtype, tuple(r.shape), r.detach().contiguous().numpy().tobytes())
    hit = _COEFFICIENT_CACHE.pop(key, None)
    if hit is None:
        hit = hermite_coefficients(f, r.detach(), K)
    _COEFFICIENT_CACHE[key] = hit  # most recently used last
    while len(_COEFFICIENT_CACHE) > _CACHE_SIZE:
        _COEFFICIENT_CACHE.pop(next(iter(_COEFFICIENT_CACHE)))
    return hit


_HORNER_BLOCK = 1 << 14  # matrix entries per block: the Horner passes stay in cache


def _horner(bx, by, rho, K: int, parity: int) -> torch.Tensor:
    """``sum_k bx_k by_k rho^k`` over the k <= K of the given parity (the others vanish), by Horner in ``rho^2``;
    ``bx`` (..., n, K+1), ``by`` (..., m, K+1), ``rho`` (..., n, m). Row blocks keep each pass in cache."""
    S = torch.zeros_like(rho)
    if rho.ndim != 2:
        rho2 = rho * rho
        for k in range(K, -1, -2):
            S.mul_(rho2).add_(bx[..., :, None, k] * by[..., None, :, k])
        return S.mul_(rho) if parity else S
    rows = max(1, _HORNER_BLOCK // max(1, rho.shape[1]))
    byt = by[:, : K + 1].T.contiguous()
    for s in range(0, rho.shape[0], rows):
        r, out, bxs = rho[s:s + rows], S[s:s + rows], bx[s:s + rows, : K + 1].T.contiguous()
        r2 = r * r
        for k in range(K, -1, -2):
            out.mul_(r2).addr_(bxs[k], byt[k])
        if parity:
            out.mul_(r)
    return S


class Tanh(QuadratureTanh):
    """tanh with its kernel from the Hermite (Mehler) series ``sum_k beta_k(|x|) beta_k(|y|) rho^k`` (odd k only):
    O(terms) per pair instead of O(points^2). Each pair's truncation error is bounded by Cauchy-Schwarz,
    ``|rho|^(K+1) sqrt(T_x T_y)`` with the Parseval tails T; pairs where that exceeds :data:`SERIES_TOL` (cosines
    near +-1, the diagonal, large norms) fall back to the quadrature of :class:`QuadratureTanh`. Gradients by
    Stein's lemma, from the series of ``(s', s')`` (even k) and ``(s, s'')`` (odd k)."""

    def series(self, f, g, parity: int, nx, ny, rho, *, with_error: bool = False):
        """``E[f(x.z) g(y.z)]`` for every pair (shape of ``rho``); ``parity`` is that of the nonzero terms' k.
        With ``with_error``, also each entry's error estimate (series bound or quadrature halving)."""
        for K_max in (_FIRST_TERMS, SERIES_MAX_TERMS):  # few terms suffice unless norms are large
            bx, tx = _cached_coefficients(f, nx, K_max)
            by, ty = _cached_coefficients(g, ny, K_max)
            ks = torch.arange(K_max + 1, device=rho.device)
            cut_bound = SERIES_RHO_CUT ** (ks + 1).to(rho.dtype) * torch.sqrt(
                (tx.amax(tuple(range(tx.ndim - 1))) if tx.numel() else 0.0)
                * (ty.amax(tuple(range(ty.ndim - 1))) if ty.numel() else 0.0))
            ok = (cut_bound <= SERIES_TOL) & (ks % 2 == parity)
            if bool(ok.any()):
                break
        K = int(ks[ok][0]) if bool(ok.any()) else K_max - ((K_max - parity) % 2)
        S = _horner(bx, by, rho, K, parity)
        # Row thresholds on |rho| above which the bound |rho|^(K+1) sqrt(T_x T_y) may exceed the tolerance
        # (with the largest T_y: conservative); at most SERIES_RHO_CUT.
        ty_max = ty[..., K].amax() if ty.numel() else ty.new_zeros(())
        thr = (SERIES_TOL / torch.sqrt(tx[..., K] * ty_max).clamp_min(1e-300)) ** (1.0 / (K + 1))
        slow = rho.abs() > thr.clamp_max(SERIES_RHO_CUT)[..., :, None]
        if with_error:
            bound = rho.abs().pow(K + 1) * torch.sqrt(tx[..., :, None, K] * ty[..., None, :, K])
        err = bound + _ROUNDING if with_error else None
        if bool(slow.any()):
            shape = rho.shape
            idx = slow.reshape(-1).nonzero()[:, 0]
            px = nx[..., :, None].expand(shape).reshape(-1)[idx]
            py = ny[..., None, :].expand(shape).reshape(-1)[idx]
            pr = rho.reshape(-1)[idx]
            fine = self._fallback(f, g, px, py, pr, self.n_points)
            S.reshape(-1)[idx] = fine
            if with_error:
                coarse = self._fallback(f, g, px, py, pr, max(2, self.n_points // 2))
                err = err.clone()
                err.reshape(-1)[idx] = (fine - coarse).abs()
        return (S, err) if with_error else S

    @staticmethod
    def _fallback(f, g, nx, ny, rho, n):
        """Quadrature for the pairs the series leaves: ``n x n`` points in 2-D, and for parallel or antiparallel
        pairs (``|rho| = 1``, the diagonal) a 1-D rule as fine as the series coefficients' (``4 n`` points at
        least)."""
        out = torch.empty_like(rho)
        line = rho.abs() >= 1.0 - 1e-14
        if bool(line.any()):
            r_max = float(torch.maximum(nx[line], ny[line]).max())
            m = int(min(2000, max(4 * n, math.ceil(100.0 * r_max * r_max))))
            z, w = gauss_hermite(m, device=rho.device, dtype=rho.dtype)
            out[line] = (f(nx[line, None] * z) * g((ny * rho)[line, None] * z)) @ w
        if not bool(line.all()):
            out[~line] = _expect_pairs(f, g, nx[~line], ny[~line], rho[~line], n)
        return out

    def forward(self, X, Y, same):
        nx, ny, _, _, rho = _norms_and_cosines(X, Y, same)
        return self.series(self, self, 1, nx, ny, rho), (nx, ny, rho)

    def backward(self, X, Y, G, saved, same, need_x=True, need_y=True):
        nx, ny, rho = saved
        K11 = G * self.series(self.d1, self.d1, 0, nx, ny, rho)
        gX = gY = None
        if need_y:
            gY = K11.mT @ X + Y * (G * self.series(self, self.d2, 1, nx, ny, rho)).sum(-2)[..., None]
        if need_x:
            gX = K11 @ Y + X * (G * self.series(self.d2, self, 1, nx, ny, rho)).sum(-1)[..., None]
        return gX, gY

    def kernel_error(self, X, Y):
        nx, ny, _, _, rho = _norms_and_cosines(X, Y, X is Y)
        return self.series(self, self, 1, nx, ny, rho, with_error=True)[1]

    def __repr__(self):
        return f"<activation tanh, Hermite series (quadrature fallback: {self.n_points}-point Gauss-Hermite)>"


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
