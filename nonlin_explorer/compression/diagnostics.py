"""Checks on a compressed network: the shape of its units (vacuous, simplex ETF, tilted simplex, distorted tilted
simplex, distorted simplex, general ETF, none), ETF distance, alignment with the target's linear part, Monte Carlo
loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.stats import norm as _normal

from nonlin_explorer.compression._checks import as_tensor, check_int, check_real, check_student
from nonlin_explorer.compression.etf import welch_bound
from nonlin_explorer.compression.kernels import Activation, get_activation, kernel_matrix
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


SHAPES = ("vacuous", "simplex ETF", "tilted simplex", "distorted simplex", "general ETF", "none",
          "distorted tilted simplex")


@dataclass(frozen=True)
class DrawFit:
    """How far the target's draw alone moves the exact optimum: ``scale * N^n_power * d^d_power`` (a least-squares fit
    in logs over the centred runs of ``results/compression_shapes.nc``; powers to 3 digits), and ``envelope``, the
    largest ratio of a stored run to the fit (rounded up). :meth:`bound` is the envelope times :data:`MARGIN`: what a
    shape may show before the draw no longer explains it."""

    scale: float
    n_power: float
    d_power: float
    envelope: float

    def __call__(self, N: float, d: float) -> float:
        """The fit at N units in dimension d."""
        return self.scale * float(N) ** self.n_power * float(d) ** self.d_power

    def bound(self, N: float, d: float) -> float:
        """:data:`MARGIN` times the largest stored ratio, times the fit: the draw's reach at (N, d)."""
        return MARGIN * self.envelope * self(N, d)


#: How much beyond the largest stored run a bound reaches (:meth:`DrawFit.bound`).
MARGIN = 1.25
#: The draw's tilt in degrees: the exact optimum's tilt on centred targets (W = N(0, I/d), a = (1 + g)/N: any tilt
#: is the draw's), ``results/compression_shapes.nc`` at w_mean 0, d = 6, 10, 20, N = 500..8000, 5 seeds (75 runs
#: per M). An antipodal pair (M = 2) tilts more and more slowly in N; M > 2 uses the M = 4 fit.
NOISE_TILT = {2: DrawFit(52.8, -0.236, 0.0657, 1.29), "M>2": DrawFit(46.2, -0.499, 0.288, 1.69)}
#: The draw's scatter (same runs, M = 4, the N power fixed at -1/2): the largest deviation of a cosine from their
#: mean, and the output scales' relative spread (max - min) / mean. Both shrink with d.
COSINE_SCATTER = DrawFit(4.82, -0.5, -0.726, 2.45)
SCALE_SCATTER = DrawFit(7.99, -0.5, -0.672, 2.22)
#: Numerical floors: the smallest tilt named (and the only threshold when N is None: a mean field, a frame without a
#: target), the cosine deviation and scale spread always allowed.
MIN_TILT_DEGREES = 0.5
EQUIANGULAR_FLOOR = 0.01
SCALE_SPREAD = 0.1
#: Every output scale below this: the vacuous solution g = 0.
VACUOUS_SCALE = 1e-10
#: A *distorted* (tilted) simplex: not equiangular (or unequal scales), every cosine within this of ``-1/(M-1)``
#: (of the common cosine, for a tilted one).
DISTORTION = 0.15
#: A general ETF: every |cosine| within this of Welch's bound, and tight to this (relative).
SHAPE_TOLERANCE = 0.05


def noise_tilt(N: int | None, M: int, d: int) -> float:
    """The tilt (degrees) that the target's draw alone typically gives the optimum at N units in dimension d
    (:data:`NOISE_TILT`); 0 if N is None (no draw)."""
    if N is None:
        return 0.0
    return (NOISE_TILT[2] if M == 2 else NOISE_TILT["M>2"])(N, d)


def tilt_threshold(N: int | None, M: int, d: int) -> float:
    """Smallest tilt (degrees) named a tilted simplex: the draw's reach (:meth:`DrawFit.bound` of
    :data:`NOISE_TILT`), at least :data:`MIN_TILT_DEGREES`."""
    if N is None:
        return MIN_TILT_DEGREES
    return max(MIN_TILT_DEGREES, (NOISE_TILT[2] if M == 2 else NOISE_TILT["M>2"]).bound(N, d))


def equiangular_tolerance(N: int | None, d: int) -> float:
    """Largest deviation of a cosine from the common one at which directions still count as equiangular."""
    return EQUIANGULAR_FLOOR if N is None else max(EQUIANGULAR_FLOOR, COSINE_SCATTER.bound(N, d))


def scale_tolerance(N: int | None, d: int) -> float:
    """Largest relative spread (max - min) / mean of the output scales at which they still count as equal."""
    return SCALE_SPREAD if N is None else max(SCALE_SPREAD, SCALE_SCATTER.bound(N, d))


def shape_name(M: int, d: int, N: int | None, *, tilt: float, cosine_spread: float, scale_spread: float,
               simplex_distance: float, general_etf_distance: float = math.nan) -> str:
    """The name (one of :data:`SHAPES`, vacuous aside) of units with these numbers: the rules of :class:`FrameShape`.

    ``simplex_distance`` is the largest deviation of a cosine from ``-1/(M-1)``; ``scale_spread`` NaN means no
    output scales (then they count as equal). A stored run's numbers give its name again without recomputing it."""
    significant = M <= d and tilt > tilt_threshold(N, M, d)
    equiangular = cosine_spread <= equiangular_tolerance(N, d)
    equal_scales = math.isnan(scale_spread) or scale_spread <= scale_tolerance(N, d)
    if M <= d + 1 and equiangular and equal_scales:  # a tilt within the draw's reach is no tilt
        return "tilted simplex" if significant else "simplex ETF"
    # A distorted shape is tilted when its tilt exceeds the draw's reach; with no draw (N None, where the threshold is
    # a numerical floor) also when its common cosine sits above -1/(M-1) by more than the cosines scatter, since
    # 1 + (M - 1) rho = M sin^2(tilt) makes any distortion that moves rho look like a tilt.
    lift = M * math.sin(math.radians(tilt)) ** 2 / (M - 1) if M > 1 else 0.0
    if significant and cosine_spread <= DISTORTION and (N is not None or lift > cosine_spread):
        return "distorted tilted simplex"
    if M <= d + 1 and simplex_distance <= DISTORTION:
        return "distorted simplex"
    if M > d + 1 and general_etf_distance <= SHAPE_TOLERANCE:
        return "general ETF"
    return "none"


@dataclass
class FrameShape:
    """What a compressed network's units look like, with the numbers behind the name.

    ``name`` is one of :data:`SHAPES`: *vacuous* (every output scale is zero: g = 0); *simplex ETF* (equiangular at
    ``-1/(M-1)``, equal scales, tilt not significant); *tilted simplex* (equiangular at a common cosine above
    ``-1/(M-1)``: a simplex ETF in the hyperplane orthogonal to ``direction`` with every unit lifted out of it by
    ``tilt_degrees``, more than :func:`tilt_threshold`; equiangular but not tight, so no ETF); *distorted tilted
    simplex* (tilt above :func:`tilt_threshold`, every cosine within :data:`DISTORTION` of the common one, but not
    equiangular or with unequal scales; with N None the common cosine must also sit above ``-1/(M-1)`` by more than
    the cosines scatter); *distorted
    simplex* (every cosine within :data:`DISTORTION` of ``-1/(M-1)``, but not equiangular or with unequal scales);
    *general ETF* (M > d + 1, |cosines| at Welch's bound, tight); else *none* (:func:`shape_name`). ``distances``
    holds the largest cosine deviation from each shape that can exist for (M, d) (``nan`` where none can);
    ``distance`` that of the named shape (the nearest one for "none"). What counts as significant and equal is what
    the target's draw alone gives the exact optimum at its N and d (:func:`tilt_threshold`,
    :func:`equiangular_tolerance`, :func:`scale_tolerance`: fits of ``results/compression_shapes.nc``, d = 6..20,
    N = 500..8000, M = 2 and 4, extrapolated beyond). For odd activations a unit ``(b_j, v_j)`` is the unit
    ``(-b_j, -v_j)``: directions are taken with ``b_j >= 0``, so the name does not depend on such flips."""

    name: str
    distance: float
    distances: dict[str, float]
    common_cosine: float
    tilt_degrees: float
    direction: torch.Tensor | None  # unit (d,): the tilt's direction (mean of the unit directions); None if M < 2
    tilt_threshold: float
    cosine_spread: float  # largest deviation of a cosine from their mean
    scale_spread: float  # (max - min) / mean of the output scales c_j; nan without b
    N: int | None

    @property
    def label(self) -> str:
        """The name as a reader sees it: a tilted simplex (distorted or not) with its angle."""
        if self.name in ("tilted simplex", "distorted tilted simplex"):
            return f"{self.name} ({self.tilt_degrees:.1f} deg)"
        return self.name

    def summary(self) -> dict:
        """Plain numbers (JSON-friendly)."""
        return {"shape": self.name, "shape_distance": self.distance, "common_cosine": self.common_cosine,
                "tilt_degrees": self.tilt_degrees, "tilt_threshold": self.tilt_threshold,
                "cosine_spread": self.cosine_spread, "scale_spread": self.scale_spread,
                **{f"distance_{k.replace(' ', '_').lower()}": v for k, v in self.distances.items()}}


def output_scales(b, V, activation: str | Activation = "relu") -> torch.Tensor:
    """``c_j``: the RMS output of unit j under Gaussian inputs, ``|b_j| sqrt(E s(v_j.x)^2)``."""
    act = get_activation(activation)
    V = as_tensor("V", V, ndim=2).to(torch.float64)
    b = as_tensor("b", b, ndim=1).to(torch.float64)
    rms = torch.sqrt(torch.diagonal(kernel_matrix(V, None, act)).clamp_min(0.0))
    return b.abs() * rms


def frame_shape(V, b=None, *, activation: str | Activation = "relu", N: int | None = None) -> FrameShape:
    """Name the shape of a compressed network's units ``(b, V)`` (V: (M, d)) for a target of N units.

    The names and their tests are those of :class:`FrameShape`. N and d (V's columns) set what counts as
    significant: the tilt a target's draw gives the optimum by itself (:func:`noise_tilt`: about N^-1/2 d^0.29 for
    M > 2) and the scatter of its cosines and scales (:func:`equiangular_tolerance`, :func:`scale_tolerance`: about
    N^-1/2 d^-0.7); ``N=None`` (a mean field, a frame on its own) uses the numerical floors. ``b`` (M,) gives the
    output scales (vacuous, equal or not) and, for odd activations, the unit signs: it is required there, since
    without it a flipped unit cannot be told from another direction."""
    V = as_tensor("V", V, ndim=2).to(torch.float64)
    act = get_activation(activation)
    M, d = V.shape
    if N is not None:
        N = check_int("N", N, minimum=1)
    if b is not None:
        b = as_tensor("b", b, ndim=1, device=V.device).to(torch.float64)
        check_student(b, V, d)
    elif act.odd:
        raise ValueError(f"{act.name} is odd: pass b, so that a unit and its flip (-b_j, -v_j) name one shape")
    nan = math.nan
    if b is not None and act.odd:
        V = V * torch.where(b < 0, -1.0, 1.0).to(V.dtype)[:, None]
    scales = output_scales(b, V, act) if b is not None else None
    norms = V.norm(dim=1)
    if bool((norms == 0).all()) or (scales is not None and float(scales.max()) <= VACUOUS_SCALE):
        return FrameShape("vacuous", nan, {}, nan, nan, None, nan, nan, 0.0, N)
    threshold = tilt_threshold(N, M, d)
    spread_c = nan if scales is None else float((scales.max() - scales.min()) / scales.mean())
    if M < 2:
        return FrameShape("simplex ETF", 0.0, {"simplex ETF": 0.0}, nan, 0.0, None, threshold, 0.0, spread_c, N)
    G = cosine_gram(V).to(torch.float64)
    off = G[~torch.eye(M, dtype=torch.bool, device=G.device)]
    rho = float(off.mean())
    spread = float((off - rho).abs().max())
    U = V / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None]
    mean_u = U.mean(0)
    lift = float(mean_u.norm())
    direction = mean_u / lift if lift > 1e-12 else None
    tilt = math.degrees(math.asin(min(1.0, lift)))
    dist = {"simplex ETF": nan, "tilted simplex": nan, "distorted simplex": nan, "general ETF": nan}
    if M <= d + 1:
        dist["simplex ETF"] = dist["distorted simplex"] = float((off + 1.0 / (M - 1)).abs().max())
    if M <= d:  # equiangular around the common cosine, which a tilt raises above -1/(M-1)
        dist["tilted simplex"] = max(spread, max(0.0, -1.0 / (M - 1) - rho))
    if M > d + 1:
        mu = welch_bound(M, d)
        frame = U.T @ U
        tight = float((frame - (M / d) * torch.eye(d, dtype=frame.dtype, device=frame.device)).abs().max()) / (M / d)
        dist["general ETF"] = max(float((off.abs() - mu).abs().max()), tight)
    dist["distorted tilted simplex"] = dist["tilted simplex"]
    name = shape_name(M, d, N, tilt=tilt, cosine_spread=spread, scale_spread=spread_c,
                      simplex_distance=dist["distorted simplex"], general_etf_distance=dist["general ETF"])
    finite = {k: v for k, v in dist.items() if not math.isnan(v)}
    distance = finite[name] if name in finite else min(finite.values())
    return FrameShape(name, distance, dist, rho, tilt, direction, threshold, spread, spread_c, N)


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
