"""The unit graph of a network: which unit feeds which, built from a torch.fx trace.

Nodes are *units*: input features or channels, gated units, outputs of linear/conv layers, and merge points
(residual additions, concatenations). A unit of a conv feature map is a channel (spatial positions are
shared), a unit of a transformer activation is a feature (sequence positions are shared). Units come in
*layers* (one per layer output) and edges in *edge blocks* between two layers, stored compactly:

* ``"dense"``: every source unit feeds every destination unit (Linear, Conv with ``groups=1``, attention);
* ``"grouped"``: dense within each of ``groups`` contiguous groups (grouped and depthwise convs);
* ``"identity"``: unit ``i`` feeds unit ``i`` (residual additions, gates);
* ``"index"``: explicit ``src_index[k] -> dst_index[k]`` pairs (flatten, concatenation, slicing).

Per-unit maps (BatchNorm, dropout, pooling over positions, LayerNorm, scalar affine maps, reshapes that keep
the units) add no layer: their output *is* their input's layer. Path statistics (:mod:`nonlin_explorer.paths`)
are dynamic programs over this structure, O(units + edge blocks) for dense layers.

The trace runs the model once on the example input (eval mode, no grad) while torch.fx records it, so
shape-dependent Python control flow follows the example input. ``nn.TransformerEncoderLayer``,
``nn.TransformerEncoder`` and ``nn.MultiheadAttention`` are leaves with a hand-written unit subgraph. A
custom module with the class attribute ``unit_graph_kind = "dense"`` is a leaf whose inputs all feed its
output units (over the last dim) densely.
"""

from __future__ import annotations

import contextlib
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from nonlin_explorer.gates import DEFAULT_TOL, LinearizableReLU

__all__ = [
    "EdgeBlock",
    "Layer",
    "UnitGraph",
    "UnsupportedOperationError",
    "trace_model",
    "unit_graph",
]

#: Layer kinds whose units may be nonlinear: trainable gates, and fixed activations (always nonlinear).
NONLINEAR_KINDS = ("gate", "activation")
EDGE_KINDS = ("dense", "grouped", "identity", "index")


class UnsupportedOperationError(NotImplementedError):
    """An operation whose flow of units the graph builder does not know (message names op and module)."""


# -- the graph ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    """A layer of ``size`` units. ``module`` is the qualified module path it comes from ('' if none)."""

    index: int
    name: str
    kind: str
    size: int
    module: str = ""


@dataclass(frozen=True, eq=False)
class EdgeBlock:
    """Edges from every unit of layer ``src`` to units of layer ``dst``, by ``kind`` (see module doc)."""

    src: int
    dst: int
    kind: str
    groups: int = 1
    src_index: np.ndarray | None = field(default=None, repr=False)
    dst_index: np.ndarray | None = field(default=None, repr=False)


class UnitGraph:
    """A DAG of unit layers joined by edge blocks; layers are stored in topological order.

    Build one with :func:`unit_graph` from a model, or by hand with :meth:`add_layer` / :meth:`add_edges` /
    :meth:`mark_input` / :meth:`mark_output` (edges must run from an earlier layer to a later one).
    """

    def __init__(self):
        self.layers: list[Layer] = []
        self.edges: list[EdgeBlock] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self._in: list[list[EdgeBlock]] = []
        self._out: list[list[EdgeBlock]] = []
        self._names: dict[str, int] = {}
        self._sizes: list[int] = []
        self._matrices: dict[int, Any] = {}
        self._cache: dict[str, Any] = {}

    # -- construction ------------------------------------------------------------------------------------
    def add_layer(self, name: str, size: int, kind: str = "linear", module: str = "") -> int:
        """Append a layer of ``size`` units; returns its index. Names are made unique with ``@k``."""
        if size < 1:
            raise ValueError(f"layer {name!r} needs at least one unit, got {size}")
        unique, k = name, 1
        while unique in self._names:
            unique, k = f"{name}@{k}", k + 1
        index = len(self.layers)
        self.layers.append(Layer(index, unique, kind, int(size), module))
        self._names[unique] = index
        self._sizes.append(int(size))
        self._in.append([])
        self._out.append([])
        self._cache.clear()
        return index

    def add_edges(self, src: int, dst: int, kind: str = "dense", *, groups: int = 1,
                  src_index: Sequence[int] | np.ndarray | None = None,
                  dst_index: Sequence[int] | np.ndarray | None = None) -> EdgeBlock:
        """Connect layer ``src`` to a later layer ``dst`` (see the module doc for the kinds)."""
        if not 0 <= src < dst < len(self.layers):
            raise ValueError(f"edges must run from an earlier layer to a later one, got {src} -> {dst} "
                             f"with {len(self.layers)} layers")
        ns, nd = self._sizes[src], self._sizes[dst]
        if kind not in EDGE_KINDS:
            raise ValueError(f"unknown edge kind {kind!r}; valid kinds: {', '.join(EDGE_KINDS)}")
        if kind == "identity" and ns != nd:
            raise ValueError(f"identity edges need equal sizes, got {ns} -> {nd}")
        if kind == "grouped" and (groups < 1 or ns % groups or nd % groups):
            raise ValueError(f"{groups} groups do not divide {ns} source and {nd} destination units")
        si = di = None
        if kind == "index":
            si = np.asarray(src_index, dtype=np.int64).reshape(-1)
            di = np.asarray(dst_index, dtype=np.int64).reshape(-1)
            if si.shape != di.shape:
                raise ValueError(f"src_index and dst_index differ in length: {si.size} vs {di.size}")
            if si.size and (si.min() < 0 or si.max() >= ns or di.min() < 0 or di.max() >= nd):
                raise ValueError(f"index edges out of range for layers of {ns} and {nd} units")
        edge = EdgeBlock(src, dst, kind, groups if kind == "grouped" else 1, si, di)
        self.edges.append(edge)
        self._in[dst].append(edge)
        self._out[src].append(edge)
        self._cache.clear()
        return edge

    def mark_input(self, layer: int) -> None:
        if self._in[layer]:
            raise ValueError(f"input layer {self.layers[layer].name!r} must have no incoming edges")
        if layer not in self.inputs:
            self.inputs.append(layer)
            self._cache.clear()

    def mark_output(self, layer: int) -> None:
        if layer not in self.outputs:
            self.outputs.append(layer)
            self._cache.clear()

    # -- inspection --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return (f"UnitGraph({len(self.layers)} layers, {self.num_units} units, {self.num_edges} edges, "
                f"{len(self.gate_layers)} gate layers)")

    def layer(self, name_or_index: str | int) -> Layer:
        if isinstance(name_or_index, str):
            try:
                return self.layers[self._names[name_or_index]]
            except KeyError:
                raise KeyError(f"no layer named {name_or_index!r}") from None
        return self.layers[name_or_index]

    def in_edges(self, layer: int) -> list[EdgeBlock]:
        return list(self._in[layer])

    def out_edges(self, layer: int) -> list[EdgeBlock]:
        return list(self._out[layer])

    @property
    def gate_layers(self) -> list[Layer]:
        """Layers whose units can be nonlinear: gates, and fixed activations (always nonlinear)."""
        return [layer for layer in self.layers if layer.kind in NONLINEAR_KINDS]

    @property
    def num_units(self) -> int:
        return int(sum(self._sizes))

    def edge_count(self, edge: EdgeBlock) -> int:
        """How many unit-to-unit edges a block holds."""
        ns, nd = self._sizes[edge.src], self._sizes[edge.dst]
        if edge.kind == "dense":
            return ns * nd
        if edge.kind == "grouped":
            return ns * nd // edge.groups
        if edge.kind == "identity":
            return ns
        return int(edge.src_index.size)

    @property
    def num_edges(self) -> int:
        """Unit-to-unit edges (a dense block of m x n counts m * n)."""
        return sum(self.edge_count(e) for e in self.edges)

    def unit_edges(self, edge: EdgeBlock) -> tuple[np.ndarray, np.ndarray]:
        """The block's edges as explicit ``(src_units, dst_units)`` arrays."""
        ns, nd = self._sizes[edge.src], self._sizes[edge.dst]
        if edge.kind == "dense":
            return np.repeat(np.arange(ns), nd), np.tile(np.arange(nd), ns)
        if edge.kind == "grouped":
            return np.repeat(np.arange(ns), nd // edge.groups), _grouped_dst(ns, nd, edge.groups)
        if edge.kind == "identity":
            return np.arange(ns), np.arange(ns)
        return edge.src_index.copy(), edge.dst_index.copy()

    # -- block operators used by the dynamic programs ------------------------------------------------------
    def _matrix(self, edge: EdgeBlock):
        """Sparse (dst x src) count matrix of an index block (duplicates add up), built once."""
        key = id(edge)
        m = self._matrices.get(key)
        if m is None:
            import scipy.sparse as sp

            ns, nd = self._sizes[edge.src], self._sizes[edge.dst]
            m = sp.csr_matrix((np.ones(edge.src_index.size), (edge.dst_index, edge.src_index)), shape=(nd, ns))
            self._matrices[key] = m
        return m

    def push(self, edge: EdgeBlock, x: np.ndarray) -> np.ndarray:
        """Sum rows of source values ``x`` (k, n_src) over each destination unit's in-edges: (k, n_dst)."""
        nd = self._sizes[edge.dst]
        if edge.kind == "identity":
            return x
        if edge.kind == "dense":
            return np.repeat(x.sum(1, keepdims=True), nd, axis=1)
        if edge.kind == "grouped":
            g = edge.groups
            return np.repeat(x.reshape(x.shape[0], g, -1).sum(2), nd // g, axis=1)
        return np.asarray((self._matrix(edge) @ x.T).T)

    def pull(self, edge: EdgeBlock, y: np.ndarray) -> np.ndarray:
        """Sum rows of destination values ``y`` (k, n_dst) over each source unit's out-edges: (k, n_src)."""
        ns = self._sizes[edge.src]
        if edge.kind == "identity":
            return y
        if edge.kind == "dense":
            return np.repeat(y.sum(1, keepdims=True), ns, axis=1)
        if edge.kind == "grouped":
            g = edge.groups
            return np.repeat(y.reshape(y.shape[0], g, -1).sum(2), ns // g, axis=1)
        return np.asarray((self._matrix(edge).T @ y.T).T)

    # -- masks ---------------------------------------------------------------------------------------------
    def masks_from_model(self, model: nn.Module, tol: float = DEFAULT_TOL) -> dict[str, np.ndarray]:
        """Nonlinear-unit masks (``1 - alpha > tol``) of every gate layer, read from ``model``'s gates.

        Gates are found by module path, so a copy of the traced model (or the same model after training)
        works; fixed activations are always nonlinear.
        """
        masks: dict[str, np.ndarray] = {}
        for layer in self.gate_layers:
            if layer.kind != "gate":
                masks[layer.name] = np.ones(layer.size, dtype=bool)
                continue
            gate = _get_gate(model, layer.module)
            mask = gate.nonlinear_mask(tol).detach().cpu().numpy()
            if mask.shape != (layer.size,):
                raise ValueError(f"gate {layer.module!r} has {mask.size} units, the graph expects {layer.size}")
            masks[layer.name] = mask
        return masks

    def full_masks(self, nonlinear: bool = True) -> dict[str, np.ndarray]:
        """Masks with every gate unit nonlinear (or every gate unit linear; fixed activations stay on)."""
        return {layer.name: np.full(layer.size, nonlinear or layer.kind != "gate", dtype=bool)
                for layer in self.gate_layers}

    # -- export --------------------------------------------------------------------------------------------
    def to_networkx(self, level: str = "unit", max_edges: int = 5_000_000):
        """A networkx ``DiGraph``: one node per unit ``(layer name, unit)`` (``level="unit"``) or per layer
        (``level="layer"``). Unit level expands dense blocks; it refuses more than ``max_edges`` edges.

        Node attributes: ``layer``, ``kind``, ``unit`` (unit level), ``size``/``module`` (layer level);
        edge attributes: ``multiplicity`` (unit level, parallel edges), ``kind``/``count`` (layer level).
        Graph attributes ``inputs`` and ``outputs`` list the input and output layers.
        """
        import networkx as nx

        g = nx.DiGraph(inputs=[self.layers[i].name for i in self.inputs],
                       outputs=[self.layers[i].name for i in self.outputs])
        if level == "layer":
            for layer in self.layers:
                g.add_node(layer.name, kind=layer.kind, size=layer.size, module=layer.module)
            for e in self.edges:
                a, b = self.layers[e.src].name, self.layers[e.dst].name
                if g.has_edge(a, b):
                    g.edges[a, b]["count"] += self.edge_count(e)
                    g.edges[a, b]["kind"] += "+" + e.kind
                else:
                    g.add_edge(a, b, kind=e.kind, count=self.edge_count(e))
            return g
        if level != "unit":
            raise ValueError(f"level must be 'unit' or 'layer', got {level!r}")
        if self.num_edges > max_edges:
            raise ValueError(f"the unit graph has {self.num_edges} edges, more than max_edges={max_edges}; "
                             "export level='layer' or raise max_edges")
        for layer in self.layers:
            g.add_nodes_from(((layer.name, u) for u in range(layer.size)), layer=layer.name, kind=layer.kind)
            for u in range(layer.size):
                g.nodes[(layer.name, u)]["unit"] = u
        for e in self.edges:
            a, b = self.layers[e.src].name, self.layers[e.dst].name
            src, dst = self.unit_edges(e)
            for s, d in zip(src.tolist(), dst.tolist()):
                key = ((a, s), (b, d))
                if g.has_edge(*key):
                    g.edges[key]["multiplicity"] += 1
                else:
                    g.add_edge(*key, multiplicity=1)
        return g


def _grouped_dst(ns: int, nd: int, groups: int) -> np.ndarray:
    """Destination units of a grouped block, in the order of ``np.repeat(arange(ns), nd // groups)``."""
    a, b = ns // groups, nd // groups
    group = np.arange(ns) // a
    return ((group * b)[:, None] + np.arange(b)[None, :]).reshape(-1)


def _get_gate(model: nn.Module, path: str) -> LinearizableReLU:
    try:
        gate = model.get_submodule(path) if path else model
    except AttributeError:
        raise KeyError(f"the model has no module {path!r}; was the graph built from another architecture?") \
            from None
    if not isinstance(gate, LinearizableReLU):
        raise TypeError(f"module {path!r} is a {type(gate).__name__}, not a LinearizableReLU gate")
    return gate


# -- tracing with values ------------------------------------------------------------------------------------

#: Modules traced as leaves with a hand-written unit subgraph (besides torch.nn's own leaves and the gates).
STRUCTURED_LEAVES = (nn.TransformerEncoderLayer, nn.TransformerEncoder, nn.MultiheadAttention)


class _ValueTracer(fx.Tracer):
    """An fx tracer that also runs every recorded op on real values (``node.meta['val']``), so control flow
    on shapes follows the example input, and records the module path of every node (``meta['path']``)."""

    def __init__(self, inputs: Sequence[Any]):
        super().__init__()
        self._inputs = list(inputs)
        self._placeholders = 0
        self._evaluating = False

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (LinearizableReLU, *STRUCTURED_LEAVES)) or hasattr(m, "unit_graph_kind"):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        if self._evaluating:  # a leaf running on real values: no recording inside it
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if self._evaluating:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.meta["path"] = self.scope.module_path
        if kind != "output":
            node.meta["val"] = self._evaluate(node)
        return node

    def to_bool(self, obj) -> bool:
        return bool(obj.node.meta["val"])

    def iter(self, obj) -> Iterator:
        return iter([obj[i] for i in range(len(obj.node.meta["val"]))])

    @contextlib.contextmanager
    def _eval_mode(self):
        self._evaluating = True
        try:
            yield
        finally:
            self._evaluating = False

    def _evaluate(self, node: fx.Node) -> Any:
        if node.op == "placeholder":
            i = self._placeholders
            self._placeholders += 1
            if i < len(self._inputs):
                return self._inputs[i]
            return node.args[0] if node.args else None
        if node.op == "get_attr":
            obj = self.root
            with self._eval_mode():
                for part in str(node.target).split("."):
                    obj = getattr(obj, part)
            return obj
        args = fx.node.map_arg(node.args, lambda n: n.meta["val"])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: n.meta["val"])
        with self._eval_mode():
            if node.op == "call_function":
                return node.target(*args, **kwargs)
            if node.op == "call_method":
                return getattr(args[0], node.target)(*args[1:], **kwargs)
            if node.op == "call_module":
                return self.root.get_submodule(node.target)(*args, **kwargs)
        raise AssertionError(f"unexpected fx node kind {node.op}")


def _as_tuple(example_input) -> tuple:
    return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)


@contextlib.contextmanager
def _inference(model: nn.Module):
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was)


def trace_model(model: nn.Module, example_input) -> fx.GraphModule:
    """Trace ``model`` with torch.fx, running it on ``example_input`` (eval mode, no grad) as it goes.

    Gates and :data:`STRUCTURED_LEAVES` stay leaves. Every node carries its real value in ``meta['val']``
    and the module path it was called from in ``meta['path']``.
    """
    inputs = _as_tuple(example_input)
    tracer = _ValueTracer(inputs)
    with _inference(model):
        try:
            graph = tracer.trace(model)
        except (UnsupportedOperationError, TypeError, ValueError):
            raise
        except Exception as exc:  # fx raises many kinds of errors on untraceable code
            raise UnsupportedOperationError(
                f"torch.fx could not trace {type(model).__name__}: {type(exc).__name__}: {exc}") from exc
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    for n_new, n_old in zip(gm.graph.nodes, graph.nodes):
        n_new.meta.update(n_old.meta)
    return gm


# -- building the unit graph --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Units:
    """A traced activation: its units are layer ``layer`` of the graph, laid along tensor dim ``dim``
    (``None``: one unit, e.g. a token id or a scalar per sample); ``shape`` is the example tensor's shape."""

    layer: int
    dim: int | None
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return 1 if self.dim is None else int(self.shape[self.dim])


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.SELU, nn.CELU,
                       nn.LeakyReLU, nn.PReLU, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish,
                       nn.RReLU, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid)
_PER_UNIT_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                     nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
                     nn.InstanceNorm2d, nn.InstanceNorm3d, nn.RMSNorm)
_POOL_MODULES = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AvgPool1d: 1, nn.AvgPool2d: 2,
                 nn.AvgPool3d: 3, nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
                 nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3}
_SHAPE_MODULES = (nn.Flatten, nn.Unflatten)

_ACTIVATION_FUNCTIONS = {F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.gelu, F.silu, torch.tanh, F.tanh,
                         torch.sigmoid, F.sigmoid, F.elu, F.selu, F.celu, F.leaky_relu, F.softplus, F.hardtanh,
                         F.hardswish, F.hardsigmoid, F.mish, F.prelu, F.logsigmoid}
_ACTIVATION_METHODS = {"relu", "relu_", "tanh", "tanh_", "sigmoid", "sigmoid_"}
_MERGE_FUNCTIONS = {operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
                    operator.truediv, operator.itruediv, torch.add, torch.sub, torch.subtract, torch.mul,
                    torch.multiply, torch.div, torch.true_divide}
_MERGE_METHODS = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "__add__", "__radd__", "__sub__",
                  "__rsub__", "__mul__", "__rmul__", "__truediv__"}
_PER_UNIT_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.batch_norm,
                       F.layer_norm, F.group_norm, F.instance_norm, F.rms_norm, operator.neg, torch.neg,
                       torch.clone, torch.Tensor.contiguous}
_PER_UNIT_METHODS = {"to", "float", "double", "half", "bfloat16", "type", "type_as", "clone", "detach",
                     "neg", "__neg__", "cuda", "cpu", "requires_grad_"}
_POOL_FUNCTIONS = {F.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3, F.max_pool1d: 1, F.max_pool2d: 2,
                   F.max_pool3d: 3, F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2, F.adaptive_avg_pool3d: 3,
                   F.adaptive_max_pool1d: 1, F.adaptive_max_pool2d: 2, F.adaptive_max_pool3d: 3}
_SHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.swapaxes, torch.squeeze,
                    torch.unsqueeze, torch.movedim, torch.t, operator.getitem, torch.unflatten}
_SHAPE_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "swapaxes", "squeeze", "unsqueeze",
                  "contiguous", "expand", "expand_as", "repeat", "t", "movedim", "unflatten", "view_as",
                  "reshape_as", "__getitem__"}
_REDUCE_FUNCTIONS = {torch.mean, torch.sum, torch.amax, torch.amin}
_REDUCE_METHODS = {"mean", "sum", "amax", "amin"}
_CAT_FUNCTIONS = {torch.cat, torch.concat, torch.concatenate}
_SOFTMAX_FUNCTIONS = {F.softmax, torch.softmax, F.log_softmax, torch.log_softmax}


def _op_name(node: fx.Node, model: nn.Module | None = None) -> str:
    if node.op == "call_module" and model is not None:
        return f"module {type(model.get_submodule(node.target)).__name__}"
    if node.op == "call_method":
        return f"method Tensor.{node.target}"
    target = node.target
    mod = getattr(target, "__module__", None) or ""
    return f"function {mod + '.' if mod else ''}{getattr(target, '__name__', str(target))}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Builder:
    def __init__(self, model: nn.Module, input_axis: int | None):
        self.model = model
        self.graph = UnitGraph()
        self.input_axis = input_axis
        self.has_conv = any(isinstance(m, _CONVS) for m in model.modules())

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
        """A gate (LinearizableReLU) or a fixed activation (always nonlinear) applied unit-wise."""
        if isinstance(module_obj, LinearizableReLU):
            expected = _gate_dim(module_obj, len(x.shape))
            if x.size != module_obj.num_units or (x.dim is not None and expected != x.dim):
                raise UnsupportedOperationError(
                    f"gate '{module_obj.name or path}' has {module_obj.num_units} units on axis {module_obj.axis} "
                    f"of a tensor of shape {x.shape}, but the graph tracks that tensor's units along dim {x.dim} "
                    f"({x.size} units)")
            return self.unitwise(x, module_obj.name or path or "gate", "gate", path)
        return self.unitwise(x, name, "activation", path)

    def merge(self, operands: Sequence[_Units], out_shape: tuple[int, ...], name: str, path: str,
              what: str) -> _Units:
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
        layer = self.new_layer(name, size, "merge", path)
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
        ids = torch.zeros(x.shape, dtype=torch.int64)
        if x.dim is not None:
            view = [1] * len(x.shape)
            view[x.dim] = x.shape[x.dim]
            ids = torch.arange(x.shape[x.dim]).view(view).expand(x.shape).contiguous()
        out = apply(ids)
        if not isinstance(out, torch.Tensor):
            self.fail(what, path, "it does not return a tensor")
        if out.numel() == 0:
            self.fail(what, path, "it returns an empty tensor")
        varying = [d for d in range(out.dim()) if out.shape[d] > 1 and bool((out.amax(d) != out.amin(d)).any())]
        shape = tuple(out.shape)
        if len(varying) > 1:
            self.fail(what, path, f"it spreads the units of dim {x.dim} over dims {varying} of shape {shape}")
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
        attn = self.dense([x], d, _join(path, "self_attn"), "attention", _join(path, "self_attn"), x.dim, x.shape)
        x = self.merge([x, attn], x.shape, _join(path, "add1"), path, "the attention residual")
        hidden = self.dense([x], m.linear1.out_features, _join(path, "linear1"), "linear", _join(path, "linear1"),
                            x.dim, x.shape[:-1] + (m.linear1.out_features,))
        act_path = _join(path, "activation")
        hidden = self.activation(hidden, act_path, m.activation, act_path)
        ff = self.dense([hidden], d, _join(path, "linear2"), "linear", _join(path, "linear2"), x.dim, x.shape)
        return self.merge([x, ff], x.shape, _join(path, "add2"), path, "the feed-forward residual")

    def leaf(self, m: nn.Module, path: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Any:
        acts = [a for a in _flatten(args) + _flatten(list(kwargs.values())) if isinstance(a, _Units)]
        what = f"module {type(m).__name__}"
        if isinstance(m, LinearizableReLU) or isinstance(m, _ACTIVATION_MODULES):
            return self.activation(acts[0], path, m, path)
        if isinstance(m, nn.Linear):
            return self.linear(acts[0], m.out_features, out, path, "linear", path)
        if getattr(m, "unit_graph_kind", None) == "dense":  # e.g. collapse's AffineSum: dense from every input
            return self.dense(acts, int(out.shape[-1]), path, "linear", path, out.dim() - 1, tuple(out.shape))
        if isinstance(m, nn.Embedding):
            return self.dense(acts, m.embedding_dim, path, "embedding", path, out.dim() - 1, tuple(out.shape))
        if isinstance(m, _CONVS):
            return self.conv(acts[0], m, out, path)
        if isinstance(m, _PER_UNIT_MODULES):
            return self.per_unit(acts[0], out, path, what)
        if type(m) in _POOL_MODULES:
            return self.pool(acts[0], _POOL_MODULES[type(m)], out, path, what)
        if isinstance(m, _SHAPE_MODULES):
            return self.reshape(acts[0], m, path, path, what)
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            return self.softmax(acts[0], m.dim, out, path, path)
        if isinstance(m, nn.MultiheadAttention):
            res = out[0]
            att = self.dense(acts, m.embed_dim, path, "attention", path, res.dim() - 1, tuple(res.shape))
            return (att,) + (None,) * (len(out) - 1)
        if isinstance(m, nn.TransformerEncoderLayer):
            return self.encoder_layer(acts[0], m, path)
        if isinstance(m, nn.TransformerEncoder):
            x = acts[0]
            for i, layer in enumerate(m.layers):
                x = self.encoder_layer(x, layer, _join(path, f"layers.{i}"))
            return _Units(x.layer, x.dim, tuple(out.shape))
        self.fail(what, path)

    def softmax(self, x: _Units, dim: int | None, out: torch.Tensor, name: str, path: str) -> _Units:
        if dim is None or x.dim is None or dim % len(x.shape) != x.dim:
            return self.per_unit(x, out, path, "softmax")
        layer = self.new_layer(name, x.size, "softmax", path)
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
        if not _holds_tensor(out):
            return None  # sizes, dims, dtypes
        what = _op_name(n)
        x = acts[0]
        name = _join(path, re.sub(r"_\d+$", "", n.name))  # "blocks.3.add"; add_layer keeps names unique
        method = n.op == "call_method"
        if (not method and target in _MERGE_FUNCTIONS) or (method and target in _MERGE_METHODS):
            return self.merge(acts, tuple(out.shape), name, path, what)
        if (not method and target in _ACTIVATION_FUNCTIONS) or (method and target in _ACTIVATION_METHODS):
            return self.activation(x, name, None, path)
        if (not method and target in _PER_UNIT_FUNCTIONS) or (method and target in _PER_UNIT_METHODS):
            return self.per_unit(x, out, path, what)
        if not method and target in _POOL_FUNCTIONS:
            return self.pool(x, _POOL_FUNCTIONS[target], out, path, what)
        if (not method and target in _REDUCE_FUNCTIONS) or (method and target in _REDUCE_METHODS):
            dims = _arg(args, kwargs, 1, "dim", None)
            keepdim = bool(_arg(args, kwargs, 2, "keepdim", False))
            return self.reduce(x, dims, keepdim, out, name, path)
        if (not method and target in _SOFTMAX_FUNCTIONS) or (method and target in ("softmax", "log_softmax")):
            return self.softmax(x, _arg(args, kwargs, 1, "dim", None), out, name, path)
        if not method and target in _CAT_FUNCTIONS:
            return self.cat(n, args, kwargs, out, name, path, what)
        if not method and target is torch.stack:
            return self.stack(args, kwargs, out, name, path, what)
        if (not method and target in _SHAPE_FUNCTIONS) or (method and target in _SHAPE_METHODS):
            if any(a is not x for a in acts):
                self.fail(what, path, "indexing by a traced activation")
            return self.reshape(x, _replay(n, x), name, path, what)
        self.fail(what, path)

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


def _gate_dim(gate: LinearizableReLU, ndim: int) -> int | None:
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
            raise UnsupportedOperationError(f"cannot replay {_op_name(n)}")
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
    inputs = _as_tuple(example_input)
    builder = _Builder(model, input_axis)
    if isinstance(model, (LinearizableReLU, *STRUCTURED_LEAVES)):
        # a bare leaf (e.g. one nn.TransformerEncoderLayer): no trace, its hand-written subgraph
        acts = [builder.input_units(f"input{i}" if i else "input", t) if isinstance(t, torch.Tensor) else None
                for i, t in enumerate(inputs)]
        with _inference(model):
            out = model(*inputs)
        _mark_outputs(builder, builder.leaf(model, "", acts, {}, out))
        return builder.graph
    gm = trace_model(model, inputs)
    env: dict[fx.Node, Any] = {}
    for n in gm.graph.nodes:
        if n.op == "output":
            _mark_outputs(builder, fx.node.map_arg(n.args[0], lambda a: env[a]))
            break
        env[n] = builder.node(n, env, gm)
    if not builder.graph.outputs:
        raise ValueError(f"{type(model).__name__}'s output does not depend on its input")
    return builder.graph

