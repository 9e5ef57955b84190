"""Two repairs to Panel (1.9) apps shown in a notebook output, installed by :func:`install` (idempotent).

1. **Patches in order.** Panel sends the kernel's changes over a comm that the page opens after it has drawn
   the output. A patch made before that is retried 0.1 s later, while a patch made after the comm opened is
   sent at once: the older patch then arrives last and overwrites the newer. The compression explorer's status
   stayed at "optimizing ..., relative loss 0.1355" in the page after the kernel had shown "done" (2 of 3 quiet
   runs of a copy of the Present test in tests/ui/test_compression_explorer_lab.py; the page's Bokeh model held
   the stale text). Here every patch for a comm waits behind the ones already waiting, and they leave in the order
   they were made.
2. **No stylesheets from the internet.** ``pn.extension(inline=True)`` inlines Panel's own stylesheets in the
   first render, but a pane that updates (a Markdown table, an alert) re-sends them as links to
   cdn.holoviz.org, which an offline page cannot load (and a page behind a slow resolver waits for). Updates
   here carry the same inline stylesheets as the first render (one shared model per file, so a repeated update
   sends nothing new).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

_INSTALLED = False
_LOCK = threading.Lock()
#: id(comm) -> (comm, patches waiting for it to open, oldest first)
_WAITING: dict[int, tuple[Any, deque]] = {}
_INLINE: dict[str, Any] = {}
RETRY_S = 0.1


def _is_open(comm) -> bool:
    return bool(getattr(comm, "_comm", None))


def ordered_push(doc, comm, binary: bool = True, msg=None) -> None:
    """Panel's ``push`` that keeps patches in order: a patch waits while the comm is closed or older ones wait."""
    from panel.io import notebook

    if msg is None:
        msg = notebook.diff(doc, binary=binary)
    if msg is None:
        return
    with _LOCK:
        waiting = _WAITING.get(id(comm))
        if waiting is None:
            if _is_open(comm):
                notebook.send(comm, msg)
                return
            waiting = _WAITING[id(comm)] = (comm, deque())
            _schedule(comm)
        waiting[1].append(msg)
        if _is_open(comm):  # opened since the timer last looked: everything leaves now, oldest first
            _send_waiting(comm)


def _schedule(comm) -> None:
    try:
        from tornado.ioloop import IOLoop

        IOLoop.current().call_later(RETRY_S, _drain, comm)
    except Exception:  # no event loop: what waits leaves with the first push after the comm opened
        pass


def _send_waiting(comm) -> None:
    """Send every patch waiting for ``comm``, oldest first (holding _LOCK)."""
    from panel.io import notebook

    queue = _WAITING.pop(id(comm))[1]
    while queue:
        notebook.send(comm, queue.popleft())


def _drain(comm) -> None:
    """The timer: send what waits for ``comm`` once it is open; else look again in RETRY_S."""
    with _LOCK:
        if id(comm) not in _WAITING:
            return
        if _is_open(comm):
            _send_waiting(comm)
        else:
            _schedule(comm)


def waiting_patches(comm) -> int:
    """How many patches wait for ``comm`` to open (0 when none)."""
    with _LOCK:
        waiting = _WAITING.get(id(comm))
        return len(waiting[1]) if waiting else 0


def inline_stylesheet(stylesheet):
    """Panel's own stylesheet ``stylesheet`` (an ImportedStyleSheet on its CDN) as the inline model the first
    render used, shared per file; anything else unchanged."""
    from bokeh.models import ImportedStyleSheet
    from panel.io.notebook import replace_inline_css

    if not isinstance(stylesheet, ImportedStyleSheet):
        return stylesheet
    url = stylesheet.url.split("?")[0]
    with _LOCK:
        if url not in _INLINE:
            inline = replace_inline_css(stylesheet)
            if inline is stylesheet:  # not one of Panel's files: leave it
                return stylesheet
            _INLINE[url] = inline
        return _INLINE[url]


def _inline_all(properties: dict) -> None:
    if isinstance(properties.get("stylesheets"), list):
        properties["stylesheets"] = [inline_stylesheet(s) for s in properties["stylesheets"]]


def install() -> bool:
    """Install both repairs into the loaded Panel; False when this Panel lacks what they replace."""
    global _INSTALLED
    if _INSTALLED:
        return True
    try:
        import panel.io.notebook as notebook
        import panel.reactive as reactive
        from panel.config import config
    except ImportError:
        return False
    if not all(hasattr(notebook, n) for n in ("push", "diff", "send", "replace_inline_css")) or \
            not hasattr(reactive.Syncable, "_update_model") or not hasattr(reactive.Reactive, "_get_properties"):
        return False
    import importlib

    panel_push = notebook.push
    for name in ("panel.io.notebook", "panel.reactive", "panel.pane.base", "panel.pane.plot", "panel.io.datamodel"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "push", None) is panel_push:  # each module imported Panel's push by name
            module.push = ordered_push

    update_model = reactive.Syncable._update_model
    get_properties = reactive.Reactive._get_properties

    def _update_model(self, events, msg, root, model, doc, comm):
        """A parameter change (alert_type, css_classes...) on a model in a notebook output."""
        if comm is not None and config.inline:
            _inline_all(msg)
        return update_model(self, events, msg, root, model, doc, comm)

    def _get_properties(self, doc):
        """A pane's properties: what it draws first, and sends again with each new ``object``."""
        properties = get_properties(self, doc)
        if config.inline and not getattr(doc, "session_context", None):  # not a served page: a notebook output
            _inline_all(properties)
        return properties

    reactive.Syncable._update_model = _update_model
    reactive.Reactive._get_properties = _get_properties
    _INSTALLED = True
    return True
