"""Recordings of training runs: saved once (e.g. after a long GPU run), replayed later without training.

A recording is a folder holding ``recording.nc`` (the session's result set with every evaluation's slopes, its
wall-clock times and the per-step batch losses) and ``checkpoint.pt`` (the final weights and the config, to
rebuild the model for the network view). :func:`load_recording` reads both back; nothing here imports a UI.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nonlin_explorer.files import recover_folder, write_folder

FORMAT = "nonlin_explorer.recording/1"
RESULTS_FILE = "recording.nc"
CHECKPOINT_FILE = "checkpoint.pt"
#: Keep every evaluation's slopes up to this many values (float32); beyond, every k-th evaluation.
MAX_SLOPE_VALUES = 50_000_000


class RecordingError(ValueError):
    """A path that is not a readable recording (missing, truncated or another kind of file)."""


class StepLog:
    """A session subscriber keeping every ``(step, loss)`` pair (history keeps evaluations only).

    An append under a lock on the training thread; at most ``max_steps`` pairs (older ones are thinned by 2).
    """

    def __init__(self, max_steps: int = 2_000_000):
        self._lock = threading.Lock()
        self.max_steps = int(max_steps)
        self.steps: list[tuple[int, float]] = []

    def __call__(self, kind: str, payload: dict) -> None:
        if kind != "step":
            return
        with self._lock:
            self.steps.append((int(payload["step"]), float(payload["loss"])))
            if len(self.steps) > self.max_steps:
                self.steps = self.steps[::2]

    def snapshot(self) -> list[tuple[int, float]]:
        with self._lock:
            return list(self.steps)


def attach_step_log(session) -> StepLog:
    """Subscribe a :class:`StepLog` to ``session`` (before training) so its recording has per-step losses."""
    log = StepLog()
    session.subscribe(log)
    return log


@dataclass
class Recording:
    """What :func:`load_recording` returns: evaluations (like ``session.history``) and steps, in order."""

    path: Path
    config: Any
    evals: list[dict[str, Any]]
    steps: list[tuple[int, float]]
    gate_names: list[str]
    units: list[int]
    dataset: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)
    _session: Any = None

    @property
    def name(self) -> str:
        return self.path.name

    def session(self, device: str = "cpu"):
        """The run's :class:`~nonlin_explorer.training.TrainingSession` at its end (final weights; never
        started by replay). Built once from the checkpoint (``weights_only`` loading)."""
        if self._session is None:
            from nonlin_explorer.training import load_checkpoint

            try:
                self._session = load_checkpoint(self.path / CHECKPOINT_FILE, device=device)
            except (OSError, RuntimeError, EOFError, KeyError, ValueError, TypeError) as exc:
                raise RecordingError(f"{self.path}: cannot read the checkpoint: {exc}") from None
        return self._session

    def show(self, index: int) -> None:
        """Put the run's :meth:`session` where evaluation ``index`` left it (-1: before the first): every gate free at
        the slopes recorded then (0 before any), the step counter at that evaluation's step. The replay's one way to
        move the session, through its trainer's :meth:`~nonlin_explorer.trainer.Trainer.show_slopes` (between two steps,
        so readers see a whole evaluation)."""
        slopes = self.slopes_at(index) if index >= 0 else None
        step = int(self.evals[index]["step"]) if 0 <= index < len(self.evals) else 0
        self.session().trainer.show_slopes(slopes, step)

    def slopes_at(self, index: int) -> list[torch.Tensor] | None:
        """The slopes recorded at evaluation ``index`` or the latest one before it (None: none yet)."""
        for i in range(min(index, len(self.evals) - 1), -1, -1):
            if self.evals[i].get("slopes") is not None:
                return self.evals[i]["slopes"]
        return None


def is_recording(folder: Path) -> bool:
    """True for a folder holding a recording and nothing else (only such a folder is ever replaced)."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return False
    return RESULTS_FILE in names and names <= {RESULTS_FILE, CHECKPOINT_FILE}


def remove_recording(folder: Path) -> None:
    """Delete a recording's own files, then its folder if that is empty: never anything this package did not write."""
    for name in (RESULTS_FILE, CHECKPOINT_FILE):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def save_recording(session, path: str | os.PathLike, steps: list[tuple[int, float]] | None = None, *,
                   exists: str = "replace") -> Path:
    """Write ``session``'s recording to the folder ``path`` (:func:`~nonlin_explorer.files.write_folder`: built in a
    new folder beside it and renamed into place); the path written.

    ``steps``: the per-step losses (e.g. a :class:`StepLog`'s); without them the replay shows evaluations only.
    ``exists``: ``"replace"`` (default) an existing recording, atomically (a folder holding anything else is never
    replaced), ``"refuse"``, or ``"rename"``: a new folder ``NAME-1.rec`` (what the dashboard's Record does).
    ``OSError`` for a path that cannot be written, ``ValueError`` for a session that cannot be rebuilt.
    """
    from nonlin_explorer.labels import label
    from nonlin_explorer.results import check_writable, save_checkpoint, session_to_xarray, write_netcdf

    path = check_writable(path, folder=True)
    recover_folder(path, is_recording)
    if session.user_given:
        raise ValueError("only a session built from a TrainConfig can be recorded (its model is rebuilt on load)")
    if exists == "replace" and path.exists() and not is_recording(path):
        raise OSError(f"cannot write {path}: it exists and is not a recording (not replaced)")

    def write(tmp: Path) -> None:
        with session.locked():  # the result set and the checkpoint describe the same step
            ds = session_to_xarray(session, max_slope_values=MAX_SLOPE_VALUES)
            times = np.array([h.get("time", math.nan) for h in session.history], dtype=np.float64)
            save_checkpoint(session, tmp / CHECKPOINT_FILE)
        pairs = list(steps or [])
        ds["eval_time"] = ("step", times)
        ds["batch_step"] = ("batch", np.array([s for s, _ in pairs], dtype=np.int64))
        ds["batch_loss"] = ("batch", np.array([v for _, v in pairs], dtype=np.float64))
        label(ds)
        ds.attrs["recording_format"] = FORMAT
        write_netcdf(ds, tmp / RESULTS_FILE)

    return write_folder(path, write, exists=exists, is_ours=is_recording, remove_old=remove_recording,
                        what="recording")


def load_recording(path: str | os.PathLike) -> Recording:
    """Read a recording written by :func:`save_recording`; :class:`RecordingError` for anything else."""
    import json

    from nonlin_explorer.results import read_netcdf
    from nonlin_explorer.training import TrainConfig

    path = Path(path).expanduser()
    recover_folder(path, is_recording)  # a replace killed half-way (systems without an atomic exchange)
    if not path.is_dir():
        raise RecordingError(f"{path} is not a recording: no such folder" if not path.exists()
                             else f"{path} is not a recording (a recording is a folder; this is a file)")
    for name in (RESULTS_FILE, CHECKPOINT_FILE):
        if not (path / name).is_file():
            raise RecordingError(f"{path} is not a recording: {name} is missing")
    try:
        ds = read_netcdf(path / RESULTS_FILE)
    except Exception as exc:  # netCDF4/HDF5 raise their own types for truncated or foreign files
        raise RecordingError(f"{path / RESULTS_FILE} cannot be read (truncated or not netCDF): {exc}") from None
    if ds.attrs.get("recording_format") != FORMAT:
        raise RecordingError(f"{path / RESULTS_FILE} is not a nonlin_explorer recording ({FORMAT})")
    try:
        config = TrainConfig(**json.loads(ds.attrs["config"]))
        units = [int(u) for u in ds["units"].values]
        layers = [str(v) for v in ds["layer"].values]
        metrics = [n for n in ("apl_normalized", "apl_unnormalized", "nonlinear_layers") if n in ds]
        metrics += [n for n in ds.data_vars if ds[n].dims == ("step",) and n not in metrics and n not in _OWN]
        slope_at = {int(s): i for i, s in enumerate(ds["slope_step"].values)}
        slopes = ds["slope"].values
        evals = []
        for i, step in enumerate(ds["step"].values):
            row: dict[str, Any] = {"step": int(step), "epoch": float(ds["epoch"].values[i]),
                                   "time": float(ds["eval_time"].values[i])}
            for key in ("train_loss", "train_acc", "test_loss", "test_acc", "sparsity"):
                row[key] = float(ds[key].values[i])
            row["prior_on"] = bool(ds["prior_on"].values[i])
            row["lr"] = float(ds["lr"].values[i])
            row["nonlinear"] = [int(n) for n in ds["nonlinear"].values[i]]
            k = slope_at.get(int(step))
            row["slopes"] = None if k is None else [torch.from_numpy(slopes[k, j, :u].copy())
                                                    for j, u in enumerate(units)]
            for name in metrics:
                row[name] = float(ds[name].values[i])
            evals.append(row)
        steps = list(zip((int(s) for s in ds["batch_step"].values), (float(v) for v in ds["batch_loss"].values)))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise RecordingError(f"{path / RESULTS_FILE} is incomplete: {exc!r}") from None
    return Recording(path=path, config=config, evals=evals, steps=steps, gate_names=layers, units=units,
                     dataset=ds.attrs.get("dataset"), attrs=dict(ds.attrs))


_OWN = frozenset({"train_loss", "train_acc", "test_loss", "test_acc", "sparsity", "lr", "prior_on", "nonlinear_total",
                  "eval_time"})
