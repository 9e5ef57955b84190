"""The training dashboard's logic, apart from any host: steer a :class:`~nonlin_explorer.training.TrainingSession`,
stream its curves, show its units, export, record and replay.

The training thread only appends to a :class:`~nonlin_explorer.ui.dashboard_core.LiveBuffer`. The host calls
:meth:`DashboardController.tick` ``rate`` times a second on its flush thread: it drains the buffer into one
``series`` message (the rows that arrived) and refreshes the ``run`` field; the page keeps the curves and paints
them itself (``js/src/dashboard``). A page that opens (a new view, *Present*) asks with ``hello`` and gets the whole
history at once. The network part of the state is a :class:`~nonlin_explorer.ui.network_controller.NetworkController`
sharing this state. Requests are checked here, bounded, and answered (ack or error) so the page can show them at
once and roll back what was refused. Paths the page names are confined to ``files_root``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nonlin_explorer.datasets import DATASETS
from nonlin_explorer.files import confined_path
from nonlin_explorer.models import MODELS, count_parameters, kwargs_for
from nonlin_explorer.plumbing import eval_mode
from nonlin_explorer.recording import Recording, StepLog, load_recording, save_recording
from nonlin_explorer.training import TrainConfig, TrainingSession
from nonlin_explorer.ui.controller import Controller, RequestError
from nonlin_explorer.ui.dashboard_core import (
    DEFAULT_RATE,
    EVAL_ROLLOVER,
    LR_OPTIONS,
    REPLAY_SPEEDS,
    SPARSITY_MAX,
    SPARSITY_OPTIONS,
    STEP_ROLLOVER,
    LiveBuffer,
    ReplayClock,
    eval_columns,
    export_session,
    parse_number,
    reproduce_code,
    step_columns,
)
from nonlin_explorer.ui.live_state import Field
from nonlin_explorer.ui.network_controller import NETWORK_FIELDS, NetworkController
from nonlin_explorer.ui.url_settings import DASHBOARD_KEYS

__all__ = ["DashboardController", "DASHBOARD_FIELDS", "LIMITS", "MAX_PARAMETERS", "ReplayController"]

#: Schedules the dashboard offers (custom needs a switch epoch: use Python for it).
DASHBOARD_SCHEDULES = ("early", "late")
#: Bounds of what the page may ask for (checked here: a page is any client of the server).
LIMITS: dict[str, tuple[float, float]] = {
    "width": (1, 4096), "depth": (1, 200), "seed": (0, 2**31 - 1), "epochs": (0.01, 100_000),
    "sparsity": (0.0, SPARSITY_MAX), "lr": (1e-6, 1.0),
}
#: The largest model (parameters) a dashboard reset builds; counted on the meta device before anything is allocated.
MAX_PARAMETERS = 50_000_000
#: Previous runs kept as faded overlays after *Apply & reset*.
MAX_OVERLAYS = 3
#: The fields of the dashboard's synced state (``js/src/dashboard/types.ts`` mirrors them), after the network's.
DASHBOARD_FIELDS: tuple[Field, ...] = NETWORK_FIELDS + (
    Field("heading", "", doc="the dashboard's title line"),
    Field("mode", "live", doc='"live" (training) or "replay" (a recording)'),
    Field("theme", "auto", doc='"auto" (follow JupyterLab), "light" or "dark"'),
    Field("run", {}, doc="the session now: status, step, total_steps, sparsity in force, prior, test accuracy, ..."),
    Field("settings", {}, doc="the run settings the form shows (applied by reset)"),
    Field("options", {}, doc="choices and limits for the form: datasets, models, schedules, slider stops"),
    Field("code", "", doc="Python that reproduces this run, live changes included"),
    Field("notice", {}, doc="{text, kind, seq, lasting}: the last result or problem to show"),
    Field("replay", {}, doc="{playing, speed, eval_index, evals, finished, timed} while replaying"),
    Field("boundary", kind="uint8", doc="2-D inputs: the predicted class on a grid, row-major from the top row"),
    Field("boundary_info", {}, doc="{n, x: [lo, hi], y: [lo, hi], classes, step} of the boundary grid"),
    Field("points", kind="float32", doc="2-D inputs: test points, x and y interleaved"),
    Field("point_labels", kind="uint8", doc="2-D inputs: the test points' classes"),
)
#: Decision-boundary grid (cells per side), how often it is recomputed (seconds), and how many test points are shown.
BOUNDARY_GRID = 64
BOUNDARY_INTERVAL = 0.5
MAX_POINTS = 600


def _settings_of(config: TrainConfig) -> dict[str, Any]:
    """The run settings (every key of DASHBOARD_KEYS) of ``config``: width and depth from its model_kwargs."""
    shape = {"width": config.model_kwargs.get("width"), "depth": config.model_kwargs.get("depth")}
    return {key: shape[key] if key in shape else getattr(config, key) for key in DASHBOARD_KEYS}


def _bounded(value: Any, name: str, integer: bool = False) -> float | int:
    low, high = LIMITS[name]
    if isinstance(value, bool):
        raise RequestError(f"{name}: expected a number, got {value!r}")
    return parse_number(value, name, low=low, high=high, integer=integer)


def config_from_settings(cfg: TrainConfig, settings: Any) -> TrainConfig:
    """``cfg`` with the page's (or a URL's) ``settings``: every field checked and bounded (RequestError).
    Settings are numbers or their text; a field left out keeps ``cfg``'s value."""
    if not isinstance(settings, dict):
        raise RequestError(f"reset needs settings as an object, got {type(settings).__name__}")
    allowed = set(DASHBOARD_KEYS)
    unknown = set(settings) - allowed - {"revision"}
    if unknown:
        raise RequestError(f"unknown settings {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    dataset = settings.get("dataset", cfg.dataset)
    model = settings.get("model", cfg.model)
    if dataset not in DATASETS:
        raise RequestError(f"dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    if model not in MODELS:
        raise RequestError(f"model {model!r} is not one of {', '.join(MODELS)}")
    schedule = settings.get("schedule", cfg.schedule)
    if schedule not in DASHBOARD_SCHEDULES:
        raise RequestError(f"schedule {schedule!r} is not one of {', '.join(DASHBOARD_SCHEDULES)}")
    kwargs = dict(cfg.model_kwargs)
    for key in ("width", "depth"):
        value = settings.get(key, kwargs.get(key))
        if value is None or value == "":
            kwargs.pop(key, None)
        else:
            kwargs[key] = _bounded(value, key, integer=key == "depth" or model in ("mlp", "cnn"))
    seed = int(_bounded(settings.get("seed", cfg.seed), "seed", integer=True))
    epochs = float(_bounded(settings.get("epochs", cfg.epochs), "epochs"))
    sparsity = float(_bounded(settings.get("sparsity", cfg.sparsity), "sparsity"))
    lr = float(_bounded(settings.get("lr", cfg.lr), "lr"))
    dataset_kwargs = cfg.dataset_kwargs if dataset == cfg.dataset else {}
    switch = cfg.switch_epoch if schedule == cfg.schedule else None
    fields = {**cfg.to_dict(), "dataset": dataset, "model": model, "model_kwargs": kwargs,
              "dataset_kwargs": dict(dataset_kwargs), "schedule": schedule, "seed": seed, "epochs": epochs,
              "sparsity": sparsity, "lr": lr, "switch_epoch": switch}
    try:
        return TrainConfig(**fields).validate()
    except (TypeError, ValueError) as exc:
        raise RequestError(str(exc)) from None


def check_size(config: TrainConfig) -> TrainConfig:
    """``config``, or ValueError when its model has more than MAX_PARAMETERS parameters (counted on the meta
    device, after loading the dataset for its shapes): the dashboard never allocates what a page asked for blindly."""
    from nonlin_explorer import datasets

    data = datasets.load(config.dataset, **config.dataset_kwargs)
    kwargs = kwargs_for(config.model, data, config.model_kwargs)
    n = count_parameters(config.model, data.input_shape, data.num_classes, **kwargs)  # ValueError: a setting it lacks
    if n > MAX_PARAMETERS:
        raise ValueError(f"that model has {n:,} parameters; the dashboard builds at most {MAX_PARAMETERS:,}")
    return config


class DashboardController(Controller):
    """Controls, curves and units of one training session (:class:`ReplayController` replays a recording).

    ``DashboardController(session)`` steers an existing session; ``DashboardController(config)`` or keyword fields
    (``dataset="spirals", model_kwargs={"width": 32}``) build one. ``rate``: refreshes per second. ``files_root``: the
    folder exports and recordings may be written to (default: the working directory).
    """

    FIELDS = DASHBOARD_FIELDS
    BUNDLE = "dashboard"

    def __init__(self, session_or_config: TrainingSession | TrainConfig | None = None, *, rate: float = DEFAULT_RATE,
                 theme: str = "auto", files_root: str | os.PathLike | None = None, **config: Any):
        super().__init__()
        if theme not in ("auto", "light", "dark"):
            raise ValueError(f"theme must be 'auto', 'light' or 'dark', got {theme!r}")
        self.rate = float(parse_number(rate, "rate", low=0.5, high=60.0))
        self.files_root = Path(files_root if files_root is not None else os.getcwd()).resolve()
        if isinstance(session_or_config, TrainingSession):
            if config:
                raise ValueError("pass either a session or config fields, not both")
            session = session_or_config
        else:
            session = TrainingSession(session_or_config, **config)
        self._lock = threading.RLock()
        self._run_id = 0
        self.overlays: list[dict[str, Any]] = []
        self.flushes = 0
        self._last_feed = time.monotonic()
        self._resetting = False
        self._attach(session)
        self.state.update(theme=theme, mode="live", heading="live training", options=self._options())
        self._update_run()

    # -- the session ---------------------------------------------------------------------------------
    def _attach(self, session: TrainingSession) -> None:
        """Follow ``session``: buffer, step log, network part, settings and code (a reset calls this again)."""
        self.session = session
        self.buffer = LiveBuffer()
        self._unsubscribe = session.subscribe(self.buffer)
        self.step_log = StepLog()
        self._unsubscribe_log = session.subscribe(self.step_log)
        self.network = NetworkController(session, max_rate=max(self.rate, 15.0), state=self.state)
        self._run_id += 1
        self._steps: list[tuple[int, float]] = []
        self._evals: list[dict[str, Any]] = []
        self._stride = 1
        self._pending_steps = 0
        self._events_seen = -1
        if session.history and self.shows_history:  # a session that already trained: show what it has
            for entry in session.history:
                self.buffer("eval", entry)
        self.state.update(settings=_settings_of(session.config))
        self._update_code()
        self._boundary_at = -1e9
        self._boundary_step = -1
        self._plane = self._set_plane(session)

    def _set_plane(self, session: TrainingSession) -> tuple[float, float, float, float] | None:
        """For 2-D classification data: the plane's extent and its test points (sent once); else None."""
        data = session.data
        if getattr(data, "kind", "") != "classification" or tuple(data.input_shape) != (2,):
            self.state.update(boundary_info={}, boundary=np.zeros(0), points=np.zeros(0), point_labels=np.zeros(0))
            return None
        x = torch.cat([data.x_train, data.x_test]).float()
        lo, hi = x.min(0).values, x.max(0).values
        pad = 0.08 * (hi - lo)
        extent = (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))
        pts, labels = data.x_test[:MAX_POINTS].float(), data.y_test[:MAX_POINTS]
        self.state.update(points=pts.reshape(-1).numpy(), point_labels=labels.numpy())
        self._plane = extent
        self._update_boundary(force=True)
        return extent

    def _update_boundary(self, force: bool = False) -> None:
        """The predicted class on a grid over the plane (a forward pass of BOUNDARY_GRID**2 points, under the
        session's lock), at most every BOUNDARY_INTERVAL seconds and only when the model changed."""
        s = self.session
        if self._plane is None or (not force and (time.monotonic() - self._boundary_at < BOUNDARY_INTERVAL
                                                  or s.step == self._boundary_step)):
            return
        x0, x1, y0, y1 = self._plane
        n = BOUNDARY_GRID
        xs = torch.linspace(x0, x1, n)
        ys = torch.linspace(y1, y0, n)  # the top row first
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)
        model = s.model
        with s.locked(), eval_mode(model):
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            pred = model(grid.to(device)).argmax(-1).to(torch.uint8).cpu()
        self._boundary_at, self._boundary_step = time.monotonic(), s.step
        self.state.update(boundary=pred.numpy(), boundary_info={
            "n": n, "x": [x0, x1], "y": [y0, y1], "classes": int(s.data.num_classes), "step": int(s.step)})

    def _detach(self) -> None:
        self._unsubscribe()
        self._unsubscribe_log()
        self.network.close()

    # -- periodic work (the host's flush thread) -----------------------------------------------------
    def tick(self) -> None:
        """Drain what the session sent into one ``series`` message; refresh the run status."""
        with self._lock:
            if self.closed or self._resetting:
                return
            self._feed()
            drained = self.buffer.drain()
            if drained.steps or drained.evals:
                steps = step_columns(drained.steps)
                evals = self._eval_rows(drained.evals)
                self._remember(drained.steps, drained.evals)
                self.state.post({"type": "series", "run": self._run_id, "steps": steps, "evals": evals})
                if drained.evals:
                    self._on_evals()
                self.flushes += 1
            self._update_run()
            if len(self.session.events) != self._events_seen:
                self._update_code()
        self._update_boundary()

    @staticmethod
    def _eval_rows(evals: list[dict[str, Any]]) -> dict[str, list]:
        cols = eval_columns(evals)
        cols["nonlinear"] = [[int(n) for n in row.get("nonlinear", ())] for row in evals]
        cols["prior_on"] = [bool(row.get("prior_on", False)) for row in evals]
        return cols

    def _remember(self, steps: list[tuple[int, float]], evals: list[dict[str, Any]]) -> None:
        """Keep the run's curves for a page that opens later (thinned by 2 whenever they outgrow the rollover)."""
        for s in steps:
            self._pending_steps += 1
            if self._pending_steps >= self._stride:
                self._pending_steps = 0
                self._steps.append(s)
        if len(self._steps) > STEP_ROLLOVER:
            self._steps = self._steps[::2]
            self._stride *= 2
        self._evals.extend(evals)
        if len(self._evals) > EVAL_ROLLOVER:
            self._evals = self._evals[::2]

    def _snapshot(self) -> dict[str, Any]:
        return {"type": "snapshot", "run": self._run_id,
                "steps": step_columns(self._steps, max_points=len(self._steps) or 1),
                "evals": self._eval_rows(self._evals), "overlays": self.overlays}

    def _update_run(self) -> None:
        self.state.update(run=self._run_status())

    def _run_status(self) -> dict[str, Any]:
        """What the status line and the charts need to know about the run now."""
        s = self.session
        last = self._evals[-1] if self._evals else None
        return {
            "status": s.status, "reason": s.stop_reason, "step": s.step, "total_steps": s.total_steps,
            "sparsity": float(s.sparsity) if s.prior_on else 0.0, "target_sparsity": float(s.config.sparsity),
            "lr": s.lr, "prior_on": bool(s.prior_on), "switch_step": int(s.switch_step), "device": str(s.device),
            "device_kind": "CUDA" if s.device.type == "cuda" else s.device.type.upper(),
            "test_acc": last.get("test_acc") if last else None, "tol": float(s.config.tol),
            "eval_every": int(s.config.eval_every), "gate_names": list(s.gate_names),
            "units": [int(g.num_units) for g in s.gates], "resetting": self._resetting,
        }

    def _update_code(self) -> None:
        s = self.session
        self._events_seen = len(s.events)
        if self._user_given():
            code = "# This session was given its own model or data: build it the same way, then session.run()."
        else:
            code = reproduce_code(s.initial_config, s.events)
        self.state.update(code=code)

    def _options(self) -> dict[str, Any]:
        return {"datasets": list(DATASETS), "models": list(MODELS), "schedules": list(DASHBOARD_SCHEDULES),
                "sparsity_stops": list(SPARSITY_OPTIONS), "lr_stops": list(LR_OPTIONS), "speeds": list(REPLAY_SPEEDS),
                "limits": {k: list(v) for k, v in LIMITS.items()}, "files_root": str(self.files_root)}

    # -- requests from the page ----------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("set_state", "refresh"):
            self.network.handle(message)
            return
        if kind == "hello":
            with self._lock:
                self.state.post(self._snapshot())
            return
        handler = {"start": self.start, "pause": self.pause, "stop": self.stop, "prior_on": self.switch_prior_on,
                   "set": lambda: self.set(**{k: v for k, v in message.items() if k not in ("type", "id")}),
                   "reset": lambda: self.reset(message.get("settings")),
                   "export": lambda: self.export(message.get("path")),
                   "record": lambda: self.record(message.get("path"))}.get(kind)
        if handler is None:
            raise RequestError(f"unknown request {kind!r}")
        handler()

    def notify(self, text: str, kind: str = "info", lasting: bool = False) -> None:
        """Show ``text`` to the views open now (``kind``: info, success, warning, danger): next to the button whose
        request it answers, else in the notice line. ``lasting``: views opened later show it too (a problem with how
        the app was started); other notices are news once and do not resurface in a later view."""
        seq = int(self.state.get("notice", {}).get("seq", 0)) + 1
        self.state.update(notice={"text": str(text), "kind": kind, "seq": seq, "lasting": bool(lasting)})

    def start(self) -> None:
        if self._resetting:
            raise RequestError("the run is being rebuilt: start it when the reset is done")
        self.session.start()
        self._update_run()

    def pause(self) -> None:
        self.session.pause()

    def stop(self) -> None:
        self.session.stop(wait=False)

    def switch_prior_on(self) -> None:
        self.session.switch_prior_on()

    def set(self, **values: Any) -> None:
        """Live changes: ``sparsity`` and/or ``lr`` (bounded; applied by the session at its next step)."""
        if not values:
            raise RequestError("set needs sparsity or lr")
        unknown = set(values) - {"sparsity", "lr"}
        if unknown:
            raise RequestError(f"cannot set {', '.join(sorted(unknown))} from the page; settable: sparsity, lr")
        checked = {k: float(_bounded(v, k)) for k, v in values.items()}
        self.session.set(**checked)
        settings = dict(self.state["settings"])
        settings.update(checked)
        self.state.update(settings=settings)

    def _config_from(self, settings: Any) -> TrainConfig:
        return config_from_settings(self.session.config, settings)

    def reset(self, settings: Any = None, wait: bool = False) -> None:
        """Stop this run and build a new one from ``settings`` (checked now; built on a worker thread, since loading
        a dataset takes seconds). The old run's curves stay as a faded overlay. ``wait``: block until built."""
        if self._user_given():
            raise RequestError("this session was given its own model or data: reset is not available")
        if self._resetting:
            raise RequestError("a reset is already in progress")
        config = self._config_from(settings if settings is not None else self.state["settings"])
        self._resetting = True
        self._update_run()
        worker = threading.Thread(target=self._rebuild, args=(config,), name="nonlin-explorer-reset", daemon=True)
        worker.start()
        if wait:
            worker.join()

    def _user_given(self) -> bool:
        return self.session.user_given

    def _rebuild(self, config: TrainConfig) -> None:
        try:
            check_size(config)
            session = TrainingSession(config, track_paths=self.session.track_paths)
        except Exception as exc:  # the old run stays; say why
            with self._lock:
                self._resetting = False
                # A new revision, so that the page puts its form back even though the settings did not change.
                revision = int(self.state["settings"].get("revision", 0)) + 1
                self.state.update(settings={**_settings_of(self.session.config), "revision": revision})
                self._update_run()
            self.notify(f"reset failed: {exc} (the current run is kept)", "danger")
            return
        old = self.session
        old.stop(wait=True, timeout=30)
        with self._lock:
            self._keep_overlay(old)
            self._detach()
            self._attach(session)
            self._resetting = False
            self._update_run()
            self.state.post(self._snapshot())
        self.notify(f"new run: {config.model} on {config.dataset}, seed {config.seed}", "success")

    def _keep_overlay(self, session: TrainingSession) -> None:
        if not self._evals and not self._steps:
            return
        cfg = session.config
        label = f"run {self._run_id}: {cfg.model} on {cfg.dataset}, λ {cfg.sparsity:g}, seed {cfg.seed}"
        self.overlays.append({"run": self._run_id, "label": label,
                              "steps": step_columns(self._steps, max_points=1000),
                              "evals": self._eval_rows(self._evals[-EVAL_ROLLOVER:])})
        del self.overlays[:-MAX_OVERLAYS]

    def export(self, path: Any = None) -> str:
        """Write the result set to netCDF inside ``files_root``; the path written. An existing file is never
        replaced: the export takes the first free name beside it (``results-1.nc``) and the notice says so."""
        target = confined_path(self.files_root, path if path is not None else "", default="results.nc")
        written = export_session(self.session, target, exists="rename")
        self.notify(self._wrote("wrote", target, Path(written)), "success")
        return written

    def record(self, path: Any = None) -> str:
        """Save the run's recording (a new folder inside ``files_root``) for replay; the path written. An existing
        folder is never replaced or removed: the recording takes the first free name (``run-1.rec``)."""
        target = confined_path(self.files_root, path if path is not None else "", default="run.rec")
        written = save_recording(self.session, target, steps=self.step_log.snapshot(), exists="rename")
        self.notify(self._wrote("wrote recording", target, written), "success")
        return str(written)

    def _wrote(self, verb: str, target: Path, written: Path) -> str:
        """A short notice: the name written, relative to ``files_root``, and why it is not the name asked for."""
        def short(p: Path) -> str:
            return str(p.relative_to(self.files_root)) if self.files_root in p.parents else str(p)

        if written == target:
            return f"{verb} {short(written)}"
        return f"{verb} {short(written)} ({target.name} exists)"

    # -- hooks for ReplayController ---------------------------------------------------------------------
    #: a session's own history is shown when the dashboard opens (a replay feeds its recording instead)
    shows_history = True

    def _feed(self) -> None:
        """Hand what is due to the buffer (a live session feeds it itself)."""

    def _on_evals(self) -> None:
        """New evaluations were streamed."""

    # -- read-outs and life cycle ----------------------------------------------------------------------
    def status_dict(self) -> dict[str, Any]:
        """The live session's state as plain values (the served app's status endpoint returns this)."""
        s = self.session
        run = self.state["run"]
        return {**run, "config_sparsity": s.config.sparsity, "sparsity": s.sparsity,
                "nonlinear": [g.nonlinear_count(s.config.tol) for g in s.gates], "gates": s.gate_names,
                "unit_states": [[int(v) for v in g.state.reshape(-1).tolist()] for g in s.gates],
                "dataset": s.config.dataset, "model": s.config.model, "seed": s.config.seed,
                "model_kwargs": dict(s.config.model_kwargs), "history": len(s.history), "flushes": self.flushes,
                "notice": self.state["notice"], "settings": self.state["settings"], "run_id": self._run_id,
                "replay": None}

    def close(self) -> None:
        """Stop training, the network part and the subscriptions (no orphan thread; safe to call twice)."""
        if self.closed:
            return
        super().close()
        self._detach()
        self.session.stop(wait=True, timeout=30)


class ReplayController(DashboardController):
    """The dashboard replaying a saved run (:func:`~nonlin_explorer.recording.save_recording`): no training; the
    recorded evaluations and steps are fed through the same buffer and curves at ``speed`` times the recorded time.
    It opens at the beginning, paused; Play, Pause, a speed and an evaluation to seek to are its requests."""

    shows_history = False

    def __init__(self, recording: Recording | str, *, speed: float = 1.0, rate: float = DEFAULT_RATE,
                 theme: str = "auto", files_root: str | os.PathLike | None = None):
        rec = recording if isinstance(recording, Recording) else load_recording(recording)
        self.recording = rec
        self.replay_clock = ReplayClock(rec.evals, rec.steps, speed)
        super().__init__(rec.session(), rate=rate, theme=theme, files_root=files_root)
        self.state.update(mode="replay", heading=f"replay of {rec.name}",
                          options={**self._options(), "speeds": sorted({*REPLAY_SPEEDS, self.replay_clock.speed})})
        self._show_replay_eval()
        self._update_run()

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("set_state", "refresh", "hello"):
            super().handle(message)
        elif kind == "replay":
            self._handle_replay(message)
        else:
            raise RequestError(f"a replay does not train: {kind!r} is not available (use Play)")

    def _feed(self) -> None:
        now = time.monotonic()
        self.replay_clock.feed(self.buffer, now - self._last_feed)
        self._last_feed = now

    def _on_evals(self) -> None:
        self._show_replay_eval()

    def _run_status(self) -> dict[str, Any]:
        run = super()._run_status()
        clock, last = self.replay_clock, (self._evals[-1] if self._evals else None)
        run.update(status="replay", step=int(last["step"]) if last else 0,
                   total_steps=int(clock.evals[-1]["step"]) if clock.evals else 0)
        self.state.update(replay={"playing": clock.playing, "finished": clock.finished,
                                  "eval_index": clock.eval_index, "evals": len(clock.evals), "speed": clock.speed,
                                  "timed": clock.timed})
        return run

    def status_dict(self) -> dict[str, Any]:
        return {**super().status_dict(), "replay": {**self.state["replay"], "file": str(self.recording.path)}}

    def close(self) -> None:
        self.replay_clock.playing = False
        super().close()

    # -- replay ----------------------------------------------------------------------------------------
    def _require_replay(self) -> ReplayClock:
        return self.replay_clock

    def _handle_replay(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        if action == "play":
            self.play()
        elif action == "pause":
            self.pause_replay()
        elif action == "seek":
            self.seek(message.get("index"))
        elif action == "speed":
            self.set_speed(message.get("speed"))
        else:
            raise RequestError(f"unknown replay action {action!r}; actions: play, pause, seek, speed")

    def play(self) -> None:
        """Play (or continue) the replay; from the start again when it has finished."""
        clock = self._require_replay()
        with self._lock:
            if clock.finished:
                self.seek(-1)
            clock.playing = True
            self._last_feed = time.monotonic()
            self._update_run()

    def pause_replay(self) -> None:
        with self._lock:
            self._require_replay().playing = False
            self._update_run()

    def set_speed(self, speed: Any) -> None:
        if isinstance(speed, bool):
            raise RequestError(f"speed must be a number, got {speed!r}")
        self._require_replay().speed = float(parse_number(speed, "speed", low=1e-3, high=1e6))
        self._update_run()

    def seek(self, index: Any) -> None:
        """Show the run up to evaluation ``index`` (-1: nothing yet) at once; playing goes on from there."""
        clock = self._require_replay()
        if isinstance(index, bool) or not isinstance(index, (int, float)):
            raise RequestError(f"index must be an integer, got {index!r}")
        with self._lock:
            steps, evals = clock.seek(int(parse_number(index, "evaluation", low=-1, high=len(clock.evals) - 1,
                                                       integer=True)))
            self.buffer.drain()  # fed but not drawn: belongs to the old position
            self._steps, self._evals, self._stride, self._pending_steps = [], [], 1, 0
            self._remember(steps, evals)
            self._run_id += 1
            self.state.post(self._snapshot())
            self._show_replay_eval()
            self._update_run()

    def _show_replay_eval(self) -> None:
        """Set the model's slopes to those recorded at the current evaluation (the network view repaints)."""
        self.recording.show(self.replay_clock.eval_index)
        self.network.update(activations=True)
