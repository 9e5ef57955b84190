"""The early-vs-late view's logic, apart from any host: a stored result set drawn at once, new runs streamed on top.

It opens on a stored set (``results/advantage_mlp.nc`` by default: the configuration where the advantage holds):
one line per schedule, a band over seeds and the gap at matched count with its interval (:mod:`advantage_core`).
*Run* trains a grid of sparsities x seeds with :func:`~nonlin_explorer.advantage.compare_schedules` on a worker
thread; its callback only posts typed events to one mailbox, which :meth:`AdvantageController.tick` drains on the
host's thread into the ``live`` field. Requests are checked here and answered (ack or error), so bad input is one
line next to the button and the last valid settings stay. Exports are confined to ``files_root``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import xarray as xr

from nonlin_explorer.advantage import ADVANTAGE_SCHEDULES, compare_schedules, validate_grid
from nonlin_explorer.files import confined_path
from nonlin_explorer.lifecycle import stop_at_exit
from nonlin_explorer.netcdf import read_netcdf, write_netcdf
from nonlin_explorer.training import TrainConfig
from nonlin_explorer.ui.advantage_core import (
    DEFAULT_SET,
    RESULTS,
    config_label,
    find_stored,
    live_gaps,
    missing_figure,
    points_dataset,
    stored_figure,
    stored_names,
    stored_run_config,
)
from nonlin_explorer.ui.controller import Controller, RequestError
from nonlin_explorer.ui.live_state import Field
from nonlin_explorer.validation import parse_list, parse_number

__all__ = ["ADVANTAGE_FIELDS", "AdvantageController", "DEFAULT_CONFIG", "Done", "Failed", "Finished", "RunDone",
           "check_grid"]

#: New runs when neither a config nor a stored set says otherwise: the stored MLP set's configuration.
DEFAULT_CONFIG = TrainConfig(dataset="mnist1d", dataset_kwargs={"num_samples": 4000}, model="mlp",
                             model_kwargs={"width": 64, "depth": 4}, epochs=40, switch_epoch=20, lr=1e-2,
                             slope_lr=0.03, eval_every=10_000)
#: The grid a new run covers by default: one new seed at the lambdas where the two schedules reach the same few
#: nonlinear units (early at the two smaller, late at the two larger; the notebook's CI-sized grid).
DEFAULT_SPARSITIES = (2e-3, 4e-3, 3e-2, 6e-2)
DEFAULT_SEEDS = (5,)
#: Most runs one request may start (a page is any client of the server).
MAX_RUNS = 200

#: The synced state (``js/src/advantage/types.ts`` mirrors it).
ADVANTAGE_FIELDS: tuple[Field, ...] = (
    Field("heading", "Early vs late linearization", doc="the view's title"),
    Field("theme", "auto", doc='"auto" (follow JupyterLab), "light" or "dark"'),
    Field("stored", {}, doc="the stored set drawn: lines, bands, runs, gap with its interval (or why it is missing)"),
    Field("live", {}, doc="{points: [...], gap: {...}, label}: the runs of this view, drawn over the stored set"),
    Field("progress", {}, doc="{state, done, total, elapsed, error}: the comparison running now"),
    Field("settings", {}, doc="{sparsities, seeds, epochs, set}: what the form shows (the last valid settings)"),
    Field("options", {}, doc="{sets, files_root}: stored sets to choose from, the folder exports go to"),
    Field("notice", {}, doc="{text, kind, seq, lasting}: the last answer or problem to show"),
)


def check_grid(sparsities: Any = (0.0,), seeds: Any = (0,), epochs: Any = 1.0,
               **unknown: Any) -> tuple[list[float], list[int], float]:
    """A grid of new runs typed by a person (numbers or text): checked sparsities, seeds and epochs, or
    ``ValueError`` naming what is wrong (``RequestError`` for a setting that does not exist)."""
    if unknown:
        raise RequestError(f"unknown settings {sorted(unknown)}; settable: sparsities, seeds, epochs")
    sp = parse_list(sparsities, "sparsities", low=0.0)
    sd = parse_list(seeds, "seeds", integer=True, low=0)
    ep = float(parse_number(epochs, "epochs", low=0.0, high=100_000))
    if ep <= 0:
        raise ValueError("epochs: must be > 0")
    sp, sd, _ = validate_grid(sp, sd, ADVANTAGE_SCHEDULES)
    if 2 * len(sp) * len(sd) > MAX_RUNS:
        raise ValueError(f"{2 * len(sp) * len(sd)} runs: at most {MAX_RUNS} at a time")
    return sp, sd, ep


# -- typed events from the worker (one mailbox) ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Finished:
    """One run finished (its final numbers)."""

    gen: int
    point: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class RunDone:
    """The comparison ended (all runs, or cancelled)."""

    gen: int
    cancelled: bool
    elapsed: float


@dataclasses.dataclass(frozen=True)
class Done:
    """The comparison's result set."""

    gen: int
    result: xr.Dataset


@dataclasses.dataclass(frozen=True)
class Failed:
    """The comparison raised (the points so far stay)."""

    gen: int
    message: str


def _fmt_list(values) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _point(payload: dict[str, Any]) -> dict[str, Any]:
    keys = ("schedule", "sparsity", "seed", "test_acc", "nonlinear", "apl_normalized", "apl_unnormalized", "status")
    return {k: payload.get(k) for k in keys}


class AdvantageController(Controller):
    """Early vs late linearization: a stored result set, and a grid of new runs streamed over it.

    ``config``: a :class:`~nonlin_explorer.training.TrainConfig` (or a dict of its fields) for new runs (default: the
    stored set's configuration, so new points are comparable with its lines). ``sparsities`` and ``seeds``: the grid
    *Run* trains (default: lambdas where both schedules reach few units, or the stored set's own, and seed 5).
    ``stored``: a stored set's name (``"mlp"``, ``"cnn"``) or a ``.nc`` path. ``files_root``: the only
    folder *Export* writes to (default: the working directory).
    """

    FIELDS = ADVANTAGE_FIELDS
    BUNDLE = "advantage"

    def __init__(self, config: TrainConfig | dict | None = None, sparsities=None,
                 seeds=DEFAULT_SEEDS, *, stored: str | os.PathLike = DEFAULT_SET, rate: float = 4.0,
                 theme: str = "auto", files_root: str | os.PathLike | None = None):
        super().__init__()
        if theme not in ("auto", "light", "dark"):
            raise ValueError(f"theme must be 'auto', 'light' or 'dark', got {theme!r}")
        self.rate = float(parse_number(rate, "rate", low=0.5, high=60.0))
        self.files_root = Path(files_root if files_root is not None else os.getcwd()).resolve()
        self._own_config = config is not None
        if isinstance(config, dict):
            config = TrainConfig(**config)
        self.config: TrainConfig = dataclasses.replace(config or DEFAULT_CONFIG).validate()
        self._own_grid = sparsities is not None
        self.sparsities, self.seeds, _ = validate_grid(DEFAULT_SPARSITIES if sparsities is None else sparsities,
                                                       seeds, ADVANTAGE_SCHEDULES)
        self._mail: list[Any] = []
        self._mail_lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._gen = 0
        self.points: list[dict[str, Any]] = []
        self.result: xr.Dataset | None = None
        self.status = "idle"
        self.total = 0
        self.error = ""
        self.started_at: float | None = None
        self.elapsed = 0.0
        self.stored_name = ""
        self.stored_data: xr.Dataset | None = None
        self.state.update(theme=theme, options={"sets": stored_names(), "files_root": str(self.files_root)})
        self._load_stored(stored)
        self._show_settings()
        self._show_run()
        self._show_live()

    # -- the stored set ----------------------------------------------------------------------------------------
    def _load_stored(self, stored: str | os.PathLike) -> bool:
        """Read and draw a stored set; on failure, say why in its place (never empty axes). True if drawn."""
        name = str(stored)
        try:
            path = find_stored(stored)
            ds = read_netcdf(path)
            figure = stored_figure(ds, name=Path(name).stem.removeprefix("advantage_") if name.endswith(".nc")
                                   else name, path=self._short(path))
        except (OSError, ValueError, KeyError) as exc:
            self.state.update(stored=missing_figure(name, str(exc)))
            return False
        self.stored_name, self.stored_data = figure["name"], ds
        if not self._own_config and figure["config"]:
            self._follow_stored_config(ds)
        if not self._own_grid and not self.running:  # new runs on the stored set's lambdas (the MLP: matched ones)
            self.sparsities = list(DEFAULT_SPARSITIES) if figure["name"] == DEFAULT_SET else figure["sparsities"]
        self.state.update(stored=figure)
        return True

    def _follow_stored_config(self, ds: xr.Dataset) -> None:
        """New runs take the stored set's configuration (one evaluation at the end: the final numbers are the same)."""
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        base = {k: v for k, v in stored_run_config(ds).items() if k in fields}
        try:
            self.config = TrainConfig(**{**DEFAULT_CONFIG.to_dict(), **base, "eval_every": 10_000}).validate()
        except (TypeError, ValueError):
            pass  # a set from another version: keep the current configuration

    def _short(self, path: Path) -> str:
        for root in (RESULTS.parent, self.files_root):
            if root in path.resolve().parents:
                return str(path.resolve().relative_to(root))
        return str(path)

    def choose(self, name: Any) -> None:
        """Draw another stored set (``"mlp"``, ``"cnn"``, or a path to one); the runs of this view stay."""
        if not isinstance(name, str) or not name.strip():
            raise RequestError(f"choose a stored set by name ({', '.join(stored_names()) or 'none here'})")
        if self.running:
            raise RequestError("a comparison is running: cancel it before choosing another stored set")
        if not self._load_stored(name.strip()):
            message = self.state["stored"].get("message", "")
            self._load_stored(self.stored_name or DEFAULT_SET)  # the set shown before stays
            raise RequestError(message)
        self._show_settings()
        self.notify(f"showing the stored set {self.stored_name}", "success")

    # -- requests from the page --------------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "run":
            self.start(**{k: v for k, v in message.items() if k in ("sparsities", "seeds", "epochs")})
        elif kind == "cancel":
            self.cancel()
        elif kind == "choose":
            self.choose(message.get("set"))
        elif kind == "export":
            self.export(message.get("path"))
        else:
            raise RequestError(f"unknown request {kind!r}")

    def notify(self, text: str, kind: str = "info", lasting: bool = False) -> None:
        """Show ``text`` to the views open now (next to the button whose request it answers, else under the title).
        ``lasting``: views opened later show it too (a problem with how the app was started)."""
        seq = int(self.state.get("notice", {}).get("seq", 0)) + 1
        self.state.update(notice={"text": str(text), "kind": kind, "seq": seq, "lasting": bool(lasting)})

    # -- work --------------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _checked(self, changes: dict[str, Any]) -> tuple[list[float], list[int], TrainConfig]:
        sparsities, seeds, epochs = check_grid(**{"sparsities": self.sparsities, "seeds": self.seeds,
                                                  "epochs": self.config.epochs, **changes})
        config = dataclasses.replace(self.config, epochs=epochs, model_kwargs=dict(self.config.model_kwargs),
                                     dataset_kwargs=dict(self.config.dataset_kwargs))
        if config.switch_epoch is not None and not 0 < config.switch_epoch < epochs:
            config.switch_epoch = None  # half-way
        return sparsities, seeds, config.validate()

    def configure(self, **changes: Any) -> None:
        """Set what the next *Run* trains (sparsities, seeds, epochs) without running; ValueError for bad input."""
        if self.running:
            raise RequestError("a comparison is running: cancel it first")
        self.sparsities, self.seeds, self.config = self._checked(changes)
        self._show_settings()

    def start(self, **changes: Any) -> None:
        """Start a comparison (``changes``: sparsities, seeds, epochs, as numbers or text) on the worker thread.
        ``RequestError``/``ValueError`` for bad input or while one runs; nothing changes then."""
        if self.running:
            raise RequestError("a comparison is running: cancel it first")
        sparsities, seeds, config = self._checked(changes)
        self.sparsities, self.seeds, self.config = sparsities, seeds, config
        self._gen += 1
        self._cancel.clear()
        with self._mail_lock:
            self._mail.clear()
        self.points, self.result, self.error = [], None, ""
        self.total = 2 * len(sparsities) * len(seeds)
        self.status, self.started_at, self.elapsed = "running", time.perf_counter(), 0.0
        self._thread = threading.Thread(target=self._work, args=(self._gen, config, sparsities, seeds),
                                        name="nonlin-explorer-advantage", daemon=True)
        self._thread.start()
        stop_at_exit(self, lambda c: c.close(timeout=10))
        self._show_settings()
        self._show_run()
        self._show_live()

    def run(self, **changes: Any) -> bool:
        """Like :meth:`start` for scripts and notebooks: bad input is a notice (the last valid settings stay) and
        False; True once the runs have started."""
        unknown = set(changes) - {"sparsities", "seeds", "epochs"}
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; settable: sparsities, seeds, epochs")
        try:
            self.start(**changes)
        except ValueError as exc:
            self.notify(f"{exc} (keeping the last valid settings)", "danger")
            self._show_settings()
            return False
        return True

    def cancel(self) -> None:
        """Stop the running comparison after its current step (what finished stays on screen)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is done, then take in what it sent (scripts and tests). True if it is done."""
        if self._thread is not None:
            self._thread.join(timeout)
        self.tick()
        return not self.running

    def _post(self, event: Any) -> None:
        with self._mail_lock:
            self._mail.append(event)

    def _work(self, gen: int, config: TrainConfig, sparsities, seeds) -> None:
        def callback(kind: str, payload: dict[str, Any]) -> None:
            if kind == "run":
                self._post(Finished(gen, _point(payload)))
            elif kind == "done":
                self._post(RunDone(gen, bool(payload["cancelled"]), float(payload["elapsed"])))

        try:
            ds = compare_schedules(config, sparsities, seeds, callback=callback, should_stop=self._cancel.is_set)
            self._post(Done(gen, ds))
        except Exception as exc:  # shown to the user; the points so far stay
            self._post(Failed(gen, f"{type(exc).__name__}: {exc}"))

    def tick(self) -> None:
        """Take in what the worker sent since the last tick (host's thread)."""
        with self._mail_lock:
            events, self._mail = self._mail, []
        if self.status == "running" and self.started_at is not None:
            self.elapsed = time.perf_counter() - self.started_at
        new_points = False
        for ev in events:
            if ev.gen != self._gen:
                continue  # from an earlier comparison
            if isinstance(ev, Finished):
                self.points.append(ev.point)
                new_points = True
            elif isinstance(ev, RunDone):
                self.status = "cancelled" if ev.cancelled else "finished"
                self.elapsed = ev.elapsed
            elif isinstance(ev, Done):
                self.result = ev.result
            elif isinstance(ev, Failed):
                self.status, self.error = "error", ev.message
                self.notify(f"{ev.message} (the points so far stay)", "danger")
        if new_points:
            self._show_live()
        if events or self.status == "running":
            self._show_run()

    # -- read-outs ---------------------------------------------------------------------------------------------
    def points_dataset(self) -> xr.Dataset:
        """The runs of this view as a (schedule, sparsity, seed) result set (NaN where none finished yet); the
        comparison's full result set once it has ended."""
        if self.result is not None:
            return self.result
        return points_dataset(self.points, self.sparsities, self.seeds)

    def gaps(self) -> dict[str, float]:
        """Mean late-minus-early accuracy of this view's runs at matched nonlinear count and at matched APL (NaN
        where the schedules do not overlap yet)."""
        return live_gaps(self.points_dataset() if self.points else None)

    def export(self, path: Any = None) -> str:
        """Write this view's runs as netCDF inside ``files_root`` (never replacing a file: ``advantage-1.nc``);
        the path written. Refused before any run has finished."""
        if not self.points:
            raise RequestError("no runs to export yet: press Run first (the stored set is already a file: "
                               f"{self.state['stored'].get('path') or 'results/'})")
        target = confined_path(self.files_root, path if path is not None else "", default="advantage.nc")
        written = write_netcdf(self.points_dataset(), target, exists="rename")
        short = written.relative_to(self.files_root) if self.files_root in written.parents else written
        self.notify(f"wrote {short}" + ("" if written == target else f" ({target.name} exists)"), "success")
        return str(written)

    def _show_settings(self) -> None:
        self.state.update(settings={"sparsities": _fmt_list(self.sparsities), "seeds": _fmt_list(self.seeds),
                                    "epochs": self.config.epochs, "set": self.stored_name,
                                    "config": config_label(self.config.to_dict())})

    def _show_run(self) -> None:
        self.state.update(progress={"state": self.status, "done": len(self.points), "total": self.total,
                               "elapsed": round(self.elapsed, 1), "error": self.error})

    def _show_live(self) -> None:
        g = self.gaps()
        self.state.update(live={"points": list(self.points), "gap": {k: (None if isinstance(v, float) and
                                                                            not math.isfinite(v) else v)
                                                                        for k, v in g.items()},
                                "label": f"{config_label(self.config.to_dict())}; seeds {_fmt_list(self.seeds)}"})

    def status_dict(self) -> dict[str, Any]:
        """The view's state as plain values (tests and the served app's status endpoint)."""
        stored = self.state["stored"]
        return {"state": self.status, "runs": len(self.points), "total": self.total, "error": self.error,
                "points": {s: sum(p["schedule"] == s for p in self.points) for s in ADVANTAGE_SCHEDULES},
                "alive": self.running, "gaps": self.gaps() if self.points else {},
                "stored": {"name": stored.get("name"), "ok": stored.get("ok"), "message": stored.get("message", "")},
                "notice": self.state["notice"], "settings": self.state["settings"], "gen": self._gen}

    def close(self, timeout: float = 30.0) -> None:
        """Cancel the comparison and end the worker thread (safe to call twice)."""
        self._cancel.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        super().close()
