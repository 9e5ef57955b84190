"""Sweeps over target width N, compressed width M, input dimension d, seeds and methods, as an ``xr.Dataset``."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from nonlin_explorer.compression._checks import check_int
from nonlin_explorer.compression.baselines import kmeans_merge, magnitude_prune, sgd_distill
from nonlin_explorer.compression.optimize import METHODS, compress
from nonlin_explorer.compression.targets import random_target
from nonlin_explorer.labels import label
from nonlin_explorer.netcdf import netcdf_attrs, provenance
from nonlin_explorer.validation import MAX_SEED

BASELINES = ("magnitude", "kmeans", "sgd")
SWEEP_METHODS = METHODS + BASELINES

#: The result set's variables; their long_name and units come from :data:`nonlin_explorer.labels.LABELS` (``time`` is
#: this set's own, below).
_VARS = ("loss", "relative_loss", "etf_distance", "mean_cosine", "meanfield_loss", "shape", "shape_distance",
         "tilt_degrees", "time")


def _list(name: str, values, *, minimum: int, maximum: int | None = None) -> list[int]:
    if isinstance(values, (int, np.integer)):
        values = [values]
    values = [check_int(name, v, minimum=minimum, maximum=maximum) for v in values]
    if not values:
        raise ValueError(f"{name} needs at least one value")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has repeated values: {values}")
    return values


def run_method(target, M: int, method: str, *, seed: int = 0, **kwargs):
    """One method (a :func:`compress` method or a baseline) on one target."""
    if method in METHODS:
        return compress(target, M=M, method=method, seed=seed, **kwargs)
    if method == "magnitude":
        return magnitude_prune(target, M=M)
    if method == "kmeans":
        return kmeans_merge(target, M=M, seed=seed)
    if method == "sgd":
        return sgd_distill(target, M=M, seed=seed, **kwargs)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(SWEEP_METHODS)}")


def sweep(N: Sequence[int] | int, M: Sequence[int] | int, d: Sequence[int] | int, seeds: Sequence[int] | int = (0,),
          methods: Sequence[str] | str = ("exact", "etf", "meanfield"), *, target_kwargs: dict | None = None,
          compress_kwargs: dict | None = None, progress: bool = True) -> xr.Dataset:
    """Compress random targets over a grid; returns an ``xr.Dataset`` with dims (N, M, d, seed, method).

    Each (N, d, seed) target comes from :func:`random_target` (``target_kwargs`` pass through) and is shared
    by every M and method, so its energy is computed once. Cells that do not apply (M >= N; ``"etf"`` with
    M > d + 1) are NaN. ``compress_kwargs`` go to :func:`compress` (only for its methods). Provenance
    (versions, arguments as JSON) goes into ``attrs``; the dataset round-trips through netCDF exactly.
    """
    Ns, Ms, ds = _list("N", N, minimum=1), _list("M", M, minimum=1), _list("d", d, minimum=1)
    seeds = _list("seeds", seeds, minimum=0, maximum=MAX_SEED)
    methods = [methods] if isinstance(methods, str) else list(methods)
    for m in methods:
        if m not in SWEEP_METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(SWEEP_METHODS)}")
    if len(set(methods)) != len(methods) or not methods:
        raise ValueError(f"methods must be distinct and not empty, got {methods}")
    target_kwargs = dict(target_kwargs or {})
    compress_kwargs = dict(compress_kwargs or {})
    for key in ("N", "d", "seed"):
        if key in target_kwargs:
            raise ValueError(f"target_kwargs must not set {key!r}: the sweep sets it")
    shape = (len(Ns), len(Ms), len(ds), len(seeds), len(methods))
    data = {name: np.full(shape, "", dtype=object) if name == "shape" else np.full(shape, np.nan) for name in _VARS}
    total = len(Ns) * len(ds) * len(seeds) * len(Ms) * len(methods)
    bar = tqdm(total=total, disable=not progress, desc="compression sweep", leave=False)
    started = time.time()
    try:
        for (i, n), (k, dd), (s, seed) in itertools.product(enumerate(Ns), enumerate(ds), enumerate(seeds)):
            target = random_target(n, dd, seed=seed, **target_kwargs)
            for (j, m), (q, method) in itertools.product(enumerate(Ms), enumerate(methods)):
                bar.update(1)
                if m >= n or (method == "etf" and m > dd + 1):
                    continue
                kwargs = compress_kwargs if method in METHODS else {}
                res = run_method(target, m, method, seed=seed, **kwargs)
                idx = (i, j, k, s, q)
                summary = res.summary()
                for name in ("loss", "relative_loss", "etf_distance", "mean_cosine", "shape_distance", "tilt_degrees",
                             "time"):
                    data[name][idx] = summary[name]
                data["shape"][idx] = summary["shape"] or ""
                if res.meanfield_loss is not None:
                    data["meanfield_loss"][idx] = res.meanfield_loss
    finally:
        bar.close()
    dims = ("N", "M", "d", "seed", "method")
    attrs = provenance(
        kind="compression_sweep",
        target="random_target",
        target_kwargs=target_kwargs,
        compress_kwargs=compress_kwargs,
        activation=target_kwargs.get("activation", "relu"),
        elapsed_seconds=round(time.time() - started, 3),
    )
    ds = xr.Dataset(
        {name: (dims, values) for name, values in data.items()},
        coords={
            "N": np.array(Ns, dtype=np.int64),
            "M": np.array(Ms, dtype=np.int64),
            "d": np.array(ds, dtype=np.int64),
            "seed": np.array(seeds, dtype=np.int64),
            "method": np.array(methods, dtype=object),
        },
        attrs=netcdf_attrs(attrs),
    )
    return label(ds, {"seed": ("seed of the random target (and of the method, where it draws)", "1"),
                      "time": ("wall-clock seconds of the method (target construction excluded)", "s")})


def sweep_attrs(ds: xr.Dataset) -> dict[str, Any]:
    """The sweep's provenance with the JSON strings decoded back into values."""
    out: dict[str, Any] = {}
    for key, value in ds.attrs.items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


__all__ = ["BASELINES", "SWEEP_METHODS", "run_method", "sweep", "sweep_attrs"]
