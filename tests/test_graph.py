"""unit_graph: units and edges of every supported layer kind, compact dense blocks, clear errors."""

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nonlin_explorer import average_path_length, gates, linearize, models
from nonlin_explorer.graph import (
    FIXED_NONLINEAR,
    UnitGraph,
    UnsupportedOperationError,
    nonlinear_policy,
    register_leaf,
    set_nonlinear_policy,
    unit_graph,
    using_nonlinear_policy,
)


def _layers(g):
    return [(layer.name, layer.kind, layer.size) for layer in g.layers]


def test_mlp_is_a_chain_of_dense_blocks():
    x = torch.randn(4, 1, 40)
    m = linearize(models.MLP(40, 10, width=16, depth=3), x)
    g = unit_graph(m, x)
    assert _layers(g) == [("x", "input", 40), ("net.1", "linear", 16), ("net.2", "gate", 16),
                          ("net.3", "linear", 16), ("net.4", "gate", 16), ("net.5", "linear", 16),
                          ("net.6", "gate", 16), ("net.7", "linear", 10)]
    assert [e.kind for e in g.edges] == ["dense", "identity"] * 3 + ["dense"]
    assert g.num_edges == 40 * 16 + 16 + 2 * (16 * 16 + 16) + 16 * 10
    assert len(g.edges) == 7  # dense layers are one block each, not m * n edges
    assert g.inputs == [0] and g.outputs == [7]
    assert [layer.name for layer in g.gate_layers] == [gt.name for gt in gates(m)]


class _Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.dw = nn.Conv2d(6, 12, 3, padding=1, groups=6)
        self.relu = nn.ReLU()
        self.head = nn.Linear(12 * 2 * 2, 3)

    def forward(self, x):
        h = self.relu(self.dw(self.conv(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(h, 2), 1))


def test_grouped_and_depthwise_convs_connect_within_groups_and_flatten_maps_channels_to_features():
    x = torch.randn(2, 4, 5, 5)
    m = linearize(_Grouped(), x)
    g = unit_graph(m, x)
    assert _layers(g)[:4] == [("x", "input", 4), ("conv", "conv", 6), ("dw", "conv", 12), ("relu", "gate", 12)]
    kinds = {(g.layers[e.src].name, g.layers[e.dst].name): (e.kind, e.groups) for e in g.edges}
    assert kinds[("x", "conv")] == ("grouped", 2)
    assert kinds[("conv", "dw")] == ("grouped", 6)
    u = g.to_networkx()
    assert u.number_of_edges() == g.num_edges == 4 * 3 + 6 * 2 + 12 + 48 + 48 * 3
    assert u.has_edge(("x", 1), ("conv", 2)) and not u.has_edge(("x", 2), ("conv", 0))
    assert sorted(d for _, (_, d) in u.out_edges(("conv", 5))) == [10, 11]  # depthwise: 2 outputs per channel
    # flatten after pooling to 2x2: channel c feeds features 4c..4c+3, and nothing else
    flat = [layer for layer in g.layers if layer.kind == "reshape"]
    assert len(flat) == 1 and flat[0].size == 48
    assert sorted(d for _, (_, d) in u.out_edges(("relu", 3))) == [12, 13, 14, 15]
    assert u.in_degree((flat[0].name, 13)) == 1


def test_residual_additions_merge_unit_wise():
    x = torch.randn(2, 3, 16, 16)
    m = linearize(models.resnet20((3, 16, 16), 10, width=0.25), x)
    m.train()
    stats = m.stem[1].running_mean.clone()
    g = unit_graph(m, x)
    assert m.training and torch.equal(m.stem[1].running_mean, stats)  # traced in eval mode, mode restored
    merges = [layer for layer in g.layers if layer.kind == "merge"]
    assert len(merges) == 9 and merges[0].name == "blocks.0.add"
    for layer in merges:
        ins = g.in_edges(layer.index)
        assert [e.kind for e in ins] == ["identity", "identity"]
    # block 3 changes width: its shortcut is a 1x1 conv; blocks 0..2 skip straight from the last gate
    m3 = g.layer("blocks.3.add")
    assert {g.layers[e.src].name for e in g.in_edges(m3.index)} == {"blocks.3.conv2", "blocks.3.shortcut.0"}
    m1 = g.layer("blocks.1.add")
    assert {g.layers[e.src].name for e in g.in_edges(m1.index)} == {"blocks.1.conv2", "blocks.0.relu2"}
    assert len(g.gate_layers) == 19


class _Cat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 3)
        self.b = nn.Linear(5, 4)
        self.relu = nn.ReLU()
        self.out = nn.Linear(7, 2)

    def forward(self, x):
        h = torch.cat([self.a(x), self.b(x)], dim=1)
        stacked = torch.stack([h, h * 2.0], dim=1).sum(1)  # stacking along a shared dim merges unit-wise
        return self.out(self.relu(stacked))


def test_concat_places_units_side_by_side_and_stack_merges():
    x = torch.randn(3, 5)
    g = unit_graph(linearize(_Cat(), x), x)
    cat = [layer for layer in g.layers if layer.kind == "concat"][0]
    assert cat.size == 7
    u = g.to_networkx()
    assert sorted(s for (s, _) in u.predecessors((cat.name, 4))) == ["b"]
    assert [v for (_, v) in u.predecessors((cat.name, 4))] == [1]
    stack = [layer for layer in g.layers if layer.kind == "merge"][0]
    assert [e.kind for e in g.in_edges(stack.index)] == ["identity", "identity"]
    assert u.edges[(cat.name, 0), (stack.name, 0)]["multiplicity"] == 2  # h and 2h: two parallel edges


def test_transformer_layers_are_structured_leaves():
    tok = torch.randint(0, 10, (2, 6))
    t = linearize(models.TransformerClassifier(10, 5, seq_len=6, d_model=8, depth=2, heads=2, ff_width=12), tok)
    g = unit_graph(t, tok)
    attn = "encoder.layers.0.self_attn"
    assert _layers(g)[:15] == [
        ("tokens", "input", 1), ("embed", "embedding", 8), (f"{attn}.q", "linear", 8), (f"{attn}.k", "linear", 8),
        (f"{attn}.v", "linear", 8), (f"{attn}.softmax", "softmax", 2), (f"{attn}.weighted_values", "product", 8),
        (attn, "attention", 8), ("encoder.layers.0.add1", "merge", 8), ("encoder.layers.0.norm1", "norm", 8),
        ("encoder.layers.0.linear1", "linear", 12), ("encoder.layers.0.activation", "gate", 12),
        ("encoder.layers.0.linear2", "linear", 8), ("encoder.layers.0.add2", "merge", 8),
        ("encoder.layers.0.norm2", "norm", 8)]
    assert _layers(g)[-1] == ("head", "linear", 5)
    assert [layer.kind for layer in g.gate_layers][:5] == ["softmax", "product", "norm", "gate", "norm"]
    with using_nonlinear_policy(["activation"]):  # the gates alone: attention mixes linearly, norms add no layer
        g_linear = unit_graph(t, tok)
    assert [layer.kind for layer in g_linear.gate_layers] == ["gate", "gate"]
    x = torch.randn(3, 4, 8)
    layer = linearize(nn.TransformerEncoderLayer(8, 2, 6, dropout=0.0, activation=nn.ReLU(), batch_first=True), x)
    g = unit_graph(layer, x)
    assert [n for n, _, _ in _layers(g)] == ["input", "self_attn.q", "self_attn.k", "self_attn.v", "self_attn.softmax",
                                             "self_attn.weighted_values", "self_attn", "add1", "norm1", "linear1",
                                             "activation", "linear2", "add2", "norm2"]
    gate = [gl for gl in g.gate_layers if gl.kind == "gate"][0]
    assert gate.module == "activation"
    g2 = unit_graph(nn.TransformerEncoderLayer(8, 2, 6, dropout=0.0, batch_first=True, norm_first=True), x)
    assert [n for n, _, _ in _layers(g2)][1:3] == ["norm1", "self_attn.q"]  # pre-norm: the norm feeds attention
    assert "activation" in [gl.kind for gl in g2.gate_layers]  # F.relu, not linearized: always nonlinear


class _Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(6, 6)
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        out, _ = self.attn(self.q(x), x, x)
        return self.relu(out)


def test_multihead_attention_is_queries_keys_values_a_softmax_per_head_and_a_product():
    x = torch.randn(2, 3, 6)
    g = unit_graph(linearize(_Attn(), x), x)
    src = {name: sorted(g.layers[e.src].name for e in g.in_edges(g.layer(name).index))
           for name in ("attn.q", "attn.k", "attn.v", "attn.softmax", "attn.weighted_values", "attn")}
    assert src == {"attn.q": ["q"], "attn.k": ["x"], "attn.v": ["x"], "attn.softmax": ["attn.k", "attn.q"],
                   "attn.weighted_values": ["attn.softmax", "attn.v"], "attn": ["attn.weighted_values"]}
    softmax = g.layer("attn.softmax")
    assert softmax.size == 2 and all(e.kind == "grouped" and e.groups == 2 for e in g.in_edges(softmax.index))
    to_values = [e for e in g.in_edges(g.layer("attn.weighted_values").index) if e.src == softmax.index][0]
    assert to_values.src_index.tolist() == [0, 0, 0, 1, 1, 1]  # each head's softmax scales its 3 features
    assert g.layer("attn").kind == "attention" and g.layer("attn.weighted_values").kind == "product"


def test_plain_relu_and_functional_models_work_without_linearize():
    x = torch.randn(2, 8)
    g = unit_graph(models.MLP(8, 3, width=4, depth=2), x)
    assert [layer.kind for layer in g.gate_layers] == ["activation", "activation"]
    assert all(m.all() for m in g.masks_from_model(None).values())

    class F_(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)

        def forward(self, x):
            return self.a(F.relu(self.a(x))).mean(dim=0, keepdim=True)  # reused module, reduce over batch

    m = linearize(F_(), x)  # reuse -> fx route: every call site has a gate of its own
    g = unit_graph(m, x)
    assert [layer.name for layer in g.layers] == ["x", "a", "relu", "a@1"]
    assert g.layers[2].kind == "gate"


class _Weird(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return torch.cumsum(self.lin(x), dim=1)


class _Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = _Weird()

    def forward(self, x):
        return self.block(x)


def test_unsupported_ops_name_the_op_and_the_module_path():
    with pytest.raises(UnsupportedOperationError, match=r"torch\.cumsum.*module 'block'"):
        unit_graph(_Outer(), torch.randn(2, 4))
    lstm = nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4))
    with pytest.raises(UnsupportedOperationError, match=r"module LSTM.*module '1'"):
        unit_graph(lstm, torch.randn(3, 2, 4))

    class Pool(nn.Module):
        def forward(self, x):
            return F.avg_pool1d(x, 2)  # pools over the unit (last) dim of a feature tensor

    with pytest.raises(UnsupportedOperationError, match="avg_pool1d.*pools over dim 2"):
        unit_graph(Pool(), torch.randn(2, 3, 8))

    class Heads(nn.Module):
        def forward(self, x):
            return x.view(2, 3, 2, 4)  # splits the 8 units over two dims

    with pytest.raises(UnsupportedOperationError, match="Tensor.view.*spreads the units"):
        unit_graph(Heads(), torch.randn(2, 3, 8))


def test_layer_level_export_and_edge_limits():
    x = torch.randn(2, 8)
    g = unit_graph(linearize(models.MLP(8, 3, width=4, depth=2), x), x)
    lg = g.to_networkx(level="layer")
    assert list(nx.topological_sort(lg)) == [layer.name for layer in g.layers]
    assert lg.edges["x", "net.1"] == {"kind": "dense", "count": 32}
    assert lg.graph["inputs"] == ["x"] and lg.graph["outputs"] == ["net.5"]
    with pytest.raises(ValueError, match="max_edges"):
        g.to_networkx(max_edges=10)
    with pytest.raises(ValueError, match="level"):
        g.to_networkx(level="units")


def test_hand_built_graphs_are_validated():
    g = UnitGraph()
    a, b = g.add_layer("a", 4, "input"), g.add_layer("b", 6)
    with pytest.raises(ValueError, match="earlier layer"):
        g.add_edges(b, a)
    with pytest.raises(ValueError, match="identity"):
        g.add_edges(a, b, "identity")
    with pytest.raises(ValueError, match="groups"):
        g.add_edges(a, b, "grouped", groups=3)
    with pytest.raises(ValueError, match="out of range"):
        g.add_edges(a, b, "index", src_index=[0, 4], dst_index=[0, 1])
    e = g.add_edges(a, b, "grouped", groups=2)
    src, dst = g.unit_edges(e)
    assert sorted(zip(src.tolist(), dst.tolist())) == [(s, d) for s in range(4) for d in range(6)
                                                       if s // 2 == d // 3]
    assert g.add_layer("b", 1) != b and g.layers[-1].name == "b@1"  # names stay unique
    np.testing.assert_array_equal(g.push(e, np.ones((1, 4))), [[2.0] * 6])


class _Gated(nn.Module):
    """A SwiGLU block: silu(gate(x)) * up(x), then down; max-pool and LayerNorm on the way."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.gate, self.up, self.down = nn.Linear(4, 6), nn.Linear(4, 6), nn.Linear(6, 4)

    def forward(self, x):
        h = self.norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def test_the_nonlinearity_policy_counts_what_has_no_gate_and_can_be_changed():
    x = torch.randn(2, 3, 4)
    m = linearize(_Gated(), x)
    g = unit_graph(m, x)
    kinds = {layer.name: layer.kind for layer in g.gate_layers}
    assert sorted(kinds.values()) == ["gate", "norm", "product"]  # the product of two activations is nonlinear
    silu = gates(m)[0]
    assert silu.kind == "silu"
    apl = []
    for units in ([], [0, 1, 2], list(range(6))):
        silu.set_linear(units)
        apl.append(average_path_length(m, x, graph=g))
    assert apl[0] > apl[1] > apl[2] > 0  # monotone; the norm and the product remain
    with using_nonlinear_policy(["activation"]) as policy:
        assert policy == {"activation"}
        assert average_path_length(m, x) == 0.0  # gates only: nothing nonlinear left
    assert nonlinear_policy() == set(FIXED_NONLINEAR)  # restored
    with pytest.raises(ValueError, match="unknown nonlinear ops"):
        set_nonlinear_policy(["relu"])

    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.AvgPool2d(2))
    xp = torch.randn(1, 1, 10, 10)
    assert [layer.kind for layer in unit_graph(pooled, xp).gate_layers] == ["max_pool"]  # average pooling: linear
    assert [layer.kind for layer in unit_graph(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), xp).layers] == [
        "input", "conv"]  # BatchNorm in eval mode is affine: no layer


def test_register_leaf_kinds_for_nonlinear_modules():
    class Swish(nn.Module):  # an activation of one's own
        def forward(self, x):
            return x * torch.sigmoid(x)

    class MyNorm(nn.Module):
        def forward(self, x):
            return x / x.norm(dim=-1, keepdim=True)

    register_leaf(Swish, "nonlinear")
    register_leaf(MyNorm, "norm")
    model = nn.Sequential(nn.Linear(4, 4), Swish(), MyNorm(), nn.Linear(4, 2))
    g = unit_graph(model, torch.randn(3, 4))
    assert [layer.kind for layer in g.gate_layers] == ["activation", "norm"]
