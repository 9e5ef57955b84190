"""Early vs late linearization ("nonlinear advantage", Ali Mehmeti-Göpel & Disselhoff, ICML 2023).

:func:`compare_schedules` trains one :class:`~nonlin_explorer.trainer.Trainer` (in the calling thread) per
(schedule, sparsity, seed) with everything else equal (same total epochs: "late" trains plain ReLUs, then
switches the prior on at ``switch_epoch``) and gathers the final numbers into an ``xr.Dataset``.
:func:`schedule_gap` compares the schedules at *matched* nonlinear count (or APL): each schedule's
accuracy-vs-count curve (over sparsity) is interpolated onto common points, per seed.

Pure compute, no UI imports; safe to call on a background thread (``callback`` streams each finished run,
``should_stop`` cancels between runs and between steps).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from nonlin_explorer.gates import DEFAULT_TOL, gates
from nonlin_explorer.labels import label
from nonlin_explorer.netcdf import netcdf_attrs, provenance
from nonlin_explorer.threads import fixed_threads, threads_for
from nonlin_explorer.trainer import TrainConfig, Trainer
from nonlin_explorer.validation import MAX_SEED

__all__ = ["ADVANTAGE_SCHEDULES", "RUN_VARIABLES", "compare_schedules", "gap_at_matched_apl",
           "gap_at_matched_count", "schedule_gap", "unit_state_changes", "validate_grid"]

#: Schedules :func:`compare_schedules` accepts.
ADVANTAGE_SCHEDULES = ("early", "late")

#: Per-run variables of the result set, with what each one means.
RUN_VARIABLES = {
    "test_acc": "test accuracy at the end of training",
    "test_loss": "test cross-entropy at the end of training",
    "train_loss": "cross-entropy of the final model on the whole training set (eval mode)",
    "train_acc": "accuracy of the final model on the whole training set (eval mode)",
    "nonlinear": "nonlinear units (1 - alpha > tol) at the end",
    "nonlinear_fraction": "nonlinear / units",
    "apl_normalized": "average path length through nonlinear units, normalized (even split at merges)",
    "apl_unnormalized": "average path length through nonlinear units, every path weighted the same",
    "dense_test_acc": "test accuracy of the plain ReLU network when the prior switched on (late only)",
    "steps": "optimizer steps taken",
    "time": "wall-clock seconds of the run (model construction included)",
}
_ADVANTAGE_LABELS = {
    "sparsity": ("lambda of the prior lambda * sum(1 - alpha) once it is on", "1"),
    "seed": ("training seed (weights, data order)", "1"),
}


def unit_state_changes(model, example_input=None, tol: float = DEFAULT_TOL) -> dict[str, Callable[[Any], float]]:
    """A sweep metric factory: ``units_changed``, the number of gated units whose state (nonlinear or linear)
    changed since the previous call (the first call compares with the state at construction).

    Recorded at every evaluation, it gives the convergence criterion of the prior: no unit changed state for K
    evaluations in a row. ``example_input`` is unused (the factory signature of sweep metrics).
    """
    previous = [g.nonlinear_mask(tol) for g in gates(model)]

    def units_changed(m) -> float:
        now = [g.nonlinear_mask(tol) for g in gates(m)]
        changed = sum(int((a != b).sum()) for a, b in zip(previous, now))
        previous[:] = now
        return float(changed)

    return {"units_changed": units_changed}


def validate_grid(sparsities, seeds, schedules) -> tuple[list[float], list[int], list[str]]:
    """Check the grid and return it as plain lists; ``ValueError`` with a clear message for bad input."""
    if isinstance(sparsities, (int, float)):
        sparsities = [sparsities]
    sp = list(sparsities) if sparsities is not None else []
    if not sp:
        raise ValueError("sparsities is empty: give at least one sparsity (lambda >= 0)")
    out_sp = []
    for s in sp:
        if isinstance(s, bool):
            raise ValueError(f"sparsity must be a number, got {s!r}")
        try:
            v = float(s)
        except (TypeError, ValueError):
            raise ValueError(f"sparsity must be a number, got {s!r}") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"sparsity must be finite and >= 0, got {s!r}")
        out_sp.append(v)
    if len(set(out_sp)) != len(out_sp):
        raise ValueError(f"sparsities has duplicates: {out_sp}")
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    sd = list(seeds) if seeds is not None else []
    if not sd:
        raise ValueError("seeds is empty: give at least one seed")
    for s in sd:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= MAX_SEED:
            raise ValueError(f"seeds must be non-negative integers up to {MAX_SEED}, got {s!r}")
    if len(set(sd)) != len(sd):
        raise ValueError(f"seeds has duplicates: {sd}")
    if isinstance(schedules, str):
        schedules = [schedules]
    sc = list(schedules) if schedules is not None else []
    if not sc:
        raise ValueError(f"schedules is empty: choose from {', '.join(ADVANTAGE_SCHEDULES)}")
    for s in sc:
        if s not in ADVANTAGE_SCHEDULES:
            raise ValueError(f"unknown schedule {s!r}; valid schedules: {', '.join(ADVANTAGE_SCHEDULES)}")
    if len(set(sc)) != len(sc):
        raise ValueError(f"schedules has duplicates: {sc}")
    return out_sp, [int(s) for s in sd], sc


def _as_config(config) -> TrainConfig:
    if config is None:
        return TrainConfig()
    if isinstance(config, TrainConfig):
        return dataclasses.replace(config)
    if isinstance(config, dict):
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; valid fields: {', '.join(sorted(fields))}")
        return TrainConfig(**config)
    raise ValueError(f"config must be a TrainConfig, a dict of its fields or None, got {type(config).__name__}")


def _one_run(config: TrainConfig, should_stop: Callable[[], bool] | None, threads: int | None = 1) -> dict[str, Any]:
    """Train one run to the end (or until ``should_stop``) in this thread (a :class:`Trainer`, no thread of its
    own) on ``threads`` torch threads (None: the package's policy); return its final numbers."""
    t0 = time.perf_counter()
    session = Trainer(config, track_paths=True)
    dense: dict[str, float] = {}
    pinned = threads is not None and session.device.type == "cpu"
    with fixed_threads(threads) if pinned else threads_for(session.step_work, session.device):
        while session.step < session.total_steps and session.status != "diverged":
            if should_stop is not None and should_stop():
                session.status = "stopped"
                break
            if config.schedule == "late" and session.step == session.switch_step and "acc" not in dense:
                dense["acc"] = session.evaluate()[1]  # the plain ReLU network, just before the prior switches on
            session.train_step()
    if session.status == "idle":
        session.status = "finished"
    test_loss, test_acc = session.evaluate()
    train_loss, train_acc = session.evaluate("train")
    gs = gates(session.model)
    per_layer = [g.nonlinear_count(config.tol) for g in gs]
    units = sum(g.num_units for g in gs)
    metrics = {name: float(fn(session.model)) for name, fn in session.metrics.items()}
    return {
        "status": session.status,
        "test_acc": test_acc,
        "test_loss": test_loss,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "nonlinear": float(sum(per_layer)),
        "nonlinear_fraction": sum(per_layer) / units if units else math.nan,
        "apl_normalized": metrics.get("apl_normalized", math.nan),
        "apl_unnormalized": metrics.get("apl_unnormalized", math.nan),
        "dense_test_acc": dense.get("acc", math.nan),
        "steps": float(session.step),
        "time": time.perf_counter() - t0,
        "nonlinear_layer": per_layer,
        "layers": list(session.gate_names),
        "units_layer": [g.num_units for g in gs],
        "switch_step": session.switch_step,
        "total_steps": session.total_steps,
        "device": str(session.device),
    }


def compare_schedules(config: TrainConfig | dict | None = None, sparsities: Sequence[float] = (1e-3, 1e-2),
                      seeds: Iterable[int] = (0,), schedules: Sequence[str] = ADVANTAGE_SCHEDULES, *,
                      callback: Callable[[str, dict], None] | None = None,
                      should_stop: Callable[[], bool] | None = None, threads: int | None = 1) -> xr.Dataset:
    """Train every (schedule, sparsity, seed) with the same budget and gather the final numbers.

    ``config`` (a :class:`TrainConfig` or a dict of its fields) fixes everything but ``schedule``,
    ``sparsity`` and ``seed``; "late" switches the prior on at ``config.switch_epoch`` (default: half-way).
    Runs go sparsity by sparsity, seed by seed, both schedules back to back, in the calling thread.
    ``callback("run", payload)`` after each finished run (payload: schedule, sparsity, seed, index, total and
    the run's numbers) and ``callback("done", {...})`` at the end. ``should_stop()`` is polled between runs
    and between steps: when it returns True the current run stops and the result set comes back with the
    runs not finished left NaN (``status`` "stopped" or "pending", attrs ``cancelled = 1``).

    ``threads``: torch intra-op threads for every run on a CPU (default 1), whatever ``OMP_NUM_THREADS`` says, so
    a seed gives the same numbers bit for bit on a given machine and torch build (another thread count rounds
    reductions differently and training can amplify that); None keeps the package's policy (:mod:`threads`).

    Returns an ``xr.Dataset`` with dims (schedule, sparsity, seed) (plus ``layer`` for per-layer counts)
    and the config and provenance in its attrs.
    """
    sp, sd, sc = validate_grid(sparsities, seeds, schedules)
    base = _as_config(config)
    base.validate()
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if base.switch_epoch is not None and "late" in sc and not 0 < base.switch_epoch < base.epochs:
        raise ValueError(f"switch_epoch must lie strictly between 0 and epochs ({base.epochs:g}) for the late "
                         f"schedule, got {base.switch_epoch:g}")
    shape = (len(sc), len(sp), len(sd))
    values = {name: np.full(shape, np.nan) for name in RUN_VARIABLES}
    status = np.full(shape, "pending", dtype=object)
    per_layer: np.ndarray | None = None
    layers: list[str] = []
    units_layer: list[int] = []
    info: dict[str, Any] = {}
    total, index, cancelled = int(np.prod(shape)), 0, False
    t_start = time.perf_counter()
    stop = should_stop if should_stop is not None else (lambda: False)
    for j, s in enumerate(sp):
        for k, seed in enumerate(sd):
            for i, sch in enumerate(sc):
                if stop():
                    cancelled = True
                    break
                cfg = dataclasses.replace(base, schedule=sch, sparsity=s, seed=seed,
                                          model_kwargs=dict(base.model_kwargs),
                                          dataset_kwargs=dict(base.dataset_kwargs))
                run = _one_run(cfg, stop, threads)
                if run["status"] == "stopped":
                    status[i, j, k] = "stopped"
                    cancelled = True
                    break
                for name in RUN_VARIABLES:
                    values[name][i, j, k] = run[name]
                status[i, j, k] = run["status"]
                if per_layer is None:
                    layers, units_layer = run["layers"], run["units_layer"]
                    per_layer = np.full(shape + (len(layers),), np.nan)
                    info = {key: run[key] for key in ("device",)}
                    info["steps_total"] = run["total_steps"]
                if sch == "late":
                    info["switch_step"] = run["switch_step"]
                per_layer[i, j, k] = run["nonlinear_layer"]
                index += 1
                if callback is not None:
                    payload = {"schedule": sch, "sparsity": s, "seed": seed, "index": index, "total": total,
                               **{name: run[name] for name in RUN_VARIABLES}, "status": run["status"]}
                    callback("run", payload)
            if cancelled:
                break
        if cancelled:
            break
    data: dict[str, Any] = {name: (("schedule", "sparsity", "seed"), arr, {"long_name": RUN_VARIABLES[name]})
                            for name, arr in values.items()}
    data["status"] = (("schedule", "sparsity", "seed"), status.astype(str),
                      {"long_name": "finished, diverged, stopped (cancelled) or pending (never ran)"})
    coords: dict[str, Any] = {"schedule": np.array(sc, dtype=object), "sparsity": np.array(sp, dtype=np.float64),
                              "seed": np.array(sd, dtype=np.int64)}
    if per_layer is not None:
        data["nonlinear_layer"] = (("schedule", "sparsity", "seed", "layer"), per_layer,
                                   {"long_name": "nonlinear units per gate layer at the end"})
        data["units"] = ("layer", np.array(units_layer, dtype=np.int64), {"long_name": "units per gate layer"})
        coords["layer"] = np.array(layers, dtype=object)
    elapsed = time.perf_counter() - t_start
    attrs = provenance(kind="schedule_comparison", config=base.to_dict(), sparsities=sp, seeds=sd, schedules=sc,
                       switch_epoch=base.switch_epoch if base.switch_epoch is not None else base.epochs / 2.0,
                       epochs=base.epochs, tol=base.tol, completed_runs=index, total_runs=total,
                       cancelled=cancelled, elapsed=elapsed, units_total=int(sum(units_layer)),
                       torch_threads=threads if threads is not None else "policy", **info)
    ds = label(xr.Dataset(data, coords=coords, attrs=netcdf_attrs(attrs)), _ADVANTAGE_LABELS)
    if callback is not None:
        callback("done", {"completed": index, "total": total, "cancelled": cancelled, "elapsed": elapsed})
    return ds


def _curve(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite (x, y) pairs sorted by x, y averaged over equal x (so interpolation is well defined)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if not len(x):
        return x, y
    ux, inv = np.unique(x, return_inverse=True)
    uy = np.bincount(inv, weights=y) / np.bincount(inv)
    return ux, uy


def schedule_gap(ds: xr.Dataset, by: str = "nonlinear", points: Sequence[float] | None = None,
                 metric: str = "test_acc", first: str = "late", second: str = "early") -> xr.DataArray:
    """``metric`` of ``first`` minus ``second`` at matched ``by`` (nonlinear count, APL...), per seed.

    For each seed, each schedule's runs (one per sparsity) give a curve ``metric(by)``; both curves are
    linearly interpolated onto ``points`` (never extrapolated: NaN outside a curve's range). Default points:
    the values of ``by`` seen in any run that lie inside every (seed, schedule) curve's range. Returns a
    DataArray with dims (seed, ``by``); average with ``.mean("seed")``.
    """
    for name in (by, metric):
        if name not in ds.data_vars:
            raise ValueError(f"the result set has no variable {name!r}; variables: {', '.join(ds.data_vars)}")
    for sch in (first, second):
        if sch not in ds.coords["schedule"].values.tolist():
            raise ValueError(f"the result set has no schedule {sch!r}; it has "
                             f"{', '.join(map(str, ds.coords['schedule'].values))}")
    curves = {}
    for seed in ds.coords["seed"].values:
        for sch in (first, second):
            sel = ds.sel(schedule=sch, seed=seed)
            curves[seed, sch] = _curve(np.asarray(sel[by].values, float), np.asarray(sel[metric].values, float))
    if points is None:
        nonempty = [c for c in curves.values() if len(c[0])]
        if len(nonempty) < len(curves) or not nonempty:
            pts = np.array([], dtype=float)
        else:
            lo = max(c[0][0] for c in nonempty)
            hi = min(c[0][-1] for c in nonempty)
            seen = np.unique(np.concatenate([c[0] for c in nonempty]))
            pts = seen[(seen >= lo) & (seen <= hi)]
    else:
        pts = np.asarray(points, dtype=float).ravel()
        if not np.all(np.isfinite(pts)):
            raise ValueError("points must be finite numbers")
    seeds = ds.coords["seed"].values
    gap = np.full((len(seeds), len(pts)), np.nan)
    for a, seed in enumerate(seeds):
        ys = []
        for sch in (first, second):
            x, y = curves[seed, sch]
            if not len(x):
                ys.append(np.full(len(pts), np.nan))
                continue
            inside = (pts >= x[0]) & (pts <= x[-1])
            ys.append(np.where(inside, np.interp(pts, x, y), np.nan))
        gap[a] = ys[0] - ys[1]
    return xr.DataArray(gap, dims=("seed", by), coords={"seed": seeds, by: pts}, name="gap",
                        attrs={"long_name": f"{metric} of {first} minus {second} at matched {by}",
                               "metric": metric, "by": by, "first": first, "second": second})


def gap_at_matched_count(ds: xr.Dataset, points: Sequence[float] | None = None,
                         metric: str = "test_acc") -> xr.DataArray:
    """Late minus early ``metric`` at matched nonlinear unit count (see :func:`schedule_gap`)."""
    return schedule_gap(ds, by="nonlinear", points=points, metric=metric)


def gap_at_matched_apl(ds: xr.Dataset, points: Sequence[float] | None = None, normalized: bool = True,
                       metric: str = "test_acc") -> xr.DataArray:
    """Late minus early ``metric`` at matched average path length (see :func:`schedule_gap`)."""
    by = "apl_normalized" if normalized else "apl_unnormalized"
    return schedule_gap(ds, by=by, points=points, metric=metric)
