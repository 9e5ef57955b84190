"""What the early-vs-late view draws, as plain numbers: a stored result set's lines, bands and gap, and the gap of
the runs streamed so far. Pure functions over ``xr.Dataset``s (no UI library), tested without a browser.

The stored sets are ``results/advantage_<name>.nc`` (``results/make_advantage.py``: schedule x sparsity x seed, the
same budget for both schedules). The figure is the one of ``notebooks/nonlinear_advantage.ipynb``: final test
accuracy against nonlinear units left, one line per schedule through the means over seeds (one point per lambda),
every run a dot; here with a band of +- one standard deviation over seeds, and the gap (late minus early) at matched
count with its 95% interval over seeds (:mod:`nonlin_explorer.findings`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from nonlin_explorer.advantage import ADVANTAGE_SCHEDULES, gap_at_matched_apl, gap_at_matched_count
from nonlin_explorer.findings import FEW, LEVEL, matched_gap, t_interval, verdict

__all__ = ["DEFAULT_SET", "RESULTS", "config_label", "find_stored", "live_gaps", "points_dataset", "stored_figure",
           "stored_names", "stored_run_config"]

#: The folder of the stored result sets: ``results/`` beside the package in a checkout of the repository (they ship
#: with the repository, not with an installed wheel).
RESULTS = Path(__file__).resolve().parents[2] / "results"
#: The set the view opens on: the configuration where the advantage holds.
DEFAULT_SET = "mlp"


def stored_names(folder: Path = RESULTS) -> list[str]:
    """The names of the stored comparison sets in ``folder`` (``advantage_<name>.nc``, plain controls left out)."""
    if not folder.is_dir():
        return []
    names = [p.name[len("advantage_"):-len(".nc")] for p in sorted(folder.glob("advantage_*.nc"))]
    return [n for n in names if not n.endswith("_plain")]


def find_stored(name_or_path: str | Path, folder: Path = RESULTS) -> Path:
    """The file of a stored set: a name (``"mlp"``: ``results/advantage_mlp.nc``) or a path to a ``.nc`` file.
    ``FileNotFoundError`` with a message that says where it was looked for and why it may be missing."""
    text = str(name_or_path)
    path = Path(text).expanduser() if text.endswith(".nc") else folder / f"advantage_{text}.nc"
    if path.is_file():
        return path
    if text.endswith(".nc"):
        raise FileNotFoundError(f"no stored result set at {path}")
    have = stored_names(folder)
    where = (f"stored sets here: {', '.join(have)}" if have else
             "the stored sets ship with the repository (results/), not with an installed package: run from a "
             "checkout, or pass stored='path/to/advantage_mlp.nc'")
    raise FileNotFoundError(f"no stored result set {text!r} ({path} is missing; {where})")


def _spec(ds: xr.Dataset) -> dict[str, Any]:
    try:
        spec = json.loads(str(ds.attrs.get("spec", "{}")))
    except json.JSONDecodeError:
        return {}
    return spec if isinstance(spec, dict) else {}


def stored_run_config(ds: xr.Dataset) -> dict[str, Any]:
    """The TrainConfig fields every run of a stored set shares (its sweep's ``base``), or {} if it does not say."""
    base = _spec(ds).get("base", {})
    return dict(base) if isinstance(base, dict) else {}


def config_label(config: dict[str, Any]) -> str:
    """``mlp (width 64, depth 4) on mnist1d (4000 samples), 40 epochs, late: prior on at epoch 20``."""
    kwargs = ", ".join(f"{k} {v}" for k, v in (config.get("model_kwargs") or {}).items())
    samples = (config.get("dataset_kwargs") or {}).get("num_samples")
    epochs = config.get("epochs")
    switch = config.get("switch_epoch")
    if switch is None and epochs is not None:
        switch = epochs / 2
    text = f"{config.get('model', '?')}{f' ({kwargs})' if kwargs else ''} on {config.get('dataset', '?')}"
    text += f" ({samples} samples)" if samples else ""
    if epochs is not None:
        text += f", {epochs:g} epochs, late: prior on at epoch {switch:g}"
    return text


def _comparison(ds: xr.Dataset) -> xr.Dataset:
    """A stored sweep under the names :func:`~nonlin_explorer.advantage.schedule_gap` reads (``nonlinear``)."""
    if "nonlinear" not in ds.data_vars and "nonlinear_total" in ds.data_vars:
        ds = ds.rename({"nonlinear_total": "nonlinear"})
    for name in ("schedule", "sparsity", "seed"):
        if name not in ds.dims:
            raise ValueError(f"not an early-vs-late result set: it has no {name!r} dimension (dims: "
                             f"{', '.join(map(str, ds.dims))})")
    for name in ("nonlinear", "test_acc"):
        if name not in ds.data_vars:
            raise ValueError(f"not an early-vs-late result set: it has no variable {name!r}")
    return ds.transpose("schedule", "sparsity", "seed", ...)


def _clean(values) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in np.asarray(values, dtype=float).ravel()]


def _schedule_lines(cmp: xr.Dataset) -> dict[str, dict[str, list]]:
    """Per schedule: the means over seeds (one point per lambda, sorted by count), +- one s.d., and every run."""
    out: dict[str, dict[str, list]] = {}
    for sch in [str(s) for s in cmp.schedule.values]:
        d = cmp.sel(schedule=sch)
        x = np.asarray(d.nonlinear.values, float)  # (sparsity, seed)
        y = np.asarray(d.test_acc.values, float)
        with np.errstate(invalid="ignore"), _quiet():
            mx, my = np.nanmean(x, axis=1), np.nanmean(y, axis=1)
            n = np.sum(np.isfinite(y), axis=1)
            sd = np.where(n > 1, np.nanstd(y, axis=1, ddof=1) if y.shape[1] > 1 else np.nan, 0.0)
        order = np.argsort(mx, kind="stable")
        ok = np.isfinite(mx[order]) & np.isfinite(my[order])
        idx = order[ok]
        seeds = np.broadcast_to(np.asarray(cmp.seed.values, float), x.shape)
        lam = np.broadcast_to(np.asarray(cmp.sparsity.values, float)[:, None], x.shape)
        fine = np.isfinite(x) & np.isfinite(y)
        out[sch] = {"x": _clean(mx[idx]), "y": _clean(my[idx]), "lo": _clean((my - sd)[idx]),
                    "hi": _clean((my + sd)[idx]), "sparsity": _clean(np.asarray(cmp.sparsity.values)[idx]),
                    "run_x": _clean(x[fine]), "run_y": _clean(y[fine]), "run_seed": _clean(seeds[fine]),
                    "run_sparsity": _clean(lam[fine])}
    return out


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings (an empty slice is a gap, drawn as one)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def _gap_curve(cmp: xr.Dataset) -> dict[str, list]:
    """Late minus early at each matched count (accuracy points): the mean over seeds and its 95% interval."""
    gap = gap_at_matched_count(cmp)
    xs, ys, lo, hi, n = [], [], [], [], []
    for j, pt in enumerate(gap.nonlinear.values):
        m, h, k = t_interval(gap.values[:, j])
        if not math.isfinite(m):
            continue
        xs.append(float(pt))
        ys.append(100 * m)
        lo.append(100 * (m - h) if math.isfinite(h) else None)
        hi.append(100 * (m + h) if math.isfinite(h) else None)
        n.append(k)
    return {"x": xs, "y": ys, "lo": lo, "hi": hi, "seeds": n}


def _band_gap(cmp: xr.Dataset, low: float, high: float) -> dict[str, Any]:
    """The gap averaged over each seed's matched counts in (low, high], with its interval over seeds."""
    per_seed, used = matched_gap(cmp, "nonlinear", low, high)
    m, h, n = t_interval(per_seed)
    finite = per_seed[np.isfinite(per_seed)]
    return {"mean": 100 * m if math.isfinite(m) else None, "half": 100 * h if math.isfinite(h) else None,
            "seeds": n, "ahead": int(np.sum(finite > 0)), "verdict": verdict(m, h),
            "from": min(used) if used else None, "to": max(used) if used else None}


def stored_figure(ds: xr.Dataset, name: str = "", path: str = "") -> dict[str, Any]:
    """Everything the view draws of a stored set (plain JSON values): lines, bands, runs, the gap curve, and the
    gap at few and at many nonlinear units (the bands of docs/nonlinear_advantage.md) with their intervals."""
    cmp = _comparison(ds)
    units = float(np.nanmax(ds["units_total"].values)) if "units_total" in ds.data_vars else math.nan
    few = units * FEW if math.isfinite(units) else math.inf
    config = stored_run_config(ds)
    seeds = len(cmp.seed)
    lams = [float(v) for v in cmp.sparsity.values]
    label = (f"{config_label(config) if config else name}; {len(lams)} λ from {min(lams):g} to {max(lams):g}, "
             f"{seeds} seeds")
    return {"ok": True, "name": name, "path": path, "label": label, "config": config, "seeds": seeds,
            "sparsities": lams, "units": units if math.isfinite(units) else None,
            "few": few if math.isfinite(few) else None, "level": LEVEL,
            "lines": _schedule_lines(cmp), "gap": _gap_curve(cmp),
            "gap_few": _band_gap(cmp, -math.inf, few), "gap_many": _band_gap(cmp, few, math.inf)}


def missing_figure(name: str, message: str) -> dict[str, Any]:
    """What the view shows when the stored set cannot be read: the reason, no axes."""
    return {"ok": False, "name": name, "path": "", "label": "", "message": message}


def points_dataset(points: list[dict[str, Any]], sparsities, seeds) -> xr.Dataset:
    """Streamed runs as a (schedule, sparsity, seed) result set (NaN where no run finished yet)."""
    sc, sp, sd = list(ADVANTAGE_SCHEDULES), list(sparsities), list(seeds)
    shape = (len(sc), len(sp), len(sd))
    names = ("test_acc", "nonlinear", "apl_normalized", "apl_unnormalized")
    arrays = {n: np.full(shape, np.nan) for n in names}
    for p in points:
        if p["schedule"] in sc and p["sparsity"] in sp and p["seed"] in sd:
            idx = (sc.index(p["schedule"]), sp.index(p["sparsity"]), sd.index(p["seed"]))
            for n in names:
                arrays[n][idx] = p[n]
    dims = ("schedule", "sparsity", "seed")
    return xr.Dataset({n: (dims, a) for n, a in arrays.items()},
                      coords={"schedule": sc, "sparsity": np.asarray(sp, float), "seed": np.asarray(sd, np.int64)})


def live_gaps(ds: xr.Dataset | None) -> dict[str, float]:
    """Mean late-minus-early accuracy at matched nonlinear count and at matched APL over the runs in ``ds`` (NaN
    without overlap), and how many matched values each mean is over."""
    out: dict[str, float] = {"count": math.nan, "apl": math.nan, "count_points": 0, "apl_points": 0}
    if ds is None:
        return out
    for key, fn in (("count", gap_at_matched_count), ("apl", gap_at_matched_apl)):
        gap = fn(ds)
        finite = np.isfinite(gap.values)
        if finite.any():
            out[key] = float(np.nanmean(gap.values))
            out[f"{key}_points"] = int(finite.any(axis=0).sum())
    return out
