"""Findings from stored result sets: comparisons over seeds with confidence intervals, and the doc tables made of them.

The nonlinear-advantage sets (``results/advantage_<model>.nc`` and ``results/advantage_<model>_plain.nc``, written
by ``results/make_advantage.py``) are sweeps over (schedule, sparsity, seed) with a per-epoch series. Every number
here is computed from them; :func:`render_tables` gives the markdown tables of docs/nonlinear_advantage.md and
:func:`update_doc` writes them between ``<!-- table:NAME -->`` and ``<!-- end -->`` markers, so one command
regenerates the doc and a test fails when a table differs from what its stored set gives.

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

__all__ = ["CONVERGED_EVALS", "FEW", "LEVEL", "advantage_tables", "converged", "core_depth_tables", "doc_tables",
           "load_advantage", "load_core_depth", "matched_gap", "render_tables", "t_interval", "unsupported_numbers",
           "update_doc", "verdict", "welch_interval"]

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
    """Every table of the stored sets in ``folder`` that exist (a set not computed yet gives no table)."""
    out: dict[str, str] = {}
    for name in names:
        if (Path(folder) / f"advantage_{name}.nc").exists():
            out.update(advantage_tables(*load_advantage(folder, name)))
    if (Path(folder) / "core_depth.nc").exists():
        out.update(core_depth_tables(load_core_depth(folder)))
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
