"""Findings from stored result sets: comparisons over seeds with confidence intervals, and the doc tables made of them.

The nonlinear-advantage sets (``results/advantage_<model>.nc`` and ``results/advantage_<model>_plain.nc``, written
by ``results/make_advantage.py``) are sweeps over (schedule, sparsity, seed) with a per-epoch series. Every number
here is computed from them; :func:`render_tables` gives the markdown tables of docs/nonlinear_advantage.md and
:func:`update_doc` writes them between ``<!-- table:NAME -->`` and ``<!-- end -->`` markers, so one command
regenerates the doc and a test fails when a table differs from what its stored set gives.

The compression sets (``results/compression_<set>.nc``, written by ``results/make_compression.py``) give the tables
of docs/compression.md the same way: the exact optimum's tilt and scatter from the draw alone (``shapes``), the
named configurations (``cases``), the mean-field gap with its fitted rates (``gap``) and the simplification's
cross-term error in N and d (``approximation``).

Intervals are two-sided 95% Student-t intervals over seeds (mean +- t(0.975, n-1) s / sqrt(n), s with ddof 1);
paired comparisons (late minus early, prior minus plain) take the interval of the per-seed differences.

The core-depth grid (``results/core_depth.nc``, written by ``results/make_core_depth.py``) is a sweep over
(dataset, depth, width, sparsity, seed) of runs trained until the prior converged
(:mod:`nonlin_explorer.core_depth`); its tables count only converged runs (status "finished"; a run that hit the
cap is "not converged") and say how many of the seeds that is. A difference between two base depths is a Welch
interval (independent runs), :func:`welch_interval`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from nonlin_explorer.advantage import schedule_gap

__all__ = ["COMPRESSION_SETS", "CONVERGED_EVALS", "FEW", "LEVEL", "PREDICTED_RATE", "advantage_tables",
           "approximation_table", "calibration_table", "cases_table", "compression_tables", "converged",
           "core_depth_tables", "doc_tables", "draw_calibration", "draw_tables", "gap_tables", "load_advantage",
           "load_compression", "load_core_depth", "matched_gap", "render_tables", "shape_counts", "t_interval",
           "unsupported_numbers", "update_doc", "verdict", "welch_interval"]

#: Confidence level of every interval.
LEVEL = 0.95
#: The few-units band of the gap: at most this fraction of the units (or of the layers, for APL) nonlinear.
FEW = 1 / 6
#: The prior has converged when no unit changed state (linear / nonlinear) for this many evaluations in a row.
CONVERGED_EVALS = 5

_MARKER = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end -->)", re.S)


def t_interval(values, level: float = LEVEL) -> tuple[float, float, int]:
    """(mean, half-width, n) of the Student-t interval over the finite ``values``; half-width NaN when n < 2."""
    from scipy import stats

    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return float(v.mean()), half, n


def welch_interval(a, b, level: float = LEVEL) -> tuple[float, float]:
    """(mean(a) - mean(b), half-width) of the Welch interval for two independent samples (finite values only);
    half-width NaN when either has fewer than 2 values."""
    from scipy import stats

    a, b = (np.asarray(v, dtype=float).ravel() for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return math.nan, math.nan
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se2 = va + vb
    if se2 == 0:
        return diff, 0.0
    dof = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return diff, float(stats.t.ppf(0.5 + level / 2, dof) * math.sqrt(se2))


def _fmt(mean: float, half: float, digits: int = 3, scale: float = 1.0, sign: bool = False) -> str:
    if not math.isfinite(mean):
        return "n/a"
    m = f"{scale * mean:+.{digits}f}" if sign else f"{scale * mean:.{digits}f}"
    return m if not math.isfinite(half) else f"{m} ± {scale * half:.{digits}f}"


def verdict(mean: float, half: float) -> str:
    """Where the interval lies against 0: "above 0", "below 0", "includes 0" (or "n/a" without an interval)."""
    if not (math.isfinite(mean) and math.isfinite(half)):
        return "n/a"
    if mean - half > 0:
        return "above 0"
    if mean + half < 0:
        return "below 0"
    return "includes 0"


def converged(ds: xr.Dataset, k: int = CONVERGED_EVALS) -> xr.DataArray:
    """Per run: True when no unit changed state in each of its last ``k`` evaluations (``series_units_changed``)."""
    changed = ds["series_units_changed"]
    length = ds["series_length"]
    out = np.zeros(length.shape, dtype=bool)
    for index in np.ndindex(length.shape):
        n = int(length.values[index])
        tail = changed.values[index][max(0, n - k):n]
        out[index] = n >= k and bool(np.all(tail == 0))
    return xr.DataArray(out, dims=length.dims, coords=length.coords, name="converged")


def load_advantage(folder, name: str) -> tuple[xr.Dataset, xr.Dataset]:
    """The stored set ``advantage_<name>.nc`` and its plain control ``advantage_<name>_plain.nc``."""
    from nonlin_explorer.results import read_netcdf

    folder = Path(folder)
    return read_netcdf(folder / f"advantage_{name}.nc"), read_netcdf(folder / f"advantage_{name}_plain.nc")


def _as_comparison(ds: xr.Dataset) -> xr.Dataset:
    """The sweep's names as :func:`~nonlin_explorer.advantage.schedule_gap` reads them."""
    return ds.rename({"nonlinear_total": "nonlinear"}).transpose("schedule", "sparsity", "seed", ...)


def matched_gap(cmp: xr.Dataset, by: str, low: float, high: float) -> tuple[np.ndarray, list[float]]:
    """Late minus early accuracy per seed, averaged over that seed's matched points of ``by`` in (low, high]
    (NaN for a seed without one), and every matched point used."""
    out = np.full(len(cmp.seed), np.nan)
    used: list[float] = []
    for i, seed in enumerate(cmp.seed.values):
        gap = schedule_gap(cmp.sel(seed=[seed]), by=by)
        pts = gap[by].values
        keep = (pts > low) & (pts <= high) & np.isfinite(gap.values[0])
        if keep.any():
            out[i] = float(gap.values[0][keep].mean())
            used += pts[keep].tolist()
    return out, used


def advantage_tables(ds: xr.Dataset, plain: xr.Dataset) -> dict[str, str]:
    """The markdown tables of one stored advantage set: ``<model>-runs``, ``<model>-gap``, ``<model>-control``."""
    model = str(ds.attrs.get("result_set", "mlp"))
    cmp = _as_comparison(ds)
    seeds = len(cmp.seed)
    conv = converged(ds).transpose("schedule", "sparsity", "seed", ...)
    plain_acc = plain["test_acc"].values.ravel()
    rows = ["| lambda | early: test acc | early: nonlinear | late: test acc | late: nonlinear | "
            "converged (early, late) |", "|---|---|---|---|---|---|"]
    for j, lam in enumerate(cmp.sparsity.values):
        cells = [f"{lam:g}"]
        for sch in ("early", "late"):
            d = cmp.sel(schedule=sch).isel(sparsity=j)
            cells += [_fmt(*t_interval(d.test_acc.values)[:2]), _fmt(*t_interval(d.nonlinear.values)[:2], digits=0)]
        c = conv.isel(sparsity=j)
        cells.append(f"{int(c.sel(schedule='early').sum())}, {int(c.sel(schedule='late').sum())} of {seeds}")
        rows.append("| " + " | ".join(cells) + " |")
    runs = "\n".join(rows)

    gap_rows = ["| matched by | band | points matched | late − early (accuracy points) | interval | "
                "seeds with a match | seeds with late ahead |", "|---|---|---|---|---|---|---|"]
    depth = int(json.loads(ds.attrs.get("fixed", "{}")).get("model_kwargs.depth", 0)) or None  # gate layers
    units = float(np.nanmax(ds["units_total"].values))
    for label, by, top in (("nonlinear count", "nonlinear", units), ("APL (normalized)", "apl_normalized", depth)):
        if top is None:
            continue
        for band, lo, hi in ((f"at most {top * FEW:.3g} (1/6 of {top:g})", -math.inf, top * FEW),
                             (f"above {top * FEW:.3g}", top * FEW, math.inf)):
            per_seed, spans = matched_gap(cmp, by, lo, hi)
            m, h, n = t_interval(per_seed)
            span = f"{min(spans):.3g} to {max(spans):.3g}" if spans else "none"
            ahead = int(np.sum(per_seed[np.isfinite(per_seed)] > 0))
            gap_rows.append(f"| {label} | {band} | {span} | {_fmt(m, h, digits=1, scale=100, sign=True)} | "
                            f"{verdict(m, h)} | {n} of {seeds} | {ahead} of {n} |")
    gap_table = "\n".join(gap_rows)

    ctl = ["| run | test acc | minus plain (paired by seed, points) | interval | train acc − test acc |",
           "|---|---|---|---|---|"]
    plain_gen = plain["train_acc"].values.ravel() - plain_acc
    ctl.append(f"| plain ReLU, no prior | {_fmt(*t_interval(plain_acc)[:2])} | | | "
               f"{_fmt(*t_interval(plain_gen)[:2])} |")
    order = [int(s) for s in cmp.seed.values]
    plain_by_seed = dict(zip([int(s) for s in plain.seed.values], plain_acc))
    ref = np.array([plain_by_seed.get(s, np.nan) for s in order])
    for sch in ("early", "late"):
        for j, lam in enumerate(cmp.sparsity.values):
            d = cmp.sel(schedule=sch).isel(sparsity=j)
            acc = d.test_acc.values
            gen = d.train_acc.values - acc
            m, h, _ = t_interval(acc - ref)
            ctl.append(f"| {sch}, lambda {lam:g} | {_fmt(*t_interval(acc)[:2])} | "
                       f"{_fmt(m, h, digits=1, scale=100, sign=True)} | {verdict(m, h)} | "
                       f"{_fmt(*t_interval(gen)[:2])} |")
    ctl_table = "\n".join(ctl)
    return {f"{model}-runs": runs, f"{model}-gap": gap_table, f"{model}-control": ctl_table}


def load_core_depth(folder) -> xr.Dataset:
    """The stored core-depth grid ``core_depth.nc`` in ``folder``."""
    from nonlin_explorer.results import read_netcdf

    return read_netcdf(Path(folder) / "core_depth.nc")


def _core_values(ds: xr.Dataset, name: str) -> xr.DataArray:
    """``name`` over the converged runs only (NaN elsewhere)."""
    return ds[name].where(ds["status"] == "finished")


def core_depth_tables(ds: xr.Dataset) -> dict[str, str]:
    """The markdown tables of the core-depth grid: ``core_depth`` (every configuration), ``core_depth-depth`` (APL
    at the deepest minus the shallowest base depth) and ``core_depth-order`` (is the APL ordered by task?)."""
    seeds = len(ds.seed)
    tasks = [str(t) for t in ds.dataset.values]
    rows = ["| task | lambda | width | depth | converged | epochs | test acc | nonlinear units | nonlinear fraction | "
            "APL (normalized) | APL (unnormalized) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for task in tasks:
        for lam in ds.sparsity.values:
            for width in ds.width.values:
                for depth in ds.depth.values:
                    d = ds.sel(dataset=task, sparsity=lam, width=width, depth=depth)
                    ok = d["status"].values == "finished"

                    def cell(name, digits=3, d=d, ok=ok):
                        return _fmt(*t_interval(d[name].values[ok])[:2], digits=digits)

                    total = d["units_total"].values[np.isfinite(d["units_total"].values)]
                    units = f"{int(total.max())}" if len(total) else "n/a"
                    rows.append(f"| {task} | {lam:g} | {int(width)} | {int(depth)} | {int(ok.sum())} of {seeds} | "
                                f"{cell('epochs', 0)} | {cell('test_acc')} | {cell('nonlinear_total', 1)} of "
                                f"{units} | {cell('nonlinear_fraction')} | {cell('apl_normalized', 2)} | "
                                f"{cell('apl_unnormalized', 2)} |")
    table = "\n".join(rows)

    low, high = int(ds.depth.values.min()), int(ds.depth.values.max())
    apl = _core_values(ds, "apl_normalized")
    trend = [f"| task | lambda | width | APL, depth {low} | APL, depth {high} | depth {high} minus depth {low} | "
             "interval |", "|---|---|---|---|---|---|---|"]
    for task in tasks:
        for lam in ds.sparsity.values:
            for width in ds.width.values:
                a = apl.sel(dataset=task, sparsity=lam, width=width)
                deep, shallow = a.sel(depth=high).values, a.sel(depth=low).values
                m, h = welch_interval(deep, shallow)
                trend.append(f"| {task} | {lam:g} | {int(width)} | {_fmt(*t_interval(shallow)[:2], digits=2)} | "
                             f"{_fmt(*t_interval(deep)[:2], digits=2)} | {_fmt(m, h, digits=2, sign=True)} | "
                             f"{verdict(m, h)} |")
    trend_table = "\n".join(trend)

    order = ["| lambda | width | depth | " + " | ".join(f"APL, {t}" for t in tasks)
             + " | means ordered | neighbours apart |", "|---|---|---|" + "---|" * len(tasks) + "---|---|"]
    in_order = apart = total = 0
    for lam in ds.sparsity.values:
        for width in ds.width.values:
            for depth in ds.depth.values:
                a = apl.sel(sparsity=lam, width=width, depth=depth)
                stats_ = [t_interval(a.sel(dataset=t).values) for t in tasks]
                means = [m for m, _, _ in stats_]
                known = all(math.isfinite(m) for m in means)
                ordered = known and all(x < y for x, y in zip(means, means[1:]))
                # neighbours apart: each task's interval lies wholly below the next task's (Welch, above 0)
                gaps = [welch_interval(a.sel(dataset=t2).values, a.sel(dataset=t1).values)
                        for t1, t2 in zip(tasks, tasks[1:])]
                separated = all(verdict(m, h) == "above 0" for m, h in gaps)
                total += 1
                in_order += ordered
                apart += separated
                cells = [f"{lam:g}", f"{int(width)}", f"{int(depth)}", *(_fmt(m, h, digits=2) for m, h, _ in stats_),
                         ("yes" if ordered else "no") if known else "n/a",
                         ("yes" if separated else "no") if known else "n/a"]
                order.append("| " + " | ".join(cells) + " |")
    cells = ["all", "", "", *([""] * len(tasks)), f"{in_order} of {total}", f"{apart} of {total}"]
    order.append("| " + " | ".join(cells) + " |")
    order_table = "\n".join(order)
    return {"core_depth": table, "core_depth-depth": trend_table, "core_depth-order": order_table}


_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")


def _numbers(text: str) -> set[str]:
    """The numbers written in ``text``, as written (a leading + dropped, a minus sign as "-")."""
    return {n.replace("−", "-").lstrip("+") for n in _NUMBER.findall(text)}


def unsupported_numbers(prose: str, tables: Mapping[str, str], allowed=()) -> list[str]:
    """Numbers written in ``prose`` (code spans and the marked tables left out) that no table cell and no
    ``allowed`` value (the stored set's settings) gives; a quoted number must be written as the table writes it
    (0.5 does not quote a cell's 0.50)."""
    prose = _MARKER.sub("", prose)
    prose = re.sub(r"`[^`]*`", "", prose)
    known = set().union(*(_numbers(t) for t in tables.values()))
    known |= {f"{a:g}" for a in allowed} | {str(a) for a in allowed}
    return sorted(n for n in _numbers(prose) if n not in known)


def render_tables(folder, names: Sequence[str] = ("mlp", "cnn")) -> dict[str, str]:
    """Every table of the stored sets in ``folder`` that exist (a set not computed yet gives no table): the
    advantage sets ``names`` and the compression sets."""
    out: dict[str, str] = {}
    for name in names:
        if (Path(folder) / f"advantage_{name}.nc").exists():
            out.update(advantage_tables(*load_advantage(folder, name)))
    if (Path(folder) / "core_depth.nc").exists():
        out.update(core_depth_tables(load_core_depth(folder)))
    out.update(compression_tables(folder))
    return out


def doc_tables(text: str) -> dict[str, str]:
    """The tables between the markers of a doc, by name."""
    return {m.group("name"): m.group("body").strip("\n") for m in _MARKER.finditer(text)}


def update_doc(path, tables: Mapping[str, str]) -> list[str]:
    """Replace each marked table of the doc at ``path`` with ``tables[name]``; returns the names changed.
    ``ValueError`` for a marker without a table (its set is missing)."""
    path = Path(path)
    text = path.read_text()
    missing = sorted(set(doc_tables(text)) - set(tables))
    if missing:
        raise ValueError(f"{path}: no stored result set gives the table(s) {', '.join(missing)}")
    changed: list[str] = []

    def put(m: re.Match) -> str:
        name = m.group("name")
        if m.group("body").strip("\n") != tables[name]:
            changed.append(name)
        return f"{m.group(1)}{tables[name]}\n{m.group(4)}"

    new = _MARKER.sub(put, text)
    if new != text:
        path.write_text(new)
    return changed


# -- compression (results/compression_<set>.nc, written by results/make_compression.py) --------------------------

#: The stored compression sets, by the name ``results/make_compression.py`` gives them.
COMPRESSION_SETS = ("shapes", "cases", "gap", "gap_erf", "approximation")
#: The gap rate each law predicts (exponent of N in ``ratio - 1 ~ N^alpha``): -1/2 where the law leaves the
#: orientation free (isotropic with a mean, erf with a mean), -1 where it fixes it (anisotropic).
PREDICTED_RATE = {"isotropic+mean": -0.5, "anisotropic": -1.0, "erf": -0.5}


def load_compression(folder, name: str) -> xr.Dataset:
    """The stored set ``compression_<name>.nc``."""
    from nonlin_explorer.results import read_netcdf

    return read_netcdf(Path(folder) / f"compression_{name}.nc")


def shape_counts(ds: xr.Dataset, var: str = "shape_index") -> str:
    """The shape names of the runs in ``ds[var]`` with how many runs got each, most frequent first."""
    names = json.loads(ds.attrs["shape_names"])
    codes = [int(c) for c in np.asarray(ds[var].values, dtype=float).ravel() if np.isfinite(c)]
    counts = sorted({names[c]: codes.count(c) for c in set(codes)}.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {n}" for name, n in counts)


def _ci(values, digits: int = 3) -> str:
    return _fmt(*t_interval(values)[:2], digits=digits)


def _num(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _interval(fit, which: str) -> str:
    lo, hi = getattr(fit, f"{which}_ci")
    return f"{getattr(fit, which):+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _rate_fit(da: xr.DataArray):
    """``log(da) = c + alpha log N + beta log d`` over every (N, d, seed) with ``da > 0``, and the runs left out."""
    from nonlin_explorer.compression.approximation import fit_exponents

    kept = da.where(da > 0)
    return fit_exponents(kept), int(np.isfinite(da.values).sum() - np.isfinite(kept.values).sum())


def _draw_fit(da: xr.DataArray, n_power: float | None = None):
    """``da ~ scale * N^n_power * d^d_power`` by least squares in logs over every positive run (``n_power`` fitted
    unless given), with the largest ratio of a run to the fit."""
    from nonlin_explorer.compression.diagnostics import DrawFit

    full = da.broadcast_like(da)
    y = full.values.ravel()
    N = full.N.broadcast_like(full).values.ravel().astype(float)
    d = full.d.broadcast_like(full).values.ravel().astype(float)
    keep = np.isfinite(y) & (y > 0)
    y, N, d = np.log(y[keep]), np.log(N[keep]), np.log(d[keep])
    if n_power is None:
        coef = np.linalg.lstsq(np.c_[np.ones_like(N), N, d], y, rcond=None)[0]
    else:
        c, b = np.linalg.lstsq(np.c_[np.ones_like(N), d], y - n_power * N, rcond=None)[0]
        coef = (c, n_power, b)
    envelope = float(np.exp(y - (coef[0] + coef[1] * N + coef[2] * d)).max())
    return DrawFit(float(np.exp(coef[0])), float(coef[1]), float(coef[2]), envelope)


def draw_calibration(ds: xr.DataArray) -> dict:
    """What the draw alone gives the exact optimum, from the centred runs (w_mean 0) of the ``shapes`` set:
    :class:`~nonlin_explorer.compression.diagnostics.DrawFit` of the tilt (M = 2; M = 4, used for M > 2) and of
    the cosine and scale spread (M = 4, N power fixed at -1/2). ``frame_shape``'s constants are these, rounded."""
    centred = ds.sel(w_mean=0.0)
    return {"tilt M=2": _draw_fit(centred.tilt_degrees.sel(M=2)), "tilt M>2": _draw_fit(centred.tilt_degrees.sel(M=4)),
            "cosine": _draw_fit(centred.cosine_spread.sel(M=4), -0.5),
            "scale": _draw_fit(centred.scale_spread.sel(M=4), -0.5)}


def calibration_table(ds: xr.Dataset) -> dict[str, str]:
    """``compression-calibration``: :func:`draw_calibration` beside the constants ``frame_shape`` uses and what they
    allow at N = 1000 (:data:`~nonlin_explorer.compression.diagnostics.MARGIN` times the largest run over the fit,
    times the fit; never below the numerical floors)."""
    from nonlin_explorer.compression import diagnostics as D

    used = {"tilt M=2": D.NOISE_TILT[2], "tilt M>2": D.NOISE_TILT["M>2"], "cosine": D.COSINE_SCATTER,
            "scale": D.SCALE_SCATTER}
    what = {"tilt M=2": "tilt, M = 2 (deg)", "tilt M>2": "tilt, M = 4 (deg; used for M > 2)",
            "cosine": "cosine spread, M = 4", "scale": "scale spread, M = 4"}
    allowed = {"tilt M=2": lambda d: D.tilt_threshold(1000, 2, d), "tilt M>2": lambda d: D.tilt_threshold(1000, 4, d),
               "cosine": lambda d: D.equiangular_tolerance(1000, d), "scale": lambda d: D.scale_tolerance(1000, d)}
    ds_ = [int(d) for d in ds.d.values]
    runs = len(ds.N) * len(ds.d) * len(ds.seed)
    rows = [f"| draw statistic ({runs} centred runs) | fit: scale x N^a x d^b | largest run / fit | "
            "frame_shape's constants | " + " | ".join(f"allowed at N = 1000, d = {d}" for d in ds_) + " |",
            "|---" * (4 + len(ds_)) + "|"]
    for key, fit in draw_calibration(ds).items():
        c = used[key]
        bounds = " | ".join(f"{allowed[key](d):.3g}" for d in ds_)
        rows.append(f"| {what[key]} | {fit.scale:.3g} N^{fit.n_power:+.2f} d^{fit.d_power:+.2f} | {fit.envelope:.2f} | "
                    f"{c.scale:g} N^{c.n_power:+.2f} d^{c.d_power:+.2f}, x {c.envelope:g} x {D.MARGIN:g} | {bounds} |")
    return {"compression-calibration": "\n".join(rows)}


def draw_tables(ds: xr.Dataset) -> dict[str, str]:
    """Tables of the ``shapes`` set: ``compression-tilt`` (tilt of the exact optimum per w_mean, M, d and N),
    ``compression-draw`` (spreads and names per w_mean, M, N, over d and seeds) and ``compression-tilt-fit``."""
    seeds = len(ds.seed)
    ns = [int(n) for n in ds.N.values]
    rows = ["| w mean | M | d | " + " | ".join(f"N = {n}" for n in ns) + " |", "|---" * (3 + len(ns)) + "|"]
    for w in ds.w_mean.values:
        for M in ds.M.values:
            for d in ds.d.values:
                cells = [_ci(ds.tilt_degrees.sel(w_mean=w, M=M, d=d, N=n).values, 2) for n in ns]
                rows.append(f"| {w:g} | {M} | {d} | " + " | ".join(cells) + " |")
    tilt = "\n".join(rows)
    runs = len(ds.d) * seeds
    rows = ["| w mean | M | N | tilt named above (deg, over d) | largest cosine spread x sqrt(N) | "
            f"largest scale spread x sqrt(N) | names ({runs} runs: d x seeds) |", "|---|---|---|---|---|---|---|"]
    for w in ds.w_mean.values:
        for M in ds.M.values:
            for n in ns:
                p = ds.sel(w_mean=w, M=M, N=n)
                cos = "n/a" if M < 3 else f"{float(p.cosine_spread.max()) * math.sqrt(n):.2f}"
                thr = f"{float(p.tilt_threshold.min()):.2f}-{float(p.tilt_threshold.max()):.2f}"
                rows.append(f"| {w:g} | {M} | {n} | {thr} | {cos} | "
                            f"{float(p.scale_spread.max()) * math.sqrt(n):.2f} | {shape_counts(p)} |")
    draw = "\n".join(rows)
    from nonlin_explorer.compression.diagnostics import NOISE_TILT

    rows = ["| w mean | M | tilt ~ N^alpha d^beta: alpha (95% CI) | beta (95% CI) | R^2 | runs | "
            "frame_shape's noise tilt |", "|---|---|---|---|---|---|---|"]
    for w in ds.w_mean.values:
        for M in ds.M.values:
            fit, _ = _rate_fit(ds.tilt_degrees.sel(w_mean=w, M=M))
            c = NOISE_TILT[2] if M == 2 else NOISE_TILT["M>2"]
            noise = f"{c.scale:g} N^{c.n_power:+.2f} d^{c.d_power:+.2f}" if w == 0 else ""
            rows.append(f"| {w:g} | {M} | {_interval(fit, 'alpha')} | {_interval(fit, 'beta')} | {fit.r2:.2f} | "
                        f"{fit.points} | {noise} |")
    return {"compression-tilt": tilt, "compression-draw": draw, "compression-tilt-fit": "\n".join(rows),
            **calibration_table(ds)}


def cases_table(ds: xr.Dataset) -> dict[str, str]:
    """``compression-cases``: each named configuration's exact optimum and mean field over seeds."""
    seeds = len(ds.seed)
    rows = [f"| configuration | method | names ({seeds} seeds) | relative loss | / exact (paired) | tilt (deg) | "
            "tilt named above | cosines (all seeds) | scale spread |", "|---|---|---|---|---|---|---|---|---|"]
    for case in ds.case.values:
        exact = ds.sel({"case": case, "method": "exact"}).relative_loss.values
        for method in ds.method.values:
            p = ds.sel({"case": case, "method": method})
            ratio = "" if method == "exact" else _ci(p.relative_loss.values / exact)
            rows.append(f"| {case} | {method} | {shape_counts(p)} | {_ci(p.relative_loss.values, 4)} | {ratio} | "
                        f"{_ci(p.tilt_degrees.values, 1)} | {_num(float(p.tilt_threshold.max()))} | "
                        f"{float(p.cosine_min.min()):.3f} to {float(p.cosine_max.max()):.3f} | "
                        f"{_ci(p.scale_spread.values)} |")
    return {"compression-cases": "\n".join(rows)}


def gap_tables(ds: xr.Dataset) -> dict[str, str]:
    """Tables of the ``gap`` set: ``compression-gap`` (plain and oracle ratio per law, N, d),
    ``compression-gap-fit`` (rates in N and d against the prediction) and ``compression-gap-shapes``."""
    ds_ = ds.transpose("law", "N", "d", "seed")
    dims = [int(d) for d in ds_.d.values]
    head = " | ".join(f"plain, d = {d}" for d in dims) + " | " + " | ".join(f"oracle, d = {d}" for d in dims)
    rows = [f"| law | N | {head} |", "|---" * (2 + 2 * len(dims)) + "|"]
    for law in ds_.law.values:
        for n in ds_.N.values:
            p = ds_.sel(law=law, N=n)
            cells = [_ci(p.plain_ratio.sel(d=d).values) for d in dims]
            cells += [_ci(p.oracle_ratio.sel(d=d).values, 4) for d in dims]
            rows.append(f"| {law} | {n} | " + " | ".join(cells) + " |")
    table = "\n".join(rows)
    rows = ["| law | ratio | gap ~ N^alpha d^beta: alpha (95% CI) | beta (95% CI) | R^2 | runs (gap <= 0 left out) | "
            "predicted alpha | prediction inside the interval |", "|---|---|---|---|---|---|---|---|"]
    for law in ds_.law.values:
        for which in ("plain", "oracle"):
            fit, dropped = _rate_fit(ds_[f"{which}_ratio"].sel(law=law) - 1.0)
            pred = PREDICTED_RATE.get(str(law), math.nan)
            inside = "yes" if fit.alpha_ci[0] <= pred <= fit.alpha_ci[1] else "no"
            rows.append(f"| {law} | {which} | {_interval(fit, 'alpha')} | {_interval(fit, 'beta')} | {fit.r2:.2f} | "
                        f"{fit.points} ({dropped}) | {pred:+.1f} | {inside if which == 'plain' else ''} |")
    fits = "\n".join(rows)
    runs = len(ds_.d) * len(ds_.seed)
    rows = [f"| law | N | mean field: names ({runs} runs: d x seeds) | tilt (deg) | exact optimum: names | "
            "tilt (deg) |",
            "|---|---|---|---|---|---|"]
    for law in ds_.law.values:
        for n in ds_.N.values:
            p = ds_.sel(law=law, N=n)
            rows.append(f"| {law} | {n} | {shape_counts(p, 'shape_index_meanfield')} | "
                        f"{_ci(p.tilt_degrees_meanfield.values, 1)} | {shape_counts(p, 'shape_index_exact')} | "
                        f"{_ci(p.tilt_degrees_exact.values, 1)} |")
    return {"compression-gap": table, "compression-gap-fit": fits, "compression-gap-shapes": "\n".join(rows)}


def approximation_table(ds: xr.Dataset) -> dict[str, str]:
    """``compression-approximation``: the cross-term error fitted as ``N^alpha d^beta`` over (N, d, seed)."""
    rows = ["| error | alpha (N), 95% CI | beta (d), 95% CI | R^2 | runs | N | d |", "|---|---|---|---|---|---|---|"]
    grid = (f"{int(ds.N.min())}..{int(ds.N.max())} | " + ", ".join(str(int(d)) for d in ds.d.values))
    for var, what in (("cross_term_sup", "largest found over the sphere (sup, a lower bound)"),
                      ("cross_term_rms", "RMS over random directions")):
        fit, _ = _rate_fit(ds[var].transpose("N", "d", "seed"))
        rows.append(f"| {what} | {_interval(fit, 'alpha')} | {_interval(fit, 'beta')} | {fit.r2:.2f} | "
                    f"{fit.points} | {grid} |")
    return {"compression-approximation": "\n".join(rows)}


def compression_tables(folder) -> dict[str, str]:
    """Every compression table of the stored sets in ``folder`` that exist; ``gap`` and ``gap_erf`` make one gap
    table (erf's missing N are n/a)."""
    sets = {name: load_compression(folder, name) for name in COMPRESSION_SETS
            if (Path(folder) / f"compression_{name}.nc").exists()}
    gaps = [sets.pop(name) for name in ("gap", "gap_erf") if name in sets]
    if gaps:
        sets["gap"] = gaps[0] if len(gaps) == 1 else xr.concat(gaps, dim="law", join="outer",
                                                                combine_attrs="override")
    makers = {"shapes": draw_tables, "cases": cases_table, "gap": gap_tables, "approximation": approximation_table}
    out: dict[str, str] = {}
    for name, ds in sets.items():
        out.update(makers[name](ds))
    return out
