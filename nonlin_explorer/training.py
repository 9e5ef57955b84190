"""Training on a thread of its own, steerable while it runs: :class:`TrainingSession`.

A session holds a :class:`~nonlin_explorer.trainer.Trainer` (``session.trainer``: the run) and a :class:`Runner`
(``session.runner``: the thread that steps it, with its command queue), so it trains in the background while the
kernel and its widgets stay live. Hyperparameter changes (:meth:`~TrainingSession.set`) and gate toggles
(:meth:`~TrainingSession.toggle`) become typed commands, checked by the trainer, queued by the runner and applied
between steps, never racing a backward pass; each one is logged in ``session.events``. The session talks to both
through their public methods only, and reads the run's attributes from the trainer.

Schedules: ``"early"`` (prior on from step 0), ``"late"`` (plain ReLU training, then the prior switches on at
``switch_epoch``; gates start at alpha = 0 so the function is unchanged) and ``"custom"`` (switch at
``switch_epoch``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

from torch import nn

from nonlin_explorer.gates import LinearizableActivation, UnitState
from nonlin_explorer.lifecycle import stop_at_exit
from nonlin_explorer.threads import threads_for
from nonlin_explorer.trainer import (
    SCHEDULES,
    Command,
    PriorOn,
    SessionSnapshot,
    SetValues,
    Toggle,
    TrainConfig,
    Trainer,
)

__all__ = ["SCHEDULES", "STATUSES", "PriorOn", "Runner", "SetValues", "Toggle", "TrainConfig", "TrainingError",
           "TrainingSession", "load_checkpoint", "train"]

STATUSES = ("idle", "running", "paused", "stopped", "finished", "diverged", "error")


class TrainingError(RuntimeError):
    """Raised by :meth:`TrainingSession.wait` when the run ended in an error."""


class Runner:
    """Steps a :class:`~nonlin_explorer.trainer.Trainer` on a thread of its own (:meth:`start`) or in the calling
    thread (:meth:`run`), and queues the commands sent meanwhile.

    Each step runs inside ``trainer.locked()``, after the queued commands are applied, so readers on other threads see
    whole steps. A command submitted while the thread will still drain the queue waits there; otherwise (no thread, or
    the run ending) it is applied at once: a command is never dropped. The loop ends at the last step, on
    :meth:`stop`, when the trainer diverges (status "diverged") or on an error (status "error", kept in ``error``).
    """

    def __init__(self, trainer: Trainer):
        #: the run this runner steps
        self.trainer = trainer
        #: the exception that ended the last run (status "error"), or None
        self.error: BaseException | None = None
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        #: commands are queued only while the training thread will still drain them (see submit and _loop)
        self._submit_lock = threading.Lock()
        self._accepting = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._running = threading.Event()

    # -- commands -----------------------------------------------------------------------------------
    def submit(self, command: Command) -> None:
        """Queue ``command`` for the training thread, or apply it now when no thread will drain the queue again."""
        with self._submit_lock:
            if self._accepting:
                self._commands.put(command)
                return
        self.trainer.apply(command)

    def drain(self) -> None:
        """Apply the queued commands now, in order, between two steps."""
        if self._commands.empty():
            return
        with self.trainer.locked():
            while True:
                try:
                    command = self._commands.get_nowait()
                except queue.Empty:
                    return
                self.trainer.apply(command)

    def _stop_accepting(self) -> None:
        """From now on commands apply at once; the ones already queued are applied here (none is left behind)."""
        with self._submit_lock:
            self._accepting = False
        self.drain()

    # -- the loop -----------------------------------------------------------------------------------
    def _loop(self, progress: bool = False) -> None:
        tr = self.trainer
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=tr.total_steps, initial=tr.step, desc="training", unit="step")
        threads = threads_for(tr.step_work, tr.device)
        threads.__enter__()
        try:
            while tr.step < tr.total_steps and not self._stop.is_set() and tr.status != "diverged":
                if not self._running.is_set():
                    tr.set_status("paused")
                    while not self._running.wait(0.05):
                        if self._stop.is_set():
                            break
                        self.drain()
                    if self._stop.is_set():
                        break
                    tr.set_status("running")
                with tr.locked():
                    self.drain()
                    loss = tr.train_step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", nonlinear=tr.nonlinear_count(), refresh=False)
            self._stop_accepting()
            if tr.status == "diverged":
                return
            if self._stop.is_set():
                tr.set_status("stopped", tr.stop_reason or "stopped by the user")
            else:
                tr.set_status("finished", "reached the last step")
        except Exception as exc:
            self._stop_accepting()
            self.error = exc
            tr.set_status("error", f"{type(exc).__name__}: {exc}")
            if self._thread is None or threading.current_thread() is not self._thread:
                raise
            traceback.print_exc()
        finally:
            threads.__exit__(None, None, None)
            if bar is not None:
                bar.close()

    # -- control ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Train on a background thread (returns at once); resumes a paused one."""
        if self.is_alive:
            self.resume()
            return
        tr = self.trainer
        if tr.step >= tr.total_steps:
            raise RuntimeError("the run has reached its last step; call extend(epochs) or reset() first")
        self._stop.clear()
        self._running.set()
        self.error = None
        tr.set_status("running")
        with self._submit_lock:
            self._accepting = True
        stop_at_exit(self, lambda r: r.stop(wait=True, timeout=10))
        self._thread = threading.Thread(target=self._loop, name="nonlin-explorer-training", daemon=True)
        self._thread.start()

    def run(self, progress: bool = True) -> None:
        """Train to the end in the calling thread (blocking; Ctrl-C stops the run and keeps it)."""
        if self.is_alive:
            raise RuntimeError("the session is already training on its thread")
        self._stop.clear()
        self._running.set()
        self.error = None
        self.trainer.set_status("running")
        try:
            self._loop(progress=progress)
        except KeyboardInterrupt:
            self.trainer.set_status("stopped", f"interrupted at step {self.trainer.step}")

    def pause(self) -> None:
        """Hold the thread between two steps (queued commands still apply)."""
        self._running.clear()

    def resume(self) -> None:
        """Let a paused thread go on."""
        self._running.set()

    def stop(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """End the loop after the current step (and join the thread when ``wait``)."""
        self._stop.set()
        self._running.set()
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (at most ``timeout`` seconds)."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def is_alive(self) -> bool:
        """The training thread is running."""
        return self._thread is not None and self._thread.is_alive()


def _from_trainer(name: str, doc: str) -> property:
    """A read-only session attribute: its trainer's ``name``."""
    return property(attrgetter(f"trainer.{name}"), doc=doc)


class TrainingSession:
    """A training run with gates, on its own thread, steerable while it runs: a :class:`Trainer` and a
    :class:`Runner`.

    Build it like a :class:`~nonlin_explorer.trainer.Trainer` (a :class:`TrainConfig` or its fields, or your own
    ``model`` and ``data``); :meth:`start` trains in the background, :meth:`run` in the calling thread. The run's
    attributes (``model``, ``history``, ``step``, ...) are the trainer's, read-only here.
    """

    def __init__(self, config: TrainConfig | None = None, *, model: nn.Module | str | None = None, data=None,
                 track_paths: bool = True, **overrides: Any):
        #: the run: model, data, optimizer, history, events; its public methods are the session's only way in
        self.trainer = Trainer(config, model=model, data=data, track_paths=track_paths, **overrides)
        #: steps the trainer (on its thread or the caller's) and queues the commands sent meanwhile
        self.runner = Runner(self.trainer)

    # -- the run's attributes (the trainer's) -------------------------------------------------------
    config = _from_trainer("config", "The run's :class:`TrainConfig` (it follows :meth:`set`).")
    initial_config = _from_trainer("initial_config", "The config the run started from.")
    device = _from_trainer("device", "The torch device the run trains on.")
    data = _from_trainer("data", "The dataset (:class:`~nonlin_explorer.datasets.Dataset`).")
    model = _from_trainer("model", "The model being trained, with its gates.")
    example_input = _from_trainer("example_input", "Two training inputs on the device (what graphs and views trace).")
    gate_names = _from_trainer("gate_names", "The gates' names, in forward order.")
    metrics = _from_trainer("metrics", "Values recorded at each evaluation: name -> function of the model (a dict).")
    metrics_error = _from_trainer("metrics_error", "Why path length is not tracked (empty when it is).")
    track_paths = _from_trainer("track_paths", "Path length and nonlinear layers are recorded at each evaluation.")
    step_work = _from_trainer("step_work", "Multiply-adds of one training step (it picks the torch threads).")
    steps_per_epoch = _from_trainer("steps_per_epoch", "Optimizer steps in one epoch.")
    total_steps = _from_trainer("total_steps", "The step the run ends at.")
    switch_step = _from_trainer("switch_step", "The step the sparsity prior switches on at.")
    step = _from_trainer("step", "Optimizer steps taken.")
    epoch = _from_trainer("epoch", "Epochs trained (a float).")
    sparsity = _from_trainer("sparsity", "The prior's weight lambda (in force once ``prior_on``).")
    prior_on = _from_trainer("prior_on", "The sparsity prior is on.")
    lr = _from_trainer("lr", "The weights' learning rate in force.")
    status = _from_trainer("status", "One of :data:`STATUSES`.")
    stop_reason = _from_trainer("stop_reason", "Why the run stopped, diverged or failed.")
    history = _from_trainer("history", "One dict per evaluation, in order.")
    events = _from_trainer("events", "Commands and incidents, in order (\"Reproduce this run\" replays the commands).")
    user_given = _from_trainer("user_given", "Built around the caller's own model or data (no rebuild from config).")

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the last run (status "error"), or None."""
        return self.runner.error

    @property
    def gates(self) -> list[LinearizableActivation]:
        """The model's gates in forward order."""
        return self.trainer.gates

    # -- reading a consistent state from another thread -----------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[TrainingSession]:
        """Hold the run between two steps (see :meth:`Trainer.locked`); yields the session. Re-entrant."""
        with self.trainer.locked():
            yield self

    def snapshot(self) -> SessionSnapshot:
        """Progress, prior and every gate's slopes and states at one moment (:meth:`Trainer.snapshot`)."""
        return self.trainer.snapshot()

    def subscribe(self, callback: Callable[[str, dict], None]) -> Callable[[], None]:
        """Call ``callback(kind, payload)`` on the training thread at every event (:meth:`Trainer.subscribe`)."""
        return self.trainer.subscribe(callback)

    # -- commands: checked now, applied between two steps ------------------------------------------------
    def set(self, **values) -> None:
        """Change hyperparameters (``sparsity``, ``lr``, ``slope_lr``, ``weight_decay``, ``eval_every``): checked now
        (``ValueError`` for a bad one, and nothing changes), applied before the next step."""
        self.runner.submit(self.trainer.set_command(**values))

    def toggle(self, layer: str | int, units, state: int | UnitState) -> None:
        """Set ``units`` of gate ``layer`` (name or index) to ``state`` (free/linear/nonlinear) before the next step."""
        self.runner.submit(self.trainer.toggle_command(layer, units, state))

    def switch_prior_on(self) -> None:
        """Switch the sparsity prior on before the next step (the "late" schedule's switch, by hand)."""
        self.runner.submit(PriorOn())

    # -- stepping by hand and read-outs (the trainer's) ------------------------------------------------
    def train_step(self) -> float:
        """One optimizer step in the calling thread, queued commands first; the batch's cross-entropy."""
        with self.trainer.locked():
            self.runner.drain()
            return self.trainer.train_step()

    def evaluate(self, split: str = "test", batch_size: int = 1024) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on ``split`` (:meth:`Trainer.evaluate`)."""
        return self.trainer.evaluate(split, batch_size)

    def record(self) -> dict[str, Any]:
        """Evaluate now and append the entry to ``history`` (:meth:`Trainer.record`)."""
        with self.trainer.locked():
            return self.trainer.record()

    def extend(self, epochs: float) -> None:
        """Train ``epochs`` more epochs on the next start."""
        self.trainer.extend(epochs)

    def nonlinear_count(self) -> int:
        """Units that are nonlinear now (1 - alpha above ``config.tol``)."""
        return self.trainer.nonlinear_count()

    def to_xarray(self, max_slope_values: int = 2_000_000):
        """The run as an ``xr.Dataset``, read between two steps (:meth:`Trainer.to_xarray`)."""
        return self.trainer.to_xarray(max_slope_values)

    def save(self, path) -> Path:
        """Checkpoint: everything needed to continue the run (:meth:`Trainer.save`); the path written."""
        return self.trainer.save(path)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run (:meth:`Trainer.state_dict`)."""
        return self.trainer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (of a run with the same config)."""
        self.trainer.load_state_dict(state)

    # -- control (the runner's) ---------------------------------------------------------------------------
    def start(self) -> TrainingSession:
        """Train on a background thread (returns at once; resumes a paused run)."""
        self.runner.start()
        return self

    def run(self, progress: bool = True) -> TrainingSession:
        """Train to the end in the calling thread (blocking), with a tqdm bar."""
        self.runner.run(progress=progress)
        return self

    def pause(self) -> None:
        """Hold the run between two steps (commands still apply)."""
        self.runner.pause()

    def resume(self) -> None:
        """Go on after :meth:`pause`."""
        self.runner.resume()

    def stop(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop after the current step; the model keeps everything trained so far."""
        self.runner.stop(wait=wait, timeout=timeout)

    def wait(self, timeout: float | None = None, raise_errors: bool = True) -> TrainingSession:
        """Block until the background run ends (or ``timeout`` seconds pass); :class:`TrainingError` if it failed."""
        self.runner.join(timeout)
        if raise_errors and self.status == "error" and self.runner.error is not None:
            raise TrainingError(self.stop_reason) from self.runner.error
        return self

    @property
    def is_alive(self) -> bool:
        """The training thread is running."""
        return self.runner.is_alive

    def reset(self) -> None:
        """Stop, then rebuild model, optimizer and history from the config and seed (subscribers stay)."""
        self.stop()
        self.trainer.reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.trainer!r})"


def load_checkpoint(path, device: str | None = None) -> TrainingSession:
    """Rebuild a :class:`TrainingSession` from a checkpoint (:meth:`TrainingSession.save`), ready to continue."""
    from nonlin_explorer.results import read_checkpoint

    state = read_checkpoint(path)
    config = TrainConfig(**state["config"])
    if device is not None:
        config.device = device
    session = TrainingSession(config)
    session.load_state_dict(state)
    return session


def train(config: TrainConfig | None = None, *, progress: bool = True, **kwargs) -> TrainingSession:
    """Train to the end in the calling thread and return the session (blocking)."""
    return TrainingSession(config, **kwargs).run(progress=progress)

