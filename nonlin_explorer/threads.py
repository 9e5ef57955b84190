"""How many threads torch uses for our small problems.

torch's default intra-op thread count is the number of cores. For the problems this package runs on a CPU (MLPs and
small CNNs, the compression optimizer) that buys little on a quiet machine and costs a lot on a busy one: measured on
the 2-core machine (benchmarks/bench_threads.py), ``compress(N=2000, d=20, M=4)`` takes 0.42 s with two threads and
0.47 s with one when quiet, but 1.57 s against 0.53 s beside another process spinning a core; one epoch-sized MLP
run 0.45 s against 0.17 s. So work below :data:`SMALL_WORK` runs on one thread, for its duration only: the count is
process-wide, so it is set when the first such job starts and restored when the last one ends.

``OMP_NUM_THREADS`` in the environment, or ``NONLIN_EXPLORER_THREADS=keep``, leaves torch's setting alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import torch

#: Multiply-adds per step (or per loss evaluation) below which one thread is used.
SMALL_WORK = 5e7

_lock = threading.Lock()
_holders = 0
_saved: int | None = None


def policy_active() -> bool:
    """False when the user chose the thread count (``OMP_NUM_THREADS`` or ``NONLIN_EXPLORER_THREADS=keep``)."""
    return "OMP_NUM_THREADS" not in os.environ and os.environ.get("NONLIN_EXPLORER_THREADS", "auto") != "keep"


@contextlib.contextmanager
def threads_for(work: float, device: torch.device | str | None = None) -> Iterator[int]:
    """Run the block with one intra-op thread when ``work`` (multiply-adds per step) is small and the work is on the
    CPU; yields the thread count in force. Nested and concurrent uses share one saved value."""
    global _holders, _saved
    small = policy_active() and work < SMALL_WORK and torch.device(device or "cpu").type == "cpu"
    if not small:
        yield torch.get_num_threads()
        return
    with _lock:
        if _holders == 0:
            _saved = torch.get_num_threads()
            if _saved != 1:
                torch.set_num_threads(1)
        _holders += 1
    try:
        yield 1
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _saved is not None:
                if torch.get_num_threads() == 1 and _saved != 1:
                    torch.set_num_threads(_saved)
                _saved = None


@contextlib.contextmanager
def fixed_threads(count: int) -> Iterator[int]:
    """Run the block on exactly ``count`` intra-op threads, whatever the environment, restored afterwards.

    For numbers that must repeat bit for bit: a reduction split over another number of threads rounds differently,
    and training can amplify the last bits into different accuracies. Shares :func:`threads_for`'s lock.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"threads must be a positive integer, got {count!r}")
    with _lock:
        before = torch.get_num_threads()
        if before != count:
            torch.set_num_threads(count)
    try:
        yield count
    finally:
        with _lock:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)


def forward_flops(model: torch.nn.Module, example_input) -> float:
    """Floating-point operations of one forward pass on ``example_input`` (torch's flop counter; 0 if it fails)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode

        from nonlin_explorer.plumbing import eval_mode, run_model

        with eval_mode(model), FlopCounterMode(display=False) as counter:
            run_model(model, example_input)
        return float(counter.get_total_flops())
    except Exception:
        return 0.0
