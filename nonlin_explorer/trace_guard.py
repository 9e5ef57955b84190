"""torch.fx traces and the package's forward passes never overlap, process-wide.

torch.fx patches ``nn.Module.__call__`` (and some functions) for every thread while it traces, so a forward pass on
another thread during a trace runs into the tracer (``NameError: module is not installed as a submodule``) and two
traces at once undo each other's patches. :func:`fx_tracing` wraps every trace the package does; :func:`forward_pass`
wraps its training steps, evaluations and probes (``plumbing.run_model`` included).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class _TraceGuard(contextlib.ContextDecorator):
    """A readers-writer lock between torch.fx traces (writers) and forward passes (readers).

    Many passes may run at once; a trace waits until none runs, blocks new ones while it waits and traces, and runs
    alone. Both nest on one thread: a pass inside a trace (the tracer's own evaluation) or inside a pass runs at
    once, and a trace started inside a pass (a metric that traces) stops counting that pass while it waits, so two
    of them never wait on each other.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the fast path takes it bare; waits go through the condition on it
        self._cond = threading.Condition(self._lock)
        self._passes = 0  # threads inside a pass (outermost), not counting the tracing thread
        self._tracer: int | None = None  # the thread tracing
        self._waiting = 0  # traces waiting for the passes to end
        self._local = threading.local()

    def __enter__(self) -> None:
        """Enter a forward (and backward) pass: never while a trace runs (``with forward_pass():``)."""
        local = self._local
        depth = getattr(local, "depth", 0)
        if depth or self._tracer == threading.get_ident():
            local.depth = depth + 1
            return
        with self._lock:
            while self._tracer is not None or self._waiting:
                self._cond.wait()
            self._passes += 1
        local.depth = 1
        local.counted = True

    def __exit__(self, *exc) -> None:
        local = self._local
        local.depth -= 1
        if local.depth == 0 and getattr(local, "counted", False):
            local.counted = False
            with self._lock:
                self._passes -= 1
                if not self._passes and self._waiting:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def tracing(self) -> Iterator[None]:
        """Run a torch.fx trace: alone, while no pass runs."""
        me = threading.get_ident()
        if self._tracer == me:  # a trace inside a trace (linearize inside an analysis)
            yield
            return
        in_pass = getattr(self._local, "counted", False)
        with self._cond:
            if in_pass:  # this thread's pass waits for the trace: stop counting it
                self._passes -= 1
                self._cond.notify_all()
            self._waiting += 1
            try:
                while self._tracer is not None or self._passes:
                    self._cond.wait()
            except BaseException:
                self._passes += in_pass
                raise
            finally:
                self._waiting -= 1
                self._cond.notify_all()
            self._tracer = me
        try:
            yield
        finally:
            with self._cond:
                self._tracer = None
                if in_pass:
                    self._passes += 1
                self._cond.notify_all()


_guard = _TraceGuard()


def forward_pass() -> _TraceGuard:
    """``with forward_pass():`` (or ``@forward_pass()``) around a forward pass the package runs: a training step, an
    evaluation, a probe. A class, not a generator: it costs a lock round trip per pass, nothing more."""
    return _guard


#: ``with fx_tracing():`` around every torch.fx trace the package runs.
fx_tracing = _guard.tracing
