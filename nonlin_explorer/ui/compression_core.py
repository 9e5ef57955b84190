"""The compression explorer's logic without a UI library: input validation, running a method, the views'
data (ideal Gram, PCA projection, the 3-D camera, a dragged unit) and the result -> ``xr.Dataset`` conversion.

Everything here is plain Python/torch/numpy and is tested without a browser
(``tests/test_compression_explorer_core.py``).
"""

from __future__ import annotations

import json
import math
import time
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
    welch_bound,
)
from nonlin_explorer.compression.optimize import finish
from nonlin_explorer.compression.targets import WEIGHT_DISTS, Target
from nonlin_explorer.labels import label
from nonlin_explorer.netcdf import netcdf_attrs
from nonlin_explorer.validation import parse_number

#: Methods the explorer offers: the engine's three, then the baselines.
EXPLORER_METHODS = ("exact", "etf", "meanfield", "magnitude", "kmeans", "sgd")
#: Methods computed for the loss-vs-M view (sgd is left out: seconds per point).
SWEEP_METHODS = ("exact", "etf", "meanfield", "magnitude", "kmeans")
#: Limits on what the explorer accepts (kept interactive on a laptop CPU).
N_MAX = 100_000
D_MAX = 1_000
M_MAX = 64
#: At most this many target weights (N x d): bounds the memory a client of the served app can ask for.
ND_MAX = 5_000_000
#: |a mean| and a spread above this are refused (the loss scales with their square).
A_MAX = 1e6
#: sgd_distill budget inside the explorer.
SGD_STEPS = 3000
SGD_TIME_LIMIT = 3.0

DEFAULTS: dict[str, Any] = dict(N=500, M=4, d=10, weight_dist="gaussian", w_mean=0.0, w_spread=1.0, a_mean=1.0,
                                a_std=1.0, seed=0, activation="relu", method="exact")
#: |w mean| and the weights' spread above this are refused (the kernels see |w| only through bounded functions)
W_MAX = 1e3


@dataclass(frozen=True)
class ExplorerParams:
    """One valid setting of the explorer's controls."""

    N: int = 500
    M: int = 4
    d: int = 10
    weight_dist: str = "gaussian"
    w_mean: float = 0.0  # the weights' mean, along e1
    w_spread: float = 1.0  # the weights' covariance is w_spread^2 I / d (1: E|w - mean|^2 = 1)
    a_mean: float = 1.0
    a_std: float = 1.0
    seed: int = 0
    activation: str = "relu"
    method: str = "exact"

    def target_key(self) -> tuple:
        """What the target depends on (targets are cached by it)."""
        return (self.N, self.d, self.weight_dist, self.w_mean, self.w_spread, self.a_mean, self.a_std, self.seed,
                self.activation)

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
    if N * d > ND_MAX:
        raise ValueError(f"N x d = {N * d:,} target weights; at most {ND_MAX:,}")
    w_mean = float(parse_number(v["w_mean"], "w mean", low=-W_MAX, high=W_MAX))
    w_spread = float(parse_number(v["w_spread"], "w spread", low=0.0, high=W_MAX))
    a_mean = float(parse_number(v["a_mean"], "a mean", low=-A_MAX, high=A_MAX))
    a_std = float(parse_number(v["a_std"], "a spread", low=0.0, high=A_MAX))
    seed = int(parse_number(v["seed"], "seed", low=0, high=2**31 - 1, integer=True))
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
    if weight_dist == "sphere" and (w_mean != 0.0 or w_spread != 1.0):
        raise ValueError("sphere weights are unit vectors: they take no mean or spread (use gaussian, rademacher "
                         "or uniform)")
    if w_spread == 0.0 and w_mean == 0.0:
        raise ValueError("w spread 0 with w mean 0 makes every target weight zero")
    if method == "etf" and M > d + 1:
        raise ValueError(f"the etf method needs a simplex ETF, so M <= d + 1 = {d + 1}; got M = {M}")
    return ExplorerParams(N=N, M=M, d=d, weight_dist=weight_dist, w_mean=w_mean, w_spread=w_spread, a_mean=a_mean,
                          a_std=a_std, seed=seed, activation=activation, method=method)


def make_target(p: ExplorerParams) -> Target:
    """The explorer's random target: weights ``N(w_mean e1, w_spread^2 I / d)`` (or that law's Rademacher or
    uniform version), output weights ``(a_mean + a_std g) / N``."""
    law = {}
    if p.w_mean != 0.0:
        law["w_mean"] = p.w_mean
    if p.w_spread != 1.0:
        law["w_cov"] = p.w_spread**2 / p.d
    return random_target(p.N, p.d, weight_dist=p.weight_dist, a_mean=p.a_mean, a_std=p.a_std, seed=p.seed,
                         activation=p.activation, **law)


def run_method(target: Target, p: ExplorerParams, M: int | None = None, method: str | None = None,
               callback: Callable | None = None, V0=None) -> CompressionResult:
    """Compress ``target`` with the explorer's method (engine or baseline); ``callback`` streams the engine's
    progress (return True to stop). Baselines have no stream: they report once, at the end. ``V0``: warm
    start the exact optimizer from these weights (one run; needs an activation with an exact loss)."""
    M = p.M if M is None else M
    method = p.method if method is None else method
    if V0 is not None:
        if not get_activation(target.activation).exact:
            raise ValueError(f"a warm start runs the exact method, and {target.activation} has no exact loss")
        return compress(target, M=M, method="exact", seed=p.seed, callback=callback, V0=_as_np(V0))
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


def ideal_gram(result: CompressionResult) -> tuple[str, np.ndarray | None]:
    """The ideal shape the panel draws beside the result: ``(title, Gram)``, or ``(title, None)`` when none is drawn
    (titles fit the 280-px table). Always the shape the diagnostics named (the table's "shape" row): a simplex ETF;
    a tilted simplex at its common cosine, with its angle; a general ETF at Welch's bound (the result's signs); for a
    distorted simplex the simplex ETF it departs from, titled so; for a distorted tilted simplex the tilted simplex at
    its common cosine, titled so with its angle; nothing for "vacuous" and "none"."""
    s = result.shape
    M, d = result.V.shape
    name = s.name if s is not None else "none"
    if name in ("simplex ETF", "distorted simplex"):
        title = "Ideal simplex ETF" if name == "simplex ETF" else "Distorted; nearest ideal: simplex ETF"
        return title, etf_gram(M)
    if name in ("tilted simplex", "distorted tilted simplex"):
        G = np.full((M, M), s.common_cosine)
        np.fill_diagonal(G, 1.0)
        if name == "tilted simplex":
            return f"Ideal: tilted simplex, {s.tilt_degrees:.1f} deg", G
        return f"Distorted; nearest ideal: tilted simplex, {s.tilt_degrees:.1f} deg", G
    if name == "general ETF":
        mu = welch_bound(M, d)
        G = np.sign(result.gram.cpu().numpy()) * mu
        np.fill_diagonal(G, 1.0)
        return f"Ideal: ETF, |cos| = {mu:.2f} (Welch)", G
    if name == "vacuous":
        return "No ideal shape: the solution is g = 0", None
    return "No ideal shape near these directions", None


def _as_np(x) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=float)


def unit_rows(V) -> np.ndarray:
    """Rows of V scaled to unit length (zero rows stay zero)."""
    V = _as_np(V)
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    return V / np.where(norms > 0, norms, 1.0)


def pca_axes(V, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` leading (uncentred) principal axes of V's unit rows, ``(axes (k, d), explained (k,))``.

    Uncentred, so the simplex stays around the origin. Each axis points towards the first unit with a
    nonzero component along it (a deterministic sign); axes that do not exist (k > rank) are zero and explain
    nothing. ``explained`` is each axis' share of the directions' energy.
    """
    U = unit_rows(V)
    _, s, vt = np.linalg.svd(U, full_matrices=False)
    axes = np.zeros((k, U.shape[1]))
    n = min(k, vt.shape[0])
    axes[:n] = vt[:n]
    for i in range(n):
        comp = U @ axes[i]
        nz = np.flatnonzero(np.abs(comp) > 1e-12)
        if nz.size and comp[nz[0]] < 0:
            axes[i] = -axes[i]
    energy = float((s ** 2).sum())
    explained = np.zeros(k)
    if energy > 0:
        explained[:n] = s[:n] ** 2 / energy
    return axes, explained


def _project_direction(axes: np.ndarray, direction) -> np.ndarray:
    arrow = np.zeros(axes.shape[0])
    if direction is not None:
        m = _as_np(direction)
        n = np.linalg.norm(m)
        if n > 0:
            arrow = axes @ (m / n)
    return arrow


def pca_projection(V, direction=None, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit directions of V (M, d) projected onto their ``k`` leading principal axes (:func:`pca_axes`), and
    the (unit) ``direction`` projected onto the same axes.

    Returns ``(coords (M, k), arrow (k,), explained (k,))``. Axes that do not exist (M < k or d < k) are zero.
    """
    axes, explained = pca_axes(V, k)
    return unit_rows(V) @ axes.T, _project_direction(axes, direction), explained


def rotation_3d(azimuth: float, elevation: float) -> np.ndarray:
    """The camera rotation of the 3-D view (degrees): ``R = R_x(elevation) R_y(azimuth)``. Rows 0, 1 are the
    screen's x and y axes, row 2 points towards the viewer. At (0, 0) the screen shows PC1 and PC2 (the
    2-D view) and PC3 points at the viewer; azimuth turns about the screen's vertical axis, elevation about
    its horizontal one."""
    a, e = math.radians(azimuth), math.radians(elevation)
    ry = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])
    return rx @ ry


def orthographic(points, azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic projection of 3-D ``points`` (n, 3) seen from (azimuth, elevation) in degrees: screen
    coordinates (n, 2) and depth (n,), larger = nearer the viewer (:func:`rotation_3d`)."""
    P = np.asarray(points, dtype=float).reshape(-1, 3) @ rotation_3d(azimuth, elevation).T
    return P[:, :2], P[:, 2]


def drag_unit(V, axes, index: int, xy) -> np.ndarray:
    """V (M, d) with unit ``index`` moved so that its direction's projection onto the 2-D view's ``axes``
    (2, d), orthonormal rows, lands at ``xy``; only its components within the span of the two axes change,
    and its direction stays a unit vector: the part outside the plane keeps its direction and is rescaled to
    ``sqrt(1 - |xy|^2)``. A point dragged outside the unit circle is pulled back onto it (the direction then
    lies in the plane). The unit's length ``|v|`` is kept (it matters for non-homogeneous activations)."""
    V = _as_np(V).copy()
    A = np.asarray(axes, dtype=float)
    if not 0 <= index < V.shape[0]:
        raise ValueError(f"no unit {index}: M = {V.shape[0]}")
    xy = np.asarray(xy, dtype=float).reshape(2)
    if not np.all(np.isfinite(xy)):
        raise ValueError("the dragged position must be finite")
    r = float(np.linalg.norm(xy))
    if r > 1.0:
        xy = xy / r
        r = 1.0
    length = float(np.linalg.norm(V[index]))
    u = V[index] / length if length > 0 else np.zeros(V.shape[1])
    out = u - A.T @ (A @ u)  # the component outside the view's plane
    n_out = float(np.linalg.norm(out))
    in_plane = A.T @ xy
    if n_out > 1e-12:
        new = in_plane + out * (math.sqrt(max(0.0, 1.0 - r * r)) / n_out)
    elif r > 1e-12:
        new = in_plane / r  # nothing outside the plane: the nearest unit direction in it
    else:
        raise ValueError("the unit cannot be moved to the origin of a plane that holds it entirely")
    V[index] = new / np.linalg.norm(new) * (length if length > 0 else 1.0)
    return V


def evaluate_weights(target: Target, V, method: str = "dragged") -> CompressionResult:
    """``(b*(V), V)``: the exact loss of the given directions with their optimal output weights, packaged like
    any method's result (loss, relative loss, ETF distance...)."""
    t0 = time.perf_counter()
    V = torch.as_tensor(_as_np(V), dtype=target.dtype, device=target.device)
    with torch.no_grad():
        b = target.loss_fn().optimal_b(V)
    return finish(target, b, V, method, t0)


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
            "shape_distance": result.shape.distance if result.shape else math.nan,
            "tilt_degrees": result.shape.tilt_degrees if result.shape else math.nan,
            "energy": result.energy,
            "time": result.time,
        },
        coords={"unit": np.arange(M), "unit2": np.arange(M), "dim": np.arange(d), "iteration": np.arange(hist.size)},
        attrs={"kind": "nonlin_explorer.compression_result", "method": result.method,
               "shape": result.shape.name if result.shape else "",
               "settings": json.dumps(p.to_dict()), **netcdf_attrs(p.to_dict())},
    )
    if wall_time is not None:
        ds["wall_time"] = wall_time
    return label(ds, {"unit": ("compressed unit index", "1"), "time": ("wall-clock seconds of the method", "s")})


def summary_rows(result: CompressionResult, wall_time: float | None = None) -> list[tuple[str, str]]:
    """The table's rows: (name, formatted value)."""
    rows = [("method", result.method), ("M", str(result.M)), ("loss", f"{result.loss:.6g}"),
            ("relative loss", f"{result.relative_loss:.6g}"), *shape_rows(result),
            ("time (s)", f"{result.time:.3f}")]
    if wall_time is not None:
        rows.append(("wall time (s)", f"{wall_time:.3f}"))
    return rows


def shape_rows(result: CompressionResult) -> list[tuple[str, str]]:
    """What the units are (the names of :func:`~nonlin_explorer.compression.frame_shape`), how far from it, and the
    tilt beside the tilt the target's draw alone would give (a tilt below that is not named)."""
    s = result.shape
    if s is None:
        return [("ETF distance", f"{result.etf_distance:.4g}")]
    if s.name == "vacuous":
        return [("shape", s.name)]
    rows = [("shape", s.label), ("distance to shape" if s.name != "none" else "distance to nearest shape",
                                 f"{s.distance:.3g}")]
    if not math.isnan(s.distances.get("tilted simplex", math.nan)):
        rows.append(("tilt (degrees)", f"{s.tilt_degrees:.1f}"))
        rows.append(("significant above", f"{s.tilt_threshold:.1f}"))
    return rows


def loss_vs_m_dataset(p: ExplorerParams, losses: dict[str, dict[int, float]]) -> xr.Dataset:
    """``{method: {M: relative loss}}`` as an ``xr.Dataset`` with dims (method, M); NaN where not computed."""
    methods = [m for m in SWEEP_METHODS if m in losses] + [m for m in losses if m not in SWEEP_METHODS]
    Ms = sorted({M for row in losses.values() for M in row})
    arr = np.full((len(methods), len(Ms)), math.nan)
    for i, m in enumerate(methods):
        for j, M in enumerate(Ms):
            arr[i, j] = losses[m].get(M, math.nan)
    attrs = {"kind": "nonlin_explorer.compression_loss_vs_M", "settings": json.dumps(p.to_dict())}
    ds = xr.Dataset({"relative_loss": (("method", "M"), arr)}, coords={"method": methods, "M": Ms}, attrs=attrs)
    return label(ds)


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
