"""The unit graph cache: analyses reuse a model's graph after toggles, and rebuild it when what it depends on
changes (the policy, the registered leaves, a submodule, the input's shape); it holds models weakly."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from nonlin_explorer import average_path_length, core_network, gates, linearize
from nonlin_explorer.graph import cache as graph_cache
from nonlin_explorer.graph import cached_unit_graph, ops, register_leaf, using_nonlinear_policy


def _mlp(width: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width), nn.LayerNorm(width), nn.ReLU(),
                         nn.Linear(width, 2))


def _model_and_input():
    x = torch.randn(2, 3)
    return linearize(_mlp(), x), x


def test_a_toggle_reuses_the_graph_and_reads_the_slopes_fresh():
    model, x = _model_and_input()
    graph = cached_unit_graph(model, x)
    before = average_path_length(model, x)
    gates(model)[0].set_linear()
    assert cached_unit_graph(model, x) is graph
    assert average_path_length(model, x) == pytest.approx(before - 1)  # a whole layer of 4 units went linear
    assert core_network(model, x).widths.tolist() == [0, 4, 4]  # gate, norm, gate


def test_a_new_policy_gives_a_new_graph_and_the_new_apl():
    model, x = _model_and_input()
    counted = average_path_length(model, x)  # the LayerNorm is a layer of fixed nonlinear units
    with using_nonlinear_policy(["activation"]):
        assert average_path_length(model, x) == pytest.approx(counted - 1)
    assert average_path_length(model, x) == pytest.approx(counted)


def test_registering_a_leaf_rebuilds_the_graph():
    class Square(nn.Module):
        def forward(self, x):
            return x * x  # traced inside: a product of the input with itself

    torch.manual_seed(0)
    x = torch.randn(2, 3)
    model = linearize(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), Square(), nn.Linear(4, 2)), x)
    graph = cached_unit_graph(model, x)

    def kinds(g):
        return {layer.kind for layer in g.gate_layers if layer.module == "2"}

    assert kinds(graph) == {"product"}
    try:
        register_leaf(Square, "nonlinear")
        assert kinds(cached_unit_graph(model, x)) == {"activation"}
    finally:
        ops._LEAVES.pop(Square, None)
    assert kinds(cached_unit_graph(model, x)) == {"product"}


def test_replacing_a_submodule_rebuilds_the_graph():
    model, x = _model_and_input()
    before = average_path_length(model, x)
    graph = cached_unit_graph(model, x)
    model[3] = nn.Identity()  # the LayerNorm goes
    assert cached_unit_graph(model, x) is not graph
    assert average_path_length(model, x) == pytest.approx(before - 1)


def test_another_input_shape_or_dtype_gives_another_graph():
    model, x = _model_and_input()
    graph = cached_unit_graph(model, x)
    assert cached_unit_graph(model, torch.randn(2, 3)) is graph  # values do not matter, shapes do
    assert cached_unit_graph(model, torch.randn(5, 3)) is not graph
    assert cached_unit_graph(model.double(), x.double()) is not graph


def test_the_cache_does_not_keep_models_alive():
    model, x = _model_and_input()
    average_path_length(model, x)
    ref = weakref.ref(model)
    count = graph_cache.cached_models()
    del model
    gc.collect()
    assert ref() is None
    assert graph_cache.cached_models() <= count - 1  # its entry went with it


def test_the_masks_read_for_the_analyses_are_the_gates_own():
    """Forced units count as forced, free ones by ``1 - alpha > tol``, exactly as ``gate.nonlinear_mask`` says."""
    model, x = _model_and_input()
    gate = gates(model)[0]
    with torch.no_grad():
        gate.alpha.copy_(torch.tensor([0.0, 1.0 - 1e-4, 1.0, 0.5]))
    gate.set_linear([0])
    gate.set_nonlinear([2])
    mask = cached_unit_graph(model, x).masks_from_model(model)[gate.name]
    assert mask.tolist() == gate.nonlinear_mask().tolist() == [False, False, True, True]  # 1 - alpha = 1e-4 <= tol
    assert cached_unit_graph(model, x).masks_from_model(model, tol=1e-5)[gate.name].tolist() == \
        gate.nonlinear_mask(1e-5).tolist() == [False, True, True, True]
