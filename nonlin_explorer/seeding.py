"""A run's random numbers come from its seed only, never from what other threads draw at the same moment.

A run's data order comes from its own ``torch.Generator``. torch offers no generator argument for two other draws:
a module's initialisation when it is constructed (``nn.init``) and dropout (or RReLU) in training. Both use the
process-wide CPU generator, which another thread (a second run, a notebook cell) may draw from or reseed meanwhile.
So a run builds its model inside :func:`seeded`: under one process-wide lock, with the global generator seeded
from the run's seed and put back as it was on leaving. The seeded stream is the one ``torch.manual_seed(seed)``
gives, so a run draws the same initial weights as a run seeded that way. A model that draws in training keeps its
own generator state (:func:`draws_in_training`) and runs each step inside :func:`drawing_from`, which swaps that
state in under the same lock: such runs take their steps one at a time across threads.

Limits: code outside this package that draws from the global generator while a run is being built (or, for a
model with dropout, while it steps) shifts that run's stream; on a CUDA device only the CPU stream (initialisation)
is kept per run; the numbers are bit-identical for a fixed intra-op thread count (:mod:`threads`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
from torch import nn

_lock = threading.RLock()

#: Modules that draw random numbers in training mode when their probability is above 0.
_RANDOM_IN_TRAINING = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                       nn.FeatureAlphaDropout)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with the global CPU generator seeded with ``seed`` (as ``torch.manual_seed`` seeds it), other
    threads' runs held off, and the generator's previous state back afterwards."""
    with _lock, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))
        yield


def global_state() -> torch.Tensor:
    """The global CPU generator's state now (inside :func:`seeded`: the run's stream where the block has got to)."""
    return torch.get_rng_state()


@contextlib.contextmanager
def drawing_from(state: torch.Tensor) -> Iterator[torch.Tensor]:
    """Run the block with the global CPU generator at ``state``; yields a tensor that holds the state reached at
    the end (``state`` is updated in place), and puts the generator's previous state back."""
    with _lock, torch.random.fork_rng(devices=[]):
        torch.set_rng_state(state)
        try:
            yield state
        finally:
            state.copy_(torch.get_rng_state())


def draws_in_training(model: nn.Module) -> bool:
    """True when ``model`` draws random numbers in a training step (dropout, RReLU, attention dropout)."""
    for m in model.modules():
        if isinstance(m, _RANDOM_IN_TRAINING) and m.p > 0:
            return True
        if isinstance(m, nn.MultiheadAttention) and m.dropout > 0:
            return True
        if isinstance(m, nn.RReLU):
            return True
    return False
