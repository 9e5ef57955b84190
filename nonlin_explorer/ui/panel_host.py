"""The Panel host of a controller (``nonlin-explorer serve``, or a Panel layout): the same ES module as the Jupyter
widget, in Panel's :class:`panel.custom.AnyWidgetComponent`, with parameters built from the controller's field spec.

Panel gives an anywidget ``render({model, el})`` its ``model.get/set/on/save_changes``; it has no ``model.send``
from the page, so requests travel as the synced ``request`` parameter (numbered, so a repeated request is a
change) and are answered at once. A periodic callback on the document's thread calls the controller's ``tick``
and pushes what changed: Bokeh documents are never touched from another thread.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import panel as pn
import param

from nonlin_explorer.ui.codecs import encode
from nonlin_explorer.ui.controller import STATIC, Controller
from nonlin_explorer.ui.live_state import Field, jsonable


def _wire(field: Field, value: Any) -> Any:
    """A field's value as Bokeh sends it: binary arrays as ``{view: bytes, dtype, shape}`` (an ArrayBuffer in the
    page), JSON with NaN as null."""
    if field.binary:
        return encode(value, field.kind, as_bytes=True)
    return jsonable(value)


class PanelHost(pn.custom.AnyWidgetComponent):
    """Shows one :class:`Controller` in Panel. See :func:`panel_base`."""

    _controller_class: type[Controller] = Controller
    _bundle_path: Path = STATIC / "missing.js"

    request = param.Dict(default={}, doc="the latest request from the page, numbered by its 'seq'")

    def __init__(self, controller: Controller, **params: Any):
        if not isinstance(controller, self._controller_class):
            raise TypeError(f"{type(self).__name__} shows a {self._controller_class.__name__}, "
                            f"got {type(controller).__name__}")
        fields = controller.state.fields
        initial = {n: _wire(fields[n], v) for n, v in controller.state.take().items()}
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__(**initial, **params)
        self.controller = controller
        self.flushes = 0
        self.requests = 0
        self._callback = None
        self.param.watch(self._on_request, "request")
        self._closed = False
        # Push only once the page has loaded: before its WebSocket is open, Panel queues a change for later while a
        # change made after it opens goes out at once, so a queued (older) status could land after a newer one and
        # stay on screen. Until then the controller's changes wait in its state, and the first flush sends them all.
        try:
            pn.state.onload(self._start)
        except Exception:  # no event loop (a plain script): call flush() yourself
            self._callback = None

    def _start(self) -> None:
        if self._closed or self._callback is not None:
            return
        try:
            period = max(10, int(1000 / self.controller.rate))
            self._callback = pn.state.add_periodic_callback(self.flush, period=period)
        except Exception:  # no event loop (a plain script): call flush() yourself
            self._callback = None

    def _get_properties(self, doc):
        props = super()._get_properties(doc)
        if props.get("bundle") == "url":
            # Served apps would load the bundle from a URL relative to this module, which cannot reach ../static:
            # inline it, as in a notebook (pre-built: the browser does not compile it).
            props.update(bundle=hashlib.sha256(str(self._bundle_path).encode()).hexdigest(), css_bundle=None,
                         esm=self._bundle_path.read_text(encoding="utf-8"))
        return props

    @classmethod
    def _process_importmap(cls):
        return {"imports": {}, "scopes": {}}  # the bundle imports nothing

    def _on_request(self, event) -> None:
        content = dict(event.new or {})
        if not content:
            return
        content.pop("seq", None)
        self.requests += 1
        self.controller.receive(content)
        self.flush(tick=False)  # answer now, not at the next tick

    def flush(self, tick: bool = True) -> bool:
        """Tick the controller and push what changed (document thread). True if anything went out."""
        c = self.controller
        if tick:
            c.tick()
        fields = c.state.fields
        changes = c.state.take()
        messages = c.state.take_messages()
        if changes:
            self.param.update({n: _wire(fields[n], v) for n, v in changes.items()})
        for message in messages:
            self.send(jsonable(message))
        if changes or messages:
            self.flushes += 1
        return bool(changes or messages)

    def close(self) -> None:
        """Stop the refresh loop and close the controller (safe to call twice)."""
        self._closed = True
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        self.controller.close()


def _parameter(field: Field) -> param.Parameter:
    if field.binary:
        # No bytes in a default: BokehJS clones a property's default for a model that leaves it unset, and an
        # ArrayBuffer cannot be cloned (the served MNIST-1D dashboard, whose decision boundary stays unset, was a
        # blank page). The front end reads view None as an empty array.
        return param.Dict(default={"view": None, "dtype": field.kind, "shape": [0]}, doc=field.doc)
    return param.Parameter(default=jsonable(field.initial()), doc=field.doc)


def panel_base(controller_class: type[Controller]) -> type[PanelHost]:
    """A :class:`PanelHost` subclass with one parameter per field of ``controller_class`` and its bundle."""
    path = STATIC / f"{controller_class.BUNDLE}.js"
    css = STATIC / f"{controller_class.BUNDLE}.css"
    namespace: dict[str, Any] = {f.name: _parameter(f) for f in controller_class.FIELDS}
    sheet = css.read_text(encoding="utf-8") if css.is_file() else ""
    namespace.update(_controller_class=controller_class, _esm=path, _bundle=path, _bundle_path=path,
                     _stylesheets=[sheet, ":host { display: block; }"], __module__=__name__)
    return type(f"{controller_class.__name__}Pane", (PanelHost,), namespace)
