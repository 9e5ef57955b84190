"""``NetworkViewPane``: the :class:`~nonlin_explorer.ui.network_view.NetworkView` inside Panel apps.

The same front end (``nonlin_explorer/static/network_view.js``, built from ``js/src/network_view.ts``) runs in
Panel's :class:`panel.custom.AnyWidgetComponent`, which gives an anywidget ``render({model, el})`` its
``model.get/on/off/set/save_changes`` in a notebook and under ``panel serve`` alike (no ipywidgets_bokeh, no
CDN: the bundle is served by the Panel server or inlined in the notebook output).

The Python side is a headless :class:`NetworkView` (no Jupyter comm): it does everything it does as a
widget (layout, slopes and states read off the gates by its throttle threads, clicks through
``session.toggle``). The pane only copies its changed state into Panel parameters when :meth:`sync` is
called on the document's thread (the dashboard calls it from its periodic refresh), so Bokeh documents are
never touched from another thread. Clicks come back as the synced ``request`` property (this host has no
custom messages from the browser) and go to :meth:`NetworkView.handle_message`.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from pathlib import Path
from typing import Any

import panel as pn
import param

from nonlin_explorer.ui.network_view import _STATIC, NetworkView

__all__ = ["NetworkViewPane", "HeadlessComm"]

#: The NetworkView traits the front end reads, mirrored as parameters of the pane.
SYNCED = ("layers", "blocks", "slopes", "states", "activations", "tol", "title", "status", "step", "max_rows")
_BINARY = ("slopes", "states", "activations")
_IDS = itertools.count()


class HeadlessComm:
    """Stands in for a Jupyter comm so that a NetworkView opens none (its state goes to the pane instead)."""

    kernel = None

    def __init__(self) -> None:
        self.comm_id = f"nonlin-explorer-headless-{next(_IDS)}"

    def on_msg(self, callback) -> None:
        pass

    def send(self, *args, **kwargs) -> None:
        pass

    def close(self, *args, **kwargs) -> None:
        pass


def _plain(name: str, value: Any) -> Any:
    """A trait value as Bokeh serializes it (memoryviews become bytes: an ArrayBuffer in the browser)."""
    if name in _BINARY and isinstance(value, dict) and value.get("view") is not None:
        return {**value, "view": bytes(value["view"])}
    if name in ("layers", "blocks"):
        return [dict(v) for v in value]
    return value


_CSS = (_STATIC / "network_view.css").read_text(encoding="utf-8") if (_STATIC / "network_view.css").is_file() else ""


class NetworkViewPane(pn.custom.AnyWidgetComponent):
    """Every unit of a session's model, coloured by slope, clickable: a Panel component.

    ``NetworkViewPane(session)`` (or a linearized model) builds a headless :class:`NetworkView`;
    ``NetworkViewPane(view=existing_view)`` mirrors one you made. Call :meth:`sync` on the document's thread
    to push what changed (the training dashboard does, ``rate`` times a second).
    """

    _esm = _STATIC / "network_view.js"
    _bundle = _STATIC / "network_view.js"
    _stylesheets = [_CSS, ":host { display: block; }"]

    layers = param.List(default=[])
    blocks = param.List(default=[])
    slopes = param.Dict(default={})
    states = param.Dict(default={})
    activations = param.Dict(default={})
    tol = param.Number(default=1e-3)
    title = param.String(default="")
    status = param.String(default="model")
    step = param.Integer(default=0)
    max_rows = param.Integer(default=0)
    request = param.Dict(default={}, doc="the latest click from the browser, numbered by its 'seq'")

    def __init__(self, model_or_session: Any = None, *, view: NetworkView | None = None, max_rate: float = 15.0,
                 **params):
        if view is None:
            if model_or_session is None:
                raise TypeError("NetworkViewPane needs a session, a model or view=")
            view = NetworkView(model_or_session, max_rate=max_rate, comm=HeadlessComm())
        params.setdefault("sizing_mode", "stretch_width")
        params.setdefault("min_height", 220)
        super().__init__(**params)
        self.view = view
        self._dirty: set[str] = set(SYNCED)
        self._lock = threading.Lock()
        self.requests = 0
        self.errors: list[str] = []
        view.observe(self._on_trait, names=list(SYNCED))
        self.sync()
        self.param.watch(self._on_request, "request")

    def _get_properties(self, doc):
        props = super()._get_properties(doc)
        if props.get("bundle") == "url":
            # Served apps would load the bundle from a component URL relative to this module, which cannot
            # reach ../static: inline it, as in a notebook (pre-built: the browser does not compile it).
            props.update(bundle=hashlib.sha256(str(self._bundle).encode()).hexdigest(), css_bundle=None,
                         esm=Path(self._bundle).read_text(encoding="utf-8"))
        return props

    @classmethod
    def _process_importmap(cls):
        return {"imports": {}, "scopes": {}}  # the bundle imports nothing (Panel's React entries are CDN URLs)

    def _on_trait(self, change) -> None:  # any thread (the view's throttle threads): only marks
        with self._lock:
            self._dirty.add(change["name"])

    def sync(self) -> bool:
        """Copy the view's changed state into the pane (call on the document's thread). True if anything."""
        with self._lock:
            names, self._dirty = self._dirty, set()
        if not names:
            return False
        self.param.update({n: _plain(n, getattr(self.view, n)) for n in SYNCED if n in names})
        return True

    def _on_request(self, event) -> None:
        content = dict(event.new or {})
        if not content:
            return
        content.pop("seq", None)
        self.requests += 1
        self._reply(self.view.handle_message(content))

    def _handle_msg(self, data: Any) -> None:  # a Panel that delivers model.send itself
        self._reply(self.view.handle_message(data))

    def _reply(self, reply) -> None:
        if reply is not None:
            self.errors.append(reply["message"])
            self.send(reply)

    def close(self) -> None:
        """Detach from the session (safe to call twice)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.view.unobserve(self._on_trait, names=list(SYNCED))
        self.view.close()
