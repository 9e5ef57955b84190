"""The network view's logic, apart from any host: every gated unit of a model, its slope and state, and clicks.

:class:`NetworkController` reads the gates into its :class:`~nonlin_explorer.ui.live_state.LiveState` (float32
slopes, uint8 states, float32 mean activations; the layout as small JSON) and acts on the page's ``set_state``
requests, through ``session.toggle`` when it follows a training session (queued and applied between two steps
while it trains), else straight on the gates. Reading happens on throttle threads, never on the training thread or
the comm handler: slopes and states at most ``max_rate`` times a second, mean activations (a forward pass) on a
thread of their own at most once a second, so they never delay a click. Hosts: ``NetworkView`` (Jupyter) and
``NetworkViewPane`` (Panel); the dashboard embeds one as a part of its own state.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nonlin_explorer.gates import DEFAULT_TOL, LinearizableActivation, UnitState, gates
from nonlin_explorer.plumbing import eval_mode, forward_hooks, run_model
from nonlin_explorer.ui.controller import Controller, RequestError
from nonlin_explorer.ui.layout import network_layout
from nonlin_explorer.ui.live_state import Field, LiveState
from nonlin_explorer.ui.throttle import Throttle

#: Mean activations are recomputed at most this often (seconds): each is a forward pass.
ACTIVATION_INTERVAL = 1.0

#: The network view's synced state (``js/src/network_view_types.ts`` mirrors these names).
NETWORK_FIELDS: tuple[Field, ...] = (
    Field("layers", [], doc="[{name, units, offset, block}] in forward order"),
    Field("blocks", [], doc="[{name, first, last, projection}] residual blocks"),
    Field("slopes", kind="float32", doc="effective alpha per unit, flat over all layers"),
    Field("states", kind="uint8", doc="UnitState per unit (0 free, 1 linear, 2 nonlinear)"),
    Field("activations", kind="float32", doc="mean activation per unit (NaN: unknown)"),
    Field("tol", DEFAULT_TOL, doc="a unit is linear when 1 - alpha <= tol"),
    Field("title", ""),
    Field("status", "model", doc='"model" (no session) or the session status'),
    Field("step", 0),
    Field("max_rows", 0, doc="units per sub-column before a layer wraps into another; 0: chosen to fit"),
)


def is_session(obj: Any) -> bool:
    """Duck-typed: a training session (toggle, subscribe and a torch model)."""
    return (callable(getattr(obj, "toggle", None)) and callable(getattr(obj, "subscribe", None))
            and isinstance(getattr(obj, "model", None), nn.Module))


class NetworkController(Controller):
    """Every unit of ``model_or_session`` as synced state; ``set_state`` requests force units.

    ``model_or_session``: a linearized ``nn.Module`` or a :class:`~nonlin_explorer.TrainingSession` (followed through
    its events; toggles go through its command queue). ``example_input``: a batch for the mean activations (default:
    the session's ``example_input``; none for a bare model). ``max_rate``: most state updates per second. ``state``:
    share another controller's :class:`LiveState` (the dashboard's), which must have these fields.
    """

    FIELDS = NETWORK_FIELDS
    BUNDLE = "network_view"

    def __init__(self, model_or_session: nn.Module | Any, example_input: Any = None, *, max_rate: float = 15.0,
                 title: str | None = None, tol: float | None = None, max_rows: int = 0,
                 state: LiveState | None = None):
        if is_session(model_or_session):
            session, model = model_or_session, model_or_session.model
            if example_input is None:
                example_input = getattr(session, "example_input", None)
            if tol is None:
                tol = getattr(getattr(session, "config", None), "tol", None)
        elif isinstance(model_or_session, nn.Module):
            session, model = None, model_or_session
        else:
            raise TypeError("the network view takes a linearized torch model or a TrainingSession, "
                            f"got {type(model_or_session).__name__}")
        if isinstance(max_rate, bool) or not isinstance(max_rate, (int, float)) or not 0 < max_rate <= 60:
            raise ValueError(f"max_rate must lie in (0, 60] updates per second, got {max_rate!r}")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0:
            raise ValueError(f"max_rows must be an integer >= 0 (0: chosen to fit), got {max_rows!r}")
        super().__init__()
        if state is not None:
            missing = [f.name for f in NETWORK_FIELDS if f.name not in state.fields]
            if missing:
                raise ValueError(f"the shared state lacks the network fields {missing}")
            self.state = state
        self.max_rate = max(self.max_rate, float(max_rate))
        self._session = session
        self._model = model
        self._example = example_input
        self._lock = threading.RLock()
        self._gates: list[LinearizableActivation] = []
        self.state.update(tol=float(DEFAULT_TOL if tol is None else tol), max_rows=int(max_rows),
                          title=title if title is not None else self._default_title())
        self._relayout()
        self._push_state()
        self._push_activations(strict=True)
        self._throttle = Throttle(lambda _: self._push_state(), max_rate, name="nonlin-explorer-network-view")
        self._act_throttle = Throttle(lambda _: self._push_activations(), 1.0 / ACTIVATION_INTERVAL,
                                      name="nonlin-explorer-network-view-activations")
        self._unsubscribe = session.subscribe(self._on_session_event) if session is not None else None

    # -- public API ---------------------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self._session.model if self._session is not None else self._model

    @property
    def session(self) -> Any:
        return self._session

    @property
    def gate_names(self) -> list[str]:
        return [layer["name"] for layer in self.state["layers"]]

    def toggle(self, layer: str | int, units: None | int | Sequence[int], state: int | UnitState) -> None:
        """Set ``units`` (None: all) of gate ``layer`` (name or index) to ``state``.

        Goes through ``session.toggle`` (queued, applied between two training steps) when following a session,
        straight to the gate otherwise; the state is pushed when the change has been applied.
        """
        gate = self._gate(layer)
        state = _unit_state(state)
        if self._session is not None:
            self._session.toggle(gate.name, units, state)
        else:
            gate.set_state(units, state)
        self.update(activations=True)

    def update(self, activations: bool = False) -> None:
        """Re-read the gates soon (non-blocking, throttled: call it as often as you like, e.g. after every step of a
        training loop of your own). ``activations``: also recompute the mean activations (at most once a second)."""
        if self.closed:
            return
        self._throttle.request("state")
        if activations:
            self._act_throttle.request("activations")

    def refresh(self) -> None:
        """Re-read layout, slopes, states and mean activations now (blocking; a forward pass)."""
        with self._lock:
            if self._session is not None and self._session.model is not self._model:
                self._model = self._session.model  # the session rebuilt its model (reset)
            self._relayout()
            self._push_state()
            self._push_activations(strict=True)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every requested update has been read into the state (for scripts and tests)."""
        end = time.monotonic() + timeout
        return self._throttle.wait_idle(timeout) and self._act_throttle.wait_idle(max(0.0, end - time.monotonic()))

    def close(self) -> None:
        """Stop following the session and the throttle threads (safe to call twice)."""
        if self.closed:
            return
        super().close()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for throttle in (getattr(self, "_throttle", None), getattr(self, "_act_throttle", None)):
            if throttle is not None:
                throttle.close()

    # -- requests from the page ---------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        """``set_state`` (targets: [{layer, units | null}], state) or ``refresh``."""
        kind = message.get("type")
        if kind == "set_state":
            targets = message.get("targets")
            if not isinstance(targets, list) or not targets:
                raise RequestError("set_state needs a non-empty list of targets")
            state = _unit_state(message.get("state"))
            checked = []
            for target in targets:
                if not isinstance(target, dict):
                    raise RequestError(f"a target must be an object {{layer, units}}, got {target!r}")
                layer, units = target.get("layer"), target.get("units")
                if isinstance(layer, bool) or not isinstance(layer, int):
                    raise RequestError(f"layer must be an integer index, got {layer!r}")
                if units is not None and not (isinstance(units, list) and all(
                        isinstance(u, int) and not isinstance(u, bool) for u in units)):
                    raise RequestError(f"units must be null or a list of integers, got {units!r}")
                gate = self._gate(layer)
                gate._index(units)  # IndexError now, before anything changes
                checked.append((layer, units))
            for layer, units in checked:
                self.toggle(layer, units, state)
        elif kind == "refresh":
            self.update(activations=True)
        else:
            raise RequestError(f"unknown message type {kind!r}")

    # -- internals ----------------------------------------------------------------------------------
    def _default_title(self) -> str:
        s = self._session
        if s is not None and getattr(s, "config", None) is not None:
            data = getattr(getattr(s, "data", None), "name", getattr(s.config, "dataset", ""))
            return f"{s.config.model} on {data}"
        return type(self._model).__name__

    def _relayout(self) -> None:
        layout = network_layout(self.model)
        self._gates = gates(self.model)
        self.state.update(layers=layout["layers"], blocks=layout["blocks"])

    def _gate(self, layer: str | int) -> LinearizableActivation:
        if isinstance(layer, bool) or not isinstance(layer, (int, str)):
            raise TypeError(f"layer must be a gate name or index, got {layer!r}")
        if isinstance(layer, int):
            if not -len(self._gates) <= layer < len(self._gates):
                raise IndexError(f"layer index {layer} out of range: the model has {len(self._gates)} gates")
            return self._gates[layer]
        for g in self._gates:
            if g.name == layer:
                return g
        raise KeyError(f"no gate named {layer!r}; gates: {', '.join(g.name for g in self._gates)}")

    def _on_session_event(self, kind: str, payload: dict) -> None:
        """Called on the training thread: only requests an update (a throttle thread does the work)."""
        if kind in ("step", "eval", "command", "status"):
            self.update(activations=kind != "step")

    def _held(self) -> contextlib.AbstractContextManager:
        """The followed session held between two steps while the model is read (nothing to hold without one)."""
        return self._session.locked() if self._session is not None else contextlib.nullcontext()

    def _read_gates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(effective alpha, state) of every unit, flat. Reads only tensors (no gate caches): safe to call from
        another thread than the one that trains."""
        with torch.no_grad():
            alpha = torch.cat([g.alpha.detach().reshape(-1).float().cpu() for g in self._gates])
            state = torch.cat([g.state.reshape(-1).cpu() for g in self._gates])
            slope = torch.where(state == UnitState.FREE, alpha.clamp(0.0, 1.0), (state == UnitState.LINEAR).float())
        return slope, state

    def _activations(self) -> np.ndarray:
        """Mean output of every unit on the example input (NaN without one)."""
        n = sum(g.num_units for g in self._gates)
        if self._example is None:
            return np.full(n, np.nan, dtype=np.float32)
        model = self.model
        means: dict[int, torch.Tensor] = {}

        def hook(gate: LinearizableActivation):
            def fn(_module, _inputs, out):
                if out.dim() <= 1:
                    m = out
                else:
                    axis = gate.axis % out.dim()
                    m = out.float().mean(dim=[d for d in range(out.dim()) if d != axis])
                means[id(gate)] = m.detach().float().cpu()
            return fn

        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        x = self._example
        x = tuple(v.to(device) for v in x) if isinstance(x, (tuple, list)) else x.to(device)
        with self._held(), forward_hooks([(g, hook(g)) for g in self._gates]), eval_mode(model):  # no BatchNorm updates
            run_model(model, x)
        return torch.cat([means.get(id(g), torch.full((g.num_units,), math.nan)) for g in self._gates]).numpy()

    def _push_state(self) -> None:
        """Read slopes, states and the session's progress into the state (one message)."""
        with self._lock:
            if self.closed:
                return
            with self._held():  # slopes, states and step of one moment
                slope, state = self._read_gates()
                values: dict[str, Any] = {"slopes": slope, "states": state}
                if self._session is not None:
                    values.update(status=str(getattr(self._session, "status", "session")),
                                  step=int(getattr(self._session, "step", 0)))
            self.state.update(**values)

    def _push_activations(self, strict: bool = False) -> None:
        """Recompute the mean activations; ``strict``: a failing forward pass raises (at construction), else it is
        reported and the view keeps the last values."""
        try:
            acts = self._activations()
        except Exception as exc:
            if strict:
                raise ValueError(f"NetworkView: the example input does not run through the model: {exc}") from exc
            traceback.print_exc()
            return
        with self._lock:
            if not self.closed:
                self.state.update(activations=acts)


def _unit_state(value: Any) -> UnitState:
    """A unit state from an int (0 free, 1 linear, 2 nonlinear) or a UnitState; no silent coercion."""
    if isinstance(value, UnitState):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"state must be 0 (free), 1 (linear) or 2 (nonlinear), got {value!r}")
    try:
        return UnitState(int(value))
    except ValueError:
        raise ValueError(f"state must be 0 (free), 1 (linear) or 2 (nonlinear), got {value!r}") from None
