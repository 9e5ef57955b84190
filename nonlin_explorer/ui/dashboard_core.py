"""The dashboard's logic without Panel or Bokeh: buffering, coalescing, input parsing, export, code.

:class:`LiveBuffer` is what a :class:`~nonlin_explorer.training.TrainingSession` calls on its training thread:
each event is a list append under a lock (microseconds). The UI side drains it at its own rate and turns the
drained rows into column dicts (:func:`eval_columns`, :func:`heatmap_columns`, ...) for one
``ColumnDataSource.stream`` call per plot: however fast training runs, the browser gets at most ``rate``
updates a second.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: Sparsity slider stops: an exact 0, then a log scale from 1e-5 to 1e-1.
SPARSITY_OPTIONS: tuple[float, ...] = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
#: The largest sparsity the text box accepts (the session itself only needs >= 0).
SPARSITY_MAX = 1.0
#: Learning-rate slider stops (log scale).
LR_OPTIONS: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
#: Default refresh rate of the plots (Hz) and how many evaluations / steps the plots keep.
DEFAULT_RATE = 10.0
EVAL_ROLLOVER = 2000
STEP_ROLLOVER = 5000

#: Scalars taken from each "eval" history entry (slope tensors stay behind: the UI never needs them).
EVAL_KEYS = ("step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "sparsity", "lr",
             "apl_normalized", "apl_unnormalized", "nonlinear_layers")


def option_label(value: float) -> str:
    """``0``, ``1e-05``, ``3e-04``, ... (the label of a slider stop)."""
    return "0" if value == 0 else f"{value:.0e}"


def nearest_option(value: float, options: tuple[float, ...] = SPARSITY_OPTIONS) -> float:
    """The slider stop closest to ``value`` on a log scale (0 only for 0)."""
    if value <= 0:
        return options[0]
    positive = [o for o in options if o > 0]
    return min(positive, key=lambda o: abs(math.log(o) - math.log(value)))


def parse_number(text: Any, name: str, low: float | None = None, high: float | None = None,
                 integer: bool = False) -> float | int:
    """A number typed by a user, or ``ValueError`` with a message fit to show them."""
    if isinstance(text, str):
        text = text.strip()
        if not text:
            raise ValueError(f"{name}: enter a number")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {text!r}")
    if integer:
        if value != int(value):
            raise ValueError(f"{name}: must be a whole number, got {text!r}")
        value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name}: must be >= {low:g}, got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be <= {high:g}, got {value:g}")
    return value


def parse_sparsity(text: Any) -> float:
    return float(parse_number(text, "sparsity", low=0.0, high=SPARSITY_MAX))


@dataclass
class Drained:
    """What arrived since the last drain."""

    steps: list[tuple[int, float]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)
    dropped_steps: int = 0

    def __bool__(self) -> bool:
        return bool(self.steps or self.evals or self.status or self.commands)


class LiveBuffer:
    """Collects session events on the training thread; :meth:`drain` hands them to the UI in one batch.

    ``max_steps`` bounds memory if the UI stops draining (a closed browser tab): older per-step losses are
    dropped and counted, evaluations are kept (there are few).
    """

    def __init__(self, max_steps: int = 2000):
        self._lock = threading.Lock()
        self._steps: deque[tuple[int, float]] = deque(maxlen=max_steps)
        self._evals: list[dict[str, Any]] = []
        self._status: dict[str, Any] | None = None
        self._commands: list[dict[str, Any]] = []
        self._seen_steps = 0
        self.events = 0

    def __call__(self, kind: str, payload: dict) -> None:
        """The session callback (training thread): copy the few scalars needed, nothing else."""
        with self._lock:
            self.events += 1
            if kind == "step":
                self._steps.append((payload["step"], payload["loss"]))
                self._seen_steps += 1
            elif kind == "eval":
                row = {k: payload.get(k, math.nan) for k in EVAL_KEYS}
                row["nonlinear"] = list(payload.get("nonlinear", ()))
                row["prior_on"] = bool(payload.get("prior_on", False))
                self._evals.append(row)
            elif kind == "status":
                self._status = dict(payload)
            elif kind == "command":
                self._commands.append(dict(payload))

    def drain(self) -> Drained:
        with self._lock:
            out = Drained(list(self._steps), self._evals, self._status, self._commands,
                          max(0, self._seen_steps - len(self._steps)))
            self._steps.clear()
            self._evals, self._status, self._commands, self._seen_steps = [], None, [], 0
        return out


def eval_columns(evals: list[dict[str, Any]]) -> dict[str, list]:
    """Columns for the curves (loss, accuracy, APL, sparsity), one row per evaluation."""
    cols: dict[str, list] = {k: [] for k in (*EVAL_KEYS, "nonlinear_total")}
    for row in evals:
        for k in EVAL_KEYS:
            v = row.get(k, math.nan)
            cols[k].append(float(v) if v is not None else math.nan)
        cols["nonlinear_total"].append(float(sum(row.get("nonlinear", ()))))
    return cols


def heatmap_columns(evals: list[dict[str, Any]], units: list[int], eval_every: int) -> dict[str, list]:
    """Rectangles for the heatmap: x = step, y = layer index, fraction of the layer's units nonlinear."""
    cols: dict[str, list] = {"step": [], "layer": [], "fraction": [], "count": [], "width": []}
    for row in evals:
        for i, (n, total) in enumerate(zip(row.get("nonlinear", ()), units)):
            cols["step"].append(float(row["step"]) - eval_every / 2)
            cols["layer"].append(i)
            cols["fraction"].append(n / total if total else 0.0)
            cols["count"].append(int(n))
            cols["width"].append(float(eval_every))
    return cols


def step_columns(steps: list[tuple[int, float]], max_points: int = 200) -> dict[str, list]:
    """Per-step batch losses, thinned to at most ``max_points`` per flush (the last one always kept)."""
    if len(steps) > max_points:
        stride = math.ceil(len(steps) / max_points)
        steps = steps[::-1][::stride][::-1]
    return {"step": [float(s) for s, _ in steps], "loss": [float(v) for _, v in steps]}


def core_columns(names: list[str], units: list[int], nonlinear: list[int]) -> dict[str, list]:
    """The core-network bars: nonlinear width per gate layer (over its total width)."""
    return {"layer": [str(i) for i in range(len(names))], "name": list(names), "units": [int(u) for u in units],
            "nonlinear": [int(n) for n in nonlinear]}


def core_summary(row: dict[str, Any] | None, units: list[int]) -> str:
    """One line on the core network from the latest evaluation."""
    if not row:
        return "Core network: no evaluation yet."
    nl = row.get("nonlinear", [])
    layers = sum(1 for n in nl if n > 0)
    text = f"Core network: **{sum(nl)}/{sum(units)}** units nonlinear in **{layers}/{len(units)}** layers"
    apl_n, apl_u = row.get("apl_normalized", math.nan), row.get("apl_unnormalized", math.nan)
    if apl_n is not None and math.isfinite(apl_n):
        text += f"; effective depth (APL) **{apl_n:.2f}** normalized, **{apl_u:.2f}** unnormalized"
    return text + f" (step {row.get('step', 0)})."


def reproduce_code(config) -> str:
    """Python that reproduces a run from its ``TrainConfig`` (paste it into a notebook or a script)."""
    from nonlin_explorer.training import TrainConfig

    defaults = TrainConfig().to_dict()
    fields = config.to_dict()
    args = [f"    {k}={v!r}," for k, v in fields.items() if k in ("dataset", "model") or v != defaults.get(k)]
    return "\n".join([
        "from nonlin_explorer.training import TrainConfig, TrainingSession",
        "",
        "config = TrainConfig(",
        *args,
        ")",
        "session = TrainingSession(config)",
        "session.run()",
        "ds = session.to_xarray()",
    ])


def export_session(session, path) -> str:
    """Write the session's result set to netCDF; return the path written. ``OSError``/``ValueError`` on failure
    (checked before the result set is built, so nothing is lost and the session keeps running)."""
    from nonlin_explorer.results import check_writable, write_netcdf

    path = check_writable(str(path).strip() or "results.nc")
    lock = getattr(session, "_lock", None)  # a consistent snapshot: the training thread holds it per step
    with lock if lock is not None else contextlib.nullcontext():
        ds = session.to_xarray()
    return str(write_netcdf(ds, path))
