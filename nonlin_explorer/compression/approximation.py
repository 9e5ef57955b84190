r"""How good the mean-field simplification is: its cross-term error measured over N and d, with fitted exponents.

The simplification (:mod:`.meanfield`) replaces the cross term ``h(u) = sum_i a_i |w_i| k(<w^_i, u>)`` by its
mean ``A c_d`` (relu target, centred isotropic weights). Its error at a unit direction u,
``e(u) = (h(u) - A c_d) / (A c_d)``, is a sum of N independent centred terms: pointwise it is O(N^-1/2); a union
bound over the sphere gives O(sqrt(d/N)) up to logarithms uniformly in u. We measure both:

* ``rms``: the root mean square of ``e(u)`` over random directions u (the pointwise size);
* ``sup``: the largest ``|e(u)|`` found (random directions, the target's linear direction, then projected
  gradient ascent from the worst ones): a lower bound on the uniform error.

:func:`error_study` runs a grid of (N, d, seed); :func:`fit_exponents` fits ``log e = c + alpha log N +
beta log d`` by least squares with t-based confidence intervals. ``python -m nonlin_explorer.compression.approximation
--full`` runs the documented grid (N = 250..16000, d = 5..80, 5 seeds) and prints the fits.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from scipy.stats import t as student_t

from nonlin_explorer.compression._checks import check_int
from nonlin_explorer.compression.kernels import relu_k
from nonlin_explorer.compression.meanfield import closed_form_applies, sphere_kernel_mean
from nonlin_explorer.compression.targets import Target, random_target
from nonlin_explorer.validation import check_seed

SMALL_GRID = {"N": (250, 1000, 4000), "d": (5, 20, 80), "seeds": (0, 1, 2)}
FULL_GRID = {"N": (250, 500, 1000, 2000, 4000, 8000, 16000), "d": (5, 10, 20, 40, 80), "seeds": (0, 1, 2, 3, 4)}


@dataclass
class CrossTermError:
    """Relative error of the mean cross term at one target: RMS over random directions and the largest found."""

    rms: float
    sup: float


def _relative_error(target: Target, U: torch.Tensor, mean: float) -> torch.Tensor:
    n = target.W.norm(dim=1)
    cos = (target.W / n[:, None]) @ U.T
    return ((target.a * n) @ relu_k(cos.clamp(-1.0, 1.0)) - mean) / mean


def cross_term_error(target: Target, *, directions: int = 512, ascent_steps: int = 60, seed: int = 0) -> CrossTermError:
    """The simplification's cross-term error for a relu target with centred isotropic weights (see module)."""
    if not closed_form_applies(target):
        raise ValueError("the cross-term error is measured against the closed-form mean field: a relu target with "
                         "centred isotropic weights")
    directions = check_int("directions", directions, minimum=1)
    ascent_steps = check_int("ascent_steps", ascent_steps, minimum=0)
    t = target.to(dtype=torch.float64)
    n = t.W.norm(dim=1)
    mean = float(t.a @ n) * sphere_kernel_mean(t.d)  # the empirical A: the error is about directions only
    if mean == 0.0:
        raise ValueError("the target's mean cross term is zero (sum a_i |w_i| = 0): the relative error is undefined")
    gen = torch.Generator().manual_seed(check_seed(seed))
    U = torch.randn(directions, t.d, generator=gen, dtype=torch.float64).to(t.device)
    U = U / U.norm(dim=1, keepdim=True)
    with torch.no_grad():
        e = _relative_error(t, U, mean)
    rms = float(e.pow(2).mean().sqrt())
    m = t.linear_direction()
    starts = [U[torch.topk(e.abs(), min(8, directions)).indices]]
    if float(m.norm()) > 0:
        starts.append(torch.stack([m, -m]) / m.norm())
    X = torch.cat(starts).clone().requires_grad_(True)
    best = float(e.abs().max())
    step = 0.1
    for _ in range(ascent_steps):  # projected gradient ascent on |e(u)| over the sphere
        Xn = X / X.norm(dim=1, keepdim=True)
        val = _relative_error(t, Xn, mean).abs()
        best = max(best, float(val.detach().max()))
        (grad,) = torch.autograd.grad(val.sum(), X)
        with torch.no_grad():
            X += step * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-300)
            X /= X.norm(dim=1, keepdim=True)
        step *= 0.93
    with torch.no_grad():
        best = max(best, float(_relative_error(t, X / X.norm(dim=1, keepdim=True), mean).abs().max()))
    return CrossTermError(rms, best)


def error_study(Ns=SMALL_GRID["N"], ds=SMALL_GRID["d"], seeds=SMALL_GRID["seeds"], *, a_mean: float = 1.0,
                a_std: float = 1.0, directions: int = 512) -> xr.Dataset:
    """Cross-term errors of ``random_target(N, d, a_mean, a_std, seed)`` over the grid: dims (N, d, seed)."""
    Ns, ds, seeds = [int(v) for v in Ns], [int(v) for v in ds], [int(v) for v in seeds]
    rms = np.full((len(Ns), len(ds), len(seeds)), np.nan)
    sup = np.full_like(rms, np.nan)
    for (i, N), (j, d), (k, seed) in itertools.product(enumerate(Ns), enumerate(ds), enumerate(seeds)):
        err = cross_term_error(random_target(N, d, a_mean=a_mean, a_std=a_std, seed=seed), directions=directions,
                               seed=seed)
        rms[i, j, k], sup[i, j, k] = err.rms, err.sup
    dims = ("N", "d", "seed")
    return xr.Dataset(
        {"rms": (dims, rms, {"long_name": "RMS over random directions of (h(u) - A c_d) / (A c_d)"}),
         "sup": (dims, sup, {"long_name": "largest |h(u) - A c_d| / (A c_d) found (a lower bound on the sup)"})},
        coords={"N": Ns, "d": ds, "seed": seeds},
        attrs={"kind": "nonlin_explorer.meanfield_error_study", "a_mean": a_mean, "a_std": a_std,
               "directions": directions})


@dataclass
class ExponentFit:
    """``log e = intercept + alpha log N + beta log d``: estimates with two-sided confidence intervals."""

    alpha: float
    alpha_ci: tuple[float, float]
    beta: float
    beta_ci: tuple[float, float]
    intercept: float
    r2: float
    points: int
    confidence: float

    def __str__(self) -> str:
        return (f"alpha (N) = {self.alpha:+.3f} [{self.alpha_ci[0]:+.3f}, {self.alpha_ci[1]:+.3f}], "
                f"beta (d) = {self.beta:+.3f} [{self.beta_ci[0]:+.3f}, {self.beta_ci[1]:+.3f}] "
                f"({self.confidence:.0%} CI, {self.points} points, R^2 = {self.r2:.3f})")


def fit_exponents(da: xr.DataArray, confidence: float = 0.95) -> ExponentFit:
    """Least-squares fit of ``log e`` on ``log N`` and ``log d`` over every (N, d, seed) point of ``da``."""
    flat = da.stack(point=da.dims).dropna("point")
    y = np.log(flat.values)
    X = np.column_stack([np.ones_like(y), np.log(flat["N"].values.astype(float)),
                         np.log(flat["d"].values.astype(float))])
    if len(y) <= 3:
        raise ValueError(f"fitting three coefficients needs more than 3 points, got {len(y)}")
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = len(y) - 3
    s2 = float(resid @ resid) / dof
    se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    q = float(student_t.ppf(0.5 + confidence / 2, dof))
    r2 = 1.0 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())
    ci = lambda k: (float(coef[k] - q * se[k]), float(coef[k] + q * se[k]))  # noqa: E731
    return ExponentFit(float(coef[1]), ci(1), float(coef[2]), ci(2), float(coef[0]), r2, len(y), confidence)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m nonlin_explorer.compression.approximation",
                                description="Measure the mean-field cross-term error over N and d; fit exponents.")
    p.add_argument("--full", action="store_true", help="the documented grid: N 250..16000, d 5..80, 5 seeds")
    p.add_argument("--out", help="write the study as netCDF")
    args = p.parse_args(argv)
    grid = FULL_GRID if args.full else SMALL_GRID
    ds = error_study(grid["N"], grid["d"], grid["seeds"])
    for name in ("rms", "sup"):
        print(f"{name}: {fit_exponents(ds[name])}")
        table = ds[name].mean("seed").to_pandas()
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.out:
        from nonlin_explorer.netcdf import write_netcdf

        write_netcdf(ds, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["FULL_GRID", "SMALL_GRID", "CrossTermError", "ExponentFit", "cross_term_error", "error_study",
           "fit_exponents", "main"]
