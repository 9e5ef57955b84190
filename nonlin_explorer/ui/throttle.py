"""Coalesce update requests and run them on a daemon thread, at most ``rate`` times a second.

Training threads and comm handlers only *request* an update (a set insertion under a lock, microseconds);
the work (reading gates, a forward pass, sending comm messages) happens here, off both threads.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable

from nonlin_explorer.lifecycle import stop_at_exit


class Throttle:
    """Call ``fn(reasons)`` on a daemon thread whenever something was requested, at most ``rate`` Hz.

    Requests that arrive while a call is pending or running are merged into the next call's ``reasons``.
    """

    def __init__(self, fn: Callable[[set[str]], None], rate: float, name: str = "nonlin-explorer-throttle"):
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of updates per second, got {rate!r}")
        self._fn = fn
        self.interval = 1.0 / float(rate)
        self._name = name
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._busy = False
        self._closed = False
        self._last = -math.inf
        self._thread: threading.Thread | None = None
        self.calls = 0

    def request(self, *reasons: str) -> None:
        """Ask for a call (cheap, never blocks on the work itself)."""
        with self._cond:
            if self._closed:
                return
            self._pending.update(reasons or ("update",))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
                stop_at_exit(self, lambda t: t.close(join=5.0))
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                while not self._closed and (delay := self._last + self.interval - time.monotonic()) > 0:
                    self._cond.wait(delay)  # later requests are merged into this call
                if self._closed:
                    return
                reasons, self._pending = self._pending, set()
                self._busy = True
                self._last = time.monotonic()
            try:
                self._fn(reasons)
            except Exception:  # a failed update must not kill the thread; the next request retries
                traceback.print_exc()
            finally:
                with self._cond:
                    self._busy = False
                    self.calls += 1
                    self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or running (for tests and scripts). False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._busy) and not self._closed:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, join: float = 0.0) -> None:
        """Stop the thread (waiting up to ``join`` seconds for a call in progress); later requests are ignored."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
        thread = self._thread
        if join and thread is not None and thread is not threading.current_thread():
            thread.join(join)

    @property
    def closed(self) -> bool:
        return self._closed
