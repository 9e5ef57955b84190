"""core_network: widths, effective depth and layer count of what is still nonlinear."""

import numpy as np
import pytest
import torch
from tiny_models import FigureOne

from nonlin_explorer import gates, linearize, models
from nonlin_explorer.core_network import core_network
from nonlin_explorer.graph import unit_graph


def _figure_one_partial():
    x = torch.randn(3, 1)
    m = linearize(FigureOne(), x)
    gs = gates(m)
    gs[0].set_linear([0, 1])
    gs[2].set_linear()
    return m, x


def test_widths_depth_and_layer_count():
    m, x = _figure_one_partial()
    core = core_network(m, x)
    assert core.layers == ["relu.0", "relu.1", "relu.2", "relu.3"]
    np.testing.assert_array_equal(core.widths, [2, 4, 0, 4])
    np.testing.assert_array_equal(core.units, [4, 4, 4, 4])
    assert core.nonlinear_layers == 3 and core.nonlinear_units == 10
    assert core.width == {"relu.0": 2, "relu.1": 4, "relu.2": 0, "relu.3": 4}
    assert core.apl_normalized == pytest.approx(1.25) and core.apl(normalized=False) == pytest.approx(640 / 257)
    np.testing.assert_allclose(core.contributions_normalized, [0.25, 0.5, 0.0, 0.5])
    assert core.contributions_unnormalized.sum() == pytest.approx(core.apl_unnormalized)
    assert "10/16 nonlinear units in 3/4 layers" in str(core)


def test_to_xarray():
    m, x = _figure_one_partial()
    ds = core_network(m, x).to_xarray()
    assert list(ds.layer.values) == ["relu.0", "relu.1", "relu.2", "relu.3"]
    np.testing.assert_array_equal(ds.width.values, [2, 4, 0, 4])
    np.testing.assert_allclose(ds.fraction.values, [0.5, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(ds.contribution_normalized.values, [0.25, 0.5, 0.0, 0.5])
    assert ds.attrs["apl_normalized"] == pytest.approx(1.25)
    assert ds.attrs["nonlinear_layers"] == 3 and ds.attrs["tol"] == pytest.approx(1e-3)
    from doc_tables import undocumented

    from nonlin_explorer.labels import unlabelled

    assert unlabelled(ds) == [] and undocumented(ds) == []  # long_name and units everywhere, each in docs/results.md


def test_core_graph_skips_linear_layers():
    m, x = _figure_one_partial()
    g = core_network(m, x).to_networkx()
    assert set(g.nodes) == {"x", "relu.0", "relu.1", "relu.3", "add"}  # relu.2 is all linear
    assert set(g.edges) == {("x", "relu.0"), ("x", "add"), ("relu.0", "relu.1"), ("relu.1", "relu.3"),
                            ("relu.3", "add")}
    assert g.nodes["relu.0"]["width"] == 2 and g.nodes["relu.0"]["units"] == 4


def test_resnet_core_matches_the_gates_and_reuses_a_graph():
    x = torch.randn(1, 3, 8, 8)
    m = linearize(models.resnet20((3, 8, 8), 10, width=0.25), x)
    rng = np.random.default_rng(0)
    for i, gate in enumerate(gates(m)):
        gate.set_linear(np.flatnonzero(rng.random(gate.num_units) < 0.5).tolist())
        if i % 4 == 0:
            gate.set_linear()
    graph = unit_graph(m, x)
    core = core_network(m, graph=graph)
    assert core.widths.tolist() == [gate.nonlinear_count() for gate in gates(m)]
    assert core.nonlinear_layers == sum(1 for gate in gates(m) if gate.nonlinear_count())
    assert core.contributions_normalized.sum() == pytest.approx(core.apl_normalized)
    assert 0 < core.apl_normalized < 14.5
    with pytest.raises(ValueError, match="example_input"):
        core_network(m)
