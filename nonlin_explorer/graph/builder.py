"""Building the unit graph from a traced model: one step per fx node, units flowing through layers."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from nonlin_explorer.gates import LinearizableActivation
from nonlin_explorer.graph.ops import (
    ACTIVATION_FUNCTIONS,
    ACTIVATION_METHODS,
    ACTIVATION_MODULES,
    CAT_FUNCTIONS,
    CONSTANT_FUNCTIONS,
    CONSTANT_METHODS,
    CONVS,
    DIV_FUNCTIONS,
    DIV_METHODS,
    MASK_FUNCTIONS,
    MASK_METHODS,
    MAX_POOL_FUNCTIONS,
    MAX_POOL_MODULES,
    MERGE_FUNCTIONS,
    MERGE_METHODS,
    MUL_FUNCTIONS,
    MUL_METHODS,
    NORM_FUNCTIONS,
    NORM_MODULES,
    PER_UNIT_FUNCTIONS,
    PER_UNIT_METHODS,
    PER_UNIT_MODULES,
    POOL_FUNCTIONS,
    POOL_MODULES,
    REDUCE_FUNCTIONS,
    REDUCE_METHODS,
    SHAPE_FUNCTIONS,
    SHAPE_METHODS,
    SHAPE_MODULES,
    SOFTMAX_FUNCTIONS,
    STRUCTURED_LEAVES,
    counts_as_nonlinear,
    leaf_kind,
    op_name,
)
from nonlin_explorer.graph.tracer import as_tuple, inference, trace_model
from nonlin_explorer.graph.unit_graph import UnitGraph, UnsupportedOperationError
from nonlin_explorer.plumbing import run_model
from nonlin_explorer.trace_guard import forward_pass


@dataclass(frozen=True)
class _Units:
    """A traced activation: its units are layer ``layer`` of the graph, laid along tensor dim ``dim``
    (``None``: one unit, e.g. a token id or a scalar per sample); ``shape`` is the example tensor's shape.
    ``spread``: when a view has split the units over several dims (a channel shuffle's ``view(b, g, c // g, h, w)``),
    each element's unit id; only shape ops may take such units, until they gather them on one dim again."""

    layer: int
    dim: int | None
    shape: tuple[int, ...]
    spread: torch.Tensor | None = field(default=None, compare=False, repr=False)
    spread_error: str = field(default="", compare=False, repr=False)  # raised if the units are never gathered

    @property
    def size(self) -> int:
        return 1 if self.dim is None else int(self.shape[self.dim])


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Builder:
    def __init__(self, model: nn.Module, input_axis: int | None):
        self.model = model
        self.graph = UnitGraph()
        self.input_axis = input_axis
        self.has_conv = any(isinstance(m, CONVS) for m in model.modules())

    # -- helpers -----------------------------------------------------------------------------------------
    def default_dim(self, ndim: int) -> int | None:
        if ndim <= 1:
            return None
        if ndim == 2:
            return 1
        return 1 if self.has_conv else ndim - 1

    def fail(self, what: str, path: str, why: str = "") -> None:
        where = f"module '{path}'" if path else "the top-level forward"
        raise UnsupportedOperationError(
            f"unit_graph does not support {what} (in {where}){': ' + why if why else ''}")

    def new_layer(self, name: str, size: int, kind: str, module: str = "") -> int:
        return self.graph.add_layer(name, size, kind, module)

    def dense(self, srcs: Sequence[_Units], size: int, name: str, kind: str, module: str, dim: int | None,
              shape: tuple[int, ...]) -> _Units:
        layer = self.new_layer(name, size, kind, module)
        for s in _unique_layers(srcs):
            self.graph.add_edges(s.layer, layer, "dense")
        return _Units(layer, dim, shape)

    def unitwise(self, src: _Units, name: str, kind: str, module: str = "") -> _Units:
        layer = self.new_layer(name, src.size, kind, module)
        self.graph.add_edges(src.layer, layer, "identity")
        return _Units(layer, src.dim, src.shape)

    def input_units(self, name: str, value: torch.Tensor) -> _Units:
        shape = tuple(value.shape)
        if value.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
            dim = None  # token ids / categorical inputs: one unit
        elif self.input_axis is not None and value.dim() > 1:
            dim = self.input_axis % value.dim()
        else:
            dim = self.default_dim(value.dim())
        u = _Units(0, dim, shape)
        layer = self.new_layer(name, u.size, "input")
        self.graph.mark_input(layer)
        return _Units(layer, dim, shape)

    # -- ops ---------------------------------------------------------------------------------------------
    def activation(self, x: _Units, name: str, module_obj: Any, path: str) -> _Units:
        """A gate (LinearizableActivation) or a fixed activation (always nonlinear) applied unit-wise."""
        if isinstance(module_obj, LinearizableActivation):
            expected = _gate_dim(module_obj, len(x.shape))
            if x.size != module_obj.num_units or (x.dim is not None and expected != x.dim):
                raise UnsupportedOperationError(
                    f"gate '{module_obj.name or path}' has {module_obj.num_units} units on axis {module_obj.axis} "
                    f"of a tensor of shape {x.shape}, but the graph tracks that tensor's units along dim {x.dim} "
                    f"({x.size} units)")
            return self.unitwise(x, module_obj.name or path or "gate", "gate", path)
        return self.counted(x, name, "activation", path)

    def counted(self, x: _Units, name: str, op: str, path: str) -> _Units:
        """``x`` through a unit-wise op that is nonlinear without a gate (``op``: a name of the policy): a layer of
        fixed nonlinear units when the policy counts it, else ``x`` itself (a per-unit linear map adds no layer)."""
        return self.unitwise(x, name, op, path) if counts_as_nonlinear(op) else x

    def fixed(self, x: _Units, out: Any, name: str, op: str, path: str, what: str) -> _Units:
        """:meth:`counted` for a traced op whose output is ``out`` (checked to keep the units)."""
        return self.counted(self.per_unit(x, out, path, what), name, op, path)

    def attention(self, q_src: _Units, k_src: _Units | None, v_src: _Units | None, d: int, heads: int, path: str,
                  dim: int | None, shape: tuple[int, ...], out_map: bool = True) -> _Units:
        """Multi-head attention as its structure: queries, keys and values (dense maps), one softmax unit per head
        (fed by that head's query and key units), their product with the values (each feature by its head's
        softmax unit), then the output map (dense, named ``path``; without it the weighted values are)."""
        k_src = q_src if k_src is None else k_src
        v_src = k_src if v_src is None else v_src
        heads = heads if heads >= 1 and d % heads == 0 else 1
        q = self.dense([q_src], d, _join(path, "q"), "linear", path, dim, shape)
        k = self.dense([k_src], d, _join(path, "k"), "linear", path, dim, shape)
        v = self.dense([v_src], d, _join(path, "v"), "linear", path, dim, shape)
        scores = self.new_layer(_join(path, "softmax"), heads, _policy_kind("softmax", "mix"),
                                path)
        for src in (q, k):
            self.graph.add_edges(src.layer, scores, "grouped", groups=heads)
        mix = self.new_layer(_join(path, "weighted_values") if out_map else path, d,
                             _policy_kind("product", "merge"), path)
        self.graph.add_edges(v.layer, mix, "identity")
        self.graph.add_edges(scores, mix, "index", src_index=np.arange(d) // (d // heads), dst_index=np.arange(d))
        if not out_map:
            return _Units(mix, dim, shape)
        return self.dense([_Units(mix, dim, shape)], d, path, "attention", path, dim, shape)

    def merge(self, operands: Sequence[_Units], out_shape: tuple[int, ...], name: str, path: str,
              what: str, product: bool = False) -> _Units:
        """Operands combined unit by unit; ``product``: a product or quotient of two or more traced operands
        (nonlinear under the policy's ``"product"``)."""
        ndim = len(out_shape)
        dims = set()
        for u in operands:
            if u.dim is not None and u.size > 1:
                dims.add(u.dim + ndim - len(u.shape))
        if len(dims) > 1:
            self.fail(what, path, f"its operands have their units along different dims {sorted(dims)}")
        if dims:
            dim = dims.pop()
        else:  # every operand has one unit: keep a unit dim if one is there
            dims1 = {u.dim + ndim - len(u.shape) for u in operands if u.dim is not None}
            dim = dims1.pop() if len(dims1) == 1 else None
        size = 1 if dim is None else int(out_shape[dim])
        if len(operands) == 1:
            u = operands[0]
            if u.size == size:
                return _Units(u.layer, dim, out_shape)
        kind = _policy_kind("product", "merge") if product and len(operands) > 1 else "merge"
        layer = self.new_layer(name, size, kind, path)
        for u in operands:
            if u.size == size:
                self.graph.add_edges(u.layer, layer, "identity")
            elif u.size == 1:
                self.graph.add_edges(u.layer, layer, "index", src_index=np.zeros(size, dtype=np.int64),
                                     dst_index=np.arange(size))
            else:
                self.fail(what, path, f"an operand with {u.size} units broadcasts to {size}")
        return _Units(layer, dim, out_shape)

    def reshape(self, x: _Units, apply: Callable[[torch.Tensor], Any], name: str, path: str, what: str) -> _Units:
        """Any op that only moves elements (view, flatten, permute, indexing): apply it to a tensor holding
        each element's unit id and read off which output unit comes from which input unit."""
        out = apply(x.spread if x.spread is not None else _unit_ids(x))
        if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
            return tuple(self._moved(x, o, f"{name}.{i}", path, what) for i, o in enumerate(out))  # chunk, split
        return self._moved(x, out, name, path, what)

    def _moved(self, x: _Units, out: Any, name: str, path: str, what: str) -> _Units:
        """The units of ``out``, a unit-id tensor that a shape op made from ``x``'s ids."""
        if not isinstance(out, torch.Tensor):
            self.fail(what, path, "it does not return a tensor")
        if out.numel() == 0:
            self.fail(what, path, "it returns an empty tensor")
        varying = [d for d in range(out.dim()) if out.shape[d] > 1 and bool((out.amax(d) != out.amin(d)).any())]
        shape = tuple(out.shape)
        if len(varying) > 1:
            if varying != list(range(varying[0], varying[-1] + 1)):
                self.fail(what, path, f"it spreads the units of dim {x.dim} over dims {varying} of shape {shape}")
            where = f"module '{path}'" if path else "the top-level forward"
            error = (f"unit_graph does not support {what} (in {where}): it spreads the units of dim {x.dim} over "
                     f"dims {varying} of shape {shape}, and no later view gathers them back on one dim")
            return _Units(x.layer, None, shape, spread=out, spread_error=error)  # a channel shuffle's first view
        if varying:
            dim = varying[0]
            index = [0] * out.dim()
            index[dim] = slice(None)
            mapping = out[tuple(index)].reshape(-1).numpy()
        else:
            dim = self.default_dim(out.dim())
            size = 1 if dim is None else shape[dim]
            mapping = np.full(size, int(out.reshape(-1)[0]), dtype=np.int64)
        if mapping.size == x.size and np.array_equal(mapping, np.arange(x.size)):
            return _Units(x.layer, dim, shape)
        layer = self.new_layer(name, mapping.size, "reshape", path)
        self.graph.add_edges(x.layer, layer, "index", src_index=mapping, dst_index=np.arange(mapping.size))
        return _Units(layer, dim, shape)

    def per_unit(self, x: _Units, out: Any, path: str, what: str) -> _Units:
        if not isinstance(out, torch.Tensor) or out.dim() != len(x.shape):
            self.fail(what, path, "a per-unit op that changes the number of dims")
        if x.dim is not None and out.shape[x.dim] != x.size:
            self.fail(what, path, f"it changes the size of the unit dim {x.dim}")
        return _Units(x.layer, x.dim, tuple(out.shape))

    def pool(self, x: _Units, spatial: int, out: Any, path: str, what: str) -> _Units:
        if x.dim is not None and x.dim >= len(x.shape) - spatial:
            self.fail(what, path, f"it pools over dim {x.dim}, the unit dim of a tensor of shape {x.shape}")
        return self.per_unit(x, out, path, what)

    def reduce(self, x: _Units, dims: Any, keepdim: bool, out: Any, name: str, path: str) -> _Units:
        ndim = len(x.shape)
        if dims is None or (isinstance(dims, (tuple, list)) and len(dims) == 0):
            reduced = set(range(ndim))
        else:
            reduced = {d % ndim for d in (dims if isinstance(dims, (tuple, list)) else (dims,))}
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
        if x.dim is not None and x.dim in reduced:
            layer = self.new_layer(name, 1, "reduce", path)
            self.graph.add_edges(x.layer, layer, "dense")
            return _Units(layer, x.dim if keepdim else None, shape)
        if x.dim is None:
            return _Units(x.layer, None, shape)
        dim = x.dim if keepdim else x.dim - sum(1 for d in reduced if d < x.dim)
        return _Units(x.layer, dim, shape)

    def conv(self, x: _Units, m: nn.Module, out: torch.Tensor, path: str) -> _Units:
        spatial = len(m.kernel_size)
        channel_dim = len(x.shape) - spatial - 1
        if x.dim is not None and x.dim != channel_dim:
            self.fail(f"module {type(m).__name__}", path,
                      f"its input's units lie along dim {x.dim}, not the channel dim {channel_dim}")
        layer = self.new_layer(path, m.out_channels, "conv", path)
        if m.groups == 1 or x.size == 1:
            self.graph.add_edges(x.layer, layer, "dense")
        else:
            self.graph.add_edges(x.layer, layer, "grouped", groups=m.groups)
        return _Units(layer, channel_dim, tuple(out.shape))

    def linear(self, x: _Units, out_features: int, out: torch.Tensor, name: str, kind: str, path: str) -> _Units:
        ndim = len(x.shape)
        if x.dim is not None and x.dim != ndim - 1:
            # a linear map over a shared dim (e.g. positions) keeps every unit to itself
            return _Units(x.layer, x.dim, tuple(out.shape))
        return self.dense([x], out_features, name, kind, path, out.dim() - 1, tuple(out.shape))

    def encoder_layer(self, x: _Units, m: nn.TransformerEncoderLayer, path: str) -> _Units:
        d = m.linear1.in_features
        if x.dim != len(x.shape) - 1 or x.size != d:
            self.fail("module TransformerEncoderLayer", path,
                      f"expected {d} units along the last dim, got shape {x.shape} with units along dim {x.dim}")
        def norm(u: _Units, name: str) -> _Units:
            return self.counted(u, _join(path, name), "norm", _join(path, name))

        def block(u: _Units) -> _Units:
            a_path = _join(path, "self_attn")
            return self.attention(u, None, None, d, m.self_attn.num_heads, a_path, u.dim, u.shape)

        def feed_forward(u: _Units) -> _Units:
            hidden = self.dense([u], m.linear1.out_features, _join(path, "linear1"), "linear", _join(path, "linear1"),
                                u.dim, u.shape[:-1] + (m.linear1.out_features,))
            act_path = _join(path, "activation")
            hidden = self.activation(hidden, act_path, m.activation, act_path)
            return self.dense([hidden], d, _join(path, "linear2"), "linear", _join(path, "linear2"), u.dim, u.shape)

        if m.norm_first:  # x + sa(norm1(x)), then x + ff(norm2(x))
            x = self.merge([x, block(norm(x, "norm1"))], x.shape, _join(path, "add1"), path, "the attention residual")
            return self.merge([x, feed_forward(norm(x, "norm2"))], x.shape, _join(path, "add2"), path,
                              "the feed-forward residual")
        x = norm(self.merge([x, block(x)], x.shape, _join(path, "add1"), path, "the attention residual"), "norm1")
        return norm(self.merge([x, feed_forward(x)], x.shape, _join(path, "add2"), path, "the feed-forward residual"),
                    "norm2")

    def leaf(self, m: nn.Module, path: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Any:
        acts = [a for a in _flatten(args) + _flatten(list(kwargs.values())) if isinstance(a, _Units)]
        what = f"module {type(m).__name__}"
        if isinstance(m, LinearizableActivation) or isinstance(m, ACTIVATION_MODULES):
            return self.activation(acts[0], path, m, path)
        if isinstance(m, nn.Linear):
            return self.linear(acts[0], m.out_features, out, path, "linear", path)
        registered = leaf_kind(m)
        if registered == "dense":  # e.g. collapse's AffineSum: dense from every input
            return self.dense(acts, int(out.shape[-1]), path, "linear", path, out.dim() - 1, tuple(out.shape))
        if registered == "per_unit":
            return self.per_unit(acts[0], out, path, what)
        if registered == "nonlinear":
            return self.unitwise(self.per_unit(acts[0], out, path, what), path, "activation", path)
        if registered == "norm":
            return self.fixed(acts[0], out, path, "norm", path, what)
        if registered in ("attention", "attention_heads"):
            res = out[0] if isinstance(out, tuple) else out
            kv = kwargs.get("key_value_states")  # cross-attention (BART, T5): keys and values from the encoder
            att = self.attention(acts[0], kv if isinstance(kv, _Units) else None, None, int(res.shape[-1]),
                                 _num_heads(m), path, res.dim() - 1, tuple(res.shape),
                                 out_map=registered == "attention")
            return (att,) + (None,) * (len(out) - 1) if isinstance(out, tuple) else att
        if isinstance(m, nn.Embedding):
            return self.dense(acts, m.embedding_dim, path, "embedding", path, out.dim() - 1, tuple(out.shape))
        if isinstance(m, CONVS):
            return self.conv(acts[0], m, out, path)
        if isinstance(m, NORM_MODULES):
            return self.fixed(acts[0], out, path, "norm", path, what)
        if isinstance(m, PER_UNIT_MODULES):
            return self.per_unit(acts[0], out, path, what)
        if type(m) in POOL_MODULES:
            x = self.pool(acts[0], POOL_MODULES[type(m)], out, path, what)
            return self.fixed(x, out, path, "max_pool", path, what) if isinstance(m, MAX_POOL_MODULES) else x
        if isinstance(m, SHAPE_MODULES):
            return self.reshape(acts[0], m, path, path, what)
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            return self.softmax(acts[0], m.dim, out, path, path)
        if isinstance(m, nn.MultiheadAttention):
            res = out[0]
            q, k, v = (_arg(args, kwargs, i, key, None) for i, key in enumerate(("query", "key", "value")))
            traced = [a if isinstance(a, _Units) else None for a in (q, k, v)]
            if traced[0] is None:
                self.fail(what, path, "its query is not a traced activation")
            att = self.attention(traced[0], traced[1], traced[2], m.embed_dim, m.num_heads, path, res.dim() - 1,
                                 tuple(res.shape))
            return (att,) + (None,) * (len(out) - 1)
        if isinstance(m, nn.TransformerEncoderLayer):
            return self.encoder_layer(acts[0], m, path)
        if isinstance(m, nn.TransformerEncoder):
            x = acts[0]
            for i, layer in enumerate(m.layers):
                x = self.encoder_layer(x, layer, _join(path, f"layers.{i}"))
            if m.norm is not None:  # nn.Transformer's encoder ends in a norm
                x = self.counted(x, _join(path, "norm"), "norm", _join(path, "norm"))
            return _Units(x.layer, x.dim, tuple(out.shape))
        self.fail(what, path)

    def softmax(self, x: _Units, dim: int | None, out: torch.Tensor, name: str, path: str) -> _Units:
        if dim is None or x.dim is None or dim % len(x.shape) != x.dim:
            return self.fixed(x, out, name, "softmax", path, "softmax")  # over positions: unit-wise
        layer = self.new_layer(name, x.size, _policy_kind("softmax", "mix"), path)
        self.graph.add_edges(x.layer, layer, "dense")
        return _Units(layer, x.dim, tuple(out.shape))

    # -- the fx node dispatcher ----------------------------------------------------------------------------
    def node(self, n: fx.Node, env: dict[fx.Node, Any], gm: fx.GraphModule) -> Any:
        path = n.meta.get("path", "")
        out = n.meta.get("val")
        if n.op == "placeholder":
            return self.input_units(n.name, out) if isinstance(out, torch.Tensor) else None
        if n.op == "get_attr":
            return None
        args = fx.node.map_arg(n.args, lambda a: env[a])
        kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a])
        acts = [a for a in _flatten(args) + _flatten(list(kwargs.values())) if isinstance(a, _Units)]
        shape_op = (n.op == "call_function" and n.target in SHAPE_FUNCTIONS) or (
            n.op == "call_method" and n.target in SHAPE_METHODS)
        spread = [a for a in acts if a.spread is not None]
        if spread and not shape_op:
            raise UnsupportedOperationError(spread[0].spread_error)
        if n.op == "call_module":
            mod_path = str(n.target)
            if not acts:
                return None
            return self.leaf(gm.get_submodule(mod_path), mod_path, args, kwargs, out)
        if not acts:
            return None
        target = n.target
        if n.op == "call_function" and target is operator.getitem and isinstance(args[0], (tuple, list)):
            return args[0][args[1]]
        if (n.op == "call_function" and target in CONSTANT_FUNCTIONS) or (
                n.op == "call_method" and target in CONSTANT_METHODS):
            return None  # zeros shaped like a traced tensor: no units
        if n.op == "call_function" and target is operator.setitem:
            self.assign(n, args, env, path)
            return None
        if not _holds_tensor(out):
            return None  # sizes, dims, dtypes
        what = op_name(n)
        x = acts[0]
        name = _join(path, re.sub(r"_\d+$", "", n.name))  # "blocks.3.add"; add_layer keeps names unique
        method = n.op == "call_method"
        if (not method and target in MERGE_FUNCTIONS) or (method and target in MERGE_METHODS):
            product = (not method and target in MUL_FUNCTIONS | DIV_FUNCTIONS) or (
                method and target in MUL_METHODS | DIV_METHODS)
            return self.merge(acts, tuple(out.shape), name, path, what, product=product)
        if (not method and target in ACTIVATION_FUNCTIONS) or (method and target in ACTIVATION_METHODS):
            return self.activation(x, name, None, path)
        if not method and target in NORM_FUNCTIONS:
            return self.fixed(x, out, name, "norm", path, what)
        if (not method and target in PER_UNIT_FUNCTIONS | MASK_FUNCTIONS) or (
                method and target in PER_UNIT_METHODS | MASK_METHODS):
            return self.per_unit(x, out, path, what)
        if not method and target in POOL_FUNCTIONS:
            pooled = self.pool(x, POOL_FUNCTIONS[target], out, path, what)
            return self.fixed(pooled, out, name, "max_pool", path, what) if target in MAX_POOL_FUNCTIONS else pooled
        if (not method and target in REDUCE_FUNCTIONS) or (method and target in REDUCE_METHODS):
            dims = _arg(args, kwargs, 1, "dim", None)
            keepdim = bool(_arg(args, kwargs, 2, "keepdim", False))
            return self.reduce(x, dims, keepdim, out, name, path)
        if (not method and target in SOFTMAX_FUNCTIONS) or (method and target in ("softmax", "log_softmax")):
            return self.softmax(x, _arg(args, kwargs, 1, "dim", None), out, name, path)
        if not method and target is torch.nn.functional.embedding:  # an nn.Embedding subclass traced inside
            return self.dense([x], int(out.shape[-1]), name, "embedding", path, out.dim() - 1, tuple(out.shape))
        if not method and target in CAT_FUNCTIONS:
            return self.cat(n, args, kwargs, out, name, path, what)
        if not method and target is torch.stack:
            return self.stack(args, kwargs, out, name, path, what)
        if (not method and target in SHAPE_FUNCTIONS) or (method and target in SHAPE_METHODS):
            if any(a is not x for a in acts):
                self.fail(what, path, "indexing by a traced activation")
            return self.reshape(x, _replay(n, x), name, path, what)
        self.fail(what, path)

    def assign(self, n: fx.Node, args, env: dict[fx.Node, Any], path: str) -> None:
        """``dst[index] = value``: replayed on unit ids, so from here on each unit of ``dst`` (along its unit dim, or
        the default one) is fed by the units it held and the units of ``value`` written into it."""
        dst_node, dst, value = n.args[0], args[0], args[2]
        if not isinstance(value, _Units) or not isinstance(dst_node, fx.Node):
            return
        shape = tuple(dst_node.meta["val"].shape)
        dim = dst.dim if dst is not None else self.default_dim(len(shape))
        codes = torch.full(shape, -1, dtype=torch.int64) if dst is None else _unit_ids(dst)
        offset = 0 if dst is None else dst.size
        key = fx.node.map_arg(n.args[1], lambda a: a.meta.get("val"))
        codes[key] = _unit_ids(value) + offset
        size = 1 if dim is None else shape[dim]
        slices = [codes] if dim is None else [codes.select(dim, j) for j in range(size)]
        layer = self.new_layer(_join(path, "setitem"), size, "merge", path)
        for src, lo, hi in ((dst, 0, offset), (value, offset, offset + value.size)):
            pairs = [(int(c) - lo, j) for j, sl in enumerate(slices) for c in sl.unique().tolist() if lo <= c < hi]
            if src is not None and pairs:
                si, di = zip(*pairs)
                self.graph.add_edges(src.layer, layer, "index", src_index=list(si), dst_index=list(di))
        env[dst_node] = _Units(layer, dim, shape)

    def cat(self, n: fx.Node, args, kwargs, out: torch.Tensor, name: str, path: str, what: str) -> _Units:
        parts = list(_arg(args, kwargs, 0, "tensors", ()))
        raw = list(n.args[0] if n.args else n.kwargs["tensors"])
        ndim = out.dim()
        d = int(_arg(args, kwargs, 1, "dim", 0)) % ndim
        acts = [p for p in parts if isinstance(p, _Units)]
        dims = {a.dim for a in acts}
        if len(dims) != 1 or None in dims:
            self.fail(what, path, "its operands' units lie along different dims")
        unit_dim = dims.pop()
        if d != unit_dim:
            return self.merge(acts, tuple(out.shape), name, path, what)
        layer = self.new_layer(name, int(out.shape[d]), "concat", path)
        offset = 0
        for p, r in zip(parts, raw):
            size = int(r.meta["val"].shape[d]) if isinstance(r, fx.Node) else int(r.shape[d])
            if isinstance(p, _Units):
                self.graph.add_edges(p.layer, layer, "index", src_index=np.arange(size),
                                     dst_index=offset + np.arange(size))
            offset += size
        return _Units(layer, unit_dim, tuple(out.shape))

    def stack(self, args, kwargs, out: torch.Tensor, name: str, path: str, what: str) -> _Units:
        parts = list(_arg(args, kwargs, 0, "tensors", ()))
        d = int(_arg(args, kwargs, 1, "dim", 0)) % out.dim()
        acts = [p for p in parts if isinstance(p, _Units)]
        moved = [_Units(a.layer, None if a.dim is None else a.dim + (a.dim >= d), tuple(out.shape)) for a in acts]
        return self.merge(moved, tuple(out.shape), name, path, what)


def _unit_ids(x: _Units) -> torch.Tensor:
    """A tensor shaped like ``x``'s value holding each element's unit (0 everywhere for one unit)."""
    if x.spread is not None:
        return x.spread.clone()
    if x.dim is None:
        return torch.zeros(x.shape, dtype=torch.int64)
    view = [1] * len(x.shape)
    view[x.dim] = x.shape[x.dim]
    return torch.arange(x.shape[x.dim]).view(view).expand(x.shape).contiguous()


def _policy_kind(op: str, linear_kind: str) -> str:
    """The layer kind for ``op``: itself (fixed nonlinear units) when the policy counts it, else ``linear_kind``."""
    return op if counts_as_nonlinear(op) else linear_kind


def _num_heads(m: nn.Module) -> int:
    """An attention module's head count (``num_heads``, ``num_attention_heads`` or its config's), else 1."""
    for owner in (m, getattr(m, "config", None)):
        for attr in ("num_heads", "num_attention_heads", "n_head"):
            value = getattr(owner, attr, None)
            if isinstance(value, int) and value >= 1:
                return value
    return 1


def _gate_dim(gate: LinearizableActivation, ndim: int) -> int | None:
    if ndim <= 1:
        return 0 if ndim == 1 else None
    return 1 if gate.axis == 1 else ndim - 1


def _replay(n: fx.Node, x: _Units) -> Callable[[torch.Tensor], Any]:
    """Re-run node ``n`` on a unit-id tensor in place of its traced activation (other tensors to CPU)."""

    def value(a: fx.Node):
        v = a.meta.get("val")
        return v.cpu() if isinstance(v, torch.Tensor) else v

    def apply(ids: torch.Tensor):
        first = n.args[0]
        rest = fx.node.map_arg(n.args[1:], value)
        kwargs = fx.node.map_arg(n.kwargs, value)
        if not isinstance(first, fx.Node):
            raise UnsupportedOperationError(f"cannot replay {op_name(n)}")
        if n.op == "call_method":
            return getattr(ids, n.target)(*rest, **kwargs)
        return n.target(ids, *rest, **kwargs)

    return apply


def _arg(args, kwargs, i: int, name: str, default):
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _flatten(x: Any) -> list:
    if isinstance(x, (tuple, list)):
        return [y for item in x for y in _flatten(item)]
    if isinstance(x, dict):
        return [y for item in x.values() for y in _flatten(item)]
    if isinstance(x, slice):
        return _flatten([x.start, x.stop, x.step])
    return [x]


def _holds_tensor(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return True
    if isinstance(x, (tuple, list)):
        return any(_holds_tensor(y) for y in x)
    return False


def _unique_layers(units: Sequence[_Units]) -> list[_Units]:
    seen, out = set(), []
    for u in units:
        if u.layer not in seen:
            seen.add(u.layer)
            out.append(u)
    return out


def _mark_outputs(builder: _Builder, value: Any) -> None:
    for v in _flatten(value):
        if isinstance(v, _Units):
            builder.graph.mark_output(v.layer)


def unit_graph(model: nn.Module, example_input, input_axis: int | None = None) -> UnitGraph:
    """The unit graph of ``model`` on inputs shaped like ``example_input`` (a tensor or a tuple of them).

    ``input_axis`` says which dim of a float input holds its units; by default dim 1 for conv models and
    2-D inputs, the last dim otherwise (integer inputs, e.g. token ids, are one unit). Unsupported ops
    raise :class:`UnsupportedOperationError` naming the op and the module path.
    """
    inputs = as_tuple(example_input)
    builder = _Builder(model, input_axis)
    if isinstance(model, (LinearizableActivation, *STRUCTURED_LEAVES)):
        # a bare leaf (e.g. one nn.TransformerEncoderLayer): no trace, its hand-written subgraph
        acts = [builder.input_units(f"input{i}" if i else "input", t) if isinstance(t, torch.Tensor) else None
                for i, t in enumerate(inputs)]
        with inference(model):
            out = run_model(model, inputs)
        _mark_outputs(builder, builder.leaf(model, "", acts, {}, out))
        return builder.graph
    gm = trace_model(model, inputs, concrete_shapes=True)  # analysis only: specialize to the example
    env: dict[fx.Node, Any] = {}
    with forward_pass():  # the walk calls modules (shape modules on unit ids): never during a trace elsewhere
        for n in gm.graph.nodes:
            if n.op == "output":
                outputs = fx.node.map_arg(n.args[0], lambda a: env[a])
                spread = [a for a in _flatten(outputs) if isinstance(a, _Units) and a.spread is not None]
                if spread:
                    raise UnsupportedOperationError(spread[0].spread_error)
                _mark_outputs(builder, outputs)
                break
            env[n] = builder.node(n, env, gm)
    if not builder.graph.outputs:
        raise ValueError(f"{type(model).__name__}'s output does not depend on its input")
    return builder.graph
