"""``NetworkView``: every gated unit of a model, coloured by its slope alpha; click to force it.

The anywidget front end is ``js/src/network_view.ts`` (bundled into ``nonlin_explorer/static``). State
travels as binary typed arrays (float32 slopes, uint8 states, float32 mean activations), layout as small
JSON (layer names, unit counts, residual blocks). Clicks arrive as ``{"type": "set_state", ...}`` messages
and go through ``session.toggle`` when the view follows a training session (queued and applied between
two steps while it trains), else straight to the gates. Updates are pushed from throttle threads, never
from the training thread or the comm handler: slopes and states at most ``max_rate`` times a second, mean
activations (a forward pass) on a thread of their own at most once a second, so they never delay a click.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import torch
import traitlets as t
from torch import nn

from nonlin_explorer.gates import DEFAULT_TOL, LinearizableReLU, UnitState, gates
from nonlin_explorer.ui.codecs import array_to_binary
from nonlin_explorer.ui.layout import network_layout
from nonlin_explorer.ui.throttle import Throttle

_STATIC = Path(__file__).resolve().parent.parent / "static"

_NOT_BUILT_ESM = """export default {
  render({ el }) {
    el.textContent = "nonlin_explorer: the widget front end is not built (nonlin_explorer/static is missing). "
      + "Run ./dev.sh setup (or pip install .) and restart the kernel.";
  },
};
"""


def _bundle(name: str) -> Path | str:
    """A built front-end file, or (when the package was not built) a stand-in that says so."""
    path = _STATIC / name
    if path.is_file():
        return path
    return _NOT_BUILT_ESM if name.endswith(".js") else "/* nonlin_explorer: front end not built */\n"


def _is_session(obj: Any) -> bool:
    return (callable(getattr(obj, "toggle", None)) and callable(getattr(obj, "subscribe", None))
            and isinstance(getattr(obj, "model", None), nn.Module))


#: Mean activations are recomputed at most this often (seconds): each is a forward pass.
ACTIVATION_INTERVAL = 1.0


class NetworkView(anywidget.AnyWidget):
    """Every unit of ``model_or_session`` as a coloured cell: alpha on a continuous scale, state marked.

    ``model_or_session``: a linearized ``nn.Module`` or a :class:`~nonlin_explorer.TrainingSession` (the
    view then follows its "step"/"eval"/"command" events and toggles through its command queue).
    ``example_input``: a batch for the mean activations shown on hover (default: the session's
    ``example_input``; none for a bare model: no activations). ``max_rate``: most updates per second.
    """

    _esm = _bundle("network_view.js")
    _css = _bundle("network_view.css")

    # Layout (small JSON, set once; see nonlin_explorer.ui.layout).
    layers = t.List(t.Dict(), help="[{name, units, offset, block}] in forward order").tag(sync=True)
    blocks = t.List(t.Dict(), help="[{name, first, last, projection}] residual blocks").tag(sync=True)
    # Per-unit state, flat over all layers: binary typed arrays {view, dtype, shape} (codecs.py).
    slopes = t.Dict(help="float32 effective alpha per unit").tag(sync=True)
    states = t.Dict(help="uint8 UnitState per unit (0 free, 1 linear, 2 nonlinear)").tag(sync=True)
    activations = t.Dict(help="float32 mean activation per unit (NaN: unknown)").tag(sync=True)
    # Display.
    tol = t.Float(DEFAULT_TOL, help="a unit is linear when 1 - alpha <= tol").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    status = t.Unicode("model", help='"model" (no session) or the session status').tag(sync=True)
    step = t.Int(0).tag(sync=True)
    max_rows = t.Int(0, help="units per sub-column before a layer wraps into another; 0: chosen to fit").tag(
        sync=True)

    def __init__(self, model_or_session: nn.Module | Any, example_input: Any = None, *, max_rate: float = 15.0,
                 title: str | None = None, tol: float | None = None, max_rows: int = 0, **kwargs):
        if _is_session(model_or_session):
            session, model = model_or_session, model_or_session.model
            if example_input is None:
                example_input = getattr(session, "example_input", None)
            if tol is None:
                tol = getattr(getattr(session, "config", None), "tol", None)
        elif isinstance(model_or_session, nn.Module):
            session, model = None, model_or_session
        else:
            raise TypeError("NetworkView takes a linearized torch model or a TrainingSession, "
                            f"got {type(model_or_session).__name__}")
        if not 0 < max_rate <= 60:
            raise ValueError(f"max_rate must lie in (0, 60] updates per second, got {max_rate}")
        if max_rows < 0:
            raise ValueError(f"max_rows must be >= 0 (0: chosen to fit), got {max_rows}")
        super().__init__(**kwargs)
        self._session = session
        self._model = model
        self._example = example_input
        self._closed = False
        self._lock = threading.RLock()
        self._gates: list[LinearizableReLU] = []
        self.tol = float(DEFAULT_TOL if tol is None else tol)
        self.max_rows = int(max_rows)
        self.title = title if title is not None else self._default_title()
        self._relayout()
        self._push_state()
        self._push_activations(strict=True)
        self._throttle = Throttle(lambda _: self._push_state(), max_rate, name="nonlin-explorer-network-view")
        self._act_throttle = Throttle(lambda _: self._push_activations(), 1.0 / ACTIVATION_INTERVAL,
                                      name="nonlin-explorer-network-view-activations")
        self._unsubscribe = session.subscribe(self._on_session_event) if session is not None else None
        self.on_msg(self._on_msg)

    # -- public API ---------------------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self._session.model if self._session is not None else self._model

    @property
    def session(self) -> Any:
        return self._session

    @property
    def gate_names(self) -> list[str]:
        return [layer["name"] for layer in self.layers]

    def toggle(self, layer: str | int, units: None | int | Sequence[int], state: int | UnitState) -> None:
        """Set ``units`` (None: all) of gate ``layer`` (name or index) to ``state``.

        Goes through ``session.toggle`` (queued, applied between two training steps) when the view follows
        a session, straight to the gate otherwise; the view repaints when the change has been applied.
        """
        gate = self._gate(layer)
        state = UnitState(int(state))
        if self._session is not None:
            self._session.toggle(gate.name, units, state)
        else:
            gate.set_state(units, state)
        self.update(activations=True)

    def update(self, activations: bool = False) -> None:
        """Repaint from the gates' current values, soon (non-blocking, throttled: call it as often as you
        like, e.g. after every step of a training loop of your own). ``activations``: also recompute the
        mean activations (a forward pass, at most once a second)."""
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
        """Block until every requested update has been sent (for scripts and tests)."""
        end = time.monotonic() + timeout
        return self._throttle.wait_idle(timeout) and self._act_throttle.wait_idle(max(0.0, end - time.monotonic()))

    def close(self) -> None:
        """Stop following the session and close the widget."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for throttle in (getattr(self, "_throttle", None), getattr(self, "_act_throttle", None)):
            if throttle is not None:
                throttle.close()
        super().close()

    # -- internals ----------------------------------------------------------------------------------
    def _default_title(self) -> str:
        s = self._session
        if s is not None and getattr(s, "config", None) is not None:
            data = getattr(getattr(s, "data", None), "name", getattr(s.config, "dataset", ""))
            return f"{s.config.model} on {data}"
        return type(self._model).__name__

    def _relayout(self) -> None:
        model = self.model
        layout = network_layout(model)
        self._gates = gates(model)
        self.layers, self.blocks = layout["layers"], layout["blocks"]

    def _gate(self, layer: str | int) -> LinearizableReLU:
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

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Messages from the front end (on the comm thread: quick, never blocks on training)."""
        reply = self.handle_message(content)
        if reply is not None:
            self.send(reply)

    def handle_message(self, content: Any) -> dict[str, str] | None:
        """Act on one front-end request (``set_state`` or ``refresh``); the error reply to show, or None.

        Hosts other than the widget's comm (the dashboard's Panel pane) pass their requests here."""
        try:
            kind = content.get("type") if isinstance(content, dict) else None
            if kind == "set_state":
                state = content.get("state")
                targets = content.get("targets")
                if not isinstance(targets, list) or not targets:
                    raise ValueError("set_state needs a non-empty list of targets")
                for target in targets:
                    units = target.get("units")
                    if units is not None and not (isinstance(units, list) and all(
                            isinstance(u, int) and not isinstance(u, bool) for u in units)):
                        raise ValueError(f"units must be null or a list of integers, got {units!r}")
                    self.toggle(int(target["layer"]), units, int(state))
            elif kind == "refresh":
                self.update(activations=True)
            else:
                raise ValueError(f"unknown message type {kind!r}")
        except Exception as exc:
            return {"type": "error", "message": f"{type(exc).__name__}: {exc}"}
        return None

    def _on_session_event(self, kind: str, payload: dict) -> None:
        """Called on the training thread: only requests an update (the throttle thread does the work)."""
        if kind in ("step", "eval", "command", "status"):
            self.update(activations=kind != "step")

    def _read_gates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(effective alpha, state) of every unit, flat. Reads only tensors (no gate caches): safe to call
        from another thread than the one that trains."""
        with torch.no_grad():
            alpha = torch.cat([g.alpha.detach().reshape(-1).float().cpu() for g in self._gates])
            state = torch.cat([g.state.reshape(-1).cpu() for g in self._gates])
            slope = torch.where(state == UnitState.FREE, alpha.clamp(0.0, 1.0),
                                (state == UnitState.LINEAR).float())
        return slope, state

    def _activations(self) -> np.ndarray:
        """Mean output of every unit on the example input (NaN without one)."""
        n = sum(g.num_units for g in self._gates)
        if self._example is None:
            return np.full(n, np.nan, dtype=np.float32)
        model = self.model
        means: dict[int, torch.Tensor] = {}

        def hook(gate: LinearizableReLU):
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
        lock = getattr(self._session, "_lock", None) if self._session is not None else None
        handles = [g.register_forward_hook(hook(g)) for g in self._gates]
        try:
            with (lock if lock is not None else contextlib.nullcontext()), torch.no_grad():
                was = model.training
                model.eval()  # no BatchNorm statistics updates
                try:
                    model(*x) if isinstance(x, tuple) else model(x)
                finally:
                    model.train(was)
        finally:
            for h in handles:
                h.remove()
        return torch.cat([means.get(id(g), torch.full((g.num_units,), math.nan)) for g in self._gates]).numpy()

    def _push_state(self) -> None:
        """Send slopes, states and the session's progress (one comm message)."""
        with self._lock:
            if self._closed:
                return
            slope, state = self._read_gates()
            with self.hold_sync():
                self.slopes = array_to_binary(slope, "float32")
                self.states = array_to_binary(state, "uint8")
                if self._session is not None:
                    self.status = str(getattr(self._session, "status", "session"))
                    self.step = int(getattr(self._session, "step", 0))

    def _push_activations(self, strict: bool = False) -> None:
        """Recompute and send the mean activations; ``strict``: a failing forward pass raises (at
        construction), else it is reported and the view keeps the last values."""
        try:
            acts = self._activations()
        except Exception as exc:
            if strict:
                raise ValueError(f"NetworkView: the example input does not run through the model: {exc}") from exc
            traceback.print_exc()
            return
        with self._lock:
            if not self._closed:
                self.activations = array_to_binary(acts, "float32")
