"""Result sets (``xr.Dataset``, written as netCDF) and checkpoints (``torch.save``) of training runs.

A result set has coordinates ``step`` (with ``epoch`` along it), ``layer`` (gate names) and ``unit``;
per-evaluation losses and accuracies, the sparsity in force, nonlinear counts per layer, and per-unit
slopes over time (on ``slope_step``, downsampled when huge, NaN past each layer's unit count). Every variable and
coordinate has ``long_name`` and ``units`` (:mod:`~nonlin_explorer.labels`). Its attrs carry the provenance: numbers
as numbers, nested values as JSON strings (:func:`~nonlin_explorer.netcdf.netcdf_attrs`), so the file round-trips
exactly.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from nonlin_explorer._version import __version__
from nonlin_explorer.files import check_writable, write_file
from nonlin_explorer.gates import gates
from nonlin_explorer.labels import label
from nonlin_explorer.netcdf import netcdf_attrs, provenance, read_netcdf, write_netcdf
from nonlin_explorer.validation import check_int

__all__ = [
    "check_writable", "provenance", "read_netcdf", "write_netcdf",  # shared with the compute core (files, netcdf)
    "session_to_xarray", "save_run", "save_checkpoint", "read_checkpoint", "write_with_fallback",
]

_SCALARS = ("train_loss", "train_acc", "test_loss", "test_acc", "sparsity", "lr")
_DOCS = {
    "train_loss": "mean cross-entropy over the training steps since the previous evaluation",
    "train_acc": "accuracy over the training steps since the previous evaluation",
    "test_loss": "cross-entropy on the test set",
    "test_acc": "accuracy on the test set",
    "sparsity": "lambda of the prior lambda * sum(1 - alpha) in force (0 while the prior is off)",
    "lr": "learning rate of the weights",
    "prior_on": "1 when the sparsity prior is on",
    "nonlinear": "units with 1 - alpha > tol, per gate layer",
    "units": "units per gate layer",
    "slope": "alpha per unit (NaN beyond a layer's unit count)",
}


def session_to_xarray(session, max_slope_values: int = 2_000_000) -> xr.Dataset:
    """The session's history as a labelled result set (slopes thinned to at most ``max_slope_values`` numbers, but
    the last evaluation's always kept)."""
    max_slope_values = check_int("max_slope_values", max_slope_values, low=1)
    hist = session.history
    layers = list(session.gate_names)
    units = np.array([g.num_units for g in gates(session.model)], dtype=np.int64)
    steps = np.array([h["step"] for h in hist], dtype=np.int64)
    data: dict[str, Any] = {}
    for key in _SCALARS:
        data[key] = ("step", np.array([h[key] for h in hist], dtype=np.float64), {"long_name": _DOCS[key]})
    data["prior_on"] = ("step", np.array([int(h["prior_on"]) for h in hist], dtype=np.int8),
                        {"long_name": _DOCS["prior_on"]})
    nonlinear = np.array([h["nonlinear"] for h in hist], dtype=np.int64).reshape(len(hist), len(layers))
    data["nonlinear"] = (("step", "layer"), nonlinear, {"long_name": _DOCS["nonlinear"]})
    data["nonlinear_total"] = ("step", nonlinear.sum(1), {"long_name": "nonlinear units in the whole model"})
    data["units"] = ("layer", units, {"long_name": _DOCS["units"]})
    for name in session.metrics:
        data[name] = ("step", np.array([h.get(name, np.nan) for h in hist], dtype=np.float64))

    # Slopes: (slope_step, layer, unit), every k-th evaluation so the array stays below the budget.
    width = int(units.max()) if len(units) else 0
    per_eval = max(1, len(layers) * width)
    stride = max(1, int(np.ceil(len(hist) * per_eval / max_slope_values)))
    keep = list(range(len(hist) - 1, -1, -stride))[::-1]  # always keep the last evaluation
    slopes = np.full((len(keep), len(layers), width), np.nan, dtype=np.float32)
    for i, k in enumerate(keep):
        for j, s in enumerate(hist[k]["slopes"]):
            slopes[i, j, : len(s)] = np.asarray(s, dtype=np.float32)
    data["slope"] = (("slope_step", "layer", "unit"), slopes, {"long_name": _DOCS["slope"]})

    cfg = session.config
    attrs = provenance(
        kind="training",
        model=cfg.model,
        dataset=session.data.name,
        schedule=cfg.schedule,
        seed=cfg.seed,
        device=str(session.device),
        tol=cfg.tol,
        status=session.status,
        stop_reason=session.stop_reason,
        metrics_error=session.metrics_error,
        switch_step=session.switch_step,
        steps_per_epoch=session.steps_per_epoch,
        config=cfg.to_dict(),
        events=session.events,
    )
    ds = xr.Dataset(
        data,
        coords={
            "step": steps,
            "epoch": ("step", np.array([h["epoch"] for h in hist], dtype=np.float64)),
            "layer": np.array(layers, dtype=object),
            "unit": np.arange(width, dtype=np.int64),
            "slope_step": steps[keep] if len(keep) else np.zeros(0, dtype=np.int64),
        },
        attrs=netcdf_attrs(attrs),
    )
    return label(ds, {name: (_DOCS[name], "1") for name in _DOCS})


def fallback_folders(path: Path) -> list[Path]:
    """Where :func:`write_with_fallback` tries after ``path`` failed: beside it, then the home, working and temporary
    folders, those on another file system than ``path``'s first (a full disk fills every folder on it)."""
    import tempfile

    places: list[Path] = []
    for folder in (path.parent, Path.home(), Path.cwd(), Path(tempfile.gettempdir())):
        with contextlib.suppress(OSError, RuntimeError):
            folder = folder.resolve()
            if folder.is_dir() and folder not in places:
                places.append(folder)

    def device(folder: Path) -> int | None:
        try:
            return folder.stat().st_dev
        except OSError:
            return None

    first = device(path.parent)
    return places[:1] + sorted(places[1:], key=lambda f: device(f) == first)  # stable: other file systems first


def _reason(exc: BaseException) -> str:
    """One line for a failed write (torch and netCDF raise RuntimeError with several lines)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return (text.splitlines()[0][:200] if text else "") or type(exc).__name__


def write_with_fallback(write, path: str | os.PathLike, notes: list[str]) -> Path:
    """``write(path, "replace")``; if that fails with any exception (a full disk, a file-size limit, a vanished folder:
    torch and netCDF raise ``RuntimeError`` for some of them), ``write(folder / "NAME.unsaved-TIME.EXT", "rename")``
    (``exists="rename"``: never over another file) in each of :func:`fallback_folders` until one works, and append a
    note naming it to ``notes``. ``OSError`` (one line) only when every place fails. A failed attempt leaves no
    temporary file (:func:`~nonlin_explorer.files.write_file`)."""
    path = Path(path).expanduser()
    try:
        return Path(write(path, "replace"))
    except Exception as exc:  # noqa: BLE001 - any failure of the library: try elsewhere
        first = exc
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{path.stem}.unsaved-{stamp}{path.suffix}"
    tried = []
    for folder in fallback_folders(path):
        tried.append(str(folder))
        try:
            written = Path(write(folder / name, "rename"))
        except Exception:  # noqa: BLE001, S112 - the next place
            continue
        notes.append(f"could not write {path} ({_reason(first)}); saved it to {written} instead")
        return written
    raise OSError(f"could not write {path} ({_reason(first)}) nor a copy in {', '.join(tried)}") from first


def save_run(session, out: str | os.PathLike, checkpoint: str | os.PathLike | None = None) -> tuple[dict, list[str]]:
    """Save a finished run: the checkpoint first (it holds everything, history included), then the result set, each
    with :func:`write_with_fallback`. Returns ``({"checkpoint": path, "results": path}, notes)``: a note for every
    file that went to a fallback place, and for every file that no place could take (then it is missing from the
    dict). Nothing trained is lost unless no place at all can be written."""
    notes: list[str] = []
    written: dict[str, Path] = {}
    if checkpoint is not None:
        try:
            written["checkpoint"] = write_with_fallback(lambda p, e: save_checkpoint(session, p, exists=e),
                                                        checkpoint, notes)
        except OSError as exc:
            notes.append(str(exc))
    ds = session.to_xarray()
    try:
        written["results"] = write_with_fallback(lambda p, e: write_netcdf(ds, p, exists=e), out, notes)
    except OSError as exc:
        notes.append(str(exc))
    return written, notes


def save_checkpoint(session, path: str | os.PathLike, *, exists: str = "replace") -> Path:
    """Model weights, gate states, optimizer state, history, events, config and the run's random streams
    (``session.state_dict()``) in one file (atomic, like :func:`write_netcdf`); the path written."""
    path = check_writable(path)
    state = {"format": "nonlin_explorer.checkpoint/1", "version": __version__, **session.state_dict()}
    return write_file(path, lambda tmp: torch.save(state, tmp.file), exists=exists)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint` (``weights_only``: tensors and plain containers; a file carrying
    code is refused, never run). ``OSError`` for a missing file, ``ValueError`` for anything that is not one."""
    import pickle

    path = Path(path).expanduser()
    if not path.is_file():
        raise OSError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError,
            KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable nonlin_explorer checkpoint (truncated, foreign or unsafe: "
                         f"{first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != "nonlin_explorer.checkpoint/1":
        raise ValueError(f"{path} is not a nonlin_explorer checkpoint")
    return state
