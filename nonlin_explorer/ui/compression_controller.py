"""The compression explorer's logic, apart from any host: compress a random two-layer target onto M units, stream the
optimizer's loss, drag a unit, compute the relative loss against M point by point, and export.

The optimizer never runs on a host's thread: one worker thread (:class:`CompressionWorker`) runs the newest
optimization, then the loss-against-M points. A newer request makes ``compress``'s callback stop the running one and
its result is dropped (each request has a number, ``gen``; only the newest is shown). The worker writes only to the
controller's :class:`~nonlin_explorer.ui.live_state.LiveState` (the one mailbox) and to a progress buffer that
:meth:`CompressionController.tick` publishes at the host's rate. Requests are checked by
:func:`~nonlin_explorer.ui.compression_core.validate_params` and refused with one line; the last valid settings and
result stay. The page (``js/src/compression``) draws every view itself.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nonlin_explorer.compression import ACTIVATIONS
from nonlin_explorer.compression.targets import WEIGHT_DISTS
from nonlin_explorer.files import confined_path
from nonlin_explorer.lifecycle import stop_at_exit
from nonlin_explorer.netcdf import write_netcdf
from nonlin_explorer.ui.compression_core import (
    EXPLORER_METHODS,
    M_MAX,
    SWEEP_METHODS,
    ExplorerParams,
    drag_unit,
    evaluate_weights,
    ideal_gram,
    loss_vs_m_dataset,
    make_target,
    pca_axes,
    result_dataset,
    run_method,
    summary_rows,
    sweep_applicable,
    sweep_ms,
    unit_rows,
    validate_params,
)
from nonlin_explorer.ui.controller import Controller, RequestError
from nonlin_explorer.ui.live_state import Field
from nonlin_explorer.validation import parse_number

__all__ = ["COMPRESSION_FIELDS", "CompressionController", "CompressionWorker", "sweep_order"]

#: The fields of the explorer's synced state (``js/src/compression/types.ts`` mirrors them).
COMPRESSION_FIELDS: tuple[Field, ...] = (
    Field("theme", "light", doc='"auto" (follow JupyterLab), "light" or "dark"'),
    Field("params", {}, doc="the last valid settings (ExplorerParams as a dict): what the form shows"),
    Field("options", {}, doc="choices and limits for the form: weight laws, activations, methods, M_max"),
    Field("status", {}, doc="{state, gen, applied, method, iteration, relative_loss, dragged}"),
    Field("shown", {}, doc="the shown result: M, d, loss, gram, ideal {name, title, gram}, pca, coords3, rows"),
    Field("convergence", {}, doc="{gen, iteration: [...], relative_loss: [...]} of the shown or running optimization"),
    Field("sweep", {}, doc="{key, methods, Ms, losses {method: {M: value}}, done, total, running}: loss against M"),
    Field("notice", {}, doc="{text, kind, seq}: a problem not tied to a request (a bad URL setting)"),
)
#: Targets kept (by their settings) so that changing M or the method does not redraw the target.
TARGET_CACHE = 4
#: The loss-against-M view's largest M.
SWEEP_M_MAX = 8


def sweep_order(method: str) -> tuple[str, ...]:
    """The methods of the loss-against-M view in the order they are computed: the chosen method first (its curve
    fills in first), then the other sweep methods."""
    first = (method,) if method in SWEEP_METHODS else ()
    return first + tuple(m for m in SWEEP_METHODS if m != method)


@dataclass
class Job:
    """One piece of work for the worker: an optimization (``kind`` "opt", optionally warm-started from ``V0``) or
    the loss-against-M points (``kind`` "sweep") of ``params``; ``gen`` numbers optimizations."""

    kind: str
    params: ExplorerParams
    gen: int = 0
    V0: Any = None
    t0: float = field(default_factory=time.perf_counter)


class CompressionWorker:
    """One background thread running ``run(job)``; at most one pending optimization (the newest) and one pending
    sweep. An optimization goes first; :meth:`preempted` tells a running job that it should stop."""

    def __init__(self, run):
        self._run = run
        self._cond = threading.Condition()
        self._slots: dict[str, Job | None] = {"opt": None, "sweep": None}
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="compression-explorer", daemon=True)
        self._thread.start()
        stop_at_exit(self, lambda w: w.close(timeout=10))

    def submit(self, job: Job) -> None:
        with self._cond:
            self._slots[job.kind] = job
            self._cond.notify_all()

    def requeue(self, job: Job) -> None:
        """Put ``job`` back unless a newer one of its kind is waiting."""
        with self._cond:
            if self._slots[job.kind] is None:
                self._slots[job.kind] = job
                self._cond.notify_all()

    def cancel(self, kind: str) -> None:
        with self._cond:
            self._slots[kind] = None

    def preempted(self, kind: str) -> bool:
        """True when the running job of ``kind`` should stop: the worker closes, a newer optimization waits, or
        (for a sweep) a newer sweep waits."""
        with self._cond:
            return self._closed or self._slots["opt"] is not None or (kind == "sweep" and
                                                                        self._slots["sweep"] is not None)

    @property
    def closed(self) -> bool:
        return self._closed

    def idle(self) -> bool:
        with self._cond:
            return not self._busy and self._slots["opt"] is None and self._slots["sweep"] is None

    def wait_idle(self, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._slots["opt"] is None and self._slots["sweep"] is None:
                    self._busy = False
                    self._cond.wait()
                if self._closed:
                    self._busy = False
                    return
                kind = "opt" if self._slots["opt"] is not None else "sweep"
                job, self._slots[kind] = self._slots[kind], None
                self._busy = True
            self._run(job)

    def close(self, timeout: float = 30.0) -> None:
        """Drop what waits, stop the running job at its next check and end the thread."""
        with self._cond:
            self._closed = True
            self._slots = {"opt": None, "sweep": None}
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


def _fmt(value: Any) -> Any:
    return float(value) if isinstance(value, (float, np.floating)) else value


def _finite(values) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in np.asarray(values, dtype=float).ravel()]


class CompressionController(Controller):
    """Settings, optimization, views' data, drag, loss against M and export of the compression explorer.

    ``CompressionController(N=2000, d=20, M=4, method="exact")``: any setting of
    :func:`~nonlin_explorer.ui.compression_core.validate_params` (a bad one raises ValueError before anything runs).
    ``files_root``: the only folder *Export* may write into (default: the working directory).
    """

    FIELDS = COMPRESSION_FIELDS
    BUNDLE = "compression"

    def __init__(self, *, rate: float = 10.0, theme: str = "auto", files_root: str | os.PathLike | None = None,
                 **settings: Any):
        super().__init__()
        self.params: ExplorerParams = validate_params(settings)
        self.rate = float(parse_number(rate, "rate", low=0.5, high=60.0))
        if theme not in ("auto", "light", "dark"):
            raise ValueError(f"theme must be 'auto', 'light' or 'dark', got {theme!r}")
        self.files_root = Path(files_root if files_root is not None else os.getcwd()).resolve()
        self._lock = threading.RLock()  # guards what the worker and the request threads share (below)
        self._targets: OrderedDict[tuple, Any] = OrderedDict()
        self._sweep_cache: dict[tuple, float] = {}
        self._progress: tuple[int, list[int], list[float]] = (0, [], [])
        self._published_progress = (0, 0)
        self.result = None
        self.result_params: ExplorerParams | None = None
        self.wall_time: float | None = None
        self.latency: float | None = None
        self.dragged = False
        self.requested_gen = 0
        self.applied_gen = 0
        self.sweep_params: ExplorerParams | None = None
        self.sweep_losses: dict[str, dict[int, float]] = {}
        self._axes2: np.ndarray | None = None
        self._direction: np.ndarray | None = None
        self._state = "idle"
        self._sweeping = False
        self.state.update(theme=theme, params=self.params.to_dict(), options=self._options())
        self._publish_sweep()
        self.worker = CompressionWorker(self._run_job)
        self.optimize()

    # -- requests from the page ---------------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "set":
            values = message.get("values")
            if not isinstance(values, dict):
                raise RequestError("set needs the settings as an object ('values')")
            self.update(**values)
        elif kind == "reoptimize":
            self.reoptimize()
        elif kind == "drag":
            self.drag(message.get("unit"), message.get("x"), message.get("y"))
        elif kind == "sweep":
            self.request_sweep()
        elif kind == "export":
            written = self.export(message.get("path"), message.get("what", "result"))
            self.state.post({"type": "answer", "id": message.get("id"), "kind": "success", "text": written})
        else:
            raise RequestError(f"unknown request {kind!r}")

    def update(self, **changes: Any) -> ExplorerParams:
        """Apply ``changes`` to the settings and re-optimize; a refused value raises ValueError (one line) and
        nothing changes (the last valid settings and result stay)."""
        raw = {**self.params.to_dict(), **changes}
        try:
            params = validate_params(raw)
        except ValueError as exc:
            raise RequestError(f"{exc} (keeping the last valid settings)") from None
        with self._lock:
            self.params = params
            self.state.update(params=params.to_dict())
            if self.sweep_params is not None and self.sweep_params.target_key() != params.target_key():
                self.worker.cancel("sweep")
                self._sweeping = False
            self._publish_sweep()
        self.optimize()
        return params

    def reoptimize(self) -> int:
        """From the dragged weights when a unit was dragged (a warm start of the exact optimizer), else afresh."""
        with self._lock:
            if self.dragged and self.result is not None and self.result_params == self.params:
                return self.optimize(V0=self.result.V)
        return self.optimize()

    def optimize(self, V0: Any = None) -> int:
        """(Re-)optimize with the current settings on the worker; returns the request's number."""
        with self._lock:
            self.requested_gen += 1
            gen = self.requested_gen
            self._state = "optimizing"
            self._progress = (gen, [], [])
            self.worker.submit(Job("opt", self.params, gen, V0))
            self._publish_status()
        return gen

    def request_sweep(self) -> None:
        """Compute the relative loss against M (1..8) for the current target, point by point (cached points stay)."""
        with self._lock:
            self.sweep_params = self.params
            self._sweeping = True
            self.worker.submit(Job("sweep", self.params))
            self._publish_sweep()

    def drag(self, index: Any, x: Any, y: Any):
        """Move unit ``index`` so that its direction shows at ``(x, y)`` in the 2-D view (within the plane of the
        view's axes, :func:`~nonlin_explorer.ui.compression_core.drag_unit`), re-solve the output weights and show
        the exact loss. A running optimization is dropped; Re-optimize then warm-starts from here."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise RequestError(f"drag: the unit must be an integer, got {index!r}")
        try:
            xy = (float(x), float(y))
        except (TypeError, ValueError):
            raise RequestError(f"drag: the position must be two numbers, got {x!r}, {y!r}") from None
        with self._lock:
            if self.result is None or self._axes2 is None or self.result_params is None:
                raise RequestError("drag: no result to drag yet")
            V = drag_unit(self.result.V, self._axes2, index, xy)
            result = evaluate_weights(self._target(self.result_params), V)
            self.requested_gen += 1  # a running optimization is now stale
            self.applied_gen = self.requested_gen
            self.worker.cancel("opt")
            self.result, self.wall_time, self.dragged = result, None, True
            self._state = "done"
            gen, its, losses = self._progress
            if math.isfinite(result.relative_loss) and result.relative_loss > 0:
                self._progress = (self.requested_gen, [*its, (its[-1] + 1) if its else 0],
                                  [*losses, result.relative_loss])
            self._publish_result(result, keep_axes=True)
            self._publish_status()
        return result

    # -- work (worker thread) -----------------------------------------------------------------------------------
    def _target(self, p: ExplorerParams):
        key = p.target_key()
        with self._lock:
            if key not in self._targets:
                self._targets[key] = make_target(p)
                while len(self._targets) > TARGET_CACHE:
                    self._targets.popitem(last=False)
            return self._targets[key]

    def _run_job(self, job: Job) -> None:
        try:
            if job.kind == "opt":
                self._run_opt(job)
            else:
                self._run_sweep(job)
        except Exception as exc:  # shown to the user; the last valid state stays on screen
            with self._lock:
                if job.kind == "opt" and job.gen != self.requested_gen:
                    return
                if job.kind == "opt":
                    self._state = "error"
                    self._publish_status(f"{type(exc).__name__}: {exc} (keeping the last result)")
                else:
                    self._sweeping = False
                    self._publish_sweep(f"{type(exc).__name__}: {exc}")

    def _run_opt(self, job: Job) -> None:
        target = self._target(job.params)

        def callback(progress) -> bool:
            with self._lock:
                gen, its, losses = self._progress
                if gen == job.gen and math.isfinite(progress.relative_loss) and progress.relative_loss > 0:
                    its.append(int(progress.iteration))
                    losses.append(float(progress.relative_loss))
            return self.worker.preempted("opt")

        result = run_method(target, job.params, callback=callback, V0=job.V0)
        with self._lock:
            if job.gen != self.requested_gen or self.worker.preempted("opt"):
                return  # stale: a newer request replaced it
            self.result, self.result_params = result, job.params
            self.wall_time = time.perf_counter() - job.t0
            self.dragged = False
            self.applied_gen = job.gen
            self._direction = np.asarray(target.linear_direction(), dtype=float)
            hist = [h / result.energy for h in result.history] if result.energy > 0 else []
            pts = [(i, h) for i, h in enumerate(hist) if math.isfinite(h) and h > 0]
            if not pts and math.isfinite(result.relative_loss) and result.relative_loss > 0:
                pts = [(0, result.relative_loss)]  # baselines: one point
            self._progress = (job.gen, [i for i, _ in pts], [h for _, h in pts])
            self._state = "done"
            self._publish_result(result)
            self._publish_status()
            self.latency = time.perf_counter() - job.t0

    def _sweep_wanted(self, p: ExplorerParams) -> bool:
        """Whether the loss against M of ``p``'s target is still the one asked for (not replaced by new settings)."""
        with self._lock:
            return self.sweep_params is not None and self.sweep_params.target_key() == p.target_key() and \
                self.params.target_key() == p.target_key()

    def _pause_sweep(self, job: Job) -> None:
        """A newer request preempted the sweep: resume it after that, unless its target is no longer shown."""
        if self._sweep_wanted(job.params):
            self.worker.requeue(job)

    def _run_sweep(self, job: Job) -> None:
        p = job.params
        target = self._target(p)
        for method in sweep_order(p.method):
            for M in sweep_ms(p, SWEEP_M_MAX):
                key = (p.target_key(), method, M)
                if key in self._sweep_cache or not sweep_applicable(p, method, M):
                    continue
                if self.worker.preempted("sweep") or not self._sweep_wanted(p):  # an optimization goes first
                    self._pause_sweep(job)
                    return
                result = run_method(target, p, M=M, method=method,
                                    callback=lambda _progress: self.worker.preempted("sweep"))
                if self.worker.preempted("sweep"):  # stopped part-way: not a point
                    self._pause_sweep(job)
                    return
                with self._lock:
                    self._sweep_cache[key] = result.relative_loss
                    self._publish_sweep()
        with self._lock:
            if self.sweep_params is not None and self.sweep_params.target_key() == p.target_key():
                self._sweeping = False
            self._publish_sweep()

    # -- what the page shows ------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Publish the running optimization's loss curve (the worker appends to it at every iteration)."""
        with self._lock:
            gen, its, losses = self._progress
            if (gen, len(its)) == self._published_progress:
                return
            self._published_progress = (gen, len(its))
            self.state.update(convergence={"gen": gen, "iteration": list(its), "relative_loss": list(losses)})
            if self._state == "optimizing":
                self._publish_status()

    def _options(self) -> dict[str, Any]:
        return {"weight_dists": list(WEIGHT_DISTS), "activations": list(ACTIVATIONS),
                "methods": list(EXPLORER_METHODS), "sweep_methods": list(SWEEP_METHODS), "M_max": M_MAX,
                "sweep_M_max": SWEEP_M_MAX, "files_root": str(self.files_root)}

    def _publish_status(self, error: str = "") -> None:
        gen, its, losses = self._progress
        self.state.update(status={"state": self._state, "gen": self.requested_gen, "applied": self.applied_gen,
                                  "method": self.params.method, "iteration": its[-1] if its else None,
                                  "relative_loss": losses[-1] if losses else None, "dragged": self.dragged,
                                  "error": error})

    def _publish_result(self, result, keep_axes: bool = False) -> None:
        """The shown result as the page draws it: Gram, ideal, 2-D and 3-D coordinates, table rows."""
        V = result.V.detach().cpu().numpy()
        M, d = V.shape
        if not keep_axes or self._axes2 is None:
            self._axes2, _ = pca_axes(V, 2)
            self._axes3, self._explained3 = pca_axes(V, 3)
        units = unit_rows(V)
        direction = self._direction if self._direction is not None else np.zeros(d)
        norm = float(np.linalg.norm(direction))
        unit_dir = direction / norm if norm > 0 else np.zeros(d)
        title, ideal = ideal_gram(result)
        shape = result.shape
        self.state.update(shown={
            "M": M, "d": d, "method": result.method, "loss": float(result.loss),
            "relative_loss": float(result.relative_loss), "dragged": self.dragged,
            "gram": [_finite(row) for row in result.gram.detach().cpu().numpy()],
            "ideal": {"name": shape.name if shape is not None else "none", "title": title,
                      "gram": None if ideal is None else [_finite(row) for row in ideal]},
            "pca": {"x": _finite(units @ self._axes2[0]), "y": _finite(units @ self._axes2[1]),
                    "arrow": _finite(self._axes2 @ unit_dir)},
            "coords3": [_finite(row) for row in units @ self._axes3.T], "arrow3": _finite(self._axes3 @ unit_dir),
            "explained3": _finite(self._explained3),
            "rows": [[k, v] for k, v in summary_rows(result, self.wall_time)],
            "params": (self.result_params or self.params).to_dict(),
        })

    def _publish_sweep(self, error: str = "") -> None:
        p = self.sweep_params
        if p is None or p.target_key() != self.params.target_key():
            self.state.update(sweep={"key": None, "methods": [], "Ms": [], "losses": {}, "done": 0, "total": 0,
                                     "running": False, "error": error})
            self.sweep_losses = {}
            return
        methods = list(sweep_order(p.method))
        Ms = sweep_ms(p, SWEEP_M_MAX)
        todo = [(m, M) for m in methods for M in Ms if sweep_applicable(p, m, M)]
        losses: dict[str, dict[int, float]] = {m: {} for m in methods}
        for m, M in todo:
            value = self._sweep_cache.get((p.target_key(), m, M))
            if value is not None:
                losses[m][M] = value
        self.sweep_losses = {m: row for m, row in losses.items() if row}
        done = sum(len(row) for row in losses.values())
        self.state.update(sweep={
            "key": repr(p.target_key()), "methods": methods, "Ms": Ms,
            "losses": {m: {str(M): (v if math.isfinite(v) else None) for M, v in row.items()} for m, row in
                       losses.items()},
            "done": done, "total": len(todo), "running": self._sweeping and done < len(todo), "error": error})

    def notify(self, text: str, kind: str = "warning") -> None:
        """A notice not tied to a request (a refused URL setting): shown in the header."""
        seq = int(self.state.get("notice", {}).get("seq", 0)) + 1
        self.state.update(notice={"text": str(text), "kind": kind, "seq": seq})

    # -- export -------------------------------------------------------------------------------------------------
    def dataset(self, what: str = "result"):
        """The shown result (``"result"``) or the loss against M (``"loss_vs_m"``) as an ``xr.Dataset``."""
        with self._lock:
            if what == "result":
                if self.result is None or self.result_params is None:
                    raise RequestError("no result yet")
                return result_dataset(self.result_params, self.result, wall_time=self.wall_time)
            if what == "loss_vs_m":
                if not self.sweep_losses or self.sweep_params is None:
                    raise RequestError("no loss against M yet: press 'Loss vs M' first")
                return loss_vs_m_dataset(self.sweep_params, self.sweep_losses)
        raise RequestError(f"export: 'what' is 'result' or 'loss_vs_m', got {what!r}")

    def export(self, path: Any = None, what: str = "result") -> str:
        """Write the result (or the loss against M) to netCDF inside ``files_root``; the name written, relative to
        it. An existing file is never replaced: the export takes the first free name beside it."""
        target = confined_path(self.files_root, path if path is not None else "", default="compression.nc")
        written = Path(write_netcdf(self.dataset(what), target, exists="rename"))
        short = str(written.relative_to(self.files_root)) if self.files_root in written.parents else str(written)
        return f"wrote {short}" + (f" ({target.name} exists)" if written != target else "")

    # -- state for tests and scripts ----------------------------------------------------------------------------
    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the worker has nothing left to do (scripts and tests); then publish the curve."""
        ok = self.worker.wait_idle(timeout)
        self.tick()
        return ok

    def status_dict(self) -> dict[str, Any]:
        """The explorer's state as plain values (the served app's status endpoint returns this)."""
        with self._lock:
            shown = self.state["shown"]
            out: dict[str, Any] = {
                "kind": "compression", "state": self._state, "params": self.params.to_dict(),
                "requested_gen": self.requested_gen, "applied_gen": self.applied_gen, "dragged": self.dragged,
                "latency": self.latency, "gram_size": len(shown.get("gram", [])),
                "ideal": shown.get("ideal", {}), "pca_points": len(shown.get("pca", {}).get("x", [])),
                "view3d_points": len(shown.get("coords3", [])),
                "convergence_points": len(self._progress[1]),
                "sweep": {m: {str(k): v for k, v in row.items()} for m, row in self.sweep_losses.items()},
                "sweep_running": self._sweeping,
            }
            r = self.result
            if r is not None and self.result_params is not None:
                out.update(result_params=self.result_params.to_dict(), method=r.method, M=r.M, loss=_fmt(r.loss),
                           relative_loss=_fmt(r.relative_loss), etf_distance=_fmt(r.etf_distance),
                           restarts=r.info.get("restarts"), shape=r.shape.name if r.shape is not None else "none",
                           pca_xy=list(zip(shown["pca"]["x"], shown["pca"]["y"], strict=True)),
                           b=r.b.cpu().tolist(), V=r.V.cpu().tolist())
            return out

    def close(self) -> None:
        """Stop the worker (a running optimization stops at its next iteration)."""
        self.worker.close()
        super().close()
