"""The synced state of a live view, apart from any host: fields by name, which changed, and messages out.

A controller (pure Python, no UI library) writes here from any thread; a host (the anywidget widget in Jupyter,
the Panel component in ``nonlin-explorer serve``, see :mod:`nonlin_explorer.ui.hosts`) takes the changes at its own
pace on its own thread and puts them on the wire. One :class:`Field` list per view is the single spec both hosts
build their traits from, and the TypeScript interface mirrors it (a test compares the names).
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nonlin_explorer.ui.codecs import ARRAY_KINDS, as_array


@dataclass(frozen=True)
class Field:
    """One synced value: ``kind`` is ``"json"`` (plain JSON) or a binary array kind (``"float32"``, ``"uint8"``)."""

    name: str
    default: Any = None
    kind: str = "json"
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind != "json" and self.kind not in ARRAY_KINDS:
            raise ValueError(f"field {self.name!r}: kind must be 'json' or one of {sorted(ARRAY_KINDS)}")

    @property
    def binary(self) -> bool:
        return self.kind != "json"

    def initial(self) -> Any:
        if self.binary:
            return np.zeros(0, dtype=ARRAY_KINDS[self.kind])
        return copy.deepcopy(self.default)

    def coerce(self, value: Any) -> Any:
        """The value as it is stored: binary kinds become contiguous 1-D numpy arrays of their dtype."""
        if not self.binary:
            return value
        return as_array(value, self.kind)


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no NaN; the page reads null as a gap)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return value


class LiveState:
    """Values of a view's fields, the names changed since the last :meth:`take`, and an outbox of messages.

    Thread-safe. ``on_change`` callbacks run (on the writer's thread) after each :meth:`update` or :meth:`post`;
    hosts use them to wake their flush loop.
    """

    def __init__(self, fields: Iterable[Field]):
        self.fields: dict[str, Field] = {f.name: f for f in fields}
        self._values: dict[str, Any] = {name: f.initial() for name, f in self.fields.items()}
        self._dirty: set[str] = set(self.fields)
        self._outbox: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def __getitem__(self, name: str) -> Any:
        with self._lock:
            return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get(name, default)

    def values(self) -> dict[str, Any]:
        """A copy of every value (for a host's first render)."""
        with self._lock:
            return dict(self._values)

    def update(self, **values: Any) -> None:
        """Set fields; unchanged JSON values are not marked (no message for nothing)."""
        changed = False
        with self._lock:
            for name, value in values.items():
                field = self.fields.get(name)
                if field is None:
                    raise KeyError(f"no field {name!r}; fields: {', '.join(self.fields)}")
                value = field.coerce(value)
                if not field.binary and self._values[name] == value:
                    continue
                self._values[name] = value
                self._dirty.add(name)
                changed = True
        if changed:
            self._notify()

    def take(self) -> dict[str, Any]:
        """The fields changed since the last call, with their values (and forget them)."""
        with self._lock:
            names, self._dirty = self._dirty, set()
            return {n: self._values[n] for n in self.fields if n in names}

    def post(self, message: dict[str, Any]) -> None:
        """Queue a custom message for the page (sent by the host at its next flush, in order)."""
        with self._lock:
            self._outbox.append(message)
        self._notify()

    def take_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self._outbox = self._outbox, []
        return out

    @property
    def pending(self) -> bool:
        with self._lock:
            return bool(self._dirty or self._outbox)

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every change; returns a function that unsubscribes."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _notify(self) -> None:
        for cb in list(self._listeners):
            cb()
