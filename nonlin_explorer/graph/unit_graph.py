"""The unit graph's data structure: layers of units and the edge blocks between them (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from nonlin_explorer.gates import DEFAULT_TOL, LinearizableActivation, UnitState

#: Layer kinds whose units may be nonlinear: trainable gates, and fixed activations (always nonlinear).
#: Layer kinds whose units can be nonlinear: gates (by their slopes), and fixed nonlinear units (always; which ops
#: make them is the policy of :mod:`nonlin_explorer.graph.ops`).
NONLINEAR_KINDS = ("gate", "activation", "softmax", "norm", "max_pool", "product")
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
        #: derived data (path-length weights...) keyed by name; cleared whenever the graph changes
        self.cache: dict[str, Any] = {}

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
        self.cache.clear()
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
        self.cache.clear()
        return edge

    def mark_input(self, layer: int) -> None:
        if self._in[layer]:
            raise ValueError(f"input layer {self.layers[layer].name!r} must have no incoming edges")
        if layer not in self.inputs:
            self.inputs.append(layer)
            self.cache.clear()

    def mark_output(self, layer: int) -> None:
        if layer not in self.outputs:
            self.outputs.append(layer)
            self.cache.clear()

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

    def in_edges(self, layer: int) -> tuple[EdgeBlock, ...]:
        """The edge blocks into ``layer``."""
        return tuple(self._in[layer])

    def out_edges(self, layer: int) -> tuple[EdgeBlock, ...]:
        """The edge blocks out of ``layer``."""
        return tuple(self._out[layer])

    @property
    def gate_layers(self) -> list[Layer]:
        """Layers whose units can be nonlinear: gates, and fixed activations (always nonlinear)."""
        found = self.cache.get("gate_layers")
        if found is None:
            found = self.cache["gate_layers"] = tuple(layer for layer in self.layers if layer.kind in NONLINEAR_KINDS)
        return list(found)

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
            mask = _nonlinear_mask(gate, tol)
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


def _nonlinear_mask(gate: LinearizableActivation, tol: float) -> np.ndarray:
    """``gate.nonlinear_mask(tol)`` computed in numpy (a few microseconds, against a handful of torch ops per gate:
    the analyses after a toggle read every gate): a forced unit is what it is forced to, a free one ``1 - alpha > tol``
    in the slopes' own precision."""
    alpha = gate.alpha.detach().cpu().numpy()
    state = gate.state.detach().cpu().numpy()
    slope = np.where(state == UnitState.FREE, alpha, (state == UnitState.LINEAR).astype(alpha.dtype))
    return (alpha.dtype.type(1.0) - slope) > tol


def _get_gate(model: nn.Module, path: str) -> LinearizableActivation:
    try:
        gate = model.get_submodule(path) if path else model
    except AttributeError:
        raise KeyError(f"the model has no module {path!r}; was the graph built from another architecture?") \
            from None
    if not isinstance(gate, LinearizableActivation):
        raise TypeError(f"module {path!r} is a {type(gate).__name__}, not a gate")
    return gate
