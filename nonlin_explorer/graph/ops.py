"""What each traced op does to units: one table of op kinds, read by the unit-graph builder and by ``collapse``,
and the registry of user modules that should be leaves of the graph.

Op kinds (how units flow): ``activation`` (unit-wise, nonlinear), ``per_unit`` (unit-wise, linear: dropout,
normalization, casts), ``pool`` (over positions, units kept), ``shape`` (a view or copy that moves units), ``merge``
(elementwise between operands: residual additions, products), ``reduce``, ``cat``, ``softmax``. Register your own
modules with :func:`register_leaf`.
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

#: Modules traced as leaves with a hand-written unit subgraph (besides torch.nn's own leaves and the gates).
STRUCTURED_LEAVES = (nn.TransformerEncoderLayer, nn.TransformerEncoder, nn.MultiheadAttention)

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.SELU, nn.CELU,
                       nn.LeakyReLU, nn.PReLU, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish,
                       nn.RReLU, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid)
PER_UNIT_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                     nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
                     nn.InstanceNorm2d, nn.InstanceNorm3d, nn.RMSNorm)
POOL_MODULES = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AvgPool1d: 1, nn.AvgPool2d: 2,
                 nn.AvgPool3d: 3, nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
                 nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3}
SHAPE_MODULES = (nn.Flatten, nn.Unflatten)

ACTIVATION_FUNCTIONS = {F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.gelu, F.silu, torch.tanh, F.tanh,
                         torch.sigmoid, F.sigmoid, F.elu, F.selu, F.celu, F.leaky_relu, F.softplus, F.hardtanh,
                         F.hardswish, F.hardsigmoid, F.mish, F.prelu, F.logsigmoid}
ACTIVATION_METHODS = {"relu", "relu_", "tanh", "tanh_", "sigmoid", "sigmoid_"}
MERGE_FUNCTIONS = {operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
                    operator.truediv, operator.itruediv, torch.add, torch.sub, torch.subtract, torch.mul,
                    torch.multiply, torch.div, torch.true_divide}
MERGE_METHODS = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "__add__", "__radd__", "__sub__",
                  "__rsub__", "__mul__", "__rmul__", "__truediv__"}
PER_UNIT_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.batch_norm,
                       F.layer_norm, F.group_norm, F.instance_norm, F.rms_norm, operator.neg, torch.neg,
                       torch.clone, torch.Tensor.contiguous}
PER_UNIT_METHODS = {"to", "float", "double", "half", "bfloat16", "type", "type_as", "clone", "detach",
                     "neg", "__neg__", "cuda", "cpu", "requires_grad_"}
POOL_FUNCTIONS = {F.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3, F.max_pool1d: 1, F.max_pool2d: 2,
                   F.max_pool3d: 3, F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2, F.adaptive_avg_pool3d: 3,
                   F.adaptive_max_pool1d: 1, F.adaptive_max_pool2d: 2, F.adaptive_max_pool3d: 3}
SHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.swapaxes, torch.squeeze,
                    torch.unsqueeze, torch.movedim, torch.t, operator.getitem, torch.unflatten, torch.chunk,
                    torch.split, torch.tensor_split}
SHAPE_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "swapaxes", "squeeze", "unsqueeze",
                  "contiguous", "expand", "expand_as", "repeat", "t", "movedim", "unflatten", "view_as",
                  "reshape_as", "__getitem__", "chunk", "split", "tensor_split"}
REDUCE_FUNCTIONS = {torch.mean, torch.sum, torch.amax, torch.amin}
REDUCE_METHODS = {"mean", "sum", "amax", "amin"}
CAT_FUNCTIONS = {torch.cat, torch.concat, torch.concatenate}
SOFTMAX_FUNCTIONS = {F.softmax, torch.softmax, F.log_softmax, torch.log_softmax}

#: Elementwise ops by what they compute (collapse composes additions, subtractions and scalar factors exactly).
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
ADD_METHODS = {"add", "add_", "__add__", "__radd__"}
SUB_FUNCTIONS = {operator.sub, operator.isub, torch.sub, torch.subtract}
SUB_METHODS = {"sub", "sub_", "__sub__"}
MUL_FUNCTIONS = {operator.mul, operator.imul, torch.mul, torch.multiply}
MUL_METHODS = {"mul", "mul_", "__mul__", "__rmul__"}
DIV_FUNCTIONS = {operator.truediv, operator.itruediv, torch.div, torch.true_divide}
DIV_METHODS = {"div", "div_", "__truediv__"}
NEG_FUNCTIONS = {operator.neg, torch.neg}
NEG_METHODS = {"neg", "__neg__"}


def is_op(node: fx.Node, functions: set, methods: set) -> bool:
    """Whether ``node`` calls one of ``functions`` (call_function) or ``methods`` (call_method by name)."""
    if node.op == "call_function":
        return node.target in functions
    return node.op == "call_method" and node.target in methods


#: Leaf kinds a user module can be registered with: ``"dense"``: every input unit feeds every output unit (over the
#: last dim), a linear map; ``"per_unit"``: unit ``i`` feeds unit ``i`` only, linearly (in eval mode: stochastic
#: depth, a custom dropout or scale).
LEAF_KINDS = ("dense", "per_unit")
_LEAVES: dict[type, str] = {}
#: Modules of libraries this package does not import, by qualified class name: torchvision's stochastic depth is
#: the identity in eval mode; Swin's windowed attention is traced like ``nn.MultiheadAttention`` (dense), its
#: patch merging as the Linear it ends in.
NAMED_LEAVES: dict[str, str] = {
    "torchvision.ops.stochastic_depth.StochasticDepth": "per_unit",
    "torchvision.models.swin_transformer.ShiftedWindowAttention": "dense",
    "torchvision.models.swin_transformer.ShiftedWindowAttentionV2": "dense",
    "torchvision.models.swin_transformer.PatchMerging": "dense",  # 2x2 positions into channels, then a Linear
    "torchvision.models.swin_transformer.PatchMergingV2": "dense",
}


def register_leaf(cls: type[nn.Module], kind: str = "dense") -> type[nn.Module]:
    """Trace modules of ``cls`` as leaves of the unit graph, of ``kind`` (see :data:`LEAF_KINDS`). Usable as a class
    decorator: ``@register_leaf`` or ``register_leaf(MyBlock, "dense")``."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_leaf takes an nn.Module subclass, got {cls!r}")
    if kind not in LEAF_KINDS:
        raise ValueError(f"unknown leaf kind {kind!r}; kinds: {', '.join(LEAF_KINDS)}")
    _LEAVES[cls] = kind
    return cls


def leaf_kind(m: nn.Module) -> str | None:
    """The registered kind of ``m``'s class (or of a base class; :data:`NAMED_LEAVES` by qualified name), else
    None."""
    for cls in type(m).__mro__:
        if cls in _LEAVES:
            return _LEAVES[cls]
        named = NAMED_LEAVES.get(f"{cls.__module__}.{cls.__qualname__}")
        if named is not None:
            return named
    return None


def is_registered_leaf(m: nn.Module) -> bool:
    return leaf_kind(m) is not None


def op_name(node: fx.Node, model: nn.Module | None = None) -> str:
    if node.op == "call_module" and model is not None:
        return f"module {type(model.get_submodule(node.target)).__name__}"
    if node.op == "call_method":
        return f"method Tensor.{node.target}"
    target = node.target
    mod = getattr(target, "__module__", None) or ""
    return f"function {mod + '.' if mod else ''}{getattr(target, '__name__', str(target))}"
