"""The one table of activations: which ones ``linearize`` gates by default (and the kind of each), and which ones the
unit graph counts as activations when they are left ungated. Read by :mod:`~nonlin_explorer.gates`,
:mod:`~nonlin_explorer.linearize` and :mod:`~nonlin_explorer.graph.ops`, so the three never disagree.

An activation to gate is one entry in :data:`GATED_MODULES` (a module) or :data:`GATED_FUNCTIONS` (a function or a
``torch.Tensor`` method; an in-place form also in :data:`OUT_OF_PLACE`). One the unit graph should know, but that is
not gated by default, goes into :data:`UNGATED_MODULES` or :data:`UNGATED_FUNCTIONS`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Activation modules gated by default, and the kind each one is.
GATED_MODULES: dict[type, str] = {
    nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.ReLU6: "relu6", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.Hardswish: "hardswish", nn.ELU: "elu", nn.SELU: "selu", nn.CELU: "celu", nn.Mish: "mish",
    nn.Softplus: "softplus", nn.Tanh: "tanh", nn.Hardtanh: "hardtanh",
}
#: Functional activations (functions and ``torch.Tensor`` methods) gated by default when called outside an
#: activation module, and their kinds. torch.tanh and sigmoids are left alone: as functions they are as often gates
#: of products (LSTMs, squeeze-excitation) as activations.
GATED_FUNCTIONS: dict = {
    F.relu: "relu", F.relu_: "relu", torch.relu: "relu", torch.relu_: "relu", torch.Tensor.relu: "relu",
    torch.Tensor.relu_: "relu", F.leaky_relu: "leaky_relu", F.leaky_relu_: "leaky_relu", F.relu6: "relu6",
    F.gelu: "gelu", F.silu: "silu", F.hardswish: "hardswish", F.elu: "elu", F.elu_: "elu", F.selu: "selu",
    F.celu: "celu", F.mish: "mish", F.softplus: "softplus",
}
#: The out-of-place form a gate calls for an in-place (or method) activation.
OUT_OF_PLACE: dict = {F.relu_: F.relu, torch.relu_: torch.relu, torch.Tensor.relu_: torch.relu,
                      torch.Tensor.relu: torch.relu, F.leaky_relu_: F.leaky_relu, F.elu_: F.elu}

#: Activation modules not gated by default that the unit graph still counts as activations (fixed nonlinear units).
UNGATED_MODULES: tuple[type, ...] = (nn.Sigmoid, nn.PReLU, nn.Hardsigmoid, nn.RReLU, nn.Softsign, nn.Tanhshrink,
                                     nn.LogSigmoid)
#: Functional activations not gated by default that the unit graph still counts as activations.
UNGATED_FUNCTIONS: frozenset = frozenset({
    torch.tanh, F.tanh, torch.sigmoid, F.sigmoid, F.hardtanh, F.hardsigmoid, F.prelu, F.logsigmoid,
    torch.Tensor.tanh, torch.Tensor.tanh_, torch.Tensor.sigmoid, torch.Tensor.sigmoid_,
})

#: Every activation module the project knows (gated or not).
ACTIVATION_MODULES: tuple[type, ...] = (*GATED_MODULES, *UNGATED_MODULES)
_ALL_FUNCTIONS = frozenset(GATED_FUNCTIONS) | UNGATED_FUNCTIONS


def _is_tensor_method(fn) -> bool:
    return getattr(torch.Tensor, getattr(fn, "__name__", ""), None) is fn


#: Every functional activation the project knows, as torch.fx records a call to it: functions (``call_function``
#: targets) and ``torch.Tensor`` method names (``call_method`` targets).
ACTIVATION_FUNCTIONS: frozenset = frozenset(f for f in _ALL_FUNCTIONS if not _is_tensor_method(f))
ACTIVATION_METHODS: frozenset[str] = frozenset(f.__name__ for f in _ALL_FUNCTIONS if _is_tensor_method(f))
