"""The unit graph of a network: which unit feeds which, built from a torch.fx trace.

Nodes are *units*: input features or channels, gated units, outputs of linear/conv layers, and merge points
(residual additions, concatenations). A unit of a conv feature map is a channel (spatial positions are
shared), a unit of a transformer activation is a feature (sequence positions are shared). Units come in
*layers* (one per layer output) and edges in *edge blocks* between two layers, stored compactly:

* ``"dense"``: every source unit feeds every destination unit (Linear, Conv with ``groups=1``, attention);
* ``"grouped"``: dense within each of ``groups`` contiguous groups (grouped and depthwise convs);
* ``"identity"``: unit ``i`` feeds unit ``i`` (residual additions, gates);
* ``"index"``: explicit ``src_index[k] -> dst_index[k]`` pairs (flatten, concatenation, slicing).

Per-unit linear maps (BatchNorm in eval mode, dropout, average pooling over positions, scalar affine maps, reshapes
that keep the units) add no layer: their output *is* their input's layer. Nonlinear ops without a gate (norms,
softmax, max-pool, products of activations, ungated activations) are layers of *fixed* nonlinear units, by a policy
you can change (:func:`set_nonlinear_policy`, :data:`FIXED_NONLINEAR`). Path statistics (:mod:`nonlin_explorer.paths`)
are dynamic programs over this structure, O(units + edge blocks) for dense layers.

The trace runs the model once on the example input (eval mode, no grad) while torch.fx records it, so
shape-dependent Python control flow follows the example input. ``nn.TransformerEncoderLayer``,
``nn.TransformerEncoder`` and ``nn.MultiheadAttention`` are leaves with a hand-written unit subgraph (queries, keys,
values, a softmax unit per head, weighted values, the output map; the encoder layer's norms where they sit). Custom
modules become leaves through :func:`register_leaf` (``"dense"``: every input unit feeds every output unit).

:func:`cached_unit_graph` (what the analyses use) builds a model's graph once per structure, input shape, policy and
registered leaves, and reuses it after toggles.

Modules: :mod:`.unit_graph` (the data structure), :mod:`.tracer` (fx with real values), :mod:`.ops` (the op-kind
table, shared with ``collapse``, and the leaf registry), :mod:`.builder` (nodes to units), :mod:`.cache` (graphs
reused per structure).
"""

from nonlin_explorer.graph.builder import unit_graph
from nonlin_explorer.graph.cache import cached_unit_graph, clear_graph_cache
from nonlin_explorer.graph.ops import (
    FIXED_NONLINEAR,
    LEAF_KINDS,
    STRUCTURED_LEAVES,
    leaf_kind,
    nonlinear_policy,
    register_leaf,
    set_nonlinear_policy,
    using_nonlinear_policy,
)
from nonlin_explorer.graph.tracer import as_tuple, trace_model
from nonlin_explorer.graph.unit_graph import (
    EDGE_KINDS,
    NONLINEAR_KINDS,
    EdgeBlock,
    Layer,
    UnitGraph,
    UnsupportedOperationError,
)

__all__ = [
    "EDGE_KINDS",
    "LEAF_KINDS",
    "NONLINEAR_KINDS",
    "STRUCTURED_LEAVES",
    "EdgeBlock",
    "Layer",
    "UnitGraph",
    "UnsupportedOperationError",
    "as_tuple",
    "cached_unit_graph",
    "clear_graph_cache",
    "leaf_kind",
    "register_leaf",
    "FIXED_NONLINEAR",
    "nonlinear_policy",
    "set_nonlinear_policy",
    "using_nonlinear_policy",
    "trace_model",
    "unit_graph",
]
