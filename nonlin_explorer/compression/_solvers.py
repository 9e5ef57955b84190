"""Solvers for small smooth problems evaluated in batches: L-BFGS over restarts, then Newton polishing.

* :func:`lbfgs`: R independent problems minimized at once, each with its own memory and line search.
  Restarts of a small problem cost little more than one when they share every tensor operation; a shared
  line search (as in ``torch.optim.LBFGS`` on the summed loss) would couple them.
* :func:`newton`: damped Newton for one problem, its Hessian from central differences of the gradient at
  2P points evaluated as one batch. Compression losses have nearly flat directions (rotations the
  mean-field limit cannot tell apart), where L-BFGS crawls and Newton converges in a few steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class LBFGSResult:
    x: torch.Tensor  # (R, P) final points
    f: torch.Tensor  # (R,) final values
    iterations: int
    evaluations: int
    history: list[float] = field(default_factory=list)  # best value after each iteration
    stopped: bool = False  # the callback asked to stop


def _value_and_grad(fun, x):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        f = fun(x)
        (g,) = torch.autograd.grad(f.sum(), x)
    return f.detach(), g.detach()


def lbfgs(fun: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, *, max_iter: int = 500,
             ftol: float = 1e-12, gtol: float = 1e-12, f_scale: float = 1.0, memory: int = 10,
             callback: Callable[[int, torch.Tensor, torch.Tensor], bool | None] | None = None) -> LBFGSResult:
    """Minimize ``fun`` (maps (R, P) to (R,)) from each row of ``x0``.

    A row stops when a step lowers it by less than ``ftol * f_scale``, when its gradient's largest entry
    is below ``gtol``, or when its line search fails to decrease it. ``callback(iteration, x, f)`` runs
    after every iteration; returning True stops everything.
    """
    x = x0.detach().clone()
    f, g = _value_and_grad(fun, x)
    n_eval = 1
    active = torch.isfinite(f) & (g.abs().amax(1) > gtol)
    S: list[torch.Tensor] = []
    Y: list[torch.Tensor] = []
    RHO: list[torch.Tensor] = []
    gamma = 1.0 / g.norm(dim=1).clamp_min(1e-300)  # first step: unit length
    history: list[float] = []
    it = 0
    stopped = False
    for it in range(1, max_iter + 1):
        if not bool(active.any()):
            it -= 1
            break
        # Two-loop recursion, all candidates at once.
        q = g.clone()
        alphas = []
        for s, y, rho in zip(reversed(S), reversed(Y), reversed(RHO)):
            a = rho * (s * q).sum(1)
            q -= a[:, None] * y
            alphas.append(a)
        z = gamma[:, None] * q
        for s, y, rho, a in zip(S, Y, RHO, reversed(alphas)):
            b = rho * (y * z).sum(1)
            z += s * (a - b)[:, None]
        d = -z
        gd = (g * d).sum(1)
        bad = ~(gd < 0) | ~torch.isfinite(gd)
        if bool(bad.any()):  # not a descent direction: fall back to steepest descent
            d[bad] = -g[bad] / g[bad].norm(dim=1, keepdim=True).clamp_min(1e-300)
            gd = (g * d).sum(1)
        # Backtracking (Armijo), per candidate.
        t = torch.where(active, torch.ones_like(f), torch.zeros_like(f))
        searching = active.clone()
        f_new, g_new = f.clone(), g.clone()
        for _ in range(60):
            xt = x + t[:, None] * d
            ft, gt = _value_and_grad(fun, xt)
            n_eval += 1
            ok = searching & torch.isfinite(ft) & (ft <= f + 1e-4 * t * gd)
            f_new = torch.where(ok, ft, f_new)
            g_new = torch.where(ok[:, None], gt, g_new)
            searching &= ~ok
            if not bool(searching.any()):
                break
            t = torch.where(searching, 0.5 * t, t)
        failed = searching  # no decrease found: converged to rounding
        t = torch.where(failed, torch.zeros_like(t), t)
        s = t[:, None] * d
        y = g_new - g
        sy = (s * y).sum(1)
        good = sy > 1e-12 * s.norm(dim=1) * y.norm(dim=1)
        rho = torch.where(good, 1.0 / torch.where(good, sy, torch.ones_like(sy)), torch.zeros_like(sy))
        S.append(torch.where(good[:, None], s, torch.zeros_like(s)))
        Y.append(torch.where(good[:, None], y, torch.zeros_like(y)))
        RHO.append(rho)
        if len(S) > memory:
            S.pop(0), Y.pop(0), RHO.pop(0)
        gamma = torch.where(good, sy / (y * y).sum(1).clamp_min(1e-300), gamma)
        decrease = f - f_new
        x = x + s
        f, g = f_new, g_new
        active &= ~failed & (decrease > ftol * f_scale) & (g.abs().amax(1) > gtol)
        history.append(float(f.min()))
        if callback is not None and callback(it, x, f):
            stopped = True
            break
    return LBFGSResult(x, f, it, n_eval, history, stopped)



class Chart:
    """Local coordinates around a point: ``evaluate(delta)`` (B, dim) -> (B,) values, ``move(delta)`` re-centres.

    Newton works in tangent coordinates so that parametrization redundancies (a unit vector's length, a
    frame's gauge) leave no null directions in the Hessian.
    """

    dim: int
    dtype: torch.dtype = torch.float64
    device: torch.device = torch.device("cpu")

    def evaluate(self, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def move(self, delta: torch.Tensor) -> Chart:
        raise NotImplementedError

    def grad_hess(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Exact gradient and Hessian at the centre, or None to use finite differences."""
        return None


def fd_hessian(fun, x: torch.Tensor, h: float = 1e-5, max_batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient and Hessian (P, P) of ``fun`` at one point ``x`` (P,), from 2P + 1 gradients in batches."""
    P = x.shape[0]
    E = h * torch.eye(P, dtype=x.dtype, device=x.device)
    pts = torch.cat([x[None], x + E, x - E])
    g = torch.cat([_value_and_grad(fun, pts[s:s + max_batch])[1] for s in range(0, pts.shape[0], max_batch)])
    H = (g[1:P + 1] - g[P + 1:]) / (2 * h)
    return g[0], 0.5 * (H + H.T)


def _step(lam, gq, radius):
    """Minimizer of the model ``gq.s + |lam| s^2 / 2`` with ``|s| <= radius`` (bisection on the shift mu)."""
    a = lam.abs()
    tiny = 1e-12 * float(a.max().clamp_min(1e-300))

    def s_of(mu):
        return -gq / (a + mu)

    s = s_of(tiny)
    if float(s.norm()) <= radius:
        return s
    lo, hi = tiny, max(tiny, float(gq.norm()) / radius)
    for _ in range(60):
        mid = (lo * hi) ** 0.5 if lo > 0 else hi / 2
        if float(s_of(mid).norm()) > radius:
            lo = mid
        else:
            hi = mid
    return s_of(hi)


def newton(chart: Chart, *, max_iter: int = 30, ftol: float = 1e-14, f_scale: float = 1.0, h: float = 1e-5,
           radius: float = 0.5, max_batch: int = 512,
           callback: Callable[[int, Chart, float], bool | None] | None = None):
    """Trust-region Newton in a chart's tangent coordinates, the Hessian from batched central differences.

    Steps minimize ``g.s + s^T |H| s / 2`` (the absolute value escapes saddles) within the trust radius,
    which shrinks when the model overpredicts the gain and grows when it is right. Stops when a step gains
    less than ``ftol * f_scale``. Returns ``(chart, f, iterations, evaluations, history, stopped)``.
    """
    with torch.no_grad():
        f = float(chart.evaluate(torch.zeros(1, chart.dim, dtype=chart.dtype, device=chart.device))[0])
    n_eval, history, stopped, it = 1, [], False, 0
    if chart.dim == 0:  # nothing to move
        return chart, f, 0, n_eval, history, stopped
    for it in range(1, max_iter + 1):
        exact = chart.grad_hess()
        if exact is not None:
            g, H = exact
            n_eval += 1
        else:
            x0 = torch.zeros(chart.dim, dtype=chart.dtype, device=chart.device)
            g, H = fd_hessian(chart.evaluate, x0, h, max_batch)
            n_eval += 2 * chart.dim + 1
        lam, Q = torch.linalg.eigh(H)
        gq = Q.T @ g
        gain = 0.0
        for _ in range(30):
            sq = _step(lam, gq, radius)
            pred = float(gq @ sq + 0.5 * (lam.abs() * sq * sq).sum())
            step = Q @ sq
            with torch.no_grad():
                f_new = float(chart.evaluate(step[None])[0])
            n_eval += 1
            actual = f_new - f
            ratio = actual / pred if pred < 0 else -1.0
            if ratio < 0.25:
                radius *= 0.25
            elif ratio > 0.75 and float(sq.norm()) >= 0.99 * radius:
                radius *= 2.0
            if actual < 0:
                gain = -actual
                chart, f = chart.move(step), f_new
                break
            if radius < 1e-12:
                break
        else:
            break
        history.append(f)
        if callback is not None and callback(it, chart, f):
            stopped = True
            break
        if gain <= ftol * f_scale:
            break
    return chart, f, it, n_eval, history, stopped

