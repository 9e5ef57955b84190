"""Worker threads end before the interpreter does.

A daemon thread still inside torch when Python finalizes aborts the process ("terminate called without an active
exception", exit code 134): a script that builds a compression explorer or starts a training session and simply ends
would crash. Objects that own such threads register here; at exit each is asked to stop and joined (with a timeout).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable

_LIVE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def stop_at_exit(obj: object, stop: Callable[[object], None]) -> None:
    """Call ``stop(obj)`` at interpreter exit if ``obj`` is still alive then (held weakly: no leak)."""
    with _LOCK:
        _LIVE[obj] = stop


@atexit.register
def _stop_all() -> None:
    with _LOCK:
        items = list(_LIVE.items())
        _LIVE.clear()
    for obj, stop in items:
        try:
            stop(obj)
        except Exception:  # exiting anyway: one failure must not keep the others running
            pass
