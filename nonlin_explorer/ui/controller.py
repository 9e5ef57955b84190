"""The base of every live view's logic: a :class:`~nonlin_explorer.ui.live_state.LiveState`, requests from the
page, and periodic work. No UI library here: hosts (:mod:`nonlin_explorer.ui.hosts`) put a controller on a wire.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, ClassVar

from nonlin_explorer.ui.live_state import Field, LiveState

#: The built front-end bundles (esbuild output of ``js/``; git-ignored, built at install time).
STATIC = Path(__file__).resolve().parent.parent / "static"


class RequestError(ValueError):
    """A request from the page that the controller refuses (the page shows the message and rolls back)."""


class Controller:
    """A view's state and behaviour, independent of the host that shows it.

    Subclasses set ``FIELDS`` (the synced state), ``BUNDLE`` (the ES module's name in ``static/``, without
    ``.js``) and implement :meth:`handle` (one request from the page) and, when they have periodic work,
    :meth:`tick` (called by the host ``rate`` times a second on its flush thread).
    """

    FIELDS: ClassVar[tuple[Field, ...]] = ()
    BUNDLE: ClassVar[str] = ""
    rate: float = 10.0
    #: The most flushes per second a host makes when woken by changes (clicks answered without waiting a tick).
    max_rate: float = 30.0

    def __init__(self) -> None:
        self.state = LiveState(self.FIELDS)
        self.closed = False

    def tick(self) -> None:
        """Periodic work on the host's flush thread (drain buffers, advance clocks). Default: nothing."""

    def handle(self, message: dict[str, Any]) -> None:
        """Act on one request from the page; raise :class:`RequestError` (or ``ValueError``) to refuse it."""
        raise RequestError(f"unknown request {message.get('type')!r}")

    def close(self) -> None:
        self.closed = True

    # -- requests, as every host delivers them ---------------------------------------------------------
    def receive(self, message: Any) -> None:
        """Handle ``message`` and answer it: ``{"type": "ack", "id"}`` when done, ``{"type": "error", "id",
        "message"}`` when refused (the page reconciles its optimistic state with these)."""
        rid = message.get("id") if isinstance(message, dict) else None
        try:
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise RequestError(f"a request must be an object with a 'type', got {message!r}")
            self.handle(message)
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError, OSError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self.state.post({"type": "error", "id": rid, "message": str(text)})
            return
        except Exception as exc:  # a bug: say so in the page and on stderr, never kill the kernel
            traceback.print_exc()
            self.state.post({"type": "error", "id": rid, "message": f"{type(exc).__name__}: {exc}"})
            return
        if rid is not None:
            self.state.post({"type": "ack", "id": rid})
