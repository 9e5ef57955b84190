"""The Jupyter host of a controller: an anywidget whose traits are built from the controller's field spec.

``widget_base(SomeController)`` returns an ``anywidget.AnyWidget`` subclass with one synced trait per field
(binary fields as :class:`BinaryArray`, sent as raw buffers) and a flush thread: it calls the controller's
``tick`` ``rate`` times a second (sooner when the state changes, at most ``max_rate``), sends the changed fields
in one message and the queued custom messages after them. Requests from the page (``model.send``) go to
``controller.receive`` on the kernel's comm thread. ipykernel >= 7.1 sends from any thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from nonlin_explorer.lifecycle import stop_at_exit
from nonlin_explorer.ui.codecs import ARRAY_KINDS, as_array, encode
from nonlin_explorer.ui.controller import STATIC, Controller
from nonlin_explorer.ui.live_state import Field, jsonable

_NOT_BUILT_ESM = """export default {
  render({ el }) {
    el.textContent = "nonlin_explorer: the widget front end is not built (nonlin_explorer/static is missing). "
      + "Run ./dev.sh setup (or pip install .) and restart the kernel.";
  },
};
"""


def bundle(name: str) -> Any:
    """A built front-end file (a Path anywidget watches), or a stand-in that says the build is missing."""
    path = STATIC / name
    if path.is_file():
        return path
    return _NOT_BUILT_ESM if name.endswith(".js") else "/* nonlin_explorer: front end not built */\n"


class BinaryArray(t.TraitType):
    """A 1-D numpy array of one dtype, synced as a raw buffer ``{view, dtype, shape}`` (``js/src/codecs.ts``)."""

    info_text = "a 1-D array"

    def __init__(self, kind: str, **kwargs: Any):
        self.kind = kind
        self.dtype = ARRAY_KINDS[kind]
        super().__init__(np.zeros(0, dtype=self.dtype), **kwargs)
        self.tag(sync=True, to_json=self._to_json)

    def validate(self, obj: Any, value: Any) -> np.ndarray:
        try:
            return as_array(value, self.kind)
        except (TypeError, ValueError) as exc:
            raise t.TraitError(f"{self.name}: expected an array of {self.kind}, got {type(value).__name__}") from exc

    def _to_json(self, value: np.ndarray, _widget: Any) -> dict[str, Any]:
        return encode(value, self.kind)


def trait_for(field: Field) -> t.TraitType:
    """The traitlet of one field (synced)."""
    if field.binary:
        return BinaryArray(field.kind, help=field.doc)
    return t.Any(field.initial(), help=field.doc).tag(sync=True, to_json=lambda v, _w: jsonable(v))


class WidgetHost(anywidget.AnyWidget):
    """Shows one :class:`Controller` in Jupyter (JupyterLab, Notebook 7, VS Code). See :func:`widget_base`."""

    _controller_class: type[Controller] = Controller
    _closed = True  # until __init__ has started the flush thread

    def __init__(self, controller: Controller, **kwargs: Any):
        if not isinstance(controller, self._controller_class):
            raise TypeError(f"{type(self).__name__} shows a {self._controller_class.__name__}, "
                            f"got {type(controller).__name__}")
        state = controller.state
        initial = state.take()
        super().__init__(**initial, **kwargs)
        self.controller = controller
        self.flushes = 0
        self._flushing = threading.Lock()  # held from taking the changes until they are set on the widget
        self._closed = False
        self._cond = threading.Condition()
        self._woken = False
        self._unsubscribe = state.on_change(self._wake)
        self.on_msg(self._on_msg)
        self._thread = threading.Thread(target=self._loop, name=f"nonlin-explorer-{type(self).__name__}",
                                        daemon=True)
        self._thread.start()
        stop_at_exit(self, lambda host: host.close())  # no thread outlives the interpreter

    def _wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        self.controller.receive(content)

    def _loop(self) -> None:
        c = self.controller
        last = -1e9
        while not self._closed:
            with self._cond:
                if not self._woken:
                    self._cond.wait(1.0 / c.rate)
                self._woken = False
            delay = last + 1.0 / c.max_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self._closed:
                return
            try:
                c.tick()
                self.flush()
            except Exception:  # a failed flush must not end the loop: the next one retries
                traceback.print_exc()
            last = time.monotonic()

    def flush(self) -> bool:
        """Send what changed (fields in one message, then the queued messages). True if anything went out."""
        state = self.controller.state
        with self._flushing:
            changes = state.take()
            messages = state.take_messages()
            if changes:
                with self.hold_sync():
                    for name, value in changes.items():
                        setattr(self, name, value)
            for message in messages:
                self.send(jsonable(message))
        if changes or messages:
            self.flushes += 1
        return bool(changes or messages)

    def wait_flushed(self, timeout: float = 10.0) -> bool:
        """Tick once, then block until the state has nothing left to send and what was taken is on the widget
        (for scripts and tests)."""
        self.controller.tick()
        end = time.monotonic() + timeout
        while self.controller.state.pending and time.monotonic() < end:
            self._wake()
            time.sleep(0.01)
        if self.controller.state.pending:
            return False
        # taken is not yet shown: a flush that took the last changes may still be setting them on the widget
        if not self._flushing.acquire(timeout=max(0.0, end - time.monotonic())):
            return False
        self._flushing.release()
        return True

    def close(self) -> None:
        """Stop the flush thread, close the controller (its threads and subscriptions) and the widget."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.controller.close()
        super().close()


def widget_base(controller_class: type[Controller]) -> type[WidgetHost]:
    """A :class:`WidgetHost` subclass with one synced trait per field of ``controller_class`` and its bundle."""
    namespace: dict[str, Any] = {f.name: trait_for(f) for f in controller_class.FIELDS}
    namespace.update(_controller_class=controller_class, _esm=bundle(f"{controller_class.BUNDLE}.js"),
                     _css=bundle(f"{controller_class.BUNDLE}.css"), __module__=__name__)
    return type(f"{controller_class.__name__}Widget", (WidgetHost,), namespace)
