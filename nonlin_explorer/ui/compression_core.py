"""The compression explorer's logic without Panel or Bokeh: input validation, running a method, the views'
data (ETF Gram, PCA projection) and the result -> ``xr.Dataset`` conversion for export.

Everything here is plain Python/torch/numpy and is tested without a browser
(``tests/test_compression_explorer_core.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from nonlin_explorer.compression import (
    ACTIVATIONS,
    CompressionResult,
    compress,
    get_activation,
    kmeans_merge,
    magnitude_prune,
    random_target,
    sgd_distill,
    simplex_gram,
)
from nonlin_explorer.compression.targets import WEIGHT_DISTS, Target
from nonlin_explorer.ui.dashboard_core import parse_number

#: Methods the explorer offers: the engine's three, then the baselines.
EXPLORER_METHODS = ("exact", "etf", "meanfield", "magnitude", "kmeans", "sgd")
#: Methods computed for the loss-vs-M view (sgd is left out: seconds per point).
SWEEP_METHODS = ("exact", "etf", "meanfield", "magnitude", "kmeans")
#: Limits on what the explorer accepts (kept interactive on a laptop CPU).
N_MAX = 100_000
D_MAX = 1_000
M_MAX = 64
#: sgd_distill budget inside the explorer.
SGD_STEPS = 3000
SGD_TIME_LIMIT = 3.0

DEFAULTS: dict[str, Any] = dict(N=500, M=4, d=10, weight_dist="gaussian", a_mean=1.0, a_std=1.0, seed=0,
                                activation="relu", method="exact")


@dataclass(frozen=True)
class ExplorerParams:
    """One valid setting of the explorer's controls."""

    N: int = 500
    M: int = 4
    d: int = 10
    weight_dist: str = "gaussian"
    a_mean: float = 1.0
    a_std: float = 1.0
    seed: int = 0
    activation: str = "relu"
    method: str = "exact"

    def target_key(self) -> tuple:
        """What the target depends on (targets are cached by it)."""
        return (self.N, self.d, self.weight_dist, self.a_mean, self.a_std, self.seed, self.activation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_params(raw: dict[str, Any]) -> ExplorerParams:
    """Turn user input (text or numbers) into :class:`ExplorerParams`, or raise ``ValueError`` with a message
    fit to show the user. Checks what ``compress`` and the baselines would reject, before running anything."""
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    v = {**DEFAULTS, **raw}
    N = int(parse_number(v["N"], "N", low=2, high=N_MAX, integer=True))
    d = int(parse_number(v["d"], "d", low=1, high=D_MAX, integer=True))
    M = int(parse_number(v["M"], "M", low=1, integer=True))
    if M >= N:
        raise ValueError(f"M must be smaller than N = {N}, got M = {M}")
    if M > M_MAX:
        raise ValueError(f"M: must be <= {M_MAX}, got {M}")
    a_mean = float(parse_number(v["a_mean"], "a mean"))
    a_std = float(parse_number(v["a_std"], "a spread", low=0.0))
    seed = int(parse_number(v["seed"], "seed", low=0, integer=True))
    weight_dist, activation, method = str(v["weight_dist"]), str(v["activation"]), str(v["method"])
    if weight_dist not in WEIGHT_DISTS:
        raise ValueError(f"unknown weight distribution {weight_dist!r}; choose one of {', '.join(WEIGHT_DISTS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if method not in EXPLORER_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(EXPLORER_METHODS)}")
    if method == "exact" and not get_activation(activation).exact:
        closed = ", ".join(a for a in ACTIVATIONS if get_activation(a).exact)
        raise ValueError(f"{activation} has no exact (closed-form) loss: the exact method needs {closed}")
    if method == "meanfield" and activation != "relu":
        raise ValueError(f"the mean-field method is derived for relu, not {activation}")
    if method == "etf" and M > d + 1:
        raise ValueError(f"the etf method needs a simplex ETF, so M <= d + 1 = {d + 1}; got M = {M}")
    return ExplorerParams(N=N, M=M, d=d, weight_dist=weight_dist, a_mean=a_mean, a_std=a_std, seed=seed,
                          activation=activation, method=method)


def make_target(p: ExplorerParams) -> Target:
    return random_target(p.N, p.d, weight_dist=p.weight_dist, a_mean=p.a_mean, a_std=p.a_std, seed=p.seed,
                         activation=p.activation)


def run_method(target: Target, p: ExplorerParams, M: int | None = None, method: str | None = None,
               callback: Callable | None = None) -> CompressionResult:
    """Compress ``target`` with the explorer's method (engine or baseline); ``callback`` streams the engine's
    progress (return True to stop). Baselines have no stream: they report once, at the end."""
    M = p.M if M is None else M
    method = p.method if method is None else method
    if method in ("exact", "etf", "meanfield"):
        return compress(target, M=M, method=method, seed=p.seed, callback=callback)
    if method == "magnitude":
        return magnitude_prune(target, M=M)
    if method == "kmeans":
        return kmeans_merge(target, M=M, seed=p.seed)
    if method == "sgd":
        return sgd_distill(target, M=M, seed=p.seed, steps=SGD_STEPS, time_limit=SGD_TIME_LIMIT)
    raise ValueError(f"unknown method {method!r}")


def etf_gram(M: int) -> np.ndarray:
    """The ideal simplex ETF's Gram matrix (1 on the diagonal, -1/(M-1) off it), as numpy."""
    return simplex_gram(M).numpy()


def gram_columns(G) -> dict[str, list]:
    """A Gram matrix as heatmap columns (row-major): x = column, y = row (row 0 at the top), value, label."""
    G = np.asarray(G, dtype=float)
    M = G.shape[0]
    xs, ys = np.meshgrid(np.arange(M), np.arange(M))
    vals = G.ravel()
    return {"x": xs.ravel().tolist(), "y": (M - 1 - ys).ravel().tolist(), "value": vals.tolist(),
            "label": [f"{v:.2f}" for v in vals]}


def pca_projection(V, direction=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit directions of V (M, d) projected onto their two leading principal axes (uncentred: the simplex
    stays around the origin), and the (unit) ``direction`` projected onto the same axes.

    Returns ``(coords (M, 2), arrow (2,), explained (2,))``; ``explained`` is each axis' share of the
    directions' energy. Axes that do not exist (M = 1 or d = 1) are zero.
    """
    V = np.asarray(V.detach().cpu() if isinstance(V, torch.Tensor) else V, dtype=float)
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    U = V / np.where(norms > 0, norms, 1.0)
    _, s, vt = np.linalg.svd(U, full_matrices=False)
    axes = np.zeros((2, V.shape[1]))
    k = min(2, vt.shape[0])
    axes[:k] = vt[:k]
    # A deterministic sign: each axis points towards the first unit with a nonzero component.
    for i in range(k):
        comp = U @ axes[i]
        nz = np.flatnonzero(np.abs(comp) > 1e-12)
        if nz.size and comp[nz[0]] < 0:
            axes[i] = -axes[i]
    coords = U @ axes.T
    arrow = np.zeros(2)
    if direction is not None:
        m = np.asarray(direction.detach().cpu() if isinstance(direction, torch.Tensor) else direction, dtype=float)
        n = np.linalg.norm(m)
        if n > 0:
            arrow = axes @ (m / n)
    energy = float((s ** 2).sum())
    explained = np.zeros(2)
    if energy > 0:
        explained[:k] = s[:k] ** 2 / energy
    return coords, arrow, explained


def result_dataset(p: ExplorerParams, result: CompressionResult, *, wall_time: float | None = None) -> xr.Dataset:
    """One compression result as an ``xr.Dataset`` (netCDF-ready): b, V, Gram, ETF Gram, convergence history,
    scalar metrics; the settings in ``attrs`` (``settings`` as JSON)."""
    M, d = result.V.shape
    hist = np.asarray(result.history, dtype=float)
    ds = xr.Dataset(
        {
            "b": (("unit",), result.b.detach().cpu().numpy().astype(float)),
            "V": (("unit", "dim"), result.V.detach().cpu().numpy().astype(float)),
            "gram": (("unit", "unit2"), result.gram.detach().cpu().numpy().astype(float)),
            "etf_gram": (("unit", "unit2"), etf_gram(M)),
            "history": (("iteration",), hist),
            "loss": result.loss,
            "relative_loss": result.relative_loss,
            "etf_distance": result.etf_distance,
            "energy": result.energy,
            "time": result.time,
        },
        coords={"unit": np.arange(M), "unit2": np.arange(M), "dim": np.arange(d), "iteration": np.arange(hist.size)},
        attrs={"kind": "nonlin_explorer.compression_result", "method": result.method,
               "settings": json.dumps(p.to_dict()), **{k: _attr(v) for k, v in p.to_dict().items()}},
    )
    if wall_time is not None:
        ds["wall_time"] = wall_time
    return ds


def _attr(v):
    return v if isinstance(v, (int, float, str)) else json.dumps(v)


def summary_rows(result: CompressionResult, wall_time: float | None = None) -> list[tuple[str, str]]:
    """The table's rows: (name, formatted value)."""
    rows = [("method", result.method), ("M", str(result.M)), ("loss", f"{result.loss:.6g}"),
            ("relative loss", f"{result.relative_loss:.6g}"), ("ETF distance", f"{result.etf_distance:.4g}"),
            ("time (s)", f"{result.time:.3f}")]
    if wall_time is not None:
        rows.append(("wall time (s)", f"{wall_time:.3f}"))
    return rows


def summary_markdown(result: CompressionResult | None, wall_time: float | None = None) -> str:
    if result is None:
        return "*no result yet*"
    lines = ["| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(result, wall_time)]
    return "\n".join(lines)


def loss_vs_m_dataset(p: ExplorerParams, losses: dict[str, dict[int, float]]) -> xr.Dataset:
    """``{method: {M: relative loss}}`` as an ``xr.Dataset`` with dims (method, M); NaN where not computed."""
    methods = [m for m in SWEEP_METHODS if m in losses] + [m for m in losses if m not in SWEEP_METHODS]
    Ms = sorted({M for row in losses.values() for M in row})
    arr = np.full((len(methods), len(Ms)), math.nan)
    for i, m in enumerate(methods):
        for j, M in enumerate(Ms):
            arr[i, j] = losses[m].get(M, math.nan)
    return xr.Dataset({"relative_loss": (("method", "M"), arr)}, coords={"method": methods, "M": Ms},
                      attrs={"kind": "nonlin_explorer.compression_loss_vs_M", "settings": json.dumps(p.to_dict())})


def sweep_ms(p: ExplorerParams, m_max: int = 8) -> list[int]:
    """The M values of the loss-vs-M view: 1 .. min(m_max, N - 1)."""
    return list(range(1, min(m_max, p.N - 1) + 1))


def sweep_applicable(p: ExplorerParams, method: str, M: int) -> bool:
    """Whether ``method`` can run at ``M`` for these settings (the same rules as :func:`validate_params`)."""
    try:
        validate_params({**p.to_dict(), "method": method, "M": M})
    except ValueError:
        return False
    return True
