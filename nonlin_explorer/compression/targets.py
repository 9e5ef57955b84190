"""Targets to compress: ``f*(x) = sum_i a_i s(w_i.x)``, random (as in the paper), given, or from a torch model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nonlin_explorer.compression._checks import (
    HasFirstLayer,
    as_tensor,
    check_int,
    check_real,
    check_target,
    resolve_device,
)
from nonlin_explorer.compression.kernels import Activation, get_activation
from nonlin_explorer.compression.loss import PopulationLoss
from nonlin_explorer.validation import check_seed

WEIGHT_DISTS = ("gaussian", "rademacher", "uniform", "sphere")


@dataclass(eq=False)
class WeightDistribution:
    """The law of a target's input weights: ``w = mean + L z``, ``L L^T = cov``, ``z`` with i.i.d. standardized
    entries (``"gaussian"``: N(0, 1); ``"rademacher"``: +-1; ``"uniform"``: U(-sqrt 3, sqrt 3)); all sub-Gaussian.
    ``"sphere"``: uniform on the unit sphere (no mean, no covariance). Used to draw targets and, by the mean field,
    to average over targets."""

    kind: str
    mean: torch.Tensor  # (d,)
    cov: torch.Tensor  # (d, d)

    @property
    def d(self) -> int:
        return int(self.mean.shape[0])

    def centred_isotropic(self) -> bool:
        """Mean zero and covariance a multiple of the identity (what the closed-form mean field assumes)."""
        if self.kind == "sphere":
            return True
        c = self.cov
        return bool(self.mean.abs().max() == 0) and bool(
            (c - torch.diag(torch.diagonal(c))).abs().max() == 0) and bool(
            (torch.diagonal(c) - c[0, 0]).abs().max() <= 1e-15 * max(1.0, float(c[0, 0])))

    def _standard(self, u: torch.Tensor) -> torch.Tensor:
        """Standardized entries from uniforms in (0, 1)."""
        if self.kind in ("gaussian", "sphere"):
            return torch.special.ndtri(u.clamp(1e-12, 1 - 1e-12))
        if self.kind == "rademacher":
            return torch.where(u < 0.5, -1.0, 1.0).to(u.dtype)
        return (u - 0.5) * math.sqrt(12.0)

    def transform(self, z: torch.Tensor) -> torch.Tensor:
        """Weights from standardized draws ``z`` (n, d)."""
        if self.kind == "sphere":
            return z / z.norm(dim=1, keepdim=True).clamp_min(1e-300)
        c = self.cov
        diag = torch.diagonal(c)
        if bool((c - torch.diag(diag)).abs().max() == 0):  # diagonal: scale each axis (no factorization)
            scale = torch.sqrt(diag)
            if bool((diag == 1.0 / self.d).all()):
                return self.mean + z / math.sqrt(self.d)  # the default law, bit for bit as it always was
            return self.mean + z * scale
        L = torch.linalg.cholesky(c + 1e-12 * float(diag.max()) * torch.eye(self.d, dtype=c.dtype))
        return self.mean + z @ L.T

    def quasi_sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` weights from scrambled Sobol points (an even cover of the law: the mean field's quadrature)."""
        engine = torch.quasirandom.SobolEngine(dimension=self.d, scramble=True, seed=seed)
        u = engine.draw(n, dtype=torch.float64)
        return self.transform(self._standard(u))

    def mean_norm(self) -> float:
        """``E|w|``: exact for the Gaussian (a chi law), Rademacher and sphere with an isotropic covariance,
        else by quasi-Monte Carlo (65536 Sobol points)."""
        if self.kind == "sphere":
            return 1.0
        if self.centred_isotropic():
            var, d = float(self.cov[0, 0]), self.d
            if self.kind == "gaussian":
                return math.sqrt(2.0 * var) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
            if self.kind == "rademacher":
                return math.sqrt(var * d)
        return float(self.quasi_sample(1 << 16, seed=1).norm(dim=1).mean())

    def mean_square_norm(self) -> float:
        """``E|w|^2 = |mean|^2 + trace(cov)`` (1 on the sphere)."""
        if self.kind == "sphere":
            return 1.0
        return float(self.mean @ self.mean + torch.trace(self.cov))

    @classmethod
    def fit(cls, W: torch.Tensor) -> WeightDistribution:
        """A Gaussian law for given weights W (N, d): the sample mean and covariance, except that a mean within
        three standard errors of zero is taken as zero, and a covariance whose eigenvalues all lie inside the
        Marchenko-Pastur bulk of an isotropic one (edges widened by 20 %) is taken as isotropic: so weights
        drawn centred and isotropic are fitted as such, and a real mean direction or anisotropy is kept."""
        W = W.detach().to("cpu", torch.float64)
        N, d = W.shape
        mean = W.mean(0)
        X = W - mean
        cov = X.T @ X / max(N - 1, 1)
        var = float(torch.trace(cov)) / d
        if float(mean @ mean) <= 9.0 * var * d / N:
            mean = torch.zeros_like(mean)
        if var > 0:
            r = math.sqrt(d / N)
            ev = torch.linalg.eigvalsh(cov) / var
            if r >= 1 or (float(ev.min()) >= 0.8 * (1 - r) ** 2 and float(ev.max()) <= 1.2 * (1 + r) ** 2):
                cov = torch.eye(d, dtype=torch.float64) * var
        return cls("gaussian", mean, cov)

    def to_info(self) -> dict[str, Any]:
        """JSON-friendly, compact: a scaled identity or a diagonal is stored as such."""
        c = self.cov
        diag = torch.diagonal(c)
        if bool((c - torch.diag(diag)).abs().max() == 0):
            cov: Any = float(diag[0]) if bool((diag - diag[0]).abs().max() == 0) else diag.tolist()
        else:
            cov = c.tolist()
        return {"kind": self.kind, "mean": self.mean.tolist() if bool(self.mean.abs().max() > 0) else 0.0,
                "cov": cov}


def weight_distribution(d: int, kind: str = "gaussian", mean=None, cov=None) -> WeightDistribution:
    """Check and build a :class:`WeightDistribution` in R^d. ``mean``: None (zero), a number (that size along the
    first axis, e1) or a vector; ``cov``: None (I/d, so E|w|^2 = 1 when centred), a number (that variance on every
    axis), a vector (a diagonal) or a symmetric positive semi-definite matrix."""
    d = check_int("d", d, minimum=1)
    if kind not in WEIGHT_DISTS:
        raise ValueError(f"unknown weight_dist {kind!r}; choose one of {', '.join(WEIGHT_DISTS)}")
    if kind == "sphere" and (mean is not None or cov is not None):
        raise ValueError("weight_dist 'sphere' has no mean or covariance to set: use gaussian, rademacher or uniform")
    if mean is None:
        m = torch.zeros(d, dtype=torch.float64)
    elif isinstance(mean, (int, float)) and not isinstance(mean, bool):
        m = torch.zeros(d, dtype=torch.float64)
        m[0] = check_real("w_mean", mean)
    else:
        m = as_tensor("w_mean", mean, ndim=1, dtype=torch.float64)
        if m.shape != (d,):
            raise ValueError(f"w_mean must be a number or a vector of length d = {d}, got shape {tuple(m.shape)}")
        if not bool(torch.isfinite(m).all()):
            raise ValueError("w_mean must be finite")
    if cov is None:
        c = torch.eye(d, dtype=torch.float64) / d
    elif isinstance(cov, (int, float)) and not isinstance(cov, bool):
        c = torch.eye(d, dtype=torch.float64) * check_real("w_cov", cov, nonnegative=True)
    else:
        t = as_tensor("w_cov", cov, dtype=torch.float64)
        if t.ndim == 1 and t.shape == (d,):
            if bool((t < 0).any()):
                raise ValueError("w_cov: variances must be >= 0")
            c = torch.diag(t)
        elif t.shape == (d, d):
            if not bool(torch.allclose(t, t.T, atol=1e-12)):
                raise ValueError("w_cov must be symmetric")
            if float(torch.linalg.eigvalsh(t).min()) < -1e-10 * max(1.0, float(t.abs().max())):
                raise ValueError("w_cov must be positive semi-definite")
            c = t
        else:
            raise ValueError(f"w_cov must be a number, a length-{d} vector or a {d} x {d} matrix, got shape "
                             f"{tuple(t.shape)}")
        if not bool(torch.isfinite(c).all()):
            raise ValueError("w_cov must be finite")
    return WeightDistribution(kind, m, c)


@dataclass(eq=False)
class Target(HasFirstLayer):
    """A two-layer target ``f*(x) = sum_i a_i s(w_i.x)``: output weights ``a`` (N,), input weights ``W`` (N, d).

    ``info`` records how it was made (a JSON-friendly dict, copied into sweep provenance).
    """

    a: torch.Tensor
    W: torch.Tensor
    activation: str = "relu"
    info: dict[str, Any] = field(default_factory=dict)
    #: the law the weights were drawn from (random targets); None: unknown (a user's or a module's weights)
    distribution: WeightDistribution | None = None
    _losses: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.W = as_tensor("W", self.W, ndim=2)
        self.a = as_tensor("a", self.a, ndim=1, device=self.W.device, dtype=self.W.dtype)
        check_target(self.a, self.W)
        self.activation = get_activation(self.activation).name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``f*(x)`` for a batch of inputs ``x`` (..., d)."""
        return get_activation(self.activation)(x @ self.W.T) @ self.a

    def loss_fn(self, quad_points: int | None = None) -> PopulationLoss:
        """The exact loss for this target (cached: its O(N^2 d) energy is computed once)."""
        key = quad_points
        if key not in self._losses:
            self._losses[key] = PopulationLoss(self.a, self.W, self.activation, quad_points=quad_points)
        return self._losses[key]

    @property
    def energy(self) -> float:
        """``E f*(x)^2``: the loss of the empty network, the scale of ``relative_loss``."""
        return float(self.loss_fn().energy)

    def linear_direction(self) -> torch.Tensor:
        """``E[f*(x) x] = sum_i a_i E[s'(|w_i| g)] w_i`` (Stein's lemma): the target's linear part.

        For relu it is ``sum_i a_i w_i / 2``.
        """
        act = get_activation(self.activation)
        return (self.a * act.linear_coefficient(self.W.norm(dim=1))) @ self.W

    def scale(self) -> float:
        """``sum_i a_i |w_i|``: the target's total scaling factor (all the mean-field objective needs)."""
        return float(self.a @ self.W.norm(dim=1))

    def to(self, device=None, dtype=None) -> Target:
        """A copy on another device or in another precision."""
        dev = resolve_device(device, like=self.W)
        dt = dtype or self.dtype
        return Target(self.a.to(dev, dt), self.W.to(dev, dt), self.activation, dict(self.info), self.distribution)


def make_target(a, W, activation: str | Activation = "relu", *, device=None, dtype=None) -> Target:
    """A :class:`Target` from any user ``(a, W)`` (arrays, lists or tensors), checked."""
    W = as_tensor("W", W, ndim=2, device=device, dtype=dtype)
    a = as_tensor("a", a, ndim=1, device=W.device, dtype=W.dtype)
    check_target(a, W)
    return Target(a, W, get_activation(activation).name, {"kind": "user", "N": W.shape[0], "d": W.shape[1]})


def random_target(N: int, d: int, *, weight_dist: str = "gaussian", w_mean=None, w_cov=None, a_mean: float = 1.0,
                  a_std: float = 1.0, normalize: bool = True, seed: int = 0, activation: str = "relu", device=None,
                  dtype=torch.float64) -> Target:
    """Random target with i.i.d. sub-Gaussian weights, as in Amani et al. (2022).

    ``w_i = w_mean + L z_i`` with ``L L^T = w_cov`` and ``z_i`` i.i.d. standardized entries: ``"gaussian"``,
    ``"rademacher"`` (+-1) or ``"uniform"``; ``"sphere"``: uniform on the unit sphere. Defaults: no mean,
    ``w_cov = I/d`` (so ``E|w|^2 = 1``: ``N(0, I/d)``, ``+-1/sqrt(d)``...). ``w_mean`` a number puts that mean along
    e1 (``w_mean=0.5``: the target's weights lean towards e1); a vector sets it in full (see
    :func:`weight_distribution`). ``a_i = a_mean + a_std g_i``, ``g_i ~ N(0, 1)``, divided by N when
    ``normalize`` (the paper's ``f* = (1/N) sum_i``), so ``random_target(2000, 20)`` has ``a_i = (1 + g_i)/N``.
    Drawn on the CPU from ``seed``: the same target on every device.
    """
    N = check_int("N", N, minimum=1)
    d = check_int("d", d, minimum=1)
    seed = check_seed(seed)
    a_mean = check_real("a_mean", a_mean)
    a_std = check_real("a_std", a_std, nonnegative=True)
    dist = weight_distribution(d, weight_dist, w_mean, w_cov)
    act = get_activation(activation).name
    gen = torch.Generator().manual_seed(seed)
    if weight_dist in ("gaussian", "sphere"):
        z = torch.randn(N, d, generator=gen, dtype=torch.float64)
    elif weight_dist == "rademacher":
        z = torch.randint(0, 2, (N, d), generator=gen).to(torch.float64) * 2.0 - 1.0
    else:
        z = (torch.rand(N, d, generator=gen, dtype=torch.float64) - 0.5) * math.sqrt(12.0)
    W = dist.transform(z)
    a = a_mean + a_std * torch.randn(N, generator=gen, dtype=torch.float64)
    if normalize:
        a = a / N
    dev = resolve_device(device)
    info = {"kind": "random", "N": N, "d": d, "weight_dist": weight_dist, "a_mean": a_mean, "a_std": a_std,
            "normalize": bool(normalize), "seed": seed}
    if w_mean is not None or w_cov is not None:
        info.update(w_mean=dist.to_info()["mean"], w_cov=dist.to_info()["cov"])
    return Target(a.to(dev, dtype), W.to(dev, dtype), act, info, dist)


_MODULE_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.GELU: "gelu", nn.Softplus: "softplus",
                       nn.Identity: "linear"}


def target_from_module(model: nn.Module, *, device=None, dtype=torch.float64) -> Target:
    """The target computed by a trained ``nn.Sequential(Linear(d, N), act, Linear(N, 1))``.

    ``act`` is ReLU, Tanh, GELU (exact, not tanh-approximated), Softplus (beta 1, default threshold) or
    Identity. Biases must be absent or zero: the engine's networks have none.
    """
    layers = list(model.children()) if isinstance(model, nn.Sequential) else None
    if not layers or len(layers) != 3 or not isinstance(layers[0], nn.Linear) or not isinstance(layers[2], nn.Linear):
        raise ValueError("expected nn.Sequential(nn.Linear(d, N), activation, nn.Linear(N, 1))")
    first, act, last = layers
    name = _MODULE_ACTIVATIONS.get(type(act))
    if name is None:
        raise ValueError(f"unsupported activation module {type(act).__name__}; use one of "
                         f"{', '.join(k.__name__ for k in _MODULE_ACTIVATIONS)}")
    if isinstance(act, nn.GELU) and act.approximate != "none":
        raise ValueError("nn.GELU(approximate='tanh') is not supported: use the exact GELU")
    if isinstance(act, nn.Softplus) and act.beta != 1:
        raise ValueError("only nn.Softplus(beta=1) is supported")
    if last.out_features != 1:
        raise ValueError(f"the last Linear must have one output, got {last.out_features}")
    if last.in_features != first.out_features:
        raise ValueError("the two Linear layers do not chain")
    for layer in (first, last):
        if layer.bias is not None and bool(layer.bias.detach().abs().max() > 0):
            raise ValueError("biases must be absent or zero (build the layers with bias=False)")
    with torch.no_grad():
        W = first.weight.detach().to(dtype=dtype).clone()
        a = last.weight.detach().to(dtype=dtype)[0].clone()
    dev = resolve_device(device, like=W)
    return Target(a.to(dev), W.to(dev), name, {"kind": "module", "N": W.shape[0], "d": W.shape[1]})


def as_target(a, W=None, activation: str | Activation = "relu") -> Target:
    """A :class:`Target` passes through; ``(a, W)`` becomes one."""
    if isinstance(a, Target):
        if W is not None:
            raise ValueError("pass either a Target or (a, W), not both")
        return a
    if W is None:
        raise ValueError("W is required when a is not a Target")
    return make_target(a, W, activation)
