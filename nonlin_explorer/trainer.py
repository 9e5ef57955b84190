"""One training run without a thread: the model, its data, the optimizer and the sparsity prior, step by step.

:class:`Trainer` is the engine: :meth:`~Trainer.train_step` (a step under the prior ``lambda * sum(1 - alpha)``),
:meth:`~Trainer.evaluate`, :meth:`~Trainer.record` (an evaluation in ``history``), typed commands applied between
steps (:class:`SetValues`, :class:`Toggle`, :class:`PriorOn`), events to subscribers, and ``state_dict`` /
``load_state_dict`` for checkpoints. Its public methods are the whole contract: :class:`~nonlin_explorer.training.
TrainingSession` holds a Trainer and a runner that steps it on a thread of its own (queueing commands built by
:meth:`~Trainer.set_command` and :meth:`~Trainer.toggle_command`); anything that trains in the calling thread (the
early/late comparison) uses a Trainer directly.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nonlin_explorer import datasets as _datasets
from nonlin_explorer import models as _models
from nonlin_explorer import seeding
from nonlin_explorer.devices import pick_device
from nonlin_explorer.gates import (
    DEFAULT_TOL,
    GATE_INDEX,
    LinearizableActivation,
    UnitState,
    clamp_slopes_,
    gate_dict,
    gates,
    unit_state,
)
from nonlin_explorer.gates import sparsity_penalty as _penalty
from nonlin_explorer.linearize import index_gates, linearize
from nonlin_explorer.plumbing import eval_mode, run_model
from nonlin_explorer.threads import forward_flops
from nonlin_explorer.trace_guard import forward_pass
from nonlin_explorer.validation import check_choice, check_int, check_mapping, check_name, check_number, check_seed

__all__ = ["MAX_RATE", "PriorOn", "SCHEDULES", "SLOPE_OPTIMIZERS", "SessionSnapshot", "SetValues", "Toggle",
           "TrainConfig", "Trainer", "make_optimizer"]

SCHEDULES = ("early", "late", "custom")
#: How the slopes are trained. ``"adam"`` (default, as in the paper's code): Adam normalizes each slope's gradient,
#: so a free unit drifts to linear at about ``slope_lr`` per step whatever lambda is, once the prior dominates its
#: gradient: lambda then sets *which* units go, hardly *how fast*. ``"sgd"``: plain gradient descent, so the prior
#: moves a free slope by ``slope_lr * lambda`` per step and lambda is a prior weight in the usual sense (use a larger
#: ``slope_lr``, e.g. 10-100). tests/test_training.py measures both.
SLOPE_OPTIMIZERS = ("adam", "sgd")
#: The largest learning rate, slope learning rate, weight decay or lambda a run takes. The optimizer hands these to
#: float32 arithmetic (largest value 3.4e38), and Adam's first step divides the rate by 1 - beta1 = 0.1: a bound far
#: below that keeps every such product finite, so a huge value makes the run diverge (recorded), never crash.
MAX_RATE = 1e30


def make_optimizer(weights: list[torch.Tensor], slope_params: list[torch.Tensor], *, lr: float, slope_lr: float,
                   weight_decay: float = 0.0, slopes: str = "adam") -> torch.optim.Optimizer:
    """The trainer's optimizer: one Adam, two groups, the weights (group 0, ``lr``, ``weight_decay``) and the gates'
    slopes (group 1, ``slope_lr``, no weight decay; Adam, or plain SGD with ``slopes="sgd"``).

    The weights' group runs torch's ``foreach`` kernels (one C++ loop per update where torch's CPU default is a Python
    loop over tensors: the same element-wise arithmetic, so the same numbers). The slopes' Adam group runs torch's
    fused kernel where it applies (floating point, one CPU or CUDA device): one call for every gate where ``foreach``
    runs a dozen small operations per gate, about 3 % of an MLP 4x256's step (docs/benchmarks.md); its numbers equal
    the ``foreach`` ones up to rounding (parameters within 3e-7 after 3 epochs of an MLP)."""
    optimizer = _AdamWithSGDSlopes if slopes == "sgd" else torch.optim.Adam
    devices = {p.device for p in slope_params}
    fused = (optimizer is torch.optim.Adam and len(devices) == 1 and next(iter(devices)).type in ("cpu", "cuda")
             and all(p.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64) for p in slope_params))
    return optimizer([dict(params=weights, lr=lr, weight_decay=weight_decay, foreach=True),
                      dict(params=slope_params, lr=slope_lr, weight_decay=0.0,
                           **(dict(fused=True) if fused else dict(foreach=True)))])


class _AdamWithSGDSlopes(torch.optim.Adam):
    """Adam on the weights (group 0) and plain SGD on the slopes (group 1), one optimizer for state and AMP."""

    @torch.no_grad()
    def step(self, closure=None):
        slopes = self.param_groups[1]
        params = slopes["params"]
        slopes["params"] = []  # Adam skips the slopes...
        try:
            loss = super().step(closure)
        finally:
            slopes["params"] = params
        grads = [p.grad for p in params if p.grad is not None]
        if grads:  # ...which take one plain gradient step
            torch._foreach_add_([p for p in params if p.grad is not None], grads, alpha=-slopes["lr"])
        return loss


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in the result set's provenance."""

    dataset: str = "mnist1d"
    model: str = "mlp"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: float = 10.0
    batch_size: int = 128
    lr: float = 1e-3
    slope_lr: float = 1e-2
    slope_optimizer: str = "adam"
    weight_decay: float = 0.0
    sparsity: float = 0.0
    schedule: str = "early"
    switch_epoch: float | None = None
    eval_every: int = 50
    seed: int = 0
    device: str | None = None
    tol: float = DEFAULT_TOL
    amp: bool = True

    def validate(self) -> TrainConfig:
        """Check every field (``ValueError`` naming it, what was given and what is allowed) and normalize it in place:
        numbers become plain floats and ints (numpy scalars and one-element tensors are accepted, bools are not)."""
        self.epochs = check_number("epochs", self.epochs, low=0.0, low_open=True)
        self.lr = check_number("lr", self.lr, low=0.0, low_open=True, high=MAX_RATE)
        self.slope_lr = check_number("slope_lr", self.slope_lr, low=0.0, high=MAX_RATE)
        self.weight_decay = check_number("weight_decay", self.weight_decay, low=0.0, high=MAX_RATE)
        self.sparsity = check_number("sparsity", self.sparsity, low=0.0, high=MAX_RATE)
        self.tol = check_number("tol", self.tol, low=0.0)
        self.batch_size = _positive_int("batch_size", self.batch_size)
        self.eval_every = _positive_int("eval_every", self.eval_every)
        self.seed = check_seed(self.seed)
        self.model_kwargs = check_mapping("model_kwargs", self.model_kwargs)
        self.dataset_kwargs = check_mapping("dataset_kwargs", self.dataset_kwargs)
        if self.slope_optimizer not in SLOPE_OPTIMIZERS:
            raise ValueError(f"unknown slope_optimizer {self.slope_optimizer!r}; valid: {', '.join(SLOPE_OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid schedules: {', '.join(SCHEDULES)}")
        if self.schedule == "custom" and self.switch_epoch is None:
            raise ValueError("schedule 'custom' needs switch_epoch (when the prior switches on)")
        if self.switch_epoch is not None:
            self.switch_epoch = check_number("switch_epoch", self.switch_epoch, low=0.0)
        if isinstance(self.dataset, str) and self.dataset.lower() not in _datasets.DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; valid datasets: {', '.join(_datasets.DATASETS)}")
        self.model = check_choice("model", self.model, _models.MODELS)
        return self

    def prior_switch_epoch(self) -> float:
        if self.schedule == "early":
            return 0.0
        if self.switch_epoch is not None:
            return float(self.switch_epoch)
        return self.epochs / 2.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _positive_int(name: str, value) -> int:
    """A count of at least 1 (batch size, evaluation interval), or ``ValueError`` saying so."""
    try:
        return check_int(name, value, low=1)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None


#: What :meth:`Trainer.set` accepts, with each value's range.
_SETTABLE = {
    "sparsity": dict(low=0.0, high=MAX_RATE),
    "lr": dict(low=0.0, low_open=True, high=MAX_RATE),
    "slope_lr": dict(low=0.0, high=MAX_RATE),
    "weight_decay": dict(low=0.0, high=MAX_RATE),
    "eval_every": dict(),  # a positive integer
}


@dataclass(frozen=True)
class SetValues:
    """Change hyperparameters between steps (checked values: see :meth:`Trainer.set`)."""

    values: dict[str, float]


@dataclass(frozen=True)
class Toggle:
    """Set units of one gate (by name) to a state."""

    layer: str
    units: Any
    state: UnitState


@dataclass(frozen=True)
class PriorOn:
    """Switch the sparsity prior on (the late schedule's switch, by hand)."""


Command = SetValues | Toggle | PriorOn



@dataclass(frozen=True)
class SessionSnapshot:
    """One consistent view of a run, read between two steps (:meth:`Trainer.snapshot`): progress, the prior, and per
    gate (forward order) its name, effective slopes (1 linear, 0 nonlinear, alpha clamped to [0, 1] when free) and
    unit states (:class:`~nonlin_explorer.gates.UnitState` values). Tensors are CPU copies: the run goes on."""

    step: int
    epoch: float
    status: str
    stop_reason: str
    sparsity: float
    prior_on: bool
    gate_names: tuple[str, ...]
    slopes: tuple[torch.Tensor, ...]
    states: tuple[torch.Tensor, ...]


class _Held:
    """A re-entrant lock as a ``with`` block that hands out ``value`` (a runner takes one per step: kept cheap)."""

    __slots__ = ("_mutex", "_value")

    def __init__(self, mutex: threading.RLock, value: Any):
        self._mutex, self._value = mutex, value

    def __enter__(self) -> Any:
        self._mutex.acquire()
        return self._value

    def __exit__(self, *exc_info) -> None:
        self._mutex.release()


class Trainer:
    """A training run with gates, stepped by the caller (no thread; see TrainingSession for one).

    Build it from a :class:`TrainConfig` (or its fields as keywords), or hand it your own ``model`` (linearized
    here if it has no gates yet) and ``data`` (a :class:`~nonlin_explorer.datasets.Dataset` or anything
    :func:`~nonlin_explorer.datasets.load` accepts). ``set``, ``toggle`` and ``switch_prior_on`` check their
    arguments and apply at once, between two steps (a session queues the same checked commands for its thread).
    """

    def __init__(self, config: TrainConfig | None = None, *, model: nn.Module | str | None = None, data=None,
                 track_paths: bool = True, **overrides):
        if isinstance(model, str):  # a model name is a config field; a module is the model itself
            overrides["model"], model = model, None
        elif model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a model name ({', '.join(_models.MODELS)}) or an nn.Module, "
                            f"got {type(model).__name__} {model!r:.60}")
        if isinstance(data, str):
            overrides["dataset"], data = data, None
        config = dataclasses.replace(config or TrainConfig(), **overrides)
        if data is not None:
            config.dataset = getattr(data, "name", "user")
        self.config = config.validate() if data is None else _validate_except_dataset(config)
        self.device = pick_device(config.device)
        self._user_model = model
        self._user_data = data
        self._listeners: list[Callable[[str, dict], None]] = []
        self.metrics: dict[str, Callable[[nn.Module], float]] = {}
        #: APL and nonlinear layers are recorded at every evaluation (one graph trace at build)
        self.track_paths = track_paths
        #: held for each step (and by :meth:`locked`): readers on other threads see no half-done step
        self._lock = threading.RLock()
        self._build()

    # -- construction -----------------------------------------------------------------------------

    def _track_paths(self) -> None:
        """Record average path length (both normalizations) and nonlinear layers at every evaluation."""
        from nonlin_explorer.graph import UnsupportedOperationError
        from nonlin_explorer.paths import path_metrics

        try:
            self.metrics.update(path_metrics(self.model, self.example_input, tol=self.config.tol))
        except UnsupportedOperationError as exc:  # a model the graph cannot read still trains
            self.metrics_error = f"path length not tracked: {exc}"

    def _build(self) -> None:
        """Build data, model and optimizer from the config, drawing initial weights from the run's seed alone
        (:mod:`seeding`)."""
        with seeding.seeded(self.config.seed):
            self._build_seeded()
            # a model that draws in training (dropout) goes on from where its build left the seeded stream
            cpu_draws = self.device.type == "cpu" and seeding.draws_in_training(self.model)
            self._train_rng = seeding.global_state() if cpu_draws else None
            if self.device.type == "cuda":  # dropout on the GPU draws from its generator: seeded, not per run
                torch.cuda.manual_seed(self.config.seed)

    def _build_seeded(self) -> None:
        cfg = self.config
        #: The config this run started from (``config`` follows live changes; events say when they came).
        self.initial_config = copy.deepcopy(cfg)
        self.data = _datasets.load(self._user_data if self._user_data is not None else cfg.dataset,
                                   **cfg.dataset_kwargs)
        if self._user_model is not None:
            model = self._user_model
            if not gates(model):
                model = linearize(model, self.data.x_train[:2])
            elif not getattr(model, GATE_INDEX, None):
                index_gates(model, self.data.x_train[:2])  # gates put in by hand: name them, in forward order
        else:
            kwargs = _models.kwargs_for(cfg.model, self.data, cfg.model_kwargs)
            # counted on the meta device first: a size that would not fit is refused before anything is allocated
            _models.check_fits_in_memory(cfg.model, self.data.input_shape, self.data.num_classes, **kwargs)
            try:
                model = _models.build(cfg.model, self.data.input_shape, self.data.num_classes, **kwargs)
            except TypeError as exc:
                raise ValueError(f"model {cfg.model!r} does not take these settings: {exc}") from exc
            _check_fits(model, self.data)
            model = linearize(model, self.data.x_train[:2])
        self.model = model.to(self.device)
        self.gate_names = [g.name for g in gates(self.model)]
        if not self.gate_names:
            raise ValueError("the model has no ReLU units to linearize")
        self.example_input = self.data.x_train[:2].to(self.device)
        # Multiply-adds of one training step (forward ~ flops / 2 per sample; backward twice the forward): small
        # steps run on one torch thread (nonlin_explorer.threads).
        self.step_work = forward_flops(self.model, self.example_input) / 2 / 2 * cfg.batch_size * 3
        self.metrics_error = ""
        if self.track_paths:
            self._track_paths()
        self._x_train, self._y_train = self.data.x_train.to(self.device), self.data.y_train.to(self.device)
        self._x_test, self._y_test = self.data.x_test.to(self.device), self.data.y_test.to(self.device)
        self.steps_per_epoch = max(1, math.ceil(len(self._x_train) / cfg.batch_size))
        self.total_steps = max(1, int(round(cfg.epochs * self.steps_per_epoch)))
        self.switch_step = int(round(cfg.prior_switch_epoch() * self.steps_per_epoch))
        self._gates = gates(self.model)
        slope_params = [g.alpha for g in self._gates]
        slope_ids = {id(p) for p in slope_params}
        weights = [p for p in self.model.parameters() if id(p) not in slope_ids]
        self._opt = make_optimizer(weights, slope_params, lr=cfg.lr, slope_lr=cfg.slope_lr,
                                   weight_decay=cfg.weight_decay, slopes=cfg.slope_optimizer)
        #: the data order: this generator draws each epoch's permutation (``_perm``); the step gives the batch in it
        self._generator = torch.Generator().manual_seed(cfg.seed)
        self._perm = torch.empty(0, dtype=torch.long)
        #: the generator's state before ``_perm`` was drawn: a checkpoint redraws this epoch's order from it
        self._order_state = self._generator.get_state()
        #: why the data order restarted on loading a checkpoint ("": it did not); the next permutation drawn warns
        self._order_restarted = ""
        self.step = 0
        self.sparsity = float(cfg.sparsity)
        self.prior_on = self.switch_step <= 0
        self._set_slopes_trainable(self.prior_on)
        self.status = "idle"
        self.stop_reason = ""
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._running_loss = self._running_correct = self._running_count = 0.0
        self._good_state = self._snapshot()
        self._scaler = None
        self._autocast_dtype = None
        if self.device.type == "cuda" and cfg.amp:
            bf16 = torch.cuda.is_bf16_supported()
            self._autocast_dtype = torch.bfloat16 if bf16 else torch.float16
            if not bf16:
                self._scaler = torch.amp.GradScaler("cuda")

    @property
    def epoch(self) -> float:
        return self.step / self.steps_per_epoch

    @property
    def lr(self) -> float:
        """The weights' learning rate in force."""
        return float(self._opt.param_groups[0]["lr"])

    @property
    def gates(self) -> list[LinearizableActivation]:
        """The model's gates in forward order."""
        return list(self._gates)

    def locked(self) -> _Held:
        """Hold the run between two steps: the model, gates, history and counters read (or a forward pass run) inside
        the ``with`` block (which gets the trainer) form one consistent state. Training waits meanwhile, so keep the
        block short. Re-entrant."""
        return _Held(self._lock, self)

    def snapshot(self) -> SessionSnapshot:
        """Progress, prior and every gate's effective slopes and states, read at one moment (see :meth:`locked`)."""
        with self._lock, torch.no_grad():
            gs = list(self._gates)
            states = tuple(g.state.detach().reshape(-1).cpu().clone() for g in gs)
            alphas = [g.alpha.detach().reshape(-1).float().cpu() for g in gs]
            slopes = tuple(torch.where(st == UnitState.FREE, a.clamp(0.0, 1.0), (st == UnitState.LINEAR).float())
                           for a, st in zip(alphas, states))
            return SessionSnapshot(step=int(self.step), epoch=float(self.epoch), status=str(self.status),
                                   stop_reason=str(self.stop_reason), sparsity=float(self.sparsity),
                                   prior_on=bool(self.prior_on), gate_names=tuple(g.name for g in gs),
                                   slopes=slopes, states=states)

    @property
    def user_given(self) -> bool:
        """Built around the caller's own model or data (so it cannot be rebuilt from ``config`` alone)."""
        return self._user_model is not None or self._user_data is not None

    def set_status(self, status: str, reason: str = "") -> None:
        """Set ``status`` (and ``stop_reason`` when ``reason`` is given) and tell the subscribers ("status" event)."""
        self.status = status
        if reason:
            self.stop_reason = reason
        self._emit("status", {"status": status, "reason": reason, "step": self.step})

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[str, dict], None]) -> Callable[[], None]:
        """Call ``callback(kind, payload)`` on every event ("step", "eval", "command", "status").

        Callbacks run on the training thread: keep them cheap (throttle UI work). Returns an unsubscribe
        function.
        """
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    @property
    def subscribers(self) -> tuple[Callable[[str, dict], None], ...]:
        """The callbacks subscribed now (a copy)."""
        return tuple(self._listeners)

    def _emit(self, kind: str, payload: dict) -> None:
        for cb in list(self._listeners):
            try:
                cb(kind, payload)
            except Exception:  # a broken listener must never kill training
                traceback.print_exc()

    # -- commands (checked now, applied between steps) -------------------------------------------

    def set(self, **values) -> None:
        """Change hyperparameters (``sparsity``, ``lr``, ``slope_lr``, ``weight_decay``, ``eval_every``) now, between
        two steps (checked first: ``ValueError`` for a bad one, and nothing changes)."""
        self.apply(self.set_command(**values))

    def toggle(self, layer: str | int, units, state: int | UnitState) -> None:
        """Set ``units`` of gate ``layer`` (name or index) to ``state`` (free/linear/nonlinear) now, between two
        steps."""
        self.apply(self.toggle_command(layer, units, state))

    def switch_prior_on(self) -> None:
        """Switch the sparsity prior on now (the "late" schedule's switch, by hand)."""
        self.apply(PriorOn())

    def set_command(self, **values) -> SetValues:
        """The :class:`SetValues` command for these hyperparameters, checked now (``ValueError`` naming a bad one), so
        whoever applies it later (a runner's thread) cannot fail on it."""
        checked = {}
        for key, value in values.items():
            if key not in _SETTABLE:
                raise ValueError(f"cannot set {key!r} while training; settable: {', '.join(_SETTABLE)}")
            if key == "eval_every":  # a count: 2.5 is refused, not truncated
                checked[key] = _positive_int(key, value)
            else:
                checked[key] = check_number(key, value, **_SETTABLE[key])
        return SetValues(checked)

    def toggle_command(self, layer: str | int, units, state: int | UnitState) -> Toggle:
        """The :class:`Toggle` command for ``units`` of gate ``layer`` (name or index), checked now (the caller gets
        the error, not the thread that applies it)."""
        gate = self._gate(layer)
        state = unit_state(state)
        gate._index(units)
        return Toggle(gate.name, units, state)

    def _gate(self, layer: str | int) -> LinearizableActivation:
        gd = gate_dict(self.model)
        if isinstance(layer, bool) or not isinstance(layer, (str, int)):
            raise ValueError(f"layer must be a gate name or index, got {layer!r}")
        if isinstance(layer, str):
            check_name(layer, "layer")
        if isinstance(layer, int):
            if not -len(gd) <= layer < len(gd):
                raise IndexError(f"gate index {layer} out of range: the model has {len(gd)} gates")
            return list(gd.values())[layer]
        if layer not in gd:
            raise KeyError(f"no gate named {layer!r}; gates: {', '.join(gd)}")
        return gd[layer]

    def apply(self, command: Command) -> None:
        """Carry out one command now, between two steps (it holds the run: see :meth:`locked`)."""
        with self._lock:
            self._apply(command)

    def _apply(self, command: Command) -> None:
        if isinstance(command, SetValues):
            for key, value in command.values.items():
                if key == "sparsity":
                    self.sparsity = value
                elif key == "lr":
                    self._opt.param_groups[0]["lr"] = value
                elif key == "slope_lr":
                    self._opt.param_groups[1]["lr"] = value
                elif key == "weight_decay":
                    self._opt.param_groups[0]["weight_decay"] = value
                setattr(self.config, key, value)
                self._log("set", key=key, value=value)
        elif isinstance(command, Toggle):
            gate = gate_dict(self.model)[command.layer]
            gate.set_state(command.units, command.state)
            units_list = gate._index(command.units).tolist()
            self._log("toggle", layer=command.layer, units=units_list, state=UnitState(command.state).name.lower())
        elif isinstance(command, PriorOn):
            if not self.prior_on:
                self.prior_on = True
                self._set_slopes_trainable(True)
                self._log("prior_on")
        else:
            raise TypeError(f"unknown command {command!r}")

    def _log(self, kind: str, **info) -> None:
        event = {"step": self.step, "epoch": self.epoch, "kind": kind, **info}
        self.events.append(event)
        self._emit("command", event)

    def _set_slopes_trainable(self, on: bool) -> None:
        for g in self._gates:
            g.alpha.requires_grad_(on)
            if not on:
                g.alpha.grad = None

    # -- stepping ---------------------------------------------------------------------------------

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        bs = self.config.batch_size
        pos = (self.step % self.steps_per_epoch) * bs
        if pos == 0 or len(self._perm) != len(self._x_train):
            if self._order_restarted:
                self._warn_order_restarted()
            self._order_state = self._generator.get_state()
            self._perm = torch.randperm(len(self._x_train), generator=self._generator)
        idx = self._perm[pos:pos + bs].to(self.device)
        return self._x_train[idx], self._y_train[idx]

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy and the number of correct predictions (per token for sequences)."""
        if logits.dim() == 3:
            logits, y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
        ce = F.cross_entropy(logits.float(), y)
        return ce, (logits.argmax(-1) == y).sum()

    def train_step(self) -> float:
        """One optimizer step (the prior switched on first when its step has come). Returns the cross-entropy of the
        batch. Readers on other threads see whole steps when the caller holds :meth:`locked` around each (a runner
        does)."""
        if self._train_rng is None:
            return self._train_step()
        # the stream's lock before the forward pass's: a build holds it while it traces (which waits for passes)
        with seeding.drawing_from(self._train_rng):
            return self._train_step()

    @forward_pass()
    def _train_step(self) -> float:
        if not self.prior_on and self.step >= self.switch_step:
            self._apply(PriorOn())
        if not self.model.training:
            self.model.train()
        x, y = self._batch()
        if self._autocast_dtype is None:  # full precision: no autocast context to enter and leave each step
            logits = self.model(x)
        else:
            with torch.autocast(self.device.type, dtype=self._autocast_dtype):
                logits = self.model(x)
        ce, correct = self._loss(logits, y)
        ce_value = float(ce.detach())
        if not math.isfinite(ce_value):
            self._diverged(f"loss became {ce_value} at step {self.step}")
            return ce_value
        try:
            self._optimize(ce)
        except RuntimeError as exc:  # a rate the parameters' dtype cannot hold (e.g. a float16 model)
            if "overflow" not in str(exc):
                raise
            self._diverged(f"the optimizer step overflowed at step {self.step} ({exc})")
            return ce_value
        if self.prior_on:
            clamp_slopes_(self.model, self._gates)
        self.step += 1
        n = y.numel()
        self._running_loss += ce_value * n
        self._running_correct = self._running_correct + correct  # a tensor: no device sync per step
        self._running_count += n
        if self._listeners:
            self._emit("step", {"step": self.step, "loss": ce_value})
        if self.step % self.config.eval_every == 0 or self.step == self.total_steps:
            self.record()
        return ce_value

    def _optimize(self, ce: torch.Tensor) -> None:
        """Backward and one optimizer step on the cross-entropy ``ce`` plus the prior (when on)."""
        prior = self.prior_on and self.sparsity > 0
        self._opt.zero_grad(set_to_none=True)
        if self._scaler is not None:  # fp16 on CUDA: let autograd carry the prior through the scaler
            loss = ce + self.sparsity * _penalty(self.model) if prior else ce
            self._scaler.scale(loss).backward()
            self._scaler.step(self._opt)
            self._scaler.update()
        else:
            ce.backward()
            if prior:
                self._add_prior_grad()
            self._opt.step()

    @torch.no_grad()
    @forward_pass()
    def evaluate(self, split: str = "test", batch_size: int = 1024) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the ``"test"`` (or ``"train"``) set, in eval mode."""
        if split not in ("test", "train"):
            raise ValueError(f"split must be 'test' or 'train', got {split!r}")
        batch_size = _positive_int("batch_size", batch_size)
        xs, ys = (self._x_test, self._y_test) if split == "test" else (self._x_train, self._y_train)
        total, correct, count = 0.0, 0.0, 0
        with eval_mode(self.model):
            for i in range(0, len(xs), batch_size):
                x, y = xs[i:i + batch_size], ys[i:i + batch_size]
                with torch.autocast(self.device.type, dtype=self._autocast_dtype,
                                    enabled=self._autocast_dtype is not None):
                    logits = self.model(x)
                ce, c = self._loss(logits, y)
                total += float(ce) * y.numel()
                correct += float(c)
                count += y.numel()
        return total / max(count, 1), correct / max(count, 1)

    def record(self) -> dict[str, Any]:
        """Evaluate and append one entry to ``history`` (also emitted as an "eval" event)."""
        test_loss, test_acc = self.evaluate()
        gs = gates(self.model)
        entry: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "time": time.time(),
            "train_loss": self._running_loss / self._running_count if self._running_count else math.nan,
            "train_acc": float(self._running_correct) / self._running_count if self._running_count else math.nan,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "sparsity": self.sparsity if self.prior_on else 0.0,
            "prior_on": self.prior_on,
            "lr": self._opt.param_groups[0]["lr"],
            "nonlinear": [g.nonlinear_count(self.config.tol) for g in gs],
            "slopes": [g.slope.cpu() for g in gs],
        }
        for name, fn in self.metrics.items():
            entry[name] = float(fn(self.model))
        self._running_loss = self._running_correct = self._running_count = 0.0
        if math.isfinite(test_loss):
            self._good_state = self._snapshot()
        self.history.append(entry)
        self._emit("eval", entry)
        return entry

    def _add_prior_grad(self) -> None:
        """d/d alpha of lambda * sum(1 - alpha) over free units is -lambda: add it without autograd."""
        all_free, grads, masks = [], [], []
        for g in self._gates:
            if g.alpha.grad is None:
                g.alpha.grad = torch.zeros_like(g.alpha)
            free, _ = g._masks()  # cached until the gate's state changes; None: every unit free
            if free is None:
                all_free.append(g.alpha.grad)
            else:
                grads.append(g.alpha.grad)
                masks.append(free)
        if all_free:
            torch._foreach_add_(all_free, -self.sparsity)
        if grads:
            torch._foreach_add_(grads, masks, alpha=-self.sparsity)

    def _snapshot(self) -> dict[str, Any]:
        return {"model": copy.deepcopy(self.model.state_dict()), "step": self.step,
                "opt": copy.deepcopy(self._opt.state_dict())}

    def _diverged(self, reason: str) -> None:
        """Restore the last finite state and stop with the reason recorded."""
        good = self._good_state
        self.model.load_state_dict(good["model"])
        self._opt.load_state_dict(good["opt"])
        self._log("diverged", reason=reason, restored_step=good["step"])
        self.step = good["step"]
        self.set_status("diverged", f"{reason}; model restored to step {good['step']}")

    # -- read-outs and state ----------------------------------------------------------------------

    def extend(self, epochs: float) -> None:
        """Train ``epochs`` more epochs on the next start."""
        epochs = check_number("epochs", epochs, low=0.0, low_open=True)
        self.total_steps += int(round(epochs * self.steps_per_epoch))
        self.config.epochs += epochs

    def reset(self) -> None:
        """Rebuild model, optimizer and history from the config and seed (subscribers stay), then status "idle"."""
        if self._user_model is not None:
            raise RuntimeError("reset() rebuilds from the config; this run was given its own model")
        with self._lock:
            self._build()
        self.set_status("idle")

    def show_slopes(self, slopes: list[torch.Tensor] | None, step: int) -> None:
        """Set every gate free at ``slopes`` (one tensor per gate; None: all 0) and the step counter to ``step``,
        between two steps; the weights stay. A replay's one way to show a recorded evaluation on a rebuilt run."""
        with self._lock, torch.no_grad():
            gs = list(self._gates)
            if slopes is not None and len(slopes) != len(gs):
                raise ValueError(f"{len(slopes)} slope tensors for {len(gs)} gates")
            for g, s in zip(gs, slopes or [None] * len(gs)):
                g.state.fill_(int(UnitState.FREE))  # free: the recorded (effective) slope is what is shown
                if s is None:
                    g.alpha.zero_()
                else:
                    g.alpha.copy_(s.to(g.alpha.device, g.alpha.dtype))
            self.step = int(step)

    def nonlinear_count(self) -> int:
        return sum(g.nonlinear_count(self.config.tol) for g in gates(self.model))

    def to_xarray(self, max_slope_values: int = 2_000_000):
        """The run as an ``xr.Dataset`` (see :func:`nonlin_explorer.results.session_to_xarray`)."""
        from nonlin_explorer.results import session_to_xarray

        with self._lock:  # a consistent snapshot: the training thread holds the lock for each step
            return session_to_xarray(self, max_slope_values=max_slope_values)

    def save(self, path) -> Path:
        """Checkpoint: everything :meth:`state_dict` holds (``torch.save``, written atomically); the path written."""
        from nonlin_explorer.results import save_checkpoint

        return save_checkpoint(self, path)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run (``load_state_dict``): weights and gate states, optimizer, step,
        prior, history and events (JSON), status, and ``"resume"``: the random streams and running sums
        (:meth:`_streams`), so that a run resumed from it is bit-identical on a CPU to one that never stopped.
        Tensors and plain values only (safe with ``weights_only``)."""
        with self._lock:
            history = [{**h, "slopes": [s.tolist() for s in h["slopes"]]} for h in self.history]
            return {
                "config": self.config.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self._opt.state_dict(),
                "step": self.step,
                "sparsity": self.sparsity,
                "prior_on": self.prior_on,
                "history": json.dumps(history),
                "events": json.dumps(self.events, default=str),
                "status": self.status,
                "stop_reason": self.stop_reason,
                "resume": self._streams(),
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (of a run with the same config). A state without ``"resume"`` loads too:
        then the data order restarts from the seed (a fresh permutation, as at step 0, from the position the step
        gives), the running train loss from zero, and a dropout stream goes on from where this trainer's stream is
        (right after the build for a trainer just built); the first step says so in a warning."""
        streams = state.get("resume")
        if streams is not None:
            _check_streams(streams, self._generator.get_state().numel())
        with self._lock:
            self.model.load_state_dict(state["model"])
            self._opt.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            self.sparsity = float(state["sparsity"])
            self.prior_on = bool(state["prior_on"])
            self._set_slopes_trainable(self.prior_on)
            self.history = [{**h, "slopes": [torch.tensor(s) for s in h["slopes"]]}
                            for h in json.loads(state["history"])]
            self.events = json.loads(state["events"])
            self.status, self.stop_reason = state["status"], state["stop_reason"]
            self._good_state = self._snapshot()
            if streams is None:
                self._restart_streams()
            else:
                self._restore_streams(streams)

    def _streams(self) -> dict[str, Any]:
        """Where the run's random streams and running sums stand, for :meth:`state_dict`: the data generator's state
        before it drew this epoch's order and that order's size (0: none drawn yet; the step gives the position in
        it), the dropout stream of a model that draws in training (:mod:`seeding`), and the sums behind the next
        evaluation's train loss and accuracy. A few KB whatever the data's size."""
        drawn = len(self._perm)
        streams: dict[str, Any] = {
            "data_generator": self._order_state.clone() if drawn else self._generator.get_state(),
            "epoch_order_size": drawn,
            "running_loss": float(self._running_loss),
            "running_correct": float(self._running_correct),
            "running_count": float(self._running_count),
        }
        if self._train_rng is not None:
            streams["dropout_stream"] = self._train_rng.clone()
        return streams

    def _restore_streams(self, streams: dict[str, Any]) -> None:
        """Put back what :meth:`_streams` saved: the run goes on drawing what it would have drawn."""
        size = streams["epoch_order_size"]
        if size not in (0, len(self._x_train)):  # another training set: its order cannot be this one's
            self._restart_streams(f"the checkpoint's data order covers {size} examples, this run's training "
                                  f"set {len(self._x_train)}")
            return
        self._generator.set_state(streams["data_generator"])
        self._order_state = self._generator.get_state()
        self._perm = torch.empty(0, dtype=torch.long)
        if size:  # this epoch's order, drawn again: the generator ends where the saved run's did
            self._perm = torch.randperm(size, generator=self._generator)
        self._running_loss = float(streams["running_loss"])
        self._running_correct = float(streams["running_correct"])
        self._running_count = float(streams["running_count"])
        self._order_restarted = ""
        if self._train_rng is not None and "dropout_stream" in streams:
            self._train_rng.copy_(streams["dropout_stream"])

    def _restart_streams(self, why: str = "the checkpoint holds no data order or dropout stream") -> None:
        """No usable saved streams: the data order restarts from the seed, the running sums from zero (the next
        permutation drawn warns, saying ``why``)."""
        self._generator = torch.Generator().manual_seed(self.config.seed)
        self._perm = torch.empty(0, dtype=torch.long)
        self._order_state = self._generator.get_state()
        self._running_loss = self._running_correct = self._running_count = 0.0
        self._order_restarted = why

    def _warn_order_restarted(self) -> None:
        why, self._order_restarted = self._order_restarted, ""
        dropout = ", dropout from this session's own stream" if self._train_rng is not None else ""
        warnings.warn(f"{why}: from step {self.step} the data order restarts from seed {self.config.seed}{dropout}, "
                      "so this run differs from one trained straight through", UserWarning, stacklevel=2)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.config.model} on {self.data.name}, step {self.step}/{self.total_steps}, "
                f"{self.status}, sparsity={self.sparsity:g}, nonlinear={self.nonlinear_count()}, "
                f"device={self.device})")


#: The entries of a checkpoint's ``"resume"`` and their kinds (``dropout_stream`` only for a model that draws).
_STREAM_KINDS = {"data_generator": torch.Tensor, "epoch_order_size": int, "running_loss": float,
                 "running_correct": float, "running_count": float}


def _check_streams(streams: Any, state_size: int) -> None:
    """``ValueError`` in one line when a checkpoint's ``"resume"`` entry is not what :meth:`Trainer._streams`
    writes (generator states of ``state_size`` bytes, an order size of at least 0)."""
    if not isinstance(streams, dict):
        raise ValueError(f"the checkpoint's 'resume' entry must be a dict, got {type(streams).__name__}")
    for key, kind in _STREAM_KINDS.items():
        if not isinstance(streams.get(key), kind):
            raise ValueError(f"the checkpoint's 'resume' entry needs {key!r} ({kind.__name__}), got "
                             f"{type(streams.get(key)).__name__}")
    for key in ("data_generator", "dropout_stream"):
        value = streams.get(key)
        if key in streams and not (isinstance(value, torch.Tensor) and value.dtype == torch.uint8
                                   and value.shape == (state_size,)):
            raise ValueError(f"the checkpoint's 'resume' entry {key!r} is not a CPU generator state ({state_size} "
                             "bytes)")
    if streams["epoch_order_size"] < 0:
        raise ValueError(f"the checkpoint's 'resume' entry 'epoch_order_size' must be >= 0, got "
                         f"{streams['epoch_order_size']}")


def _validate_except_dataset(config: TrainConfig) -> TrainConfig:
    name = config.dataset
    config.dataset = "mnist1d"
    try:
        config.validate()
    finally:
        config.dataset = name
    return config


def _check_fits(model: nn.Module, data: _datasets.Dataset) -> None:
    """A clear error when a model cannot take the dataset's inputs (e.g. a 2-D CNN on token sequences)."""
    try:
        with eval_mode(model):
            out = run_model(model, data.x_train[:2])
    except Exception as exc:
        raise ValueError(f"{type(model).__name__} cannot take {data.name!r} inputs of shape "
                         f"{data.input_shape}: {exc}") from exc
    # A class per example, or one per label position (sequences: as many as the labels have, e.g. a translation's
    # target, half its input)
    want = (2, data.num_classes) if data.kind == "classification" else (2, *data.y_train.shape[1:], data.num_classes)
    if tuple(out.shape) != want:
        raise ValueError(f"{type(model).__name__} gives outputs of shape {tuple(out.shape)[1:]} on {data.name!r}, "
                         f"which needs {want[1:]}")
