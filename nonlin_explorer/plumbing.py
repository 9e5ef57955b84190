"""Model plumbing written once: run a model in eval mode and put its mode back, install forward hooks and always
remove them, and the index of a model's gates (their names and forward order, set once by ``linearize``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from nonlin_explorer.gates import GATE_INDEX, LinearizableActivation
from nonlin_explorer.trace_guard import forward_pass

__all__ = ["GATE_INDEX", "RESIDUAL_MARKERS", "eval_mode", "forward_hooks", "keep_residual_markers", "run_model",
           "set_gate_index"]


#: Attributes that mark a module as a residual block (ours: ``shortcut``; torchvision: ``downsample``, ``None``
#: when the skip is the identity). The network view draws the blocks; linearize's fx route keeps the markers.
RESIDUAL_MARKERS = ("shortcut", "downsample")


def keep_residual_markers(original: nn.Module, traced: nn.Module) -> None:
    """Copy ``original``'s residual markers that are ``None`` onto the same-named modules of ``traced`` (a torch.fx
    trace keeps submodules, not plain attributes, so a block whose skip is the identity would lose its mark)."""
    traced_modules = dict(traced.named_modules())
    for name, module in original.named_modules():
        target = traced_modules.get(name)
        if target is None or target is module:
            continue
        for attr in RESIDUAL_MARKERS:
            if attr in vars(module) and getattr(module, attr) is None and not hasattr(target, attr):
                setattr(target, attr, None)


@contextlib.contextmanager
def eval_mode(model: nn.Module, *, grad: bool = False) -> Iterator[nn.Module]:
    """The block runs ``model`` in eval mode (no BatchNorm statistics updates, no dropout), with grad off unless
    ``grad``; its train/eval mode is put back afterwards, error or not."""
    was = model.training
    model.eval()
    try:
        with torch.set_grad_enabled(grad):
            yield model
    finally:
        model.train(was)


@contextlib.contextmanager
def forward_hooks(hooks: Iterable[tuple[nn.Module, Callable]], *, pre: bool = False) -> Iterator[None]:
    """Install ``(module, hook)`` pairs as forward hooks (``pre``: forward pre-hooks) for the block; every one is
    removed afterwards, error or not."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_pre_hook(hook) if pre else module.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def run_model(model: nn.Module, example_input):
    """``model(*example_input)`` for a tuple or list, ``model(example_input)`` otherwise (never during a torch.fx trace
    on another thread: :func:`~nonlin_explorer.threads.forward_pass`)."""
    with forward_pass():
        if isinstance(example_input, (tuple, list)):
            return model(*example_input)
        return model(example_input)


def set_gate_index(model: nn.Module, order: Sequence[str]) -> None:
    """Record the gates' qualified names in forward order and write each gate's ``name`` (once, here: queries such
    as ``gates(model)`` only read)."""
    modules = {name: m for name, m in model.named_modules() if isinstance(m, LinearizableActivation)}
    missing = [n for n in order if n not in modules]
    if missing:
        raise ValueError(f"no gate named {missing[0]!r} in the model")
    for name, m in modules.items():
        m.name = name
    rest = [n for n in modules if n not in order]  # gates the example input did not reach: after the others
    setattr(model, GATE_INDEX, tuple(order) + tuple(rest))
