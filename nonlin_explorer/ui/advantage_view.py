"""Early vs late linearization, live (Panel + Bokeh): every finished run becomes a point in accuracy vs
nonlinear count and accuracy vs APL, with the gap at matched count updated as points arrive.

:func:`~nonlin_explorer.advantage.compare_schedules` runs on a worker thread (never on the kernel's or the
document's thread); its callback only appends events to a list under a lock, and a Panel periodic callback
drains them ``rate`` times a second on the document's thread (the same pattern as the training dashboard).
Without a running Panel server (plain scripts, tests) call :meth:`AdvantageView.flush` yourself.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

import numpy as np
import panel as pn
import xarray as xr
from bokeh.models import ColumnDataSource, Range1d
from bokeh.plotting import figure

from nonlin_explorer.advantage import (
    ADVANTAGE_SCHEDULES,
    compare_schedules,
    gap_at_matched_apl,
    gap_at_matched_count,
    validate_grid,
)
from nonlin_explorer.lifecycle import stop_at_exit
from nonlin_explorer.training import TrainConfig
from nonlin_explorer.ui.bokeh_style import check_theme, style_figure
from nonlin_explorer.ui.live_view import LiveView, StatusLine
from nonlin_explorer.validation import parse_list, parse_number

__all__ = ["AdvantageView", "parse_list"]

#: Colours of the schedules (Category10 blue and orange).
COLORS = {"early": "#1f77b4", "late": "#ff7f0e"}
_COLUMNS = ("nonlinear", "apl", "test_acc", "sparsity", "seed")

#: A small, quick default: an MLP on MNIST-1D (seconds per run on one CPU thread).
DEFAULT_CONFIG = TrainConfig(dataset="mnist1d", dataset_kwargs={"num_samples": 4000}, model="mlp",
                             model_kwargs={"width": 64, "depth": 4}, epochs=20, lr=1e-2, slope_lr=0.03,
                             eval_every=1000)


def _describe(config: TrainConfig) -> str:
    """``mlp (width 64, depth 4) on mnist1d``."""
    kwargs = ", ".join(f"{k} {v}" for k, v in (config.model_kwargs or {}).items())
    return f"{config.model}{f' ({kwargs})' if kwargs else ''} on {config.dataset}"


def _fmt_list(values) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


class AdvantageView(LiveView):
    """Run early vs late on a grid of sparsities and seeds and watch the points arrive.

    ``AdvantageView(config, sparsities=[...], seeds=[...])``: ``config`` is a
    :class:`~nonlin_explorer.training.TrainConfig` (or a dict of its fields; default: an MLP on MNIST-1D);
    ``rate`` is the refresh rate in Hz; ``theme`` (``"light"`` or ``"dark"``) styles the plots. :meth:`run`
    starts, :meth:`cancel` stops after the current step, :meth:`close` ends the worker thread and the refresh loop.
    """

    def __init__(self, config: TrainConfig | dict | None = None, sparsities=(1e-3, 3e-3, 1e-2, 3e-2),
                 seeds=(0,), *, rate: float = 4.0, theme: str = "light"):
        super().__init__()
        self.theme = check_theme(theme)
        if config is None:
            config = dataclasses.replace(DEFAULT_CONFIG)
        elif isinstance(config, dict):
            config = TrainConfig(**config)
        self.config: TrainConfig = dataclasses.replace(config).validate()
        self.sparsities, self.seeds, _ = validate_grid(sparsities, seeds, ADVANTAGE_SCHEDULES)
        self.rate = float(parse_number(rate, "rate", low=0.5, high=60.0))
        self._lock = threading.Lock()
        self._events: list[tuple] = []
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._gen = 0
        self.points: list[dict[str, Any]] = []
        self.result: xr.Dataset | None = None
        self.state = "idle"
        self.total = 0
        self.error = ""
        self.started_at: float | None = None
        self.elapsed = 0.0
        self.flushes = 0
        self._build_widgets()
        self._build_plots()
        self._layout = self._build_layout()
        self._callback = None
        self._start_callback()

    # -- construction -----------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.sparsity_input = pn.widgets.TextInput(name="Sparsities (lambda, comma-separated)",
                                                   value=_fmt_list(self.sparsities), width=260)
        self.seed_input = pn.widgets.TextInput(name="Seeds", value=_fmt_list(self.seeds), width=120)
        self.epochs_input = pn.widgets.TextInput(name="Epochs (both schedules)", value=f"{self.config.epochs:g}",
                                                 width=150)
        self.run_button = pn.widgets.Button(name="Run", button_type="primary", width=90)
        self.run_button.on_click(lambda e: self.run())
        self.cancel_button = pn.widgets.Button(name="Cancel", width=90, disabled=True)
        self.cancel_button.on_click(lambda e: self.cancel())
        self.status = StatusLine(self._status_text(), css_classes=["ne-status"], margin=(0, 10))
        self.gap_text = pn.pane.Markdown(self._gap_text(), css_classes=["ne-gap"], margin=(0, 10))
        self.message = self._make_message()

    def _build_plots(self) -> None:
        self.sources = {s: ColumnDataSource({c: [] for c in _COLUMNS}) for s in ADVANTAGE_SCHEDULES}
        tooltips = [("schedule", "$name"), ("sparsity", "@sparsity"), ("seed", "@seed"), ("accuracy", "@test_acc"),
                    ("nonlinear", "@nonlinear"), ("APL", "@apl")]
        # Accuracy on a fixed [0, 1] axis; the x axes start at 0 and grow with the points (explicit ranges: an empty
        # plot still shows its axes).
        self.count_figure = figure(title="Test accuracy against nonlinear units", x_axis_label="nonlinear units",
                                   y_axis_label="test accuracy", width=440, height=380, tools="hover,reset,save",
                                   tooltips=tooltips, x_range=Range1d(0, 1), y_range=Range1d(0, 1.02))
        self.apl_figure = figure(title="Test accuracy against average path length",
                                 x_axis_label="APL (normalized)", y_axis_label="test accuracy", width=440, height=380,
                                 tools="hover,reset,save", tooltips=tooltips, x_range=Range1d(0, 1),
                                 y_range=Range1d(0, 1.02))
        for fig, x in ((self.count_figure, "nonlinear"), (self.apl_figure, "apl")):
            for sch in ADVANTAGE_SCHEDULES:
                fig.scatter(x, "test_acc", source=self.sources[sch], color=COLORS[sch], size=8, alpha=0.8,
                            legend_label=f"{sch} linearization", name=sch)
            style_figure(fig, self.theme, legend="below")

    def _build_layout(self):
        controls = pn.Column(
            pn.pane.Markdown("### Early vs late linearization", margin=(0, 10)),
            pn.pane.Markdown(f"{_describe(self.config)}; late switches the prior on half-way, both train the same "
                             "number of epochs.", margin=(0, 10)),
            self.sparsity_input,
            pn.Row(self.seed_input, self.epochs_input),
            pn.Row(self.run_button, self.cancel_button),
            self.status,
            self.message,
            self.gap_text,
            width=320,
        )
        views = pn.FlexBox(pn.pane.Bokeh(self.count_figure), pn.pane.Bokeh(self.apl_figure))  # wraps on a projector
        # Bokeh's widgets read --bokeh-font-size (default 12 px); custom properties reach into their shadow roots.
        return pn.Row(controls, views, sizing_mode="stretch_width", styles={"--bokeh-font-size": "14px"})

    # -- input ------------------------------------------------------------------------------------
    def _read_inputs(self) -> tuple[list[float], list[int], TrainConfig]:
        sparsities = parse_list(self.sparsity_input.value, "sparsities", low=0.0)
        seeds = parse_list(self.seed_input.value, "seeds", integer=True, low=0)
        epochs = float(parse_number(self.epochs_input.value, "epochs", low=0.0))
        if epochs <= 0:
            raise ValueError("epochs: must be > 0")
        config = dataclasses.replace(self.config, epochs=epochs)
        if config.switch_epoch is not None and not 0 < config.switch_epoch < epochs:
            config.switch_epoch = None  # half-way
        sparsities, seeds, _ = validate_grid(sparsities, seeds, ADVANTAGE_SCHEDULES)
        return sparsities, seeds, config.validate()

    def _restore_inputs(self) -> None:
        self.sparsity_input.value = _fmt_list(self.sparsities)
        self.seed_input.value = _fmt_list(self.seeds)
        self.epochs_input.value = f"{self.config.epochs:g}"

    # -- work -------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, **changes) -> bool:
        """Start a comparison with the inputs (or ``changes``: sparsities, seeds, epochs) on the worker thread.

        Bad input: a message, the last valid settings stay (and come back into the inputs). False then.
        """
        for key, widget in (("sparsities", self.sparsity_input), ("seeds", self.seed_input),
                            ("epochs", self.epochs_input)):
            if key in changes:
                v = changes.pop(key)
                widget.value = v if isinstance(v, str) else (_fmt_list(v) if key != "epochs" else f"{v:g}")
        if changes:
            raise TypeError(f"unknown settings {sorted(changes)}; settable: sparsities, seeds, epochs")
        if self.running:
            self.show_message("a comparison is running: cancel it first", kind="warning")
            return False
        try:
            sparsities, seeds, config = self._read_inputs()
        except ValueError as exc:
            self.show_message(f"{exc} (keeping the last valid settings)")
            self._restore_inputs()
            return False
        self.clear_message()
        self.sparsities, self.seeds, self.config = sparsities, seeds, config
        self._gen += 1
        gen = self._gen
        self._cancel.clear()
        with self._lock:
            self._events.clear()
        self.points = []
        self.result = None
        self.error = ""
        for src in self.sources.values():
            src.data = {c: [] for c in _COLUMNS}
        self.total = 2 * len(sparsities) * len(seeds)
        self.state = "running"
        self.started_at = time.perf_counter()
        self.elapsed = 0.0
        self.run_button.disabled, self.cancel_button.disabled = True, False
        self.status.object = self._status_text()
        self.gap_text.object = self._gap_text()
        self._thread = threading.Thread(target=self._work, args=(gen, config, sparsities, seeds),
                                        name="nonlin-explorer-advantage", daemon=True)
        self._thread.start()
        stop_at_exit(self, lambda v: v.close(timeout=10))
        return True

    def cancel(self) -> None:
        """Stop the running comparison after its current step (what finished stays on screen)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is done (scripts and tests). True if it is."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _post(self, *event) -> None:
        with self._lock:
            self._events.append(event)

    def _work(self, gen: int, config: TrainConfig, sparsities, seeds) -> None:
        try:
            ds = compare_schedules(config, sparsities, seeds,
                                   callback=lambda kind, payload: self._post(kind, gen, payload),
                                   should_stop=self._cancel.is_set)
            self._post("result", gen, ds)
        except Exception as exc:  # shown to the user; the points so far stay
            self._post("error", gen, f"{type(exc).__name__}: {exc}")

    # -- the refresh loop (document thread) -------------------------------------------------------
    def flush(self) -> bool:
        """Apply what the worker produced since the last flush (one stream per plot). True if anything changed."""
        with self._lock:
            events, self._events = self._events, []
        if self.state == "running" and self.started_at is not None:
            self.elapsed = time.perf_counter() - self.started_at
        if not events:
            if self.state == "running":
                self.status.object = self._status_text()
            return False
        new = {s: {c: [] for c in _COLUMNS} for s in ADVANTAGE_SCHEDULES}
        for kind, gen, payload in events:
            if gen != self._gen:
                continue  # from an earlier comparison
            if kind == "run":
                self.points.append(payload)
                row = new[payload["schedule"]]
                row["nonlinear"].append(payload["nonlinear"])
                row["apl"].append(payload["apl_normalized"])
                row["test_acc"].append(payload["test_acc"])
                row["sparsity"].append(payload["sparsity"])
                row["seed"].append(payload["seed"])
            elif kind == "done":
                self.state = "cancelled" if payload["cancelled"] else "finished"
                self.elapsed = payload["elapsed"]
            elif kind == "result":
                self.result = payload
            elif kind == "error":
                self.state, self.error = "error", payload
                self.show_message(f"{payload} (the points so far stay)")
        for sch, cols in new.items():
            if cols["test_acc"]:
                self.sources[sch].stream(cols)
        if any(cols["test_acc"] for cols in new.values()):
            self._fit_x_ranges()
        if self.state != "running":
            self.run_button.disabled, self.cancel_button.disabled = False, True
        self.status.object = self._status_text()
        self.gap_text.object = self._gap_text()
        self.flushes += 1
        return True

    def _fit_x_ranges(self) -> None:
        """Both x axes from 0 to a little past the largest point."""
        for fig, key in ((self.count_figure, "nonlinear"), (self.apl_figure, "apl_normalized")):
            values = [p[key] for p in self.points if math.isfinite(p[key])]
            fig.x_range.end = max(1.0, max(values, default=1.0) * 1.08)

    # -- read-outs --------------------------------------------------------------------------------
    def points_dataset(self) -> xr.Dataset:
        """The runs streamed so far as a (schedule, sparsity, seed) result set (NaN where none yet)."""
        if self.result is not None:
            return self.result
        sc, sp, sd = list(ADVANTAGE_SCHEDULES), list(self.sparsities), list(self.seeds)
        shape = (len(sc), len(sp), len(sd))
        names = ("test_acc", "nonlinear", "apl_normalized", "apl_unnormalized")
        arrays = {n: np.full(shape, np.nan) for n in names}
        for p in self.points:
            if p["sparsity"] in sp and p["seed"] in sd:
                idx = (sc.index(p["schedule"]), sp.index(p["sparsity"]), sd.index(p["seed"]))
                for n in names:
                    arrays[n][idx] = p[n]
        dims = ("schedule", "sparsity", "seed")
        return xr.Dataset({n: (dims, a) for n, a in arrays.items()},
                          coords={"schedule": sc, "sparsity": sp, "seed": sd})

    def gaps(self) -> dict[str, float]:
        """Mean late-minus-early accuracy at matched nonlinear count and at matched APL (NaN if no overlap)."""
        out = {}
        if not self.points:
            return {"count": math.nan, "apl": math.nan, "count_points": 0, "apl_points": 0}
        ds = self.points_dataset()
        for key, fn in (("count", gap_at_matched_count), ("apl", gap_at_matched_apl)):
            gap = fn(ds)
            finite = np.isfinite(gap.values)
            out[key] = float(np.nanmean(gap.values)) if finite.any() else math.nan
            out[f"{key}_points"] = int(finite.any(axis=0).sum()) if gap.size else 0
        return out

    def _status_text(self) -> str:
        done = len(self.points)
        text = f"Status: **{self.state}**"
        if self.total:
            text += f", {done}/{self.total} runs, {self.elapsed:.0f} s"
        return text

    def _gap_text(self) -> str:
        if not self.points:
            return "Gap (late minus early test accuracy): no runs yet"
        g = self.gaps()

        def one(key: str, label: str) -> str:
            if not math.isfinite(g[key]):
                return f"at matched {label}: no overlap yet"
            return f"at matched {label}: **{100 * g[key]:+.1f}** points (mean over {g[f'{key}_points']} matched values)"

        return "Gap (late minus early test accuracy)  \n" + one("count", "nonlinear count") + "  \n" + one("apl", "APL")

    def status_dict(self) -> dict[str, Any]:
        """The view's state as plain values (for tests and a status endpoint)."""
        return {"state": self.state, "runs": len(self.points), "total": self.total,
                "points": {s: len(src.data["test_acc"]) for s, src in self.sources.items()},
                "message": self.message.object if self.message.visible else "", "error": self.error,
                "alive": self.running, "gaps": self.gaps() if self.points else {}}

    def close(self, timeout: float = 30.0) -> None:
        """Cancel the comparison, end the worker thread and stop the refresh loop."""
        self._stop_callback()
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(timeout)
