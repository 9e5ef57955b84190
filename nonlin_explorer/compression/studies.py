"""The compression studies behind docs/compression.md: one point of each, as a dict of numbers.

Each function is a sweep point (``kind = "function"`` in :mod:`nonlin_explorer.sweep`): it takes the swept
parameters and a seed and returns plain numbers, so ``results/make_compression.py`` stores them as result sets and
the benchmarks print the same computation. Shape names travel as their index in :data:`.diagnostics.SHAPES`
(``shape_names`` turns a stored set's indices back into names).

- :func:`shape_point`: the exact (or mean-field) optimum of one random target and the diagnostics of
  :func:`.diagnostics.frame_shape` (tilt, cosine and scale spread, name).
- :func:`case_point`: the same for the named configurations of :data:`CASES`.
- :func:`gap_point`: the mean field's relative loss over the exact optimum's on one target of a law of
  :data:`LAWS`, plain and with the mean field's units at their best orientation on the draw (the oracle).
- :func:`cross_term_point`: the simplification's cross-term error on one centred target
  (:func:`.approximation.cross_term_error`).

:func:`relabel` names a stored set's runs again from their stored numbers (:func:`.diagnostics.shape_name`), so a
change of naming rules needs no recomputation of the optima.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nonlin_explorer.compression.diagnostics import SHAPES, cosine_gram, shape_name, tilt_threshold
from nonlin_explorer.compression.optimize import CompressionResult, compress, meanfield_draw
from nonlin_explorer.compression.targets import Target, random_target

__all__ = ["CASES", "LAWS", "case_point", "cross_term_point", "gap_point", "law_target", "oracle_loss", "relabel",
           "shape_names", "shape_point", "unit_numbers"]

#: Laws of targets for the mean-field gap (a = (1 + g)/N throughout): ``isotropic+mean`` W = N(0.3 e1, I) (the law
#: leaves the orientation about the mean free), ``anisotropic`` W = N(0, diag(3, 2, 1.5, 0.5, ...) / d) (the law fixes
#: it), ``erf`` W = N(0.5 e1, I/d) with erf units.
LAWS = ("isotropic+mean", "anisotropic", "erf")

#: Named configurations docs/compression.md discusses: keyword arguments of :func:`shape_point`.
CASES: dict[str, dict[str, Any]] = {
    "centred d20 M4 N2000": {"N": 2000, "d": 20, "M": 4},
    "centred d5 M6 N1000": {"N": 1000, "d": 5, "M": 6},
    "centred d5 M6 N4000": {"N": 4000, "d": 5, "M": 6},
    "mean 0.0 d10 M3 N2000": {"N": 2000, "d": 10, "M": 3, "w_mean": 0.0},
    "mean 0.2 d10 M3 N2000": {"N": 2000, "d": 10, "M": 3, "w_mean": 0.2},
    "mean 0.4 d10 M3 N2000": {"N": 2000, "d": 10, "M": 3, "w_mean": 0.4},
    "mean 0.6 d10 M3 N2000": {"N": 2000, "d": 10, "M": 3, "w_mean": 0.6},
    "mean 0.5 d20 M4 N2000": {"N": 2000, "d": 20, "M": 4, "w_mean": 0.5},
    "zero-mean a d20 M4 N2000": {"N": 2000, "d": 20, "M": 4, "a_mean": 0.0},
    "anisotropic d12 M4 N4000": {"N": 4000, "d": 12, "M": 4, "law": "anisotropic"},
    "anisotropic d12 M5 N4000": {"N": 4000, "d": 12, "M": 5, "law": "anisotropic"},
}


def law_target(law: str, N: int, d: int, seed: int) -> Target:
    """One target of ``law`` (one of :data:`LAWS`) with N units in dimension d."""
    if law == "isotropic+mean":
        return random_target(N, d, w_mean=0.3, w_cov=1.0, seed=seed)
    if law == "anisotropic":
        if d < 4:
            raise ValueError(f"the anisotropic law needs d >= 4, got d = {d}")
        cov = torch.tensor([3.0, 2.0, 1.5] + [0.5] * (d - 3), dtype=torch.float64) / d
        return random_target(N, d, w_cov=cov, seed=seed)
    if law == "erf":
        return random_target(N, d, w_mean=0.5, seed=seed, activation="erf")
    raise ValueError(f"unknown law {law!r}: use one of {', '.join(LAWS)}")


def unit_numbers(result: CompressionResult, prefix: str = "") -> dict[str, float]:
    """The shape diagnostics of a result as numbers: ``shape_index`` into :data:`SHAPES`, tilt (degrees), cosine and
    scale spread, tilt threshold, smallest and largest cosine between units, relative loss."""
    s = result.shape
    off = cosine_gram(result.V)[~torch.eye(result.V.shape[0], dtype=torch.bool)]
    out = {"shape_index": float(SHAPES.index(s.name)), "tilt_degrees": s.tilt_degrees, "cosine_spread": s.cosine_spread,
           "scale_spread": s.scale_spread, "tilt_threshold": s.tilt_threshold, "cosine_min": float(off.min()),
           "cosine_max": float(off.max()), "relative_loss": result.relative_loss}
    return {f"{k}{prefix}": float(v) for k, v in out.items()}


def shape_point(N: int, d: int, M: int, seed: int, *, w_mean: float = 0.0, a_mean: float = 1.0,
                law: str | None = None, method: str = "exact", restarts: int = 4) -> dict[str, float]:
    """Compress one random target (``law`` from :data:`LAWS`, else ``random_target(N, d, w_mean=..., a_mean=...)``)
    into M units with ``method`` and return :func:`unit_numbers` of the result."""
    target = law_target(law, N, d, seed) if law else random_target(N, d, w_mean=w_mean or None, a_mean=a_mean,
                                                                      seed=seed)
    return unit_numbers(compress(target, M=M, method=method, seed=seed, restarts=restarts))


def case_point(case: str, method: str, seed: int) -> dict[str, float]:
    """:func:`shape_point` at the configuration ``CASES[case]``, with its N, d, M, w_mean and a_mean as numbers."""
    if case not in CASES:
        raise ValueError(f"unknown case {case!r}: use one of {', '.join(CASES)}")
    cfg = CASES[case]
    out = shape_point(seed=seed, method=method, **cfg)
    out.update(N=cfg["N"], d=cfg["d"], M=cfg["M"], w_mean=cfg.get("w_mean", 0.0), a_mean=cfg.get("a_mean", 1.0))
    return {k: float(v) for k, v in out.items()}


def _skew(p: torch.Tensor, d: int) -> torch.Tensor:
    i, j = torch.triu_indices(d, d, 1)
    A = torch.zeros(d, d, dtype=p.dtype).index_put((i, j), p)
    return A - A.T


def oracle_loss(target: Target, V: torch.Tensor, iters: int = 60) -> float:
    """Relative loss of the units ``V R^T`` under the rotation R of R^d that fits ``target`` best (b refitted):
    L-BFGS on ``R = exp(skew(p))`` from the identity, so the result is at most the unrotated loss."""
    d = V.shape[1]
    loss_fn = target.loss_fn()
    p = torch.zeros(d * (d - 1) // 2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=iters, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss_fn.reduced(V @ torch.linalg.matrix_exp(_skew(p, d)).T)[0]
        value.backward()
        return value

    with torch.no_grad():
        start = float(loss_fn.reduced(V)[0])
    opt.step(closure)
    with torch.no_grad():
        end = float(loss_fn.reduced(V @ torch.linalg.matrix_exp(_skew(p, d)).T)[0])
    return min(start, end) / float(loss_fn.energy)


def gap_point(law: str, N: int, d: int, seed: int, M: int = 4) -> dict[str, float]:
    """The mean field against the exact optimum on one target of ``law``: ``plain_ratio`` (relative loss of the
    mean-field units over the exact optimum's), ``oracle_ratio`` (the mean-field units at their best rotation for
    this target, b refitted), and :func:`unit_numbers` of both solutions (suffixes ``_exact``, ``_meanfield``)."""
    target = law_target(law, N, d, seed)
    exact = compress(target, M=M, seed=seed)
    mf = compress(target, M=M, method="meanfield", seed=seed)
    oracle = oracle_loss(target, mf.V)
    out = {"plain_ratio": mf.relative_loss / exact.relative_loss, "oracle_ratio": oracle / exact.relative_loss,
           "relative_loss_oracle": oracle}
    out.update(unit_numbers(exact, "_exact"))
    out.update(unit_numbers(mf, "_meanfield"))
    return {k: float(v) for k, v in out.items()}


def cross_term_point(N: int, d: int, seed: int, directions: int = 512) -> dict[str, float]:
    """The relative error of the mean cross term on ``random_target(N, d, seed=seed)``: RMS over random directions
    (``cross_term_rms``) and the largest found over the sphere (``cross_term_sup``, a lower bound)."""
    from nonlin_explorer.compression.approximation import cross_term_error

    err = cross_term_error(random_target(N, d, seed=seed), directions=directions, seed=seed)
    return {"cross_term_rms": float(err.rms), "cross_term_sup": float(err.sup)}


def shape_names(codes) -> list[str]:
    """Names of stored shape indices (NaN: "")."""
    return ["" if not math.isfinite(float(c)) else SHAPES[int(c)] for c in codes]


def _point_target(args: dict[str, Any]) -> Target:
    """The target of one stored point (its spec's base and coordinates), as the point's function built it."""
    cfg = {**args, **CASES[args["case"]]} if "case" in args else args
    if cfg.get("law"):
        return law_target(cfg["law"], cfg["N"], cfg["d"], cfg["seed"])
    return random_target(cfg["N"], cfg["d"], w_mean=cfg.get("w_mean") or None, a_mean=cfg.get("a_mean", 1.0),
                         seed=cfg["seed"])


def relabel(ds):
    """``ds`` (a stored set of :func:`shape_point`, :func:`case_point` or :func:`gap_point`) with every
    ``shape_index*`` and ``tilt_threshold*`` recomputed by the current naming rules from the run's stored tilt,
    cosine and scale spread and extreme cosines, at the N whose draw the solution saw (the target's; for the mean
    field :func:`.optimize.meanfield_draw`). Vacuous runs keep their name."""
    import json

    import numpy as np

    ds = ds.copy(deep=True)
    base = json.loads(ds.attrs["spec"])["base"]
    suffixes = [s for s in ("", "_exact", "_meanfield") if f"shape_index{s}" in ds]
    for suffix in suffixes:
        index, thr = ds[f"shape_index{suffix}"], ds[f"tilt_threshold{suffix}"]
        new_index, new_thr = index.values.copy(), thr.values.copy()
        for pos in np.ndindex(index.shape):
            point = ds.isel(dict(zip(index.dims, pos)))
            if SHAPES[int(point[f"shape_index{suffix}"])] == "vacuous":
                continue
            args = {**base, **{k: point[k].item() for k in ds[f"shape_index{suffix}"].dims}}
            M, d, N = (int(point[k]) if k in point else int(args[k]) for k in ("M", "d", "N"))
            if M > d + 1:
                raise ValueError(f"relabel names shapes with M <= d + 1 only (a general ETF needs the frame's "
                                 f"tightness, which a set does not store); got M = {M}, d = {d}")
            args.update(M=M, d=d, N=N, seed=int(args["seed"]))
            meanfield = suffix == "_meanfield" or args.get("method") == "meanfield"
            seen = meanfield_draw(_point_target(args)) if meanfield else N
            off = -1.0 / (M - 1)
            name = shape_name(M, d, seen, tilt=float(point[f"tilt_degrees{suffix}"]),
                              cosine_spread=float(point[f"cosine_spread{suffix}"]),
                              scale_spread=float(point[f"scale_spread{suffix}"]),
                              simplex_distance=max(abs(float(point[f"cosine_min{suffix}"]) - off),
                                                   abs(float(point[f"cosine_max{suffix}"]) - off)))
            new_index[pos], new_thr[pos] = float(SHAPES.index(name)), tilt_threshold(seen, M, d)
        ds[f"shape_index{suffix}"] = index.copy(data=new_index)
        ds[f"tilt_threshold{suffix}"] = thr.copy(data=new_thr)
    return ds
