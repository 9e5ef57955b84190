"""Checks on a compressed network: the shape of its directions (simplex ETF, tilted simplex, general ETF, none),
ETF distance, alignment with the target's linear part, Monte Carlo loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.stats import norm as _normal

from nonlin_explorer.compression._checks import as_tensor, check_int, check_real, check_student
from nonlin_explorer.compression.etf import welch_bound
from nonlin_explorer.compression.kernels import Activation, get_activation
from nonlin_explorer.compression.targets import Target, as_target
from nonlin_explorer.validation import check_seed


def cosine_gram(V) -> torch.Tensor:
    """Cosines ``<v_j, v_k> / (|v_j| |v_k|)`` between rows of V (M, d); a zero row has cosine 0 with all."""
    V = as_tensor("V", V, ndim=2)
    n = V.norm(dim=1)
    U = V / torch.where(n > 0, n, torch.ones_like(n))[:, None]
    G = U @ U.T
    return G.fill_diagonal_(1.0)


def etf_distance(V) -> float:
    """How far the directions of V (M, d) are from an ETF: the largest deviation of an off-diagonal cosine.

    For M <= d + 1 the reference is the simplex ETF (every cosine ``-1/(M-1)``); for M > d + 1 it is
    equiangularity at Welch's bound (every ``|cosine|`` equal to ``welch_bound(M, d)``). 0 for M = 1.
    """
    G = cosine_gram(V)
    M, d = G.shape[0], as_tensor("V", V, ndim=2).shape[1]
    if M == 1:
        return 0.0
    off = G[~torch.eye(M, dtype=torch.bool, device=G.device)]
    if M <= d + 1:
        return float((off + 1.0 / (M - 1)).abs().max())
    return float((off.abs() - welch_bound(M, d)).abs().max())


#: Largest cosine deviation at which :func:`frame_shape` names a shape (cosines of optima found by the exact
#: optimizer on finite targets scatter by a few hundredths around their mean).
SHAPE_TOLERANCE = 0.05
SHAPES = ("simplex ETF", "tilted simplex", "general ETF", "none")


@dataclass
class FrameShape:
    """What the directions of a compressed network look like, with a distance for every candidate shape.

    ``distances`` maps each shape that can exist for (M, d) to the largest cosine deviation from it (``nan``
    where it cannot: a simplex needs M <= d + 1, a tilted one M <= d, a general ETF M > d + 1). ``name`` is the
    closest shape within ``tolerance`` (the simplex ETF whenever it is within, being the more specific), else
    ``"none"``. A *tilted simplex* is equiangular with a common cosine
    ``rho > -1/(M-1)``: a simplex ETF in the hyperplane orthogonal to ``direction``, every unit lifted out of it
    by ``tilt_degrees``; it is equiangular but not tight, so it is no ETF unless the tilt is zero."""

    name: str
    distance: float
    distances: dict[str, float]
    common_cosine: float
    tilt_degrees: float
    direction: torch.Tensor | None  # unit (d,): the tilt's direction (mean of the unit directions); None if M < 2
    tolerance: float

    def summary(self) -> dict:
        """Plain numbers (JSON-friendly)."""
        return {"shape": self.name, "shape_distance": self.distance, "common_cosine": self.common_cosine,
                "tilt_degrees": self.tilt_degrees,
                **{f"distance_{k.replace(' ', '_').lower()}": v for k, v in self.distances.items()}}


def frame_shape(V, tolerance: float = SHAPE_TOLERANCE) -> FrameShape:
    """Name the shape of the directions of V (M, d): simplex ETF, tilted simplex, general ETF (Welch) or none."""
    V = as_tensor("V", V, ndim=2)
    tolerance = check_real("tolerance", tolerance, nonnegative=True)
    M, d = V.shape
    G = cosine_gram(V).to(torch.float64)
    nan = math.nan
    if M < 2:
        return FrameShape("simplex ETF", 0.0, {"simplex ETF": 0.0}, nan, 0.0, None, tolerance)
    off = G[~torch.eye(M, dtype=torch.bool, device=G.device)]
    rho = float(off.mean())
    n = V.norm(dim=1, keepdim=True)
    U = (V / torch.where(n > 0, n, torch.ones_like(n))).to(torch.float64)
    mean_u = U.mean(0)
    lift = float(mean_u.norm())
    direction = mean_u / lift if lift > 1e-12 else None
    dist = {s: nan for s in SHAPES[:3]}
    if M <= d + 1:
        dist["simplex ETF"] = float((off + 1.0 / (M - 1)).abs().max())
    if M <= d:  # equiangular around the common cosine, which a tilt raises above -1/(M-1)
        dist["tilted simplex"] = max(float((off - rho).abs().max()), max(0.0, -1.0 / (M - 1) - rho))
    if M > d + 1:
        mu = welch_bound(M, d)
        frame = U.T @ U
        tight = float((frame - (M / d) * torch.eye(d, dtype=frame.dtype, device=frame.device)).abs().max()) / (M / d)
        dist["general ETF"] = max(float((off.abs() - mu).abs().max()), tight)
    finite = {k: v for k, v in dist.items() if not math.isnan(v)}
    best = min(finite, key=finite.get)
    # A simplex is a tilted simplex with tilt 0: name the more specific shape whenever it is within tolerance.
    if best == "tilted simplex" and finite.get("simplex ETF", math.inf) <= tolerance:
        best = "simplex ETF"
    name = best if finite[best] <= tolerance else "none"
    tilt = math.degrees(math.asin(min(1.0, lift)))
    return FrameShape(name, finite[best], dist, rho, tilt, direction, tolerance)


def alignment(V, target: Target) -> torch.Tensor:
    """Cosine of each ``v_j`` with the target's linear direction ``E[f*(x) x]`` (zeros if that vanishes)."""
    V = as_tensor("V", V, ndim=2, device=target.device, dtype=target.dtype)
    if V.shape[1] != target.d:
        raise ValueError(f"V must have d = {target.d} columns, got shape {tuple(V.shape)}")
    m = target.linear_direction()
    nm = m.norm()
    n = V.norm(dim=1)
    if float(nm) == 0.0:
        return torch.zeros(V.shape[0], dtype=V.dtype, device=V.device)
    return torch.where(n > 0, (V @ m) / (torch.where(n > 0, n, torch.ones_like(n)) * nm), torch.zeros_like(n))


@dataclass
class MonteCarloEstimate:
    """A sampled loss: mean, standard error and a two-sided confidence interval."""

    mean: float
    std_error: float
    ci_low: float
    ci_high: float
    confidence: float
    n_samples: int

    def contains(self, value: float, n_se: float = 3.0) -> bool:
        """Whether ``value`` lies within ``n_se`` standard errors of the mean."""
        return abs(value - self.mean) <= n_se * self.std_error


def monte_carlo_loss(a, W, b, V, activation: str | Activation = "relu", *, n_samples: int = 1_000_000,
                     seed: int = 0, batch_size: int = 1 << 16, confidence: float = 0.95) -> MonteCarloEstimate:
    """Estimate ``E_x (f*(x) - g(x))^2`` from ``n_samples`` Gaussian inputs: an independent check of the
    closed form. ``a`` may be a :class:`Target` (then ``W`` is None). Samples come from ``seed``, in batches."""
    target = as_target(a, W, activation)
    act = get_activation(target.activation)
    V = as_tensor("V", V, ndim=2, device=target.device, dtype=target.dtype)
    b = as_tensor("b", b, ndim=1, device=target.device, dtype=target.dtype)
    check_student(b, V, target.d)
    n_samples = check_int("n_samples", n_samples, minimum=2)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    confidence = check_real("confidence", confidence, positive=True)
    if confidence >= 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    gen = torch.Generator(device=target.device).manual_seed(check_seed(seed))
    count, mean, m2 = 0, 0.0, 0.0  # running mean and sum of squared deviations (Chan et al.'s merge)
    with torch.no_grad():
        for s in range(0, n_samples, batch_size):
            n = min(batch_size, n_samples - s)
            x = torch.randn(n, target.d, generator=gen, dtype=target.dtype, device=target.device)
            r = ((act(x @ target.W.T) @ target.a - act(x @ V.T) @ b) ** 2).to(torch.float64)
            mb = float(r.mean())
            m2b = float(((r - mb) ** 2).sum())
            delta = mb - mean
            mean += delta * n / (count + n)
            m2 += m2b + delta * delta * count * n / (count + n)
            count += n
    se = math.sqrt(m2 / (n_samples - 1) / n_samples)
    z = float(_normal.ppf(0.5 + confidence / 2))
    return MonteCarloEstimate(mean, se, mean - z * se, mean + z * se, confidence, n_samples)
