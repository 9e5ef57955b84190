"""The dashboard's building blocks without a UI: buffering, coalescing, input parsing, export, code, replay.

:class:`LiveBuffer` is what a :class:`~nonlin_explorer.training.TrainingSession` calls on its training thread:
each event is a list append under a lock (microseconds). The UI side drains it at its own rate and turns the
drained rows into column dicts (:func:`eval_columns`, :func:`heatmap_columns`, ...) for one
``ColumnDataSource.stream`` call per plot: however fast training runs, the browser gets at most ``rate``
updates a second.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nonlin_explorer.validation import parse_number

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


def step_columns(steps: list[tuple[int, float]], max_points: int = 200) -> dict[str, list]:
    """Per-step batch losses, thinned to at most ``max_points`` per flush (the last one always kept)."""
    if len(steps) > max_points:
        stride = math.ceil(len(steps) / max_points)
        steps = steps[::-1][::stride][::-1]
    return {"step": [float(s) for s, _ in steps], "loss": [float(v) for _, v in steps]}


def reproduce_code(config, events: list[dict[str, Any]] | tuple = ()) -> str:
    """Python that reproduces a run: its starting ``TrainConfig`` and, when there were live changes (``events`` as
    logged in ``session.events``), the same changes applied at the same steps."""
    from nonlin_explorer.training import TrainConfig

    defaults = TrainConfig().to_dict()
    fields = config.to_dict()
    args = [f"    {k}={v!r}," for k, v in fields.items() if k in ("dataset", "model") or v != defaults.get(k)]
    head = ["from nonlin_explorer.training import TrainConfig, TrainingSession", "", "config = TrainConfig(", *args,
            ")", "session = TrainingSession(config)"]
    changes: dict[int, list[str]] = {}
    for e in events:
        kind, step = e.get("kind"), int(e.get("step", 0))
        if kind == "set":
            call = f"session.set({e['key']}={e['value']!r})"
        elif kind == "toggle":
            call = f"session.toggle({e['layer']!r}, {e['units']!r}, UnitState.{str(e['state']).upper()})"
        elif kind == "prior_on":
            call = "session.switch_prior_on()"
        else:
            continue
        changes.setdefault(step, []).append(call)
    if not changes:
        return "\n".join([*head, "session.run()", "ds = session.to_xarray()"])
    lines = [*head, "# The live changes of this run, applied at the same steps:"]
    lines[0] = "from nonlin_explorer.gates import UnitState\n" + lines[0]
    body = ["while session.step < session.total_steps:"]
    for k, (step, calls) in enumerate(sorted(changes.items())):
        body.append(f"    {'if' if k == 0 else 'elif'} session.step == {step}:")
        body += [f"        {c}" for c in calls]
    body += ["    session.train_step()", "ds = session.to_xarray()"]
    return "\n".join(lines + body)


def export_session(session, path, *, exists: str = "replace") -> str:
    """Write the session's result set to netCDF; return the path written. ``OSError``/``ValueError`` on failure
    (checked before the result set is built, so nothing is lost and the session keeps running). ``exists``: as in
    :func:`~nonlin_explorer.results.write_netcdf` (pages use ``"rename"``: an existing file is never replaced)."""
    from nonlin_explorer.results import check_writable, write_netcdf

    path = check_writable(str(path).strip() or "results.nc")
    with session.locked():  # between two steps
        ds = session.to_xarray()
    return str(write_netcdf(ds, path, exists=exists))


#: Replay speeds offered by the dashboard (times real time; evaluations per second for untimed recordings).
REPLAY_SPEEDS: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)


class ReplayClock:
    """A recording's steps and evaluations on a clock: :meth:`feed` hands everything due to a buffer.

    No thread: the dashboard calls :meth:`feed` from its periodic callback with the time that passed. An event's
    time is its recorded wall-clock time (steps interpolated between evaluations); ``speed`` multiplies it. A
    recording without usable times plays one evaluation per second times ``speed``.
    """

    def __init__(self, evals: list[dict[str, Any]], steps: list[tuple[int, float]], speed: float = 1.0):
        import numpy as np

        self.evals = evals
        self.speed = float(parse_number(speed, "speed", low=1e-6))
        eval_steps = np.array([float(e["step"]) for e in evals])
        times = np.array([float(e.get("time", math.nan)) for e in evals])
        timed = len(evals) > 1 and np.all(np.isfinite(times)) and np.all(np.diff(times) >= 0) \
            and times[-1] > times[0] and np.all(np.diff(eval_steps) > 0)
        if timed:  # seconds since step 0 (extrapolated back from the first two evaluations)
            rate = (eval_steps[-1] - eval_steps[0]) / (times[-1] - times[0])
            t = times - times[0] + eval_steps[0] / rate
        else:
            t = np.arange(1, len(evals) + 1, dtype=float)
        self.timed = bool(timed)
        events: list[tuple[float, int, int, str, Any]] = []
        for i, e in enumerate(evals):
            events.append((float(t[i]), int(e["step"]), 1, "eval", i))
        if len(steps):
            s = np.array([float(p[0]) for p in steps])
            st = np.interp(s, np.concatenate([[0.0], eval_steps]), np.concatenate([[0.0], t])) if len(evals) \
                else s
            events += [(float(st[k]), int(p[0]), 0, "step", p) for k, p in enumerate(steps)]
        events.sort(key=lambda ev: (ev[1], ev[2], ev[0]))  # step order; a step before its evaluation
        self._events = events
        self._times = [ev[0] for ev in events]
        for k in range(1, len(self._times)):  # monotone in step order
            self._times[k] = max(self._times[k], self._times[k - 1])
        self._eval_pos = [k for k, ev in enumerate(events) if ev[3] == "eval"]
        self.cursor = 0  # events before it have been fed
        self.position = 0.0  # replay time (recorded seconds)
        self.playing = False

    @property
    def duration(self) -> float:
        return self._times[-1] if self._times else 0.0

    @property
    def finished(self) -> bool:
        return self.cursor >= len(self._events)

    @property
    def eval_index(self) -> int:
        """Index of the last evaluation fed (-1: none yet)."""
        import bisect

        return bisect.bisect_left(self._eval_pos, self.cursor) - 1

    def _emit(self, buffer, end: int) -> int:
        n = 0
        for _, _, _, kind, item in self._events[self.cursor:end]:
            if kind == "step":
                buffer("step", {"step": item[0], "loss": item[1]})
            else:
                buffer("eval", self.evals[item])
            n += 1
        self.cursor = max(self.cursor, end)
        return n

    def feed(self, buffer, seconds: float) -> int:
        """Advance ``seconds`` of wall time (if playing) and send what became due; how many events were sent.
        Stops playing at the end."""
        import bisect

        if not self.playing or self.finished:
            self.playing = False
            return 0
        self.position += max(0.0, seconds) * self.speed
        n = self._emit(buffer, bisect.bisect_right(self._times, self.position))
        if self.finished:
            self.playing = False
        return n

    def seek(self, index: int) -> tuple[list[tuple[int, float]], list[dict[str, Any]]]:
        """Jump to just after evaluation ``index`` (-1: the start); returns the steps and evaluations up to it
        (to draw at once)."""
        index = int(parse_number(index, "evaluation", low=-1, high=len(self.evals) - 1, integer=True))
        self.cursor = self._eval_pos[index] + 1 if index >= 0 else 0
        self.position = self._times[self.cursor - 1] if self.cursor else 0.0
        done = self._events[:self.cursor]
        return ([ev[4] for ev in done if ev[3] == "step"], [self.evals[ev[4]] for ev in done if ev[3] == "eval"])
