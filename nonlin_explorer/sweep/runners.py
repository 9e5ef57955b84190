"""Running one sweep point (a Dask task, or a call in this process): training, compression, or a user function.

:func:`run_point` never raises for a failing point: it returns a record with ``status = "failed"`` and the
error, so the other points finish. A record is JSON-friendly::

    {"key": ..., "status": "finished" | "diverged" | "skipped" | "failed", "error": "",
     "metrics": {name: float}, "series": {name: [float, ...]}, "provenance": {...}}
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

#: Final metrics of a training point, in result-set order (custom metrics follow).
TRAINING_METRICS = ("test_acc", "test_loss", "train_acc", "train_loss", "nonlinear_total", "units_total",
                    "nonlinear_fraction", "final_step", "final_epoch")
TRAINING_SERIES = ("step", "epoch", "test_acc", "test_loss", "train_acc", "train_loss", "nonlinear_total",
                   "sparsity")
COMPRESSION_METRICS = ("loss", "relative_loss", "etf_distance", "shape_distance", "tilt_degrees", "mean_cosine",
                       "meanfield_loss", "energy", "iterations")
#: Statuses of points that are done: never recomputed on resume.
DONE = ("finished", "diverged", "skipped")
STATUSES = DONE + ("failed", "pending")

METRIC_DOCS = {
    "test_acc": "test accuracy at the end of training",
    "test_loss": "test cross-entropy at the end of training",
    "train_acc": "training accuracy over the steps since the previous evaluation",
    "train_loss": "training cross-entropy over the steps since the previous evaluation",
    "nonlinear_total": "nonlinear units (1 - alpha > tol) in the whole model at the end",
    "units_total": "gated ReLU units in the model",
    "nonlinear_fraction": "nonlinear_total / units_total",
    "final_step": "optimizer steps taken",
    "final_epoch": "epochs trained",
    "loss": "exact population loss of the compressed network",
    "relative_loss": "loss / E f*(x)^2",
    "etf_distance": "largest deviation of a cosine between compressed units from the simplex ETF's -1/(M-1)",
    "shape_distance": "largest cosine deviation from the nearest shape (simplex ETF, tilted simplex, general ETF)",
    "tilt_degrees": "angle of each unit out of the hyperplane orthogonal to the units' mean direction",
    "mean_cosine": "mean cosine between distinct compressed units",
    "meanfield_loss": "mean-field prediction of the optimal loss (method meanfield only)",
    "energy": "E f*(x)^2 of the target",
    "iterations": "optimizer iterations",
    "time": "wall-clock seconds of the point on its worker (data and model construction included)",
}


def run_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one point. ``task`` holds kind, params, seed, key, threads, series, metrics and function."""
    import torch

    threads = int(task.get("threads", 1))
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    started = time.time()
    t0 = time.perf_counter()
    record: dict[str, Any] = {"key": task["key"], "status": "finished", "error": "", "metrics": {}, "series": {},
                              "provenance": {}}
    try:
        runner = {"training": _training, "compression": _compression, "function": _function}[task["kind"]]
        record.update(runner(task))
    except Exception as exc:
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", metrics={}, series={})
        record["provenance"] = {"traceback": traceback.format_exc(limit=20)}
    elapsed = time.perf_counter() - t0
    if record["status"] != "skipped":
        record["metrics"]["time"] = elapsed
    if not task.get("series"):
        record["series"] = {}
    from nonlin_explorer.results import provenance

    record["provenance"] = provenance(
        run_id=uuid.uuid4().hex, key=task["key"], kind=task["kind"], params=task["params"], seed=task["seed"],
        host=socket.gethostname(), pid=os.getpid(), worker=_worker_address(),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), seconds=round(elapsed, 6),
        torch_threads=torch.get_num_threads(), **record["provenance"])
    return record


def _worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _worker_address() -> str:
    w = _worker()
    return str(w.address) if w is not None else "local"


def worker_device() -> str | None:
    """``cuda:k`` spread over a worker's GPUs by worker name when it has several; None lets the default pick."""
    import torch

    if not torch.cuda.is_available():
        return None
    count = torch.cuda.device_count()
    w = _worker()
    if count <= 1 or w is None:
        return "cuda"
    name = w.name
    index = name if isinstance(name, int) else zlib.crc32(str(name).encode())
    return f"cuda:{index % count}"


def _float(value) -> float:
    if value is None:
        return math.nan
    return float(value)


# -- training -------------------------------------------------------------------------------------------

def _training(task) -> dict[str, Any]:
    from nonlin_explorer.gates import gates
    from nonlin_explorer.sweep.spec import resolve
    from nonlin_explorer.training import TrainConfig, TrainingSession

    config = TrainConfig(**task["params"], seed=task["seed"])
    if config.device is None or config.device == "auto":
        config.device = worker_device()
    session = TrainingSession(config, **({} if task.get("track_paths", True) else {"track_paths": False}))
    for ref in task.get("metrics", ()):
        factory = resolve(ref, "metric factory")
        made = factory(session.model, session.example_input)
        if not isinstance(made, Mapping):
            raise TypeError(f"metric factory {ref!r} must return a dict of name -> callable(model)")
        session.metrics.update(made)
    custom = list(session.metrics)  # path length (tracked by default) and the spec's metric factories
    session.run(progress=False)
    if session.status == "stopped":  # the session turns Ctrl-C into a stop: pass it on, the sweep must end
        raise KeyboardInterrupt(session.stop_reason)
    hist = session.history
    last = hist[-1] if hist else {}
    units = sum(g.num_units for g in gates(session.model))
    nonlinear = sum(last["nonlinear"]) if last else session.nonlinear_count()
    metrics = {
        "test_acc": _float(last.get("test_acc")), "test_loss": _float(last.get("test_loss")),
        "train_acc": _float(last.get("train_acc")), "train_loss": _float(last.get("train_loss")),
        "nonlinear_total": float(nonlinear), "units_total": float(units),
        "nonlinear_fraction": nonlinear / units if units else math.nan,
        "final_step": float(session.step), "final_epoch": float(session.epoch),
    }
    for name in custom:
        metrics[name] = _float(last.get(name))
    series: dict[str, list[float]] = {}
    if task.get("series"):
        for name in TRAINING_SERIES:
            if name == "nonlinear_total":
                series[name] = [float(sum(h["nonlinear"])) for h in hist]
            else:
                series[name] = [_float(h.get(name)) for h in hist]
        for name in custom:
            series[name] = [_float(h.get(name)) for h in hist]
    status = session.status if session.status in ("finished", "diverged") else "failed"
    error = "" if status == "finished" else session.stop_reason
    return {"status": status, "error": error, "metrics": metrics, "series": series,
            "provenance": {"config": config.to_dict(), "device": str(session.device), "stop_reason":
                           session.stop_reason, "events": session.events, "custom_metrics": custom,
                           "metrics_error": getattr(session, "metrics_error", "")}}


# -- compression ----------------------------------------------------------------------------------------

def compression_applies(params: Mapping[str, Any]) -> str:
    """Why a compression point does not apply ("" when it does): M >= N, or an ETF with M > d + 1."""
    N, M, d = params["N"], params["M"], params["d"]
    if M >= N:
        return f"M = {M} is not smaller than N = {N}"
    if params.get("method", "exact") == "etf" and M > d + 1:
        return f"an ETF of M = {M} directions needs M <= d + 1 = {d + 1}"
    return ""


def _compression(task) -> dict[str, Any]:
    import torch

    from nonlin_explorer.compression import METHODS, random_target
    from nonlin_explorer.compression.sweep import run_method

    p = task["params"]
    why = compression_applies(p)
    if why:
        return {"status": "skipped", "error": why, "metrics": {}, "series": {}}
    method = p.get("method", "exact")
    device = p.get("device")
    if device in (None, "auto"):
        device = worker_device() or "cpu"
    target = random_target(p["N"], p["d"], seed=task["seed"], activation=p.get("activation", "relu"),
                           device=torch.device(device), **p.get("target", {}))
    kwargs = dict(p.get("compress", {})) if method in METHODS else dict(p.get("sgd", {})) if method == "sgd" else {}
    result = run_method(target, p["M"], method, seed=task["seed"], **kwargs)
    summary = result.summary()
    metrics = {name: _float(summary.get(name)) for name in COMPRESSION_METRICS if name != "energy"}
    metrics["energy"] = _float(result.energy)
    metrics = {name: metrics[name] for name in COMPRESSION_METRICS}
    series = {"loss": [float(v) for v in result.history]} if task.get("series") else {}
    return {"status": "finished", "error": "", "metrics": metrics, "series": series,
            "provenance": {"device": str(device), "method": method, "method_seconds": summary.get("time")}}


# -- a user function ------------------------------------------------------------------------------------

def _function(task) -> dict[str, Any]:
    from nonlin_explorer.sweep.spec import resolve

    fn = resolve(task["function"], "function")
    out = fn(**task["params"], seed=task["seed"])
    if not isinstance(out, Mapping):
        raise TypeError(f"{task['function']} must return a dict of metric names to numbers, "
                        f"got {type(out).__name__}")
    metrics = {}
    for name, value in out.items():
        try:
            metrics[str(name)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{task['function']} returned {name!r} = {value!r}, which is not a number") from None
    return {"status": "finished", "error": "", "metrics": metrics, "series": {}}
