"""A live training dashboard (Panel + Bokeh): steer a :class:`~nonlin_explorer.training.TrainingSession` and
watch units turn linear.

The training thread never touches the UI: the session's callback is a :class:`LiveBuffer` (an append under a
lock); a Panel periodic callback drains it ``rate`` times a second on the document's thread and streams
everything that arrived in one ``ColumnDataSource.stream(..., rollover=...)`` call per plot.

Works in a notebook (display the object) and standalone (``nonlin-explorer serve``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from typing import Any

import panel as pn
import torch
from bokeh.models import ColumnDataSource, HoverTool, LinearAxis, LinearColorMapper, Range1d
from bokeh.plotting import figure
from panel.io.document import hold

from nonlin_explorer.datasets import DATASETS
from nonlin_explorer.models import MODELS
from nonlin_explorer.recording import Recording, StepLog, load_recording, save_recording
from nonlin_explorer.training import SCHEDULES, TrainConfig, TrainingSession
from nonlin_explorer.ui.advantage_view import AdvantageView
from nonlin_explorer.ui.dashboard_core import (
    DEFAULT_RATE,
    EVAL_ROLLOVER,
    LR_OPTIONS,
    REPLAY_SPEEDS,
    SPARSITY_OPTIONS,
    STEP_ROLLOVER,
    LiveBuffer,
    ReplayClock,
    core_columns,
    core_summary,
    eval_columns,
    export_session,
    heatmap_columns,
    nearest_option,
    option_label,
    parse_number,
    parse_sparsity,
    reproduce_code,
    step_columns,
)
from nonlin_explorer.ui.live_view import LiveView
from nonlin_explorer.ui.network_view_panel import NetworkViewPane

__all__ = ["TrainingDashboard"]

_PLOT = dict(height=230, sizing_mode="stretch_width", toolbar_location=None)


def _empty(cols) -> dict[str, list]:
    return {c: [] for c in cols}


class TrainingDashboard(LiveView):
    """Controls, live plots and export for one training session.

    ``TrainingDashboard(session)`` steers an existing session; ``TrainingDashboard(config)`` or
    ``TrainingDashboard(dataset="spirals", model_kwargs={"width": 32})`` builds one. ``rate`` is the plot
    refresh rate in Hz (10-20 keeps a browser smooth without costing training time).
    :meth:`from_recording` replays a saved run instead (no training).
    """

    def __init__(self, session_or_config: TrainingSession | TrainConfig | None = None, *, rate: float = DEFAULT_RATE,
                 theme: str = "light", replay: Recording | None = None, speed: float = 1.0, **config):
        super().__init__()
        self.recording = replay
        self.replay_clock = ReplayClock(replay.evals, replay.steps, speed) if replay is not None else None
        if replay is not None:
            session_or_config = replay.session()
        if isinstance(session_or_config, TrainingSession):
            if config:
                raise ValueError("pass either a session or config fields, not both")
            session = session_or_config
        else:
            session = TrainingSession(session_or_config, **config)
        rate = parse_number(rate, "rate", low=0.5, high=60.0)
        self.rate = float(rate)
        self.theme = theme
        self.session: TrainingSession = session
        self.buffer = LiveBuffer()
        self._unsubscribe = session.subscribe(self.buffer)
        self.step_log = StepLog()  # per-step losses for record() (history keeps evaluations only)
        self._unsubscribe_log = session.subscribe(self.step_log)
        self._last_feed = time.monotonic()
        self._syncing = False
        self._last_eval: dict[str, Any] | None = session.history[-1] if session.history else None
        self.flushes = 0
        self.flush_seconds = 0.0
        self._build_widgets()
        self._build_plots()
        self.network = self._make_network()
        self._network_holder = pn.Column(self.network, sizing_mode="stretch_width")
        self._reset_sources()
        if self.replay_clock is not None:
            self._show_replay_eval()
            self.status.object = self._status_text()
        self._layout = self._build_layout()
        self._callback = None
        self._start_callback()

    # -- construction -----------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        cfg = self.session.config
        self.start_button = pn.widgets.Button(label="Start", color="success", width=80)
        self.pause_button = pn.widgets.Button(label="Pause", color="warning", width=80)
        self.stop_button = pn.widgets.Button(label="Stop", color="danger", width=80)
        self.reset_button = pn.widgets.Button(label="Apply & reset", color="primary", width=120)
        self.start_button.on_click(lambda e: self.start())
        self.pause_button.on_click(lambda e: self.pause())
        self.stop_button.on_click(lambda e: self.stop())
        self.reset_button.on_click(lambda e: self.reset())

        sparsity = float(self.session.sparsity)
        self.sparsity_slider = pn.widgets.DiscreteSlider(
            name="Sparsity λ (log scale)", options={option_label(o): o for o in SPARSITY_OPTIONS},
            value=nearest_option(sparsity), sizing_mode="stretch_width", css_classes=["ne-sparsity-slider"])
        self.sparsity_input = pn.widgets.TextInput(label="Sparsity λ (exact)", value=f"{sparsity:g}", width=140)
        self.lr_slider = pn.widgets.DiscreteSlider(
            name="Learning rate (log scale)", options={option_label(o): o for o in LR_OPTIONS},
            value=nearest_option(cfg.lr, LR_OPTIONS), sizing_mode="stretch_width")
        self.sparsity_slider.param.watch(self._on_sparsity_slider, "value")
        self.sparsity_input.param.watch(self._on_sparsity_text, "value")
        self.lr_slider.param.watch(self._on_lr, "value")

        self.schedule = pn.widgets.RadioButtonGroup(label="Schedule", options=list(SCHEDULES[:2]),
                                                    value=cfg.schedule if cfg.schedule in SCHEDULES[:2] else "early")
        self.prior_button = pn.widgets.Button(label="Switch the prior on now", width=190)
        self.prior_button.on_click(lambda e: self.switch_prior_on())

        width = cfg.model_kwargs.get("width", "")
        depth = cfg.model_kwargs.get("depth", "")
        self.dataset = pn.widgets.Select(label="Dataset", options=list(DATASETS), value=cfg.dataset, width=130)
        self.model = pn.widgets.Select(label="Model", options=list(MODELS), value=cfg.model, width=130)
        self.width_input = pn.widgets.TextInput(label="Width", value=str(width), placeholder="default", width=90)
        self.depth_input = pn.widgets.TextInput(label="Depth", value=str(depth), placeholder="default", width=90)
        self.seed_input = pn.widgets.TextInput(label="Seed", value=str(cfg.seed), width=90)
        self.epochs_input = pn.widgets.TextInput(label="Epochs", value=f"{cfg.epochs:g}", width=90)

        self.device = pn.pane.Markdown(self._device_text(), css_classes=["ne-device"], margin=(0, 10))
        self.status = pn.pane.Markdown(self._status_text(), css_classes=["ne-status"], margin=(0, 10))
        self.message = self._make_message()

        self.export_path = pn.widgets.TextInput(label="Export to (netCDF)", value="results.nc", width=260)
        self.export_button = pn.widgets.Button(label="Export", color="primary", width=90)
        self.export_button.on_click(lambda e: self.export())
        self.code = pn.pane.Markdown(self._code_text(), css_classes=["ne-code"], sizing_mode="stretch_width")
        self.record_path = pn.widgets.TextInput(label="Save a recording to (folder)", value="run.rec", width=260)
        self.record_button = pn.widgets.Button(label="Record", color="primary", width=90)
        self.record_button.on_click(lambda e: self.record())
        self._build_replay_widgets()

    def _build_replay_widgets(self) -> None:
        """Play/pause, speed and the scrubber (shown only when replaying a recording)."""
        n = len(self.recording.evals) if self.recording is not None else 0
        self.play_button = pn.widgets.Button(label="Play", color="success", width=80, css_classes=["ne-play"])
        self.play_button.on_click(lambda e: self.pause_replay() if self.replay_clock.playing else self.play())
        speed = self.replay_clock.speed if self.replay_clock is not None else 1.0
        speeds = sorted({*REPLAY_SPEEDS, speed})
        self.speed_select = pn.widgets.Select(label="Speed (× real time)" if self.replay_clock is None or
                                              self.replay_clock.timed else "Speed (evaluations / s)",
                                              options={f"{v:g}×": v for v in speeds}, value=speed, width=130)
        self.speed_select.param.watch(lambda e: self.set_speed(e.new), "value")
        self.scrubber = pn.widgets.IntSlider(name="Evaluation", start=0, end=max(1, n - 1), value=0,
                                             sizing_mode="stretch_width", disabled=n < 2)
        self.scrubber.param.watch(self._on_scrub, "value")

    def _build_plots(self) -> None:
        self.evals_source = ColumnDataSource(_empty((*eval_columns([]),)))
        self.steps_source = ColumnDataSource(_empty(("step", "loss")))
        self.heat_source = ColumnDataSource(_empty(("step", "layer", "fraction", "count", "width")))
        self.core_source = ColumnDataSource(_empty(("layer", "name", "units", "nonlinear")))
        src = self.evals_source

        loss = figure(title="Loss", x_axis_label="step", **_PLOT)
        loss.line("step", "loss", source=self.steps_source, color="#bbbbbb", legend_label="batch")
        loss.line("step", "train_loss", source=src, color="#1f77b4", line_width=2, legend_label="train")
        loss.line("step", "test_loss", source=src, color="#d62728", line_width=2, legend_label="test")
        acc = figure(title="Accuracy", x_axis_label="step", x_range=loss.x_range, y_range=Range1d(0, 1), **_PLOT)
        acc.line("step", "train_acc", source=src, color="#1f77b4", line_width=2, legend_label="train")
        acc.line("step", "test_acc", source=src, color="#d62728", line_width=2, legend_label="test")

        heat = figure(title="Nonlinear units per layer (fraction)", x_axis_label="step", y_axis_label="gate layer",
                      x_range=loss.x_range, **_PLOT)
        self._mapper = LinearColorMapper(palette="Viridis256", low=0, high=1)
        heat.rect(x="step", y="layer", width="width", height=1, source=self.heat_source,
                  fill_color={"field": "fraction", "transform": self._mapper}, line_color=None)
        heat.add_tools(HoverTool(tooltips=[("step", "@step{0}"), ("layer", "@layer"), ("nonlinear", "@count")]))
        self.heat_figure = heat

        apl = figure(title="Average path length", x_axis_label="step", y_axis_label="normalized",
                     x_range=loss.x_range, **_PLOT)
        apl.line("step", "apl_normalized", source=src, color="#2ca02c", line_width=2, legend_label="normalized")
        apl.extra_y_ranges = {"unnorm": Range1d(0, 1)}
        self._apl_unnorm_range = apl.extra_y_ranges["unnorm"]
        apl.add_layout(LinearAxis(y_range_name="unnorm", axis_label="unnormalized"), "right")
        apl.line("step", "apl_unnormalized", source=src, color="#9467bd", line_width=2, y_range_name="unnorm",
                 legend_label="unnormalized")

        sparsity = figure(title="Sparsity in force (λ) and nonlinear units", x_axis_label="step", y_axis_label="λ",
                          x_range=loss.x_range, **_PLOT)
        sparsity.step("step", "sparsity", source=src, color="#ff7f0e", line_width=2, legend_label="λ", mode="after")
        sparsity.extra_y_ranges = {"count": Range1d(0, 1)}
        self._count_range = sparsity.extra_y_ranges["count"]
        sparsity.add_layout(LinearAxis(y_range_name="count", axis_label="nonlinear units"), "right")
        sparsity.line("step", "nonlinear_total", source=src, color="#17becf", line_width=2, y_range_name="count",
                      legend_label="nonlinear")

        core = figure(title="Core network: nonlinear width per gate layer", x_axis_label="gate layer",
                      x_range=[], **_PLOT)
        core.vbar(x="layer", top="units", width=0.8, source=self.core_source, color="#dddddd", legend_label="units")
        core.vbar(x="layer", top="nonlinear", width=0.6, source=self.core_source, color="#d62728",
                  legend_label="nonlinear")
        core.add_tools(HoverTool(tooltips=[("layer", "@name"), ("nonlinear", "@nonlinear / @units")]))
        self.core_figure = core
        for f in (loss, acc, apl, sparsity, core):
            f.legend.location = "top_left"
            f.legend.background_fill_alpha = 0.5
        self.figures = {"loss": loss, "accuracy": acc, "heatmap": heat, "apl": apl, "sparsity": sparsity,
                        "core": core}
        self.core_text = pn.pane.Markdown(core_summary(None, []), css_classes=["ne-core"])

    def _build_layout(self):
        live = self.recording is None
        title = "live training" if live else f"replay of {self.recording.name}"
        controls = pn.Column(
            pn.pane.Markdown(f"## nonlin_explorer: {title}", margin=(0, 10)),
            pn.Row(self.device, self.status),
            pn.Row(self.start_button, self.pause_button, self.stop_button, self.reset_button, visible=live),
            pn.Row(self.play_button, self.speed_select, visible=not live),
            pn.Row(self.scrubber, visible=not live, sizing_mode="stretch_width"),
            self.message,
            pn.Column(
                pn.Row(self.sparsity_slider, self.sparsity_input),
                self.lr_slider,
                pn.Row(self.schedule, self.prior_button),
                pn.pane.Markdown("**Run** (applied by *Apply & reset*)", margin=(0, 10)),
                pn.Row(self.dataset, self.model),
                pn.Row(self.width_input, self.depth_input, self.seed_input, self.epochs_input),
                pn.pane.Markdown("**Export**", margin=(0, 10)),
                pn.Row(self.export_path, self.export_button),
                pn.Row(self.record_path, self.record_button),
                visible=live,
            ),
            self.code,
            width=470,
        )
        plots = pn.GridBox(*(pn.pane.Bokeh(self.figures[k], sizing_mode="stretch_width")
                             for k in ("loss", "accuracy", "heatmap", "apl", "sparsity", "core")),
                           ncols=2, sizing_mode="stretch_width")
        # The early/late comparison is a second tab; more views go in the same way: dash.tabs.append((name, view)).
        self.advantage = AdvantageView(self._advantage_config())
        self.tabs = pn.Tabs(("Training", pn.Column(self._network_holder, plots, self.core_text,
                                                   sizing_mode="stretch_width")),
                            ("Early vs late", self.advantage),
                            sizing_mode="stretch_width", dynamic=False)
        return pn.Row(controls, self.tabs, sizing_mode="stretch_width")

    def _advantage_config(self) -> TrainConfig | None:
        """This run's settings for the early/late comparison (at most 40 epochs per run; no evaluations on the
        way); None (AdvantageView's default, an MLP on MNIST-1D) when the session has its own model or data."""
        s = self.session
        if s._user_model is not None or s._user_data is not None:
            return None
        return dataclasses.replace(s.config, epochs=min(float(s.config.epochs), 40.0), eval_every=10**6)

    def _make_network(self) -> NetworkViewPane:
        """The session's units, clickable (a headless NetworkView; synced by :meth:`flush`)."""
        return NetworkViewPane(self.session, max_rate=self.rate, css_classes=["ne-network-pane"])

    # -- the refresh loop (document thread) -------------------------------------------------------
    def _units(self) -> list[int]:
        return [int(g.num_units) for g in self.session._gates]

    def _reset_sources(self) -> None:
        s = self.session
        self.evals_source.data = eval_columns([])
        self.steps_source.data = _empty(("step", "loss"))
        self.heat_source.data = _empty(("step", "layer", "fraction", "count", "width"))
        units = self._units()
        self.core_source.data = core_columns(s.gate_names, units, [0] * len(units))
        self.core_figure.x_range.factors = [str(i) for i in range(len(units))]
        self._count_range.end = float(sum(units))
        self._apl_unnorm_range.end = 1.0
        self.heat_figure.y_range.start, self.heat_figure.y_range.end = -0.5, len(units) - 0.5
        self._last_eval = None
        if s.history and self.recording is None:  # a session that already trained: show what it has
            rows = [self.buffer_row(h) for h in s.history]
            self._stream(steps=[], evals=rows)
        else:
            self._update_core(None)

    @staticmethod
    def buffer_row(entry: dict[str, Any]) -> dict[str, Any]:
        buf = LiveBuffer()
        buf("eval", entry)
        return buf.drain().evals[0]

    def flush(self) -> bool:
        """Stream whatever arrived since the last flush (one call per plot) and repaint the network view if it
        changed. True if the session sent anything."""
        t0 = time.perf_counter()
        if self.replay_clock is not None:  # the replay's clock runs here, on the document's thread
            now = time.monotonic()
            self.replay_clock.feed(self.buffer, now - self._last_feed)
            self._last_feed = now
        drained = self.buffer.drain()
        with self._held():
            if drained.evals and self.replay_clock is not None:
                self._show_replay_eval()
            self.network.sync()
            if not drained:
                if self.replay_clock is not None and not self.replay_clock.playing:
                    self.play_button.label = "Play"
                return False
            self._stream(drained.steps, drained.evals)
            if drained.status is not None or drained.commands:
                self.status.object = self._status_text()
        self.flushes += 1
        self.flush_seconds = time.perf_counter() - t0
        return True

    def _held(self) -> contextlib.ExitStack:
        """Hold the documents showing the dashboard: one flush goes out as one message per document (in a
        notebook, one comm message instead of one per changed property)."""
        stack = contextlib.ExitStack()
        for ref in list(self._layout._models):
            view = pn.state._views.get(ref)
            if view is not None:
                _, _root, doc, comm = view
                stack.enter_context(hold(doc, comm=comm))
        return stack

    def _stream(self, steps, evals) -> None:
        if steps:
            self.steps_source.stream(step_columns(steps), rollover=STEP_ROLLOVER)
        if evals:
            self.evals_source.stream(eval_columns(evals), rollover=EVAL_ROLLOVER)
            units = self._units()
            self.heat_source.stream(heatmap_columns(evals, units, self.session.config.eval_every),
                                    rollover=EVAL_ROLLOVER * max(1, len(units)))
            apl_u = [r.get("apl_unnormalized") for r in evals]
            finite = [v for v in apl_u if v is not None and math.isfinite(v)]
            if finite and max(finite) * 1.05 > self._apl_unnorm_range.end:
                self._apl_unnorm_range.end = max(finite) * 1.1
            self._update_core(evals[-1])
            self.status.object = self._status_text()

    def _update_core(self, row) -> None:
        self._last_eval = row
        units = self._units()
        if row is not None:
            self.core_source.data = core_columns(self.session.gate_names, units, row["nonlinear"])
        self.core_text.object = core_summary(row, units)

    # -- text -------------------------------------------------------------------------------------
    def _device_text(self) -> str:
        d = self.session.device
        return f"Device: **{'CUDA' if d.type == 'cuda' else d.type.upper()}** ({d})"

    def _status_text(self) -> str:
        if self.replay_clock is not None:
            clock, last = self.replay_clock, self._last_eval
            state = "playing" if clock.playing else ("finished" if clock.finished else "paused")
            acc = f", test accuracy {last['test_acc']:.3f}" if last and math.isfinite(last["test_acc"]) else ""
            return (f"Replay of **{self.recording.name}** ({state}): evaluation {clock.eval_index + 1}/"
                    f"{len(clock.evals)}, step {last['step'] if last else 0}{acc}")
        s = self.session
        prior = "on" if s.prior_on else "off"
        last = self._last_eval
        acc = f", test accuracy {last['test_acc']:.3f}" if last and math.isfinite(last["test_acc"]) else ""
        return (f"Status: **{s.status}**, step {s.step}/{s.total_steps}, λ = {s.sparsity:g} (prior {prior})"
                f"{acc}")

    def _code_text(self) -> str:
        return "Reproduce this run:\n```python\n" + reproduce_code(self.session.config) + "\n```"

    # -- actions ----------------------------------------------------------------------------------
    def _guard(self, fn, *args, **kwargs) -> bool:
        try:
            fn(*args, **kwargs)
        except (ValueError, RuntimeError, OSError, KeyError, IndexError) as exc:
            self.show_message(str(exc))
            return False
        self.clear_message()
        return True

    def start(self) -> None:
        if self.replay_clock is not None:
            self.show_message("a replay does not train: use Play")
            return
        self._guard(self.session.start)
        self.status.object = self._status_text()

    def pause(self) -> None:
        self.session.pause()

    def resume(self) -> None:
        self.session.resume()

    def stop(self) -> None:
        self.session.stop(wait=False)

    def switch_prior_on(self) -> None:
        self._guard(self.session.switch_prior_on)

    def set_sparsity(self, value) -> bool:
        """Set the session's sparsity (text or number); a bad value shows a message and changes nothing."""
        try:
            value = parse_sparsity(value)
            self.session.set(sparsity=value)
        except ValueError as exc:
            self.show_message(f"{exc} (keeping λ = {self.session.sparsity:g})")
            self._sync_sparsity_widgets(self._pending_sparsity())
            return False
        self.clear_message()
        self._sync_sparsity_widgets(value)
        return True

    def _pending_sparsity(self) -> float:
        """The last valid sparsity: the config holds what was set, even before the next step applies it."""
        return float(self.session.config.sparsity)

    def _sync_sparsity_widgets(self, value: float) -> None:
        self._syncing = True
        try:
            self.sparsity_input.value = f"{value:g}"
            self.sparsity_slider.value = nearest_option(value)
        finally:
            self._syncing = False

    def _on_sparsity_slider(self, event) -> None:
        if not self._syncing:
            self.set_sparsity(event.new)

    def _on_sparsity_text(self, event) -> None:
        if not self._syncing:
            self.set_sparsity(event.new)

    def _on_lr(self, event) -> None:
        if not self._guard(self.session.set, lr=event.new):
            self._syncing = True
            self.lr_slider.value = nearest_option(event.old, LR_OPTIONS)
            self._syncing = False

    def _config_from_widgets(self) -> TrainConfig:
        cfg = self.session.config
        kwargs = dict(cfg.model_kwargs)
        for key, widget in (("width", self.width_input), ("depth", self.depth_input)):
            text = widget.value.strip()
            if text:
                kwargs[key] = parse_number(text, key, low=1, integer=key == "depth" or self.model.value in ("mlp",
                                                                                                            "cnn"))
            else:
                kwargs.pop(key, None)
        seed = parse_number(self.seed_input.value, "seed", low=0, integer=True)
        epochs = parse_number(self.epochs_input.value, "epochs", low=1e-9)
        dataset_kwargs = cfg.dataset_kwargs if self.dataset.value == cfg.dataset else {}
        return TrainConfig(**{**cfg.to_dict(), "dataset": self.dataset.value, "model": self.model.value,
                              "model_kwargs": kwargs, "dataset_kwargs": dict(dataset_kwargs),
                              "schedule": self.schedule.value, "seed": seed, "epochs": epochs,
                              "sparsity": self._pending_sparsity(),
                              "switch_epoch": cfg.switch_epoch if self.schedule.value == cfg.schedule else None})

    def reset(self) -> bool:
        """Stop and rebuild the session from the run settings. Bad settings: a message, the old session kept."""
        if self.replay_clock is not None:
            self.show_message("a replay cannot be reset")
            return False
        if self.session._user_model is not None:
            self.show_message("this session was given its own model: reset is not available")
            return False
        try:
            config = self._config_from_widgets()
            session = TrainingSession(config, track_paths=self.session._track)
        except (ValueError, TypeError) as exc:
            self.show_message(f"{exc} (the current run is kept)")
            self._sync_run_widgets()
            return False
        old = self.session
        self._unsubscribe()
        old.stop(wait=True, timeout=30)
        self.session = session
        self.buffer = LiveBuffer()
        self._unsubscribe = session.subscribe(self.buffer)
        self._unsubscribe_log()
        self.step_log = StepLog()
        self._unsubscribe_log = session.subscribe(self.step_log)
        self.network.close()
        self.network = self._make_network()
        self._network_holder.objects = [self.network]
        if not self.advantage.running:  # the comparison follows the new run's settings (a running one finishes)
            self.advantage.close()
            self.advantage = AdvantageView(self._advantage_config())
            self.tabs[1] = ("Early vs late", self.advantage)
        self._reset_sources()
        self.device.object = self._device_text()
        self.status.object = self._status_text()
        self.code.object = self._code_text()
        self.clear_message()
        return True

    def _sync_run_widgets(self) -> None:
        cfg = self.session.config
        self.dataset.value, self.model.value = cfg.dataset, cfg.model
        self.width_input.value = str(cfg.model_kwargs.get("width", ""))
        self.depth_input.value = str(cfg.model_kwargs.get("depth", ""))
        self.seed_input.value, self.epochs_input.value = str(cfg.seed), f"{cfg.epochs:g}"
        if cfg.schedule in self.schedule.options:
            self.schedule.value = cfg.schedule

    def export(self, path: str | None = None) -> str | None:
        """Write the result set to netCDF. An unwritable path: a message, the session untouched."""
        path = self.export_path.value if path is None else path
        try:
            written = export_session(self.session, path)
        except (OSError, ValueError) as exc:
            self.show_message(f"export failed: {exc}")
            return None
        self.show_message(f"wrote {written}", kind="success")
        self.code.object = self._code_text()
        return written

    def record(self, path: str | None = None) -> str | None:
        """Save the session's recording (result set, per-step losses, checkpoint) to a folder for replay. A bad
        path: a message, the session untouched."""
        path = self.record_path.value if path is None else path
        try:
            written = save_recording(self.session, str(path).strip() or "run.rec", steps=self.step_log.snapshot())
        except (OSError, ValueError) as exc:
            self.show_message(f"recording failed: {exc}")
            return None
        self.show_message(f"wrote recording {written}", kind="success")
        return str(written)

    # -- replay -----------------------------------------------------------------------------------
    @classmethod
    def from_recording(cls, recording: Recording | str, *, speed: float = 1.0, rate: float = DEFAULT_RATE,
                       theme: str = "light") -> TrainingDashboard:
        """A dashboard replaying a saved run (:func:`~nonlin_explorer.recording.save_recording`); no training."""
        rec = recording if isinstance(recording, Recording) else load_recording(recording)
        return cls(rate=rate, theme=theme, replay=rec, speed=speed)

    def _require_replay(self) -> ReplayClock:
        if self.replay_clock is None:
            raise RuntimeError("this dashboard is not replaying a recording")
        return self.replay_clock

    def play(self) -> None:
        """Start (or continue) the replay; from the start again when it has finished."""
        clock = self._require_replay()
        if clock.finished:
            self.seek(-1)
        clock.playing = True
        self._last_feed = time.monotonic()
        self.play_button.label = "Pause"
        self.status.object = self._status_text()

    def pause_replay(self) -> None:
        self._require_replay().playing = False
        self.play_button.label = "Play"
        self.status.object = self._status_text()

    def set_speed(self, speed: float) -> None:
        self._require_replay().speed = float(parse_number(speed, "speed", low=1e-6))

    def seek(self, index: int) -> None:
        """Show the run up to evaluation ``index`` (-1: nothing yet) at once; playing goes on from there."""
        steps, evals = self._require_replay().seek(index)
        self.buffer.drain()  # anything fed but not drawn belongs to the old position
        self.evals_source.data = eval_columns([])
        self.steps_source.data = _empty(("step", "loss"))
        self.heat_source.data = _empty(("step", "layer", "fraction", "count", "width"))
        self._last_eval = None
        with self._held():
            self._stream(steps[-STEP_ROLLOVER:], evals[-EVAL_ROLLOVER:])
            if not evals:
                self._update_core(None)
            self._show_replay_eval()
            self.status.object = self._status_text()

    def _on_scrub(self, event) -> None:
        if not self._syncing:
            self.seek(event.new)

    def _show_replay_eval(self) -> None:
        """Set the model's slopes to those recorded at the current evaluation (the network view repaints) and move
        the scrubber there."""
        clock = self.replay_clock
        index = clock.eval_index
        slopes = self.recording.slopes_at(index) if index >= 0 else None
        with torch.no_grad():
            for g, s in zip(self.session._gates, slopes or [None] * len(self.session._gates)):
                g.state.fill_(0)  # free: the recorded (effective) slope is what is shown
                if s is None:
                    g.alpha.zero_()
                else:
                    g.alpha.copy_(s.to(g.alpha.device, g.alpha.dtype))
        self.session.step = int(clock.evals[index]["step"]) if index >= 0 else 0
        self.network.view.update(activations=True)
        if index >= 0 and self.scrubber.value != index:
            self._syncing = True
            try:
                self.scrubber.value = index
            finally:
                self._syncing = False

    def status_dict(self) -> dict[str, Any]:
        """The live session's state as plain values (the ``serve`` app's status endpoint returns this)."""
        s = self.session
        return {"status": s.status, "step": s.step, "total_steps": s.total_steps, "sparsity": s.sparsity,
                "config_sparsity": s.config.sparsity, "lr": s._opt.param_groups[0]["lr"], "prior_on": s.prior_on,
                "nonlinear": [g.nonlinear_count(s.config.tol) for g in s._gates], "gates": s.gate_names,
                "unit_states": [[int(v) for v in g.state.reshape(-1).tolist()] for g in s._gates],
                "network_requests": self.network.requests,
                "dataset": s.config.dataset, "model": s.config.model, "seed": s.config.seed,
                "model_kwargs": dict(s.config.model_kwargs), "device": str(s.device),
                "message": self.message.object if self.message.visible else "", "flushes": self.flushes,
                "flush_seconds": self.flush_seconds,
                "history": len(s.history), "replay": self._replay_dict()}

    def _replay_dict(self) -> dict[str, Any] | None:
        clock = self.replay_clock
        if clock is None:
            return None
        return {"file": str(self.recording.path), "playing": clock.playing, "finished": clock.finished,
                "eval_index": clock.eval_index, "evals": len(clock.evals), "speed": clock.speed,
                "plotted_steps": len(self.steps_source.data["step"]),
                "plotted_evals": len(self.evals_source.data["step"])}

    def close(self) -> None:
        """Stop training, the refresh loop and the subscription (no orphan thread)."""
        self._stop_callback()
        self._unsubscribe()
        self._unsubscribe_log()
        if self.replay_clock is not None:
            self.replay_clock.playing = False
        self.network.close()
        self.advantage.close()
        self.session.stop(wait=True, timeout=30)
