"""What the rest of the machine does while a benchmark runs: the 1-minute load average less this process's own
share, so that a line is labelled ``quiet`` only when other processes left the cores free (imported by the
``bench_*.py`` scripts, which run from this folder).

The kernel's 1-minute load average counts every runnable thread, the benchmark's own included: one busy thread
alone lifts it toward 1 within a minute, so a raw threshold of 0.5 would never call a running benchmark quiet. The
load is therefore sampled once before the first measurement (:attr:`OtherLoad.before`), and later readings subtract
this process's share: its CPU use since the start (CPU seconds over wall seconds, which counts every thread it runs)
times ``1 - exp(-t / 60)``, how far the kernel's exponential average has moved toward it after ``t`` seconds. A
thread of ours that waits for a core counts as another process's load here, so a contended run reads as loaded.
"""

from __future__ import annotations

import math
import os
import time

#: Below this load from other processes a line is labelled quiet.
QUIET_BELOW = 0.5


class OtherLoad:
    """The 1-minute load average of the other processes on this machine, from the moment it is made."""

    def __init__(self, children: bool = False) -> None:
        #: Count finished child processes' CPU as ours too (benchmarks that measure in subprocesses); a CPU hog is a
        #: child as well, so read the label before the hog is reaped.
        self.children = children
        self.start_wall, self.start_cpu = time.monotonic(), self._cpu()
        self.before = os.getloadavg()[0]  # sampled before any measurement: nothing of ours is in it yet

    def own(self) -> float:
        """This process's estimated share of the 1-minute load average now."""
        wall = time.monotonic() - self.start_wall
        if wall <= 0:
            return 0.0
        busy = (self._cpu() - self.start_cpu) / wall  # mean busy threads since the start
        return busy * (1.0 - math.exp(-wall / 60.0))

    def _cpu(self) -> float:
        t = os.times()
        return t.user + t.system + ((t.children_user + t.children_system) if self.children else 0.0)

    def others(self) -> float:
        """The load average less this process's share (never below 0)."""
        return max(0.0, os.getloadavg()[0] - self.own())

    def label(self) -> str:
        """``quiet (others' load X)`` below :data:`QUIET_BELOW`, else ``loaded, others' load X``."""
        return label_of(self.others())


def label_of(load: float) -> str:
    """The line label for other processes' load ``load`` (see :meth:`OtherLoad.label`)."""
    return f"quiet (others' load {load:.2f})" if load < QUIET_BELOW else f"loaded, others' load {load:.1f}"
