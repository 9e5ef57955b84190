"""Training on a thread of its own, steerable while it runs: :class:`TrainingSession`.

A session is a :class:`~nonlin_explorer.trainer.Trainer` with a runner: it trains on a background thread so the
kernel and its widgets stay live. Hyperparameter changes (:meth:`~TrainingSession.set`) and gate toggles
(:meth:`~TrainingSession.toggle`) become typed commands, queued and applied between steps, never racing a backward
pass; each one is logged in ``session.events``. Schedules: ``"early"`` (prior on from step 0), ``"late"`` (plain
ReLU training, then the prior switches on at ``switch_epoch``; gates start at alpha = 0 so the function is unchanged)
and ``"custom"`` (switch at ``switch_epoch``).
"""

from __future__ import annotations

import queue
import threading
import traceback
from typing import Any

from torch import nn

from nonlin_explorer.lifecycle import stop_at_exit
from nonlin_explorer.threads import threads_for
from nonlin_explorer.trainer import (
    SCHEDULES,
    Command,
    PriorOn,
    SetValues,
    Toggle,
    TrainConfig,
    Trainer,
)

__all__ = ["SCHEDULES", "STATUSES", "PriorOn", "SetValues", "Toggle", "TrainConfig", "TrainingError",
           "TrainingSession", "load_checkpoint", "train"]

STATUSES = ("idle", "running", "paused", "stopped", "finished", "diverged", "error")


class TrainingError(RuntimeError):
    """Raised by :meth:`TrainingSession.wait` when the run ended in an error."""


class TrainingSession(Trainer):
    """A training run with gates, on its own thread, steerable while it runs.

    Build it like a :class:`~nonlin_explorer.trainer.Trainer` (a :class:`TrainConfig` or its fields, or your own
    ``model`` and ``data``); :meth:`start` trains in the background, :meth:`run` in the calling thread.
    """

    def __init__(self, config: TrainConfig | None = None, *, model: nn.Module | str | None = None, data=None,
                 track_paths: bool = True, **overrides: Any):
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        #: Commands are queued only while the training thread will still drain them (see _submit and _loop).
        self._submit_lock = threading.Lock()
        self._accepting = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._running = threading.Event()
        super().__init__(config, model=model, data=data, track_paths=track_paths, **overrides)

    # -- commands: queued while the thread runs -----------------------------------------------------
    def _submit(self, command: Command) -> None:
        """Queue ``command`` for the training thread, or apply it now when no thread will drain the queue again:
        a command is always applied, never dropped (even one sent while a run ends)."""
        with self._submit_lock:
            if self._accepting:
                self._commands.put(command)
                return
        with self._lock:
            self.apply(command)

    def _drain(self) -> None:
        if self._commands.empty():
            return
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self.apply(command)

    def _stop_accepting(self) -> None:
        """From now on commands apply at once; the ones already queued are applied here (none is left behind)."""
        with self._submit_lock:
            self._accepting = False
        with self._lock:
            self._drain()

    def _halt(self) -> None:
        self._stop.set()

    # -- the loop ---------------------------------------------------------------------------------
    def _loop(self, progress: bool = False) -> None:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc="training", unit="step")
        threads = threads_for(self.step_work, self.device)
        threads.__enter__()
        try:
            while self.step < self.total_steps and not self._stop.is_set():
                if not self._running.is_set():
                    self._set_status("paused")
                    while not self._running.wait(0.05):
                        if self._stop.is_set():
                            break
                        with self._lock:
                            self._drain()
                    if self._stop.is_set():
                        break
                    self._set_status("running")
                with self._lock:
                    loss = self.train_step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", nonlinear=self.nonlinear_count(), refresh=False)
            self._stop_accepting()
            if self.status == "diverged":
                return
            if self._stop.is_set():
                self._set_status("stopped", self.stop_reason or "stopped by the user")
            else:
                self._set_status("finished", "reached the last step")
        except Exception as exc:
            self._stop_accepting()
            self.error = exc
            self._set_status("error", f"{type(exc).__name__}: {exc}")
            if self._thread is None or threading.current_thread() is not self._thread:
                raise
            traceback.print_exc()
        finally:
            threads.__exit__(None, None, None)
            if bar is not None:
                bar.close()

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> TrainingSession:
        """Train on a background thread (returns at once)."""
        if self._thread is not None and self._thread.is_alive():
            self.resume()
            return self
        if self.step >= self.total_steps:
            raise RuntimeError("the run has reached its last step; call extend(epochs) or reset() first")
        self._stop.clear()
        self._running.set()
        self.error = None
        self._set_status("running")
        with self._submit_lock:
            self._accepting = True
        stop_at_exit(self, lambda s: s.stop(wait=True, timeout=10))
        self._thread = threading.Thread(target=self._loop, name="nonlin-explorer-training", daemon=True)
        self._thread.start()
        return self

    def run(self, progress: bool = True) -> TrainingSession:
        """Train to the end in the calling thread (blocking), with a tqdm bar."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the session is already training on its thread")
        self._stop.clear()
        self._running.set()
        self.error = None
        self._set_status("running")
        try:
            self._loop(progress=progress)
        except KeyboardInterrupt:
            self._set_status("stopped", f"interrupted at step {self.step}")
        return self

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop after the current step; the model keeps everything trained so far."""
        self._stop.set()
        self._running.set()
        if wait:
            self.wait(timeout, raise_errors=False)

    def wait(self, timeout: float | None = None, raise_errors: bool = True) -> TrainingSession:
        """Block until the background run ends (or ``timeout`` seconds pass)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if raise_errors and self.status == "error" and self.error is not None:
            raise TrainingError(self.stop_reason) from self.error
        return self

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def reset(self) -> None:
        """Stop, then rebuild model, optimizer and history from the config and seed."""
        self.stop()
        if self._user_model is not None:
            raise RuntimeError("reset() rebuilds from the config; this session was given its own model")
        self._build()
        self._set_status("idle")


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

