"""What each traced op does to units: one table of op kinds, read by the unit-graph builder and by ``collapse``,
the registry of user modules that should be leaves of the graph, and the nonlinearity policy.

Op kinds (how units flow): ``activation`` (unit-wise, nonlinear), ``per_unit`` (unit-wise, linear: dropout,
BatchNorm, casts), ``pool`` (over positions, units kept), ``shape`` (a view or copy that moves units), ``merge``
(elementwise between operands: residual additions, products), ``reduce``, ``cat``, ``softmax``. Register your own
modules with :func:`register_leaf`. The policy (:data:`FIXED_NONLINEAR`, :func:`set_nonlinear_policy`) says which
ops without a gate (norms, softmax, max-pool, products, ungated activations) count as fixed nonlinear units.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterable, Iterator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

# Activations come from the one table, shared with the gates (re-exported for the builder).
from nonlin_explorer.activations import ACTIVATION_FUNCTIONS, ACTIVATION_METHODS, ACTIVATION_MODULES  # noqa: F401

#: Modules traced as leaves with a hand-written unit subgraph (besides torch.nn's own leaves and the gates).
STRUCTURED_LEAVES = (nn.TransformerEncoderLayer, nn.TransformerEncoder, nn.MultiheadAttention)

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
PER_UNIT_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                     nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
                     nn.InstanceNorm2d, nn.InstanceNorm3d, nn.RMSNorm)
POOL_MODULES = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AvgPool1d: 1, nn.AvgPool2d: 2,
                 nn.AvgPool3d: 3, nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
                 nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3}
SHAPE_MODULES = (nn.Flatten, nn.Unflatten)

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
#: New tensors shaped like a traced one, whose values do not depend on it: they carry no units.
CONSTANT_FUNCTIONS = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like}
CONSTANT_METHODS = {"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"}
#: Comparisons and masked fills of token ids (BART's shift of its decoder ids): unit by unit on their first traced
#: operand; a mask's own dependence is not drawn.
MASK_FUNCTIONS = {operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge, torch.eq, torch.ne,
                  torch.masked_fill}
MASK_METHODS = {"eq", "ne", "lt", "le", "gt", "ge", "__eq__", "__ne__", "masked_fill", "masked_fill_"}
CAT_FUNCTIONS = {torch.cat, torch.concat, torch.concatenate}
SOFTMAX_FUNCTIONS = {F.softmax, torch.softmax, F.log_softmax, torch.log_softmax}

#: Normalizations that are not affine at inference (BatchNorm in eval mode is, and stays linear).
NORM_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
NORM_FUNCTIONS = {F.layer_norm, F.group_norm, F.rms_norm, F.instance_norm}
MAX_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                    nn.AdaptiveMaxPool3d)
MAX_POOL_FUNCTIONS = {F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
                      F.adaptive_max_pool3d}

#: The nonlinear ops that have no gate, by policy name, and what each covers. Under the policy, each becomes a layer
#: of *fixed* nonlinear units in the unit graph: always nonlinear in APL and core networks, whatever the slopes.
FIXED_NONLINEAR = {
    "activation": "an activation that linearize left ungated (squeeze-excitation sigmoids; GELUs when only ReLUs "
                  "were gated)",
    "softmax": "softmax over the units (a dense layer), and attention's softmax over positions (one unit per head)",
    "norm": "LayerNorm, GroupNorm, RMSNorm and InstanceNorm, one unit per feature (the mixing through the mean and "
            "variance is not drawn as edges)",
    "max_pool": "max-pooling over positions, one unit per channel",
    "product": "the product or quotient of two traced activations: attention weights times values, gated MLPs "
               "(SwiGLU), squeeze-excitation scaling",
}
_policy: set[str] = set(FIXED_NONLINEAR)


def nonlinear_policy() -> frozenset[str]:
    """The ops (names of :data:`FIXED_NONLINEAR`) that count as fixed nonlinear units in graphs built from now on."""
    return frozenset(_policy)


def set_nonlinear_policy(ops: Iterable[str]) -> frozenset[str]:
    """Count exactly ``ops`` (names of :data:`FIXED_NONLINEAR`) as fixed nonlinear units in graphs built from now
    on; the others are treated as linear. Returns the previous policy. ``set_nonlinear_policy(["activation"])``
    is the policy before norms, softmax, max-pool and products were counted."""
    ops = set(ops)
    unknown = ops - set(FIXED_NONLINEAR)
    if unknown:
        raise ValueError(f"unknown nonlinear ops {sorted(unknown)}; known: {', '.join(FIXED_NONLINEAR)}")
    previous = nonlinear_policy()
    _policy.clear()
    _policy.update(ops)
    return previous


@contextlib.contextmanager
def using_nonlinear_policy(ops: Iterable[str]) -> Iterator[frozenset[str]]:
    """:func:`set_nonlinear_policy` for a ``with`` block, restored on exit."""
    previous = set_nonlinear_policy(ops)
    try:
        yield nonlinear_policy()
    finally:
        set_nonlinear_policy(previous)


def counts_as_nonlinear(op: str) -> bool:
    """Whether the policy counts ``op`` (a name of :data:`FIXED_NONLINEAR`) as nonlinear."""
    return op in _policy


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
#: depth, a custom dropout or scale); ``"nonlinear"``: unit ``i`` feeds unit ``i`` through a fixed nonlinearity (an
#: activation of your own, always counted); ``"norm"``: a normalization over the units (counted under the policy's
#: ``"norm"``, e.g. a hand-written RMSNorm); ``"attention"``: self-attention over the last dim with the module's
#: ``num_heads`` heads (queries, keys, values, a softmax unit per head, their product, an output map);
#: ``"attention_heads"``: the same without the output map (the module after it has one: Hugging Face's BERT).
LEAF_KINDS = ("dense", "per_unit", "nonlinear", "norm", "attention", "attention_heads")
_LEAVES: dict[type, str] = {}
#: Modules of libraries this package does not import, by qualified class name: torchvision's stochastic depth is
#: the identity in eval mode; Swin's windowed attention is traced like ``nn.MultiheadAttention``, its
#: patch merging as the Linear it ends in.
NAMED_LEAVES: dict[str, str] = {
    "torchvision.ops.stochastic_depth.StochasticDepth": "per_unit",
    "torchvision.models.swin_transformer.ShiftedWindowAttention": "attention",
    "torchvision.models.swin_transformer.ShiftedWindowAttentionV2": "attention",
    "torchvision.models.swin_transformer.PatchMerging": "dense",  # 2x2 positions into channels, then a Linear
    "torchvision.models.swin_transformer.PatchMergingV2": "dense",
    # Hugging Face transformers: attention as its structure, RMSNorm as a norm, GPT-2's Conv1D as the Linear it is.
    "transformers.models.bert.modeling_bert.BertSelfAttention": "attention_heads",
    "transformers.models.gpt2.modeling_gpt2.GPT2Attention": "attention",
    "transformers.models.llama.modeling_llama.LlamaAttention": "attention",
    "transformers.models.llama.modeling_llama.LlamaRMSNorm": "norm",
    "transformers.models.vit.modeling_vit.ViTAttention": "attention",
    "transformers.models.bart.modeling_bart.BartAttention": "attention",  # cross-attention: keys from the encoder
    "transformers.models.t5.modeling_t5.T5Attention": "attention",
    "transformers.models.t5.modeling_t5.T5LayerNorm": "norm",
    "transformers.pytorch_utils.Conv1D": "dense",
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


def leaf_registry_key() -> tuple:
    """The registered leaves as a hashable value: unit graphs built under another registry differ."""
    return tuple(_LEAVES.items()), tuple(NAMED_LEAVES.items())


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
