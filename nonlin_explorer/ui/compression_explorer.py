"""An interactive compression explorer (Panel + Bokeh): compress a random two-layer target onto M units and
see how close the optimum sits to a simplex ETF.

The optimizer never runs on the UI thread: a worker thread runs ``compress`` (or a baseline) and only appends
events (progress, result, error) to a list under a lock; a Panel periodic callback drains it ``rate`` times a
second on the document's thread and updates the views (the same pattern as the training dashboard). A newer
request cancels the running optimization through compress's ``callback`` (stale results are dropped).

Works in a notebook (display the object) and standalone (``nonlin-explorer serve --demo compression``).
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import (
    Arrow,
    ColorBar,
    ColumnDataSource,
    FixedTicker,
    LinearColorMapper,
    NormalHead,
    PointDrawTool,
    Range1d,
)
from bokeh.palettes import Category10
from bokeh.plotting import figure

from nonlin_explorer.compression import ACTIVATIONS
from nonlin_explorer.compression.targets import WEIGHT_DISTS
from nonlin_explorer.files import confined_path
from nonlin_explorer.lifecycle import stop_at_exit
from nonlin_explorer.results import write_netcdf
from nonlin_explorer.ui.bokeh_style import PALETTES, check_theme, style_figure
from nonlin_explorer.ui.compression_core import (
    EXPLORER_METHODS,
    SWEEP_METHODS,
    ExplorerParams,
    drag_unit,
    evaluate_weights,
    gram_columns,
    ideal_gram,
    loss_vs_m_dataset,
    make_target,
    pca_axes,
    result_dataset,
    run_method,
    summary_markdown,
    sweep_applicable,
    sweep_ms,
    unit_rows,
    validate_params,
    view3d_columns,
)
from nonlin_explorer.ui.live_view import LiveView, StatusLine
from nonlin_explorer.validation import parse_number

__all__ = ["CompressionExplorer"]

_NUMERIC = (("N", "N"), ("M", "M"), ("d", "d"), ("w_mean", "w mean (e1)"), ("w_spread", "w spread"),
            ("a_mean", "a mean"), ("a_std", "a spread"), ("seed", "Seed"))
#: The M slider's range (the text box takes up to M_MAX); the 3-D view appears from M = 4 on.
M_SLIDER_MAX = 16
VIEW3D_MIN_M = 4
#: Simplex edges are drawn up to this many units (M(M-1)/2 segments).
EDGES_MAX_M = 16
VIEW3D_TITLE = "Directions in 3-D (PCA)"


@dataclass
class _Job:
    kind: str  # "opt" or "sweep"
    params: ExplorerParams
    gen: int
    V0: Any = None  # warm start (dragged weights)
    t0: float = field(default_factory=time.perf_counter)


class _Worker:
    """One background thread; at most one pending optimization (the newest) and one pending sweep."""

    def __init__(self, run):
        self._run = run
        self._cond = threading.Condition()
        self._slots: dict[str, _Job | None] = {"opt": None, "sweep": None}
        self._gen = 0
        self._closed = False
        self.busy = False
        self._thread = threading.Thread(target=self._loop, name="compression-explorer", daemon=True)
        self._thread.start()
        stop_at_exit(self, lambda w: w.close(timeout=10))

    def submit(self, kind: str, params: ExplorerParams, V0=None) -> _Job:
        with self._cond:
            self._gen += 1
            job = _Job(kind, params, self._gen, V0)
            self._slots[kind] = job
            self._cond.notify()
        return job

    @property
    def closed(self) -> bool:
        return self._closed

    def opt_pending(self) -> bool:
        return self._slots["opt"] is not None

    def requeue(self, job: _Job) -> None:
        with self._cond:
            if self._slots[job.kind] is None:
                self._slots[job.kind] = job

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._slots["opt"] is None and self._slots["sweep"] is None:
                    self.busy = False
                    self._cond.wait()
                if self._closed:
                    return
                kind = "opt" if self._slots["opt"] is not None else "sweep"
                job, self._slots[kind] = self._slots[kind], None
                self.busy = True
            self._run(job)

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)


class CompressionExplorer(LiveView):
    """Controls, live views and export for compressing a random two-layer target.

    ``CompressionExplorer(N=500, M=4, d=10, method="exact")``: any of N, M, d, weight_dist, w_mean, w_spread,
    a_mean, a_std, seed, activation, method (see :func:`~nonlin_explorer.ui.compression_core.validate_params`). ``rate``
    is the refresh rate of the views in Hz. Without a running Panel server (plain scripts, benchmarks) call
    :meth:`flush` to apply what the worker produced.
    """

    def __init__(self, *, rate: float = 10.0, theme: str = "light", files_root=None, **initial):
        super().__init__()
        self.files_root = Path(files_root if files_root is not None else os.getcwd()).resolve()
        self.params_valid: ExplorerParams = validate_params(initial)
        self.rate = float(parse_number(rate, "rate", low=0.5, high=60.0))
        self.theme = check_theme(theme)
        self._lock = threading.Lock()
        self._events: list[tuple] = []
        self._targets: OrderedDict[tuple, Any] = OrderedDict()
        self._sweep_cache: dict[tuple, float] = {}
        self._syncing = False
        self.result = None
        self.result_params: ExplorerParams | None = None
        self.wall_time: float | None = None
        self.latency: float | None = None
        self.state = "idle"
        self.applied_gen = 0
        self.requested_gen = 0
        self.sweep_losses: dict[str, dict[int, float]] = {}
        self.flushes = 0
        self.dragged = False  # the shown result is a dragged one (Re-optimize warm-starts from it)
        self._axes2 = None  # the 2-D view's axes (kept while dragging, so the view does not jump)
        self._pca_xy: list[tuple[float, float]] = []
        self._view3d_data = None
        self.view3d_shown = False
        self._build_widgets()
        self._build_plots()
        self._layout = self._build_layout()
        self._worker = _Worker(self._run_job)
        self._callback = None
        self._start_callback()
        self.optimize()

    # -- construction -----------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        p = self.params_valid
        self.inputs = {key: pn.widgets.TextInput(name=label, value=self._fmt(getattr(p, key)), width=90)
                       for key, label in _NUMERIC}
        self.weight_dist = pn.widgets.Select(name="Weight distribution", options=list(WEIGHT_DISTS),
                                             value=p.weight_dist, width=140)
        self.activation = pn.widgets.Select(name="Activation", options=list(ACTIVATIONS), value=p.activation,
                                            width=120)
        self.method = pn.widgets.Select(name="Method", options=list(EXPLORER_METHODS), value=p.method, width=120)
        self.m_slider = pn.widgets.IntSlider(name="M slider", start=1, end=self._slider_end(p), value=p.M, width=250,
                                             css_classes=["ne-m-slider"])
        self.m_slider.param.watch(self._on_slider, "value")
        for w in (*self.inputs.values(), self.weight_dist, self.activation, self.method):
            w.param.watch(self._on_change, "value")
        self.reoptimize_button = pn.widgets.Button(name="Re-optimize", button_type="primary", width=120)
        self.reoptimize_button.on_click(lambda e: self.reoptimize())
        self.sweep_button = pn.widgets.Button(name="Loss vs M", width=110)
        self.sweep_button.on_click(lambda e: self.request_sweep())
        self.status = StatusLine("Status: starting", css_classes=["ne-status"], margin=(0, 10))
        self.message = self._make_message()
        pal = PALETTES[self.theme]
        cell = f"background: {pal['background']}; color: {pal['text']};"
        table_css = (f"table {{ {cell} border-collapse: collapse; }} "
                     f"th, td {{ {cell} border: 1px solid {pal['grid']}; padding: 2px 8px; }}")
        self.table = pn.pane.Markdown(summary_markdown(None), css_classes=["ne-table"], width=300,
                                      stylesheets=[table_css])
        self.export_what = pn.widgets.Select(name="Export", options=["result", "loss vs M"], value="result", width=110)
        self.export_path = pn.widgets.TextInput(name="Export to (netCDF)", value="compression.nc", width=220)
        self.export_button = pn.widgets.Button(name="Export", button_type="primary", width=90)
        self.export_button.on_click(lambda e: self.export())

    @staticmethod
    def _slider_end(p: ExplorerParams) -> int:
        return max(2, min(M_SLIDER_MAX, p.N - 1), p.M)

    @staticmethod
    def _fmt(v) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    def _build_plots(self) -> None:
        mapper = LinearColorMapper(palette="RdBu11", low=-1, high=1)
        self.gram_source = ColumnDataSource(gram_columns([[1.0]]))
        self.etf_source = ColumnDataSource(gram_columns([[1.0]]))
        self.gram_figures = {}
        for key, title, src in (("gram", "Compressed weights: cosines", self.gram_source),
                                ("etf", "Ideal simplex ETF", self.etf_source)):
            f = figure(title=title, width=300 if key == "gram" else 280, height=280, toolbar_location=None,
                       x_range=Range1d(-0.5, 0.5), y_range=Range1d(-0.5, 0.5), tools="hover",
                       tooltips=[("cosine", "@tip")])
            f.rect("x", "y", width=1, height=1, source=src, fill_color={"field": "value", "transform": mapper},
                   line_color="white")
            f.text("x", "y", text="label", source=src, text_align="center", text_baseline="middle",
                   text_font_size="10pt", text_color="text_color")
            f.axis.visible = False
            f.grid.visible = False
            self.gram_figures[key] = f
        # One colour meaning for both tables: a bar beside the measured one.
        bar = ColorBar(color_mapper=mapper, width=10, ticker=FixedTicker(ticks=[-1, -0.5, 0, 0.5, 1]),
                       title="cosine")
        self.gram_figures["gram"].add_layout(bar, "right")
        self._colorbar = bar

        self.pca_source = ColumnDataSource({"x": [], "y": [], "x0": [], "y0": [], "unit": []})
        self.arrow_source = ColumnDataSource({"x_start": [0.0], "y_start": [0.0], "x_end": [0.0], "y_end": [0.0]})
        pca = figure(title="Directions (PCA); red: linear part", width=380, height=320,
                     toolbar_location=None, x_range=Range1d(-1.2, 1.2), y_range=Range1d(-1.2, 1.2),
                     match_aspect=True)
        pca.circle(0, 0, radius=1, fill_color=None, line_color="#cccccc")
        pca.segment("x0", "y0", "x", "y", source=self.pca_source, line_color="#1f77b4", line_width=2)
        units = pca.scatter("x", "y", source=self.pca_source, size=12, color="#1f77b4")
        # Drag a unit (its direction moves within the plane of the two axes; see compression_core.drag_unit).
        drag = PointDrawTool(renderers=[units], add=False, drag=True, description="Drag a unit")
        pca.add_tools(drag)
        pca.toolbar.active_tap = drag
        pca.toolbar.active_drag = drag
        pca.toolbar_location = None  # the drag tool stays active; a toolbar would only crowd the plot
        self.pca_source.on_change("data", self._on_pca_data)
        pca.text("x", "y", text="unit", source=self.pca_source, x_offset=6, y_offset=-6, text_font_size="11pt",
                 text_color=PALETTES[self.theme]["text"])
        pca.add_layout(Arrow(end=NormalHead(size=10, fill_color="#d62728", line_color="#d62728"),
                             source=self.arrow_source, x_start="x_start", y_start="y_start", x_end="x_end",
                             y_end="y_end", line_color="#d62728", line_width=2))
        self.pca_figure = pca

        self.azimuth = pn.widgets.IntSlider(name="Azimuth", start=-180, end=180, value=30, width=180)
        self.elevation = pn.widgets.IntSlider(name="Elevation", start=-90, end=90, value=20, width=180)
        for w in (self.azimuth, self.elevation):
            w.param.watch(lambda e: self._draw_view3d(), "value")
        v3_empty = view3d_columns([], [0, 0, 0], 0, 0)
        v3_empty["points"]["size"] = []  # the scatter reads its sizes from this column (Bokeh E-1001 without it)
        self.v3_sources = {k: ColumnDataSource(v) for k, v in v3_empty.items()}
        v3 = figure(title=VIEW3D_TITLE, width=380, height=320,
                    toolbar_location=None, x_range=Range1d(-1.3, 1.3), y_range=Range1d(-1.3, 1.3), match_aspect=True)
        v3.axis.visible = False
        v3.grid.visible = False
        v3.segment("x0", "y0", "x1", "y1", source=self.v3_sources["axes"], line_color="#bbbbbb", line_dash="dashed")
        v3.text("x1", "y1", text="label", source=self.v3_sources["axes"], text_color=PALETTES[self.theme]["muted"],
                text_font_size="10pt")
        v3.segment("x0", "y0", "x1", "y1", source=self.v3_sources["edges"], line_color="#1f77b4", line_alpha=0.5)
        v3.scatter("x", "y", source=self.v3_sources["points"], size="size", color="#1f77b4")
        v3.text("x", "y", text="unit", source=self.v3_sources["points"], x_offset=6, y_offset=-6, text_font_size="11pt",
                text_color=PALETTES[self.theme]["text"])
        v3.add_layout(Arrow(end=NormalHead(size=10, fill_color="#d62728", line_color="#d62728"),
                            source=self.v3_sources["arrow"], x_start="x_start", y_start="y_start", x_end="x_end",
                            y_end="y_end", line_color="#d62728", line_width=2))
        self.view3d_figure = v3

        self.conv_source = ColumnDataSource({"iteration": [], "relative_loss": []})
        conv = figure(title="Convergence", x_axis_label="iteration", y_axis_label="relative loss", y_axis_type="log",
                      width=380, height=280, toolbar_location=None)
        conv.line("iteration", "relative_loss", source=self.conv_source, line_width=2)
        conv.scatter("iteration", "relative_loss", source=self.conv_source, size=4)
        self.conv_figure = conv

        self.sweep_sources = {m: ColumnDataSource({"M": [], "relative_loss": []}) for m in SWEEP_METHODS}
        sweep = figure(title="Relative loss against M", x_axis_label="M", y_axis_label="relative loss",
                       width=460, height=280, toolbar_location=None)
        for m, color in zip(SWEEP_METHODS, Category10[10], strict=False):
            sweep.line("M", "relative_loss", source=self.sweep_sources[m], color=color, line_width=2, legend_label=m)
            sweep.scatter("M", "relative_loss", source=self.sweep_sources[m], color=color, size=5)
        sweep.legend.location = "top_right"
        sweep.legend.background_fill_alpha = 0.5
        self.sweep_figure = sweep
        for fig in (*self.gram_figures.values(), pca, v3, conv, sweep):
            style_figure(fig, self.theme)
        palette = PALETTES[self.theme]
        self._colorbar.background_fill_color = palette["border"]
        self._colorbar.major_label_text_color = palette["muted"]
        self._colorbar.title_text_color = palette["text"]

    def _build_layout(self):
        i = self.inputs
        controls = pn.Column(
            pn.pane.Markdown("## nonlin_explorer: compression onto ETF weights", margin=(0, 10)),
            self.status,
            self.message,
            pn.pane.Markdown("**Target**", margin=(0, 10)),
            pn.Row(i["N"], i["d"], i["seed"]),
            pn.Row(self.weight_dist, self.activation),
            pn.Row(i["w_mean"], i["w_spread"]),
            pn.Row(i["a_mean"], i["a_std"]),
            pn.pane.Markdown("**Compression**", margin=(0, 10)),
            pn.Row(i["M"], self.method),
            self.m_slider,
            pn.Row(self.reoptimize_button, self.sweep_button),
            self.table,
            pn.pane.Markdown("**Export**", margin=(0, 10)),
            pn.Row(self.export_what, self.export_path),
            self.export_button,
            width=400,
        )
        # Always on the page (toggling a layout's visibility makes Panel re-send stylesheets, from its CDN in
        # a notebook); empty, with a note in its title, while M < 4.
        self.view3d = pn.Column(pn.pane.Bokeh(self.view3d_figure), pn.Row(self.azimuth, self.elevation))
        views = pn.Column(
            pn.Row(pn.pane.Bokeh(self.gram_figures["gram"]), pn.pane.Bokeh(self.gram_figures["etf"])),
            pn.Row(pn.pane.Bokeh(self.pca_figure), pn.pane.Bokeh(self.conv_figure)),
            pn.Row(pn.pane.Bokeh(self.sweep_figure), self.view3d),
        )
        # Bokeh's widgets read --bokeh-font-size (default 12 px); custom properties reach into their shadow roots.
        return pn.Row(controls, views, sizing_mode="stretch_width", styles={"--bokeh-font-size": "14px"})

    # -- input ------------------------------------------------------------------------------------
    def _raw_from_widgets(self) -> dict[str, Any]:
        raw = {key: w.value for key, w in self.inputs.items()}
        raw.update(weight_dist=self.weight_dist.value, activation=self.activation.value, method=self.method.value)
        return raw

    def _on_change(self, event) -> None:
        if not self._syncing:
            self.update()

    def _on_slider(self, event) -> None:
        if not self._syncing:
            self.update(M=event.new)

    def update(self, **changes) -> bool:
        """Apply ``changes`` (or the widgets' values) and re-optimize. Bad input: a message, nothing changes."""
        if changes:
            self._syncing = True
            try:
                for k, v in changes.items():
                    w = self.inputs.get(k) or {"weight_dist": self.weight_dist, "activation": self.activation,
                                               "method": self.method}.get(k)
                    if w is None:
                        raise KeyError(k)
                    w.value = self._fmt(v) if k in self.inputs else v
            finally:
                self._syncing = False
        try:
            params = validate_params(self._raw_from_widgets())
        except ValueError as exc:
            self.show_message(f"{exc} (keeping the last valid settings)")
            # On a served page the box shows the page's own edit until the refusal is sent: put the last valid value
            # back on the next tick, as a change of its own (Panel 1.10 drops a reset made while it applies the edit).
            pn.state.execute(self._sync_widgets, schedule=True)
            return False
        self.clear_message()
        self.params_valid = params
        self._sync_widgets()  # the slider follows the text box (and back)
        self.optimize()
        return True

    def _sync_widgets(self) -> None:
        p = self.params_valid
        self._syncing = True
        try:
            for key, w in self.inputs.items():
                w.value = self._fmt(getattr(p, key))
            self.weight_dist.value, self.activation.value, self.method.value = p.weight_dist, p.activation, p.method
            self.m_slider.end = self._slider_end(p)
            self.m_slider.value = p.M
        finally:
            self._syncing = False

    # -- work (worker thread) ---------------------------------------------------------------------
    def reoptimize(self) -> int:
        """The Re-optimize button: from the dragged weights when a unit was dragged (a warm start of the exact
        optimizer), else a fresh optimization with the current settings."""
        if self.dragged and self.result is not None and self.result_params == self.params_valid:
            return self.optimize(V0=self.result.V)
        return self.optimize()

    def optimize(self, V0=None) -> int:
        """(Re-)optimize with the current valid settings, off the UI thread; returns the request's number.
        ``V0``: warm-start the exact optimizer from these weights."""
        job = self._worker.submit("opt", self.params_valid, V0)
        self.requested_gen = job.gen
        self.state = "optimizing"
        self.status.object = self._status_text()
        return job.gen

    def request_sweep(self) -> None:
        """Compute the loss-vs-M view for the current target (cached points are not recomputed)."""
        self._worker.submit("sweep", self.params_valid)
        self.status.object = self._status_text("computing loss vs M")

    def _post(self, *event) -> None:
        with self._lock:
            self._events.append(event)

    def _target(self, p: ExplorerParams):
        key = p.target_key()
        if key not in self._targets:
            self._targets[key] = make_target(p)
            while len(self._targets) > 4:
                self._targets.popitem(last=False)
        return self._targets[key]

    def _run_job(self, job: _Job) -> None:
        try:
            if job.kind == "opt":
                self._run_opt(job)
            else:
                self._run_sweep(job)
        except Exception as exc:  # shown to the user; the last valid state stays on screen
            self._post("error", job.gen, f"{type(exc).__name__}: {exc}")

    def _run_opt(self, job: _Job) -> None:
        p = job.params
        target = self._target(p)

        def callback(progress):
            self._post("progress", job.gen, progress.iteration, progress.relative_loss)
            return self._worker.opt_pending() or self._worker.closed  # a newer request (stale) or closing

        result = run_method(target, p, callback=callback, V0=job.V0)
        if self._worker.opt_pending():
            return
        self._post("result", job.gen, p, result, time.perf_counter() - job.t0, target.linear_direction(), job.t0)

    def _run_sweep(self, job: _Job) -> None:
        p = job.params
        target = self._target(p)
        for M in sweep_ms(p):
            for method in SWEEP_METHODS:
                if self._worker.opt_pending():  # an optimization first; the sweep resumes after it
                    self._worker.requeue(job)
                    return
                key = (p.target_key(), method, M)
                if key not in self._sweep_cache and sweep_applicable(p, method, M):
                    self._sweep_cache[key] = run_method(target, p, M=M, method=method).relative_loss
        losses = {m: {M: self._sweep_cache[(p.target_key(), m, M)] for M in sweep_ms(p)
                      if (p.target_key(), m, M) in self._sweep_cache} for m in SWEEP_METHODS}
        self._post("sweep", job.gen, p, losses)

    # -- the refresh loop (document thread) -------------------------------------------------------
    def flush(self) -> bool:
        """Apply what the worker produced since the last flush. True if anything changed."""
        with self._lock:
            events, self._events = self._events, []
        if not events:
            return False
        progress = {"iteration": [], "relative_loss": []}
        reset_conv = False
        for ev in events:
            kind, gen = ev[0], ev[1]
            if kind == "progress" and gen == self.requested_gen:
                if gen != self._conv_gen:
                    reset_conv, self._conv_gen = True, gen
                    progress = {"iteration": [], "relative_loss": []}
                if math.isfinite(ev[3]) and ev[3] > 0:
                    progress["iteration"].append(ev[2])
                    progress["relative_loss"].append(ev[3])
            elif kind == "result" and gen == self.requested_gen:
                shown = (self.result, self.result_params, self.wall_time)
                try:
                    self._apply_result(*ev[2:])
                except Exception as exc:  # never a silent "optimizing" forever: say what went wrong
                    traceback.print_exc()
                    self.result, self.result_params, self.wall_time = shown  # what the views still show
                    self.state = "error"
                    self.show_message(f"could not show the result: {type(exc).__name__}: {exc}")
                self.applied_gen = gen
            elif kind == "error" and gen >= self.requested_gen:
                self.state = "error"
                self.show_message(f"{ev[2]} (keeping the last result)")
            elif kind == "sweep":
                self._apply_sweep(*ev[2:])
        if reset_conv:
            self.conv_source.data = progress
        elif progress["iteration"]:
            self.conv_source.stream(progress)
        self.status.object = self._status_text()
        self.flushes += 1
        return True

    _conv_gen = 0

    def _apply_result(self, p: ExplorerParams, result, wall: float, direction, t0: float) -> None:
        self.result, self.result_params, self.wall_time = result, p, wall
        self.state = "done"
        M = result.M
        self.gram_source.data = gram_columns(result.gram.cpu().numpy())
        ideal_title, ideal = ideal_gram(result)
        self.etf_source.data = gram_columns(ideal) if ideal is not None else {"x": [], "y": [], "value": [],
                                                                               "label": []}
        self.gram_figures["etf"].title.text = ideal_title
        for f in self.gram_figures.values():
            f.x_range.start, f.x_range.end = -0.5, M - 0.5
            f.y_range.start, f.y_range.end = -0.5, M - 0.5
        self.dragged = False
        self._direction = direction
        self._axes2, _ = pca_axes(result.V, 2)
        self._draw_directions(result.V)
        self._axes3, _ = pca_axes(result.V, 3)
        self.view3d_shown = M >= VIEW3D_MIN_M
        self._draw_view3d(result.V)
        hist = [h / result.energy for h in result.history] if result.energy > 0 else []
        pts = [(i, h) for i, h in enumerate(hist) if math.isfinite(h) and h > 0]
        if not pts and math.isfinite(result.relative_loss) and result.relative_loss > 0:
            pts = [(0, result.relative_loss)]  # baselines: one point
        self.conv_source.data = {"iteration": [i for i, _ in pts], "relative_loss": [h for _, h in pts]}
        self.table.object = summary_markdown(result, wall)
        self.latency = time.perf_counter() - t0

    def _draw_directions(self, V) -> None:
        """The 2-D view: V's unit directions on the current axes, and the target's linear direction."""
        coords = unit_rows(V) @ self._axes2.T
        M = coords.shape[0]
        self._pca_xy = [(float(x), float(y)) for x, y in coords]
        self._syncing_pca = True
        try:
            self.pca_source.data = {"x": coords[:, 0].tolist(), "y": coords[:, 1].tolist(), "x0": [0.0] * M,
                                    "y0": [0.0] * M, "unit": [str(j) for j in range(M)]}
        finally:
            self._syncing_pca = False
        arrow = np.zeros(2)
        m = np.asarray(self._direction, dtype=float)
        if np.linalg.norm(m) > 0:
            arrow = self._axes2 @ (m / np.linalg.norm(m))
        self.arrow_source.data = {"x_start": [0.0], "y_start": [0.0], "x_end": [float(arrow[0])],
                                  "y_end": [float(arrow[1])]}

    def _draw_view3d(self, V=None) -> None:
        """The 3-D view: V's unit directions on the current 3 axes, seen from the azimuth/elevation sliders."""
        if V is not None:
            arrow3 = np.zeros(3)
            m = np.asarray(self._direction, dtype=float)
            if np.linalg.norm(m) > 0:
                arrow3 = self._axes3 @ (m / np.linalg.norm(m))
            self._view3d_data = (unit_rows(V) @ self._axes3.T, arrow3)
        if self._view3d_data is None:
            return
        coords3, arrow3 = self._view3d_data
        if not self.view3d_shown:  # three units or fewer: the 2-D view shows them exactly
            cols = view3d_columns([], [0.0, 0.0, 0.0], 0, 0)
            cols["arrow"] = {k: [] for k in cols["arrow"]}
            cols["axes"] = {k: [] for k in cols["axes"]}
            self.view3d_figure.title.text = f"3-D view: from M = {VIEW3D_MIN_M} on"
        else:
            cols = view3d_columns(coords3, arrow3, self.azimuth.value, self.elevation.value)
            self.view3d_figure.title.text = VIEW3D_TITLE
        cols["points"]["size"] = [9.0 + 4.0 * z for z in cols["points"]["depth"]]  # nearer: larger
        if len(coords3) > EDGES_MAX_M:
            cols["edges"] = {k: [] for k in cols["edges"]}
        for k, src in self.v3_sources.items():
            src.data = cols[k]

    _syncing_pca = False

    def _on_pca_data(self, attr, old, new) -> None:
        """The browser moved a point of the 2-D view (PointDrawTool): apply it as a drag of that unit."""
        if self._syncing_pca or self.result is None:
            return
        xs, ys = list(new.get("x", [])), list(new.get("y", []))
        if len(xs) != len(self._pca_xy):  # not a drag (the tool cannot add or delete here): redraw
            self._draw_directions(self.result.V)
            return
        moved = [j for j, (x, y) in enumerate(zip(xs, ys, strict=True))
                 if abs(x - self._pca_xy[j][0]) > 1e-9 or abs(y - self._pca_xy[j][1]) > 1e-9]
        if moved:
            j = moved[0]
            self.drag(j, xs[j], ys[j])

    def drag(self, index: int, x: float, y: float):
        """Move unit ``index`` so that its direction shows at ``(x, y)`` in the 2-D view (within the plane of
        the view's two axes, :func:`~nonlin_explorer.ui.compression_core.drag_unit`), re-solve the output
        weights and show the exact loss. Re-optimize then warm-starts from here. Returns the new result."""
        if self.result is None or self._axes2 is None:
            raise ValueError("no result to drag yet")
        before = self.result.loss
        try:
            V = drag_unit(self.result.V, self._axes2, int(index), (float(x), float(y)))
            result = evaluate_weights(self._target(self.result_params), V)
        except (ValueError, RuntimeError) as exc:
            self.show_message(f"drag: {exc}")
            self._draw_directions(self.result.V)
            return None
        self.result, self.wall_time, self.dragged = result, None, True
        self.gram_source.data = gram_columns(result.gram.cpu().numpy())
        self._draw_directions(result.V)
        self._draw_view3d(result.V)
        self.conv_source.stream({"iteration": [len(self.conv_source.data["iteration"])],
                                 "relative_loss": [result.relative_loss]})
        self.table.object = summary_markdown(result)
        self.show_message(f"dragged unit {index}: loss {result.loss:.6g} (was {before:.6g}); "
                          "Re-optimize starts from here", kind="info")
        self.status.object = self._status_text()
        return result

    def _apply_sweep(self, p: ExplorerParams, losses: dict[str, dict[int, float]]) -> None:
        if p.target_key() != self.params_valid.target_key():
            return  # the target changed meanwhile
        self.sweep_losses = losses
        self.sweep_params = p
        for m, src in self.sweep_sources.items():
            row = losses.get(m, {})
            src.data = {"M": sorted(row), "relative_loss": [row[k] for k in sorted(row)]}

    def _status_text(self, extra: str = "") -> str:
        p = self.params_valid
        text = f"Status: **{self.state}** ({p.method}, N = {p.N}, d = {p.d}, M = {p.M})"
        if self.state == "optimizing" and self.conv_source.data["relative_loss"]:
            text += f", relative loss {self.conv_source.data['relative_loss'][-1]:.4g}"
        return text + (f"; {extra}" if extra else "")

    # -- export -----------------------------------------------------------------------------------
    def dataset(self, what: str = "result"):
        """The current result (or the loss-vs-M sweep) as an ``xr.Dataset``."""
        if what == "result":
            if self.result is None:
                raise ValueError("no result yet")
            return result_dataset(self.result_params, self.result, wall_time=self.wall_time)
        if not self.sweep_losses:
            raise ValueError("no loss-vs-M sweep yet: press 'Loss vs M' first")
        return loss_vs_m_dataset(self.sweep_params, self.sweep_losses)

    def export(self, path: str | None = None, what: str | None = None) -> str | None:
        """Write the result (or the sweep) to netCDF. An unwritable path: a message, nothing else changes."""
        path = self.export_path.value if path is None else path
        what = self.export_what.value if what is None else what
        try:
            target = confined_path(self.files_root, path, default="compression.nc")
            written = write_netcdf(self.dataset(what), target, exists="rename")  # never replaces a file
        except (OSError, ValueError) as exc:
            self.show_message(f"export failed: {exc}")
            return None
        taken = f" ({target.name} exists)" if written != target else ""
        self.show_message(f"wrote {written}{taken}", kind="success")
        return str(written)

    # -- state for tests and scripts --------------------------------------------------------------
    def status_dict(self) -> dict[str, Any]:
        """The explorer's live state as plain values (the ``serve`` app's status endpoint returns this)."""
        r = self.result
        n_cells = len(self.gram_source.data["x"])
        out = {"kind": "compression", "state": self.state, "params": self.params_valid.to_dict(),
               "message": self.message.object if self.message.visible else "",
               "message_kind": self.message.alert_type, "requested_gen": self.requested_gen,
               "applied_gen": self.applied_gen, "gram_size": int(round(math.sqrt(n_cells))),
               "etf_size": int(round(math.sqrt(len(self.etf_source.data["x"])))),
               "pca_points": len(self.pca_source.data["x"]),
               "convergence_points": len(self.conv_source.data["iteration"]),
               "view3d_visible": bool(self.view3d_shown), "view3d_points": len(self.v3_sources["points"].data["x"]),
               "view3d_edges": len(self.v3_sources["edges"].data["x0"]), "dragged": self.dragged,
               "m_slider": self.m_slider.value,
               "latency": self.latency, "flushes": self.flushes,
               "sweep": {m: {str(k): v for k, v in row.items()} for m, row in self.sweep_losses.items()}}
        if r is not None:
            out.update(result_params=self.result_params.to_dict(), method=r.method, M=r.M, loss=r.loss,
                       restarts=r.info.get("restarts"), pca_xy=[list(xy) for xy in self._pca_xy],
                       relative_loss=r.relative_loss, etf_distance=r.etf_distance,
                       b=r.b.cpu().tolist(), V=r.V.cpu().tolist())
        return out

    def close(self) -> None:
        """Stop the refresh loop and the worker thread."""
        self._stop_callback()
        with self._worker._cond:
            self._worker._slots = {"opt": None, "sweep": None}
        self._worker.close()
