"""``compress``: the best M-unit network for a target, on the exact loss, in the ETF family, or in mean field.

All methods eliminate the output weights: for fixed V the loss is quadratic in b, so ``b*(V)`` solves a
small linear system and the optimizer works on ``min_b L(b, V) = E f*^2 - h^T K(V,V)^-1 h`` (variable
projection). For ReLU (positively homogeneous) only the directions of V matter; they are kept on the unit
sphere. Restarts run as one batch of independent L-BFGS problems in float64; the best is finished by
trust-region Newton (exact Riemannian Hessian for ReLU, finite differences otherwise), because the loss is
nearly flat along rotations and L-BFGS crawls there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from nonlin_explorer.compression import _solvers
from nonlin_explorer.compression._checks import check_int, check_real
from nonlin_explorer.compression._hessian import relu_grad_hess, tangent_bases
from nonlin_explorer.compression.diagnostics import FrameShape, alignment, cosine_gram, etf_distance, frame_shape
from nonlin_explorer.compression.etf import etf_search, random_rotation, simplex_coordinates, simplex_etf
from nonlin_explorer.compression.kernels import get_activation
from nonlin_explorer.compression.meanfield import (
    POPULATION_POINTS,
    closed_form_applies,
    meanfield_population,
    meanfield_solution,
)
from nonlin_explorer.compression.targets import Target, as_target
from nonlin_explorer.threads import threads_for
from nonlin_explorer.validation import check_seed

METHODS = ("exact", "etf", "meanfield")
INITS = ("etf", "random")


class CompressionProgress:
    """What the callback sees after each optimizer iteration (best restart so far): ``method``, ``iteration``,
    ``loss``, ``relative_loss``, ``V`` and the optimal output weights ``b`` for that ``V``. ``b`` costs a
    kernel evaluation against the whole target, so it is computed on first access (``b`` may be given as a
    zero-argument function): a callback that only streams the loss does not pay for it."""

    __slots__ = ("method", "iteration", "loss", "relative_loss", "V", "_b")

    def __init__(self, method: str, iteration: int, loss: float, relative_loss: float,
                 b: torch.Tensor | Callable[[], torch.Tensor], V: torch.Tensor):
        self.method, self.iteration, self.loss, self.relative_loss, self.V = method, iteration, loss, relative_loss, V
        self._b = b

    @property
    def b(self) -> torch.Tensor:
        if callable(self._b):
            self._b = self._b()
        return self._b

    def __repr__(self) -> str:
        return (f"CompressionProgress(method={self.method!r}, iteration={self.iteration}, loss={self.loss:.6g}, "
                f"relative_loss={self.relative_loss:.6g})")


@dataclass
class CompressionResult:
    """A compressed network ``g(x) = sum_j b_j s(v_j.x)`` and how good it is.

    ``loss`` is always the exact population loss of the returned ``(b, V)``; ``relative_loss`` divides it
    by the target's energy ``E f*^2``. ``gram`` holds the cosines between the ``v_j``; ``etf_distance`` the
    largest deviation of one from the simplex ETF's ``-1/(M-1)`` (see :func:`.diagnostics.etf_distance`);
    ``shape`` names what the directions are (simplex ETF, tilted simplex, general ETF or none, with distances).
    """

    method: str
    b: torch.Tensor
    V: torch.Tensor
    loss: float
    relative_loss: float
    energy: float
    history: list[float]
    gram: torch.Tensor
    etf_distance: float
    alignment: torch.Tensor
    time: float
    iterations: int = 0
    evaluations: int = 0
    meanfield_loss: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    shape: FrameShape | None = None

    @property
    def M(self) -> int:
        return self.V.shape[0]

    def summary(self) -> dict[str, Any]:
        """Plain numbers (JSON-friendly) for tables and widgets."""
        return {
            "method": self.method, "M": self.M, "loss": self.loss, "relative_loss": self.relative_loss,
            "etf_distance": self.etf_distance, "time": self.time, "iterations": self.iterations,
            "meanfield_loss": self.meanfield_loss,
            "mean_cosine": float(self.gram[~torch.eye(self.M, dtype=torch.bool)].mean()) if self.M > 1 else math.nan,
            "shape": self.shape.name if self.shape else None,
            "tilt_degrees": self.shape.tilt_degrees if self.shape else math.nan,
            "shape_distance": self.shape.distance if self.shape else math.nan,
        }


#: The most random restarts one call runs (each holds an M x d start; beyond this, call again with another seed).
MAX_RESTARTS = 1000


def finish(target: Target, b: torch.Tensor, V: torch.Tensor, method: str, t0: float, *, history=None,
           iterations: int = 0, evaluations: int = 0, meanfield_loss: float | None = None,
           info: dict | None = None, quad_points: int | None = None, shape_N: int | None | str = "target"
           ) -> CompressionResult:
    """Package ``(b, V)`` with its exact loss and diagnostics (used by every method and baseline). ``shape_N``: the
    number of units whose draw the solution saw, for :func:`.diagnostics.frame_shape` (the target's by default;
    None for a solution that saw no draw)."""
    loss_fn = target.loss_fn(quad_points)
    with torch.no_grad():
        b, V = b.detach(), V.detach()
        loss = float(loss_fn.evaluate(b, V))
        energy = float(loss_fn.energy)
        elapsed = time.perf_counter() - t0
        return CompressionResult(
            method=method, b=b, V=V, loss=loss, relative_loss=loss / energy if energy > 0 else math.nan,
            energy=energy, history=list(history or []), gram=cosine_gram(V), etf_distance=etf_distance(V),
            alignment=alignment(V, target), time=elapsed, iterations=iterations, evaluations=evaluations,
            meanfield_loss=meanfield_loss, info=dict(info or {}),
            shape=frame_shape(V, b, activation=target.activation, N=target.N if shape_N == "target" else shape_N))


def _unit_rows(Z: torch.Tensor) -> torch.Tensor:
    return Z / Z.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def _complement(Y: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the complement of the orthonormal columns of Y (..., n, k): shape (..., n, n-k)."""
    k = Y.shape[-1]
    return torch.linalg.qr(Y, mode="complete")[0][..., k:]


def _qf(A: torch.Tensor) -> torch.Tensor:
    """Q factor of A with a positive diagonal in R: a retraction onto orthonormal columns."""
    Q, R = torch.linalg.qr(A)
    sgn = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    return Q * torch.where(sgn == 0, torch.ones_like(sgn), sgn)[..., None, :]


def _skew(params: torch.Tensor, k: int) -> torch.Tensor:
    """Skew-symmetric (B, k, k) matrices from their k(k-1)/2 upper entries."""
    iu = torch.triu_indices(k, k, 1, device=params.device)
    S = torch.zeros(params.shape[0], k, k, dtype=params.dtype, device=params.device)
    S[:, iu[0], iu[1]] = params
    return S - S.mT


class _RowsChart(_solvers.Chart):
    """V with unit rows (homogeneous activations: only directions matter), moved along each row's tangent
    space; or free V otherwise."""

    def __init__(self, loss_fn, V, homogeneous):
        self.loss_fn, self.homogeneous = loss_fn, homogeneous
        self.V = _unit_rows(V) if homogeneous else V
        self.dtype, self.device = V.dtype, V.device
        M, d = V.shape
        if homogeneous:
            self.basis = _complement(self.V[:, :, None])  # (M, d, d-1)
            self.dim = M * (d - 1)
        else:
            self.dim = M * d

    def points(self, delta):
        M, d = self.V.shape
        if self.homogeneous:
            du = delta.reshape(delta.shape[0], M, d - 1)
            return _unit_rows(self.V + torch.einsum("mdk,bmk->bmd", self.basis, du))
        return self.V + delta.reshape(delta.shape[0], M, d)

    def evaluate(self, delta):
        return self.loss_fn.reduced(self.points(delta))[0]

    def move(self, delta):
        return _RowsChart(self.loss_fn, self.points(delta[None])[0], self.homogeneous)


class _ReluChart(_solvers.Chart):
    """ReLU: output weights b and unit directions U jointly, with the exact Riemannian Hessian."""

    def __init__(self, loss_fn, b, U):
        self.loss_fn, self.b, self.U = loss_fn, b, U
        self.dtype, self.device = U.dtype, U.device
        self.M, self.d = U.shape
        self.basis = tangent_bases(U)
        self.dim = self.M * self.d

    @property
    def V(self):
        return self.U

    def points(self, delta):
        M, d = self.M, self.d
        du = delta[:, M:].reshape(delta.shape[0], M, d - 1)
        U = _unit_rows(self.U + torch.einsum("mdk,bmk->bmd", self.basis, du))
        return self.b + delta[:, :M], U

    def evaluate(self, delta):
        return self.loss_fn.evaluate(*self.points(delta))

    def move(self, delta):
        b, U = self.points(delta[None])
        return _ReluChart(self.loss_fn, b[0], U[0])

    def grad_hess(self):
        _, g, H, _ = relu_grad_hess(self.loss_fn.a, self.loss_fn.W, self.b, self.U, self.loss_fn.energy)
        return g, H


class _ETFFamily:
    """V = s (cos(phi) m + sin(phi) E (B Y)^T): the simplex E (M, k) on orthonormal columns Y (n, k) of a
    basis B (d, n) of the complement of m (tilted family, n = d - 1), or V = s E Y^T with Y in O(d) when
    M = d + 1 (no room left for a tilt)."""

    def __init__(self, target, M, homogeneous):
        d = target.d
        self.dev, self.dt = target.device, target.dtype
        self.m = _linear_axis(target)
        self.E = (torch.ones(1, 1, dtype=self.dt, device=self.dev) if M == 1 else
                  torch.as_tensor(simplex_coordinates(M), dtype=self.dt, device=self.dev))
        self.k = self.E.shape[1]
        self.tilted = M <= d
        self.B = _complement(self.m[:, None]) if self.tilted else torch.eye(d, dtype=self.dt, device=self.dev)
        self.n = self.B.shape[1]
        self.homogeneous = homogeneous

    def build(self, phi, log_s, Y):
        """V (batch, M, d) from angles (batch,), log-scales (batch,) and frames (batch, n, k)."""
        V = self.E @ (self.B @ Y).mT
        if self.tilted:
            V = torch.cos(phi)[:, None, None] * self.m + torch.sin(phi)[:, None, None] * V
        if not self.homogeneous:
            V = V * torch.exp(log_s)[:, None, None]
        return V


class _ETFChart(_solvers.Chart):
    """Tangent coordinates of the ETF family: tilt, log-scale, and the frame Y moved as Y(I + Omega) + Y_perp K."""

    def __init__(self, loss_fn, fam, phi, log_s, Y):
        self.loss_fn, self.fam = loss_fn, fam
        self.phi, self.log_s, self.Y = phi, log_s, Y
        self.dtype, self.device = Y.dtype, Y.device
        self.Yp = _complement(Y)
        k, n = fam.k, fam.n
        self.n_skew, self.n_k = k * (k - 1) // 2, (n - k) * k
        self.n_lead = int(fam.tilted) + int(not fam.homogeneous)
        self.dim = self.n_lead + self.n_skew + self.n_k

    def params(self, delta):
        zero = torch.zeros(delta.shape[0], dtype=delta.dtype, device=delta.device)
        i = int(self.fam.tilted)
        phi = self.phi + (delta[:, 0] if self.fam.tilted else zero)
        log_s = self.log_s + (zero if self.fam.homogeneous else delta[:, i])
        i = self.n_lead
        Om = _skew(delta[:, i:i + self.n_skew], self.fam.k)
        K = delta[:, i + self.n_skew:].reshape(delta.shape[0], self.fam.n - self.fam.k, self.fam.k)
        Y = _qf(self.Y + self.Y @ Om + self.Yp @ K)
        return phi, log_s, Y

    @property
    def V(self):
        one = torch.zeros(1, dtype=self.dtype, device=self.device)
        return self.fam.build(one + self.phi, one + self.log_s, self.Y[None])[0]

    def evaluate(self, delta):
        return self.loss_fn.reduced(self.fam.build(*self.params(delta)))[0]

    def move(self, delta):
        phi, log_s, Y = self.params(delta[None])
        return _ETFChart(self.loss_fn, self.fam, float(phi[0]), float(log_s[0]), Y[0])


def _linear_axis(target: Target) -> torch.Tensor:
    """Unit vector along the target's linear direction (``e_1`` if that vanishes)."""
    m = target.linear_direction()
    scale = float((target.a.abs() * target.W.norm(dim=1)).sum())
    if float(m.norm()) <= 1e-12 * max(scale, 1e-300):
        m = torch.zeros_like(m)
        m[0] = 1.0
    return m / m.norm()


def _initial_directions(target: Target, M: int, restarts: int, init: str, gen: torch.Generator) -> torch.Tensor:
    """Starting V for each restart (R, M, d): ETF-like starts first when asked, then random ones."""
    d = target.d
    starts = []
    for r in range(restarts):
        if init == "etf" and r % 2 == 0 and M <= d + 1:
            if r == 0 and M <= d:  # the simplex in the complement of the target's linear direction
                m = _linear_axis(target).cpu()
                basis = torch.linalg.qr(torch.cat([m[:, None], torch.randn(d, d - 1, generator=gen,
                                                                             dtype=torch.float64)], 1))[0]
                U = simplex_etf(M, d, device="cpu")[:, : max(M - 1, 1)]
                starts.append(U @ basis[:, 1: 1 + U.shape[1]].T)
            else:
                starts.append(simplex_etf(M, d, rotation=random_rotation(d, generator=gen), device="cpu"))
        elif init == "etf" and r == 0 and M > d + 1:
            starts.append(etf_search(M, d, seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen))).U)
        else:
            starts.append(torch.randn(M, d, generator=gen, dtype=torch.float64))
    V0 = _unit_rows(torch.stack(starts))
    if not get_activation(target.activation).homogeneous:  # the norm matters: start at the target's scale
        V0 = V0 * float(target.W.norm(dim=1).median())
    return V0.to(target.device, target.dtype)


_NEWTON_MAX_DIM = 600  # finite-difference Hessians: above this many coordinates L-BFGS is cheaper
_NEWTON_MAX_DIM_EXACT = 2000  # exact Hessians (relu): eigendecompositions beyond this get slow
# L-BFGS explores all restarts until a step gains less than this (relative to E f*^2); Newton finishes the
# best. The ETF family has more distinct local minima, so its restarts are separated further first.
_PHASE1_TOL = {"exact": 1e-6, "etf": 1e-7}


def _run(target, M, method, fun, build, x0, to_chart, *, max_iter, tol, callback, quad_points, t0):
    """Batched L-BFGS over the restarts, then trust-region Newton on the best one; package the result."""
    loss_fn = target.loss_fn(quad_points)
    energy = float(loss_fn.energy)
    scale = max(energy, 1e-300)
    rel = (lambda f: f / energy) if energy > 0 else (lambda f: math.nan)

    def report(it, V, loss):
        V = V.detach().clone()

        def b_of_V():
            with torch.no_grad():
                return loss_fn.optimal_b(V)

        return bool(callback(CompressionProgress(method, it, loss, rel(loss), b_of_V, V)))

    def cb1(it, x, f):
        if callback is None:
            return False
        best = int(torch.argmin(f))
        with torch.no_grad():
            V = build(x[best:best + 1])[0]
        return report(it, V, float(f[best]))

    res = _solvers.lbfgs(fun, x0, max_iter=max_iter, ftol=max(tol, _PHASE1_TOL[method]), gtol=1e-14 * scale,
                         f_scale=scale, callback=cb1)
    f_final = torch.where(torch.isfinite(res.f), res.f, torch.full_like(res.f, math.inf))
    best = int(torch.argmin(f_final))
    history, iterations, evaluations = list(res.history), res.iterations, res.evaluations
    with torch.no_grad():
        chart = to_chart(res.x[best:best + 1])
    phase2 = "none"
    if not res.stopped and iterations < max_iter:
        if chart.dim <= (_NEWTON_MAX_DIM_EXACT if isinstance(chart, _ReluChart) else _NEWTON_MAX_DIM):
            phase2 = "newton"

            def cb2(it, ch, f):
                return report(iterations + it, ch.V, f) if callback is not None else False

            chart, _, it2, ev2, hist2, _ = _solvers.newton(chart, max_iter=max(1, min(50, max_iter - iterations)),
                                                           ftol=tol, f_scale=scale, callback=cb2)
        else:
            phase2 = "lbfgs"
            x_best = res.x[best:best + 1]
            res2 = _solvers.lbfgs(fun, x_best, max_iter=max_iter - iterations, ftol=tol, gtol=1e-14 * scale,
                                  f_scale=scale, callback=lambda it, x, f: cb1(iterations + it, x, f))
            chart, it2, ev2, hist2 = to_chart(res2.x), res2.iterations, res2.evaluations, res2.history
        history += hist2
        iterations += it2
        evaluations += ev2
    with torch.no_grad():
        V = chart.V
        b = loss_fn.optimal_b(V)
    extra = {"restarts": x0.shape[0], "restart_losses": [float(v) for v in res.f], "stopped": res.stopped,
             "polish": phase2}
    return finish(target, b, V, method, t0, history=history, iterations=iterations, evaluations=evaluations,
                  info=extra, quad_points=quad_points), chart


def _compress_exact(target, M, *, init, restarts, gen, max_iter, tol, callback, quad_points, t0, V0=None):
    loss_fn = target.loss_fn(quad_points)
    homogeneous = get_activation(target.activation).homogeneous
    d = target.d
    if V0 is None:
        V0 = _initial_directions(target, M, restarts, init, gen)
    else:  # a warm start: one run from the given weights
        V0 = V0.to(target.device, target.dtype)[None]
        V0 = _unit_rows(V0) if homogeneous else V0
        restarts = 1

    def build(x):
        V = x.reshape(-1, M, d)
        return _unit_rows(V) if homogeneous else V

    def fun(x):
        return loss_fn.reduced(build(x))[0]

    def to_chart(x):
        V = build(x)[0]
        if target.activation == "relu":
            return _ReluChart(loss_fn, loss_fn.optimal_b(V), V)
        return _RowsChart(loss_fn, V, homogeneous)

    return _run(target, M, "exact", fun, build, V0.reshape(restarts, -1), to_chart, max_iter=max_iter, tol=tol,
                callback=callback, quad_points=quad_points, t0=t0)[0]


def _compress_etf(target, M, *, init, restarts, gen, max_iter, tol, callback, quad_points, t0):
    """The conjecture's family: a simplex ETF, rotated in the complement of the target's linear direction m
    and tilted towards m by a common angle (see :class:`_ETFFamily`); b exact for each V."""
    d = target.d
    if M > d + 1:
        raise ValueError(f"method='etf' needs a simplex ETF, so M <= d + 1 = {d + 1}; got M = {M}")
    loss_fn = target.loss_fn(quad_points)
    homogeneous = get_activation(target.activation).homogeneous
    fam = _ETFFamily(target, M, homogeneous)
    n, k = fam.n, fam.k
    nz = n * k

    def unpack(x):
        return x[:, nz], x[:, nz + 1], _qf(x[:, :nz].reshape(-1, n, k))

    def build(x):
        return fam.build(*unpack(x))

    def fun(x):
        return loss_fn.reduced(build(x))[0]

    def to_chart(x):
        phi, log_s, Y = unpack(x)
        return _ETFChart(loss_fn, fam, float(phi[0]), float(log_s[0]), Y[0])

    dt, dev = target.dtype, target.device
    x0 = torch.zeros(restarts, nz + 2, dtype=dt, device=dev)
    scale0 = 0.0 if homogeneous else math.log(float(target.W.norm(dim=1).median()))
    for r in range(restarts):
        x0[r, :nz] = torch.randn(n * k, generator=gen, dtype=torch.float64).to(dev, dt)
        # Start untilted (phi = pi/2: the pure simplex orthogonal to m), later restarts tilted either way.
        tilt = 0.0 if (r == 0 or (init == "etf" and r < 2)) else float(torch.empty(1).uniform_(-1.2, 1.2,
                                                                                               generator=gen))
        x0[r, nz] = math.pi / 2 + tilt
        x0[r, nz + 1] = scale0
    res, chart = _run(target, M, "etf", fun, build, x0, to_chart, max_iter=max_iter, tol=tol, callback=callback,
                      quad_points=quad_points, t0=t0)
    res.info.update({"family": "tilted simplex" if fam.tilted else "rotated simplex",
                     # angle from the complement of m towards m (positive: towards the linear part)
                     "tilt_degrees": math.degrees(math.asin(math.cos(chart.phi))) if fam.tilted else 0.0})
    return res


def meanfield_draw(target: Target) -> int | None:
    """How many units the mean field's solution of ``target`` comes from, the N its shape is named at: None for the
    closed form (no draw), else the population target's points."""
    if closed_form_applies(target):
        return None
    return POPULATION_POINTS[get_activation(target.activation).exact]


def _compress_meanfield(target, M, *, seed, restarts, max_iter, tol, quad_points, t0, expected=True):
    """The closed form for relu targets with centred isotropic weights; else the exact optimum of the
    population target (:class:`.meanfield.MeanFieldPopulation`), evaluated on the true target."""
    if target.activation == "relu" and target.d == 1 and M > 2:
        raise ValueError(f"in d = 1 there are two directions only (+1 and -1): the mean field takes M <= 2, "
                         f"got M = {M}")
    if closed_form_applies(target):
        sol = meanfield_solution(target, M, seed=seed, expected=expected)
        return finish(target, sol.b, sol.V, "meanfield", t0, meanfield_loss=sol.loss, quad_points=quad_points,
                      shape_N=None, info={"meanfield": "closed form", "scale": sol.scale, "c_d": sol.c_d,
                            "meanfield_energy": sol.energy, "meanfield_value": sol.optimum.value})
    pop = meanfield_population(target, expected=expected, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    res = _compress_exact(pop.population, M, init="etf", restarts=restarts, gen=gen, max_iter=max_iter, tol=tol,
                          callback=None, quad_points=quad_points, t0=t0)
    b, V = res.b.to(target.device, target.dtype), res.V.to(target.device, target.dtype)
    return finish(target, b, V, "meanfield", t0, meanfield_loss=pop.predicted_loss(res.b, res.V),
                  quad_points=quad_points, iterations=res.iterations, evaluations=res.evaluations,
                  shape_N=pop.population.N, info={"meanfield": "population", "population_points": pop.population.N,
                        "law": pop.law.to_info(), "meanfield_energy": pop.energy, "mean_a": pop.mean_a})


def compress(a, W=None, M: int | None = None, method: str = "exact", *, activation: str = "relu",
             init: str = "etf", seed: int = 0, max_iter: int = 500, tol: float = 1e-12, restarts: int = 4,
             callback: Callable[[CompressionProgress], bool | None] | None = None,
             quad_points: int | None = None, V0=None) -> CompressionResult:
    """Compress the target ``(a, W)`` (or a :class:`Target`: ``compress(target, M=4)``) into M units.

    Methods: ``"exact"`` minimizes the exact population loss over b and V (L-BFGS, float64, ``restarts``
    independent starts); ``"etf"`` restricts V to a simplex ETF, scaled, rotated in the complement of the
    target's linear direction and tilted towards it by a common angle (the conjecture's family; needs
    M <= d + 1); ``"meanfield"`` solves the mean-field (simplified) objective (:mod:`.meanfield`): in closed form for
    relu targets with centred isotropic weights, else on a quasi-Monte Carlo population of the weight law. ``init``
    (``"etf"`` or ``"random"``) picks the first starts. ``tol`` stops a restart when an iteration lowers the
    loss by less than ``tol * E f*^2``. ``callback(progress)`` runs after each iteration; returning True
    stops early (the best point so far is returned). ``V0`` (M, d), method ``"exact"`` only: a warm start,
    one run from these weights instead of ``restarts`` starts (``init`` is then ignored).
    """
    t0 = time.perf_counter()
    if isinstance(a, Target) and M is None and W is not None and not hasattr(W, "shape"):
        M, W = W, None  # compress(target, 4)
    target = as_target(a, W, activation)
    M = check_int("M", M, minimum=1) if M is not None else None
    if M is None:
        raise ValueError("M (the number of units to keep) is required")
    if M >= target.N:
        raise ValueError(f"M must be smaller than the target's N = {target.N} units, got M = {M}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    seed = check_seed(seed)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1, maximum=MAX_RESTARTS)
    tol = check_real("tol", tol, nonnegative=True)
    if callback is not None and not callable(callback):
        raise ValueError("callback must be callable")
    if V0 is not None:
        if method != "exact":
            raise ValueError(f"a warm start (V0) needs method='exact', not {method!r}")
        V0 = torch.as_tensor(V0, dtype=torch.float64).detach()
        if V0.shape != (M, target.d) or not bool(torch.isfinite(V0).all()):
            raise ValueError(f"V0 must be a finite ({M}, {target.d}) array, got shape {tuple(V0.shape)}")
        if bool((V0.norm(dim=1) == 0).any()):
            raise ValueError("V0 has a zero row: a unit needs a direction")
    # One loss evaluation is about N x M x d multiply-adds per restart: a small problem runs on one torch thread
    # (nonlin_explorer.threads: two threads cost 3x beside a busy process and gain 10 % on a quiet one).
    with threads_for(target.N * M * target.d * restarts, target.device):
        if method == "meanfield":
            return _compress_meanfield(target, M, seed=seed, restarts=restarts, max_iter=max_iter, tol=tol,
                                       quad_points=quad_points, t0=t0)
        gen = torch.Generator().manual_seed(seed)
        kw = dict(init=init, restarts=restarts, gen=gen, max_iter=max_iter, tol=tol, callback=callback,
                  quad_points=quad_points, t0=t0)
        if method == "exact":
            return _compress_exact(target, M, V0=V0, **kw)
        return _compress_etf(target, M, **kw)


def compare_methods(a, W=None, M: int | None = None, methods=METHODS, **kwargs) -> dict[str, CompressionResult]:
    """Run several methods on one target: ``{method: result}`` (exact vs etf vs meanfield losses)."""
    target = as_target(a, W, kwargs.pop("activation", "relu"))
    out = {}
    for method in methods:
        if method == "etf" and M is not None and M > target.d + 1:
            continue
        out[method] = compress(target, M=M, method=method, **kwargs)
    return out
