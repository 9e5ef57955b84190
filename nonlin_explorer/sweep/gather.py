"""Point records gathered into one ``xr.Dataset``, and kept safe on disk while a sweep runs.

Layout: one dimension per swept grid key, then ``sample`` (random keys are coordinates along it), then
``seed``. Per point: ``status`` (finished, diverged, skipped, failed, pending), ``error``, ``key`` (the
point's identity), ``provenance`` (JSON), one float variable per final metric, and with ``series = true``
``series_<name>`` along ``eval`` (training) or ``iteration`` (compression), NaN-padded to
``series_length``. The file's attrs hold the sweep's provenance and its spec (JSON).

While it runs, each finished point is appended to a journal (``<out>.journal.jsonl``, flushed and synced);
the result file is rewritten atomically from time to time and at the end, when the journal is removed.
Resuming reads both.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from nonlin_explorer.files import hold, open_append, recover_folder, write_folder
from nonlin_explorer.labels import LABELS, UNSPECIFIED, label
from nonlin_explorer.netcdf import netcdf_attrs, to_json
from nonlin_explorer.results import check_writable, provenance
from nonlin_explorer.sweep.runners import COMPRESSION_METRICS, DONE, METRIC_DOCS, TRAINING_METRICS
from nonlin_explorer.sweep.spec import SpecError, SweepSpec

FORMAT = "nonlin_explorer.sweep/1"


def _coord(values: Iterable) -> np.ndarray:
    values = list(values)
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.float64)
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object)
    return np.array([to_json(v) for v in values], dtype=object)


def _str_array(shape, fill: str = "") -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.fill(fill)
    return out


def metric_names(spec: SweepSpec, records: Iterable[Mapping]) -> list[str]:
    """Known metrics first (in their order), then the others sorted: the same order however points finish."""
    known = {"training": TRAINING_METRICS, "compression": COMPRESSION_METRICS}.get(spec.kind, ())
    seen = {name for r in records for name in r.get("metrics", {})}
    return [n for n in known if n in seen] + sorted(seen - set(known) - {"time"}) + (["time"] if "time" in seen else [])


def assemble(spec: SweepSpec, records: Mapping[str, Mapping], points=None) -> xr.Dataset:
    """The result set of ``spec`` from point records (by key); points without one are ``pending``."""
    points = spec.points() if points is None else points
    dims, shape = spec.dims, spec.shape
    ordered = [records.get(p.key) for p in points]
    present = [r for r in ordered if r is not None]
    names = metric_names(spec, present)
    taken = set(dims) | set(spec.parameters()) | {"status", "error", "key", "provenance", "series_length"}
    var_of = {n: (f"metric_{n}" if n in taken else n) for n in names}

    status = _str_array(shape, "pending")
    error, keys, prov = _str_array(shape), _str_array(shape), _str_array(shape)
    metrics = {n: np.full(shape, np.nan) for n in names}
    series_names: list[str] = []
    for r in present:
        series_names += [n for n in r.get("series", {}) if n not in series_names]
    lengths = np.zeros(shape, dtype=np.int64)
    for p, r in zip(points, ordered):
        keys[p.index] = p.key
        if r is None:
            continue
        status[p.index] = r["status"]
        error[p.index] = r.get("error", "")
        prov[p.index] = to_json(r.get("provenance", {}))
        for n, v in r.get("metrics", {}).items():
            metrics[n][p.index] = v
        if r.get("series"):
            lengths[p.index] = max(len(v) for v in r["series"].values())
    data: dict[str, Any] = {
        "status": (dims, status, {"long_name": "finished, diverged, skipped, failed or pending"}),
        "error": (dims, error, {"long_name": "why the point failed, diverged or was skipped"}),
        "key": (dims, keys, {"long_name": "identity of the point (hash of its parameters and seed)"}),
        "provenance": (dims, prov, {"long_name": "per-point provenance (JSON): versions, host, config, times"}),
    }
    for n in names:
        data[var_of[n]] = (dims, metrics[n], _metric_label(n))
    sdim = spec.series_dim
    if series_names and sdim:
        width = int(lengths.max()) if lengths.size else 0
        data["series_length"] = (dims, lengths, {"long_name": f"entries along {sdim} (the rest is padding)"})
        for n in series_names:
            arr = np.full(shape + (width,), np.nan)
            for p, r in zip(points, ordered):
                values = (r or {}).get("series", {}).get(n)
                if values:
                    arr[p.index + (slice(0, len(values)),)] = values
            long_name, units = LABELS.get(n, (f"{n} (a series the sweep's function returned)", UNSPECIFIED))
            data[f"series_{n}"] = (dims + (sdim,), arr, {"long_name": f"{long_name}, at each entry along {sdim}",
                                                         "units": units})
    coords: dict[str, Any] = {p.dim: (p.dim, _coord(p.values), _parameter_label(p.key, "swept"))
                              for p in spec.grid}
    if spec.random:
        coords["sample"] = ("sample", np.arange(spec.samples, dtype=np.int64))
        for name, values in spec.random_values().items():
            coords[name] = ("sample", _coord(values), _parameter_label(name, "drawn at random"))
    coords["seed"] = ("seed", np.array(spec.seeds, dtype=np.int64))
    counts = {s: int((status == s).sum()) for s in ("finished", "diverged", "skipped", "failed", "pending")}
    attrs = provenance(
        format=FORMAT, kind=spec.kind, name=spec.name, function=spec.function or "",
        spec=to_json(spec.to_dict()),
        parameters=json.dumps(spec.parameters()), fixed=to_json(spec.base),
        metrics=json.dumps({n: var_of[n] for n in names}), series=json.dumps(series_names),
        series_dim=sdim or "", points=int(np.prod(shape)), **{f"points_{s}": c for s, c in counts.items()})
    return label(xr.Dataset(data, coords=coords, attrs=netcdf_attrs(attrs)))


def _metric_label(name: str) -> dict[str, str]:
    """``long_name`` and ``units`` of a metric: the sweep's own meaning, the package's units, or a user's metric."""
    long_name, units = LABELS.get(name, (f"{name} (returned by the sweep's metric function)", UNSPECIFIED))
    return {"long_name": METRIC_DOCS.get(name, long_name), "units": units}


def _parameter_label(key: str, how: str) -> dict[str, str]:
    """``long_name`` and ``units`` of a swept setting (``model_kwargs.width``: the last part names it)."""
    long_name, units = LABELS.get(key.rsplit(".", 1)[-1], ("", UNSPECIFIED))
    return {"long_name": f"{key}, {how}" + (f": {long_name}" if long_name else ""), "units": units}


def records_from_dataset(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Point records back from a result set (every point that is not pending)."""
    if ds.attrs.get("format") != FORMAT:
        raise SpecError("this file is not a nonlin_explorer sweep result set (no sweep format in its attrs)")
    names = json.loads(ds.attrs.get("metrics", "{}"))  # metric name -> variable
    series_names = json.loads(ds.attrs.get("series", "[]"))
    out: dict[str, dict[str, Any]] = {}
    status = ds["status"].values
    for index in np.ndindex(status.shape):
        s = str(status[index])
        if s == "pending":
            continue
        key = str(ds["key"].values[index])
        metrics = {}
        for n, var in names.items():
            v = float(ds[var].values[index])
            if not np.isnan(v):
                metrics[n] = v
        series = {}
        if "series_length" in ds:
            length = int(ds["series_length"].values[index])
            if length:
                for n in series_names:
                    series[n] = [float(v) for v in ds[f"series_{n}"].values[index][:length]]
        prov = str(ds["provenance"].values[index])
        out[key] = {"key": key, "status": s, "error": str(ds["error"].values[index]), "metrics": metrics,
                    "series": series, "provenance": json.loads(prov) if prov else {}}
    return out


# -- on disk --------------------------------------------------------------------------------------------

def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal.jsonl")


def read_journal(path: Path) -> dict[str, dict[str, Any]]:
    """Records appended so far; a torn last line (a crash mid-write) is ignored."""
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    with open(path) as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "key" in record and "status" in record:
                out[record["key"]] = record
    return out


def repair_journal(path: Path) -> bool:
    """Cut a torn last line (a crash mid-append) off the journal, so the next record starts on a line of its own.
    True if something was cut."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size == 0:
        return False  # a link or a special file is refused when the journal is opened (open_append)
    with open(path, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return False
        fh.truncate(data.rfind(b"\n") + 1)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def is_zarr_store(folder: Path) -> bool:
    """True for a folder that holds a zarr store (version 2 or 3): only such a folder is replaced by a result."""
    return (folder / ".zgroup").is_file() or (folder / "zarr.json").is_file()


def read_result(path: Path) -> xr.Dataset:
    if path.suffix == ".zarr":
        recover_folder(path, is_zarr_store)
        with xr.open_zarr(path, consolidated=False) as ds:
            return ds.load()
    from nonlin_explorer.results import read_netcdf

    return read_netcdf(path)


def write_result(ds: xr.Dataset, path: Path) -> Path:
    """Atomic (:mod:`nonlin_explorer.files`): a new file, or zarr folder, renamed into place."""
    if path.suffix != ".zarr":
        from nonlin_explorer.results import write_netcdf

        return write_netcdf(ds, path)
    check_writable(path, folder=True)
    return write_folder(path, lambda tmp: ds.to_zarr(tmp, mode="w", consolidated=False), exists="replace",
                        is_ours=is_zarr_store, remove_old=shutil.rmtree, what="zarr store")


class Store:
    """Records of one sweep, a journal of them, and the result file rewritten atomically."""

    def __init__(self, spec: SweepSpec, out: str | os.PathLike | None, resume: bool):
        self.spec = spec
        self.points = spec.points()
        self.records: dict[str, dict[str, Any]] = {}
        self.out = Path(out).expanduser() if out is not None else None
        self.journal = None
        self._hold = None
        if self.out is None:
            if resume:
                raise ValueError("resume needs the output path of the earlier run (out=...)")
            return
        if self.out.suffix == ".zarr":
            import importlib.util

            if importlib.util.find_spec("zarr") is None:
                raise ValueError("writing .zarr needs the zarr package (pip install zarr); or write .nc")
        check_writable(self.out, folder=self.out.suffix == ".zarr")
        self._hold = hold(self.out)  # a second sweep on this output is refused now, one line (FileInUse)
        try:
            self._open(resume)
        except BaseException:
            self.close()
            raise

    def _open(self, resume: bool) -> None:
        jpath = journal_path(self.out)
        exists = self.out.exists() or jpath.exists()
        if exists and not resume:
            raise FileExistsError(f"{self.out} already exists (or its journal): resume it (--resume / "
                                  "resume=True) or write to another path")
        if exists:
            self._load(jpath)

    def _load(self, jpath: Path) -> None:
        records: dict[str, dict[str, Any]] = {}
        if self.out.exists():
            try:
                records.update(records_from_dataset(read_result(self.out)))
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot resume from {self.out}: {exc}") from None
        records.update(read_journal(jpath))
        keys = {p.key for p in self.points}
        foreign = [r for k, r in records.items() if k not in keys and r["status"] in DONE]
        if foreign:
            raise SpecError(f"{self.out} holds {len(foreign)} done point(s) that this spec does not have: it was "
                            "written by a different spec; write to another path (nothing was changed)")
        self.records = {k: r for k, r in records.items() if k in keys}

    def todo(self) -> list:
        """Points still to run: failed ones and those never run. Done points are never recomputed."""
        return [p for p in self.points if self.records.get(p.key, {}).get("status") not in DONE]

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["key"]] = record
        if self.out is None:
            return
        if self.journal is None:
            repair_journal(journal_path(self.out))  # a torn line of an earlier run would swallow this record
            self.journal = open_append(journal_path(self.out))
        self.journal.write(to_json(record) + "\n")
        self.journal.flush()
        os.fsync(self.journal.fileno())

    def dataset(self) -> xr.Dataset:
        return assemble(self.spec, self.records, self.points)

    def flush(self, final: bool = False) -> xr.Dataset:
        """Rewrite the result file; at the end, drop the journal (the file now holds every record) and give the
        output back (:meth:`close`)."""
        ds = self.dataset()
        if self.out is not None:
            write_result(ds, self.out)
            if final:
                self._close_journal()
                jpath = journal_path(self.out)
                if jpath.exists():
                    jpath.unlink()
                self.close()
        return ds

    def _close_journal(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def close(self) -> None:
        """Close the journal and give the output back to other processes (its lock); what a process that dies
        does too."""
        self._close_journal()
        if self._hold is not None:
            self._hold.release()
            self._hold = None
