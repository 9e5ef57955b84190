"""Average path length: the paper's Figure 1, dense chains, ResNets, transformers, and the dynamic
programs against brute-force path enumeration."""

import copy
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from tiny_models import FigureOne
from torch import nn

from nonlin_explorer import gates, linearize, models
from nonlin_explorer.graph import UnitGraph, unit_graph, using_nonlinear_policy
from nonlin_explorer.paths import (
    average_path_length,
    brute_force_path_lengths,
    count_paths,
    dp_path_lengths,
    layer_contributions,
    path_lengths,
    path_metrics,
)


@pytest.fixture
def figure_one():
    x = torch.randn(3, 1)
    return linearize(FigureOne(), x), x


def test_figure_one_all_nonlinear(figure_one):
    m, x = figure_one
    g = unit_graph(m, x)
    assert count_paths(g) == 257  # 4**4 branch paths + the skip
    assert average_path_length(m, x, normalized=True) == pytest.approx(2.0, abs=1e-12)
    assert average_path_length(m, x, normalized=False) == pytest.approx(1024 / 257, abs=1e-12)
    res = path_lengths(g, g.masks_from_model(m))
    assert res.per_layer_normalized == pytest.approx({f"relu.{i}": 0.5 for i in range(4)}, abs=1e-12)
    assert res.per_layer_unnormalized == pytest.approx({f"relu.{i}": 256 / 257 for i in range(4)}, abs=1e-12)


def test_figure_one_with_linear_units(figure_one):
    m, x = figure_one
    gs = gates(m)
    gs[0].set_linear([0, 1])  # layer 1: 2 of 4 nonlinear
    gs[2].set_linear()  # layer 3: all linear
    # by hand: normalized = (1/2) * (skip: 0) + (1/2) * (2/4 + 1 + 0 + 1) = 1.25;
    # unnormalized: each hidden unit lies on 4**3 = 64 of the 257 paths: 64 * (2 + 4 + 0 + 4) / 257
    assert average_path_length(m, x) == pytest.approx(1.25, abs=1e-12)
    assert average_path_length(m, x, normalized=False) == pytest.approx(640 / 257, abs=1e-12)
    g = unit_graph(m, x)
    masks = g.masks_from_model(m)
    brute = brute_force_path_lengths(g, masks)
    assert brute.num_paths == 257
    assert brute.normalized == pytest.approx(1.25, abs=1e-12)
    assert brute.unnormalized == pytest.approx(640 / 257, abs=1e-12)
    assert layer_contributions(m, x) == pytest.approx({"relu.0": 0.25, "relu.1": 0.5, "relu.2": 0.0, "relu.3": 0.5})
    assert layer_contributions(m, x, normalized=False)["relu.0"] == pytest.approx(128 / 257)
    # tol decides what counts as linear: alpha = 0.9995 is linear at tol 1e-3, nonlinear at tol 1e-4
    with torch.no_grad():
        gs[2].release()
        gs[2].alpha.fill_(0.9995)
    assert average_path_length(m, x, tol=1e-3) == pytest.approx(1.25)
    assert average_path_length(m, x, tol=1e-4) == pytest.approx(1.75)


def test_dense_chains_give_the_sum_of_nonlinear_fractions():
    x = torch.randn(2, 12)
    m = linearize(models.MLP(12, 5, width=10, depth=4), x)
    rng = np.random.default_rng(0)
    fractions = []
    for g_ in gates(m):
        linear = rng.choice(10, size=int(rng.integers(0, 11)), replace=False)
        g_.set_linear(linear.tolist())
        fractions.append(1 - len(linear) / 10)
    expected = sum(fractions)
    assert 0 < expected < 4
    assert average_path_length(m, x) == pytest.approx(expected, abs=1e-12)
    assert average_path_length(m, x, normalized=False) == pytest.approx(expected, abs=1e-12)


def _resnet20_unnormalized_all_nonlinear() -> Fraction:
    """Derived by hand: stem gate 1; an identity block of width C adds 1 + C^2 / (C^2 + 1), a projection
    block (C_in -> C, 1x1 conv shortcut) adds 1 + C / (C + 1)."""
    apl = Fraction(1)
    for stage, c in enumerate((16, 32, 64)):
        for i in range(3):
            apl += 1 + (Fraction(c, c + 1) if stage > 0 and i == 0 else Fraction(c * c, c * c + 1))
    return apl


def test_resnet20_all_linear_and_all_nonlinear():
    x = torch.randn(1, 3, 8, 8)  # the unit graph does not depend on the image size: keep the trace cheap
    m = linearize(models.resnet20((3, 32, 32), 10), x)
    g = unit_graph(m, x)
    # normalized: the stem gate counts 1; every block adds 1/2 (relu1, half the walks) + 1 (relu2)
    assert average_path_length(m, x, graph=g) == pytest.approx(1 + 9 * 1.5, abs=1e-12)
    expected = float(_resnet20_unnormalized_all_nonlinear())
    assert average_path_length(m, x, normalized=False, graph=g) == pytest.approx(expected, rel=1e-12)
    res = path_lengths(g, g.masks_from_model(m))
    assert res.normalized == pytest.approx(14.5, abs=1e-12) and res.unnormalized == pytest.approx(expected, rel=1e-12)
    assert res.num_paths > 1e29
    for gate in gates(m):
        gate.set_linear()
    assert average_path_length(m, x, graph=g) == 0.0
    assert average_path_length(m, x, normalized=False, graph=g) == 0.0


def test_normalizations_differ_where_branches_differ_in_width():
    x = torch.randn(1, 3, 8, 8)
    m = linearize(models.resnet20((3, 8, 8), 10, width=0.25), x)
    g = unit_graph(m, x)
    norm, unnorm = dp_path_lengths(g, g.masks_from_model(m))
    assert unnorm > norm + 1  # unnormalized: the many branch paths outweigh the skips


def _random_graph(rng: np.random.Generator) -> tuple[UnitGraph, dict[str, np.ndarray]]:
    g = UnitGraph()
    sizes = []
    for i in range(int(rng.integers(5, 9))):
        size = int(rng.choice([1, 2, 3, 4, 6]))
        kind = "input" if i < 2 else str(rng.choice(["gate", "linear", "merge"]))
        g.add_layer(f"L{i}", size, kind)
        sizes.append(size)
        if i < 2:
            g.mark_input(i)
            continue
        sources = rng.choice(i, size=int(rng.integers(1, min(i, 3) + 1)), replace=False)
        for s in sorted(sources.tolist()):
            ns, nd = sizes[s], size
            options = ["dense", "index"] + (["identity"] if ns == nd else [])
            options += ["grouped"] if math.gcd(ns, nd) > 1 else []
            kind_e = str(rng.choice(options))
            if kind_e == "grouped":
                g.add_edges(s, i, "grouped", groups=math.gcd(ns, nd))
            elif kind_e == "index":  # random sparse edges, some units may get none (dead ends)
                k = int(rng.integers(1, ns * nd + 1))
                g.add_edges(s, i, "index", src_index=rng.integers(0, ns, k), dst_index=rng.integers(0, nd, k))
            else:
                g.add_edges(s, i, kind_e)
    g.mark_output(len(sizes) - 1)
    if rng.random() < 0.5:
        g.mark_output(len(sizes) - 2)
    masks = {layer.name: rng.random(layer.size) < 0.6 for layer in g.gate_layers}
    return g, masks


def test_dynamic_programs_match_brute_force_on_random_dags():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(60):
        g, masks = _random_graph(rng)
        try:
            brute = brute_force_path_lengths(g, masks, max_paths=200_000)
        except ValueError:  # no path from an input to an output
            with pytest.raises(ValueError, match="no path"):
                dp_path_lengths(g, masks)
            continue
        norm, unnorm = dp_path_lengths(g, masks)
        res = path_lengths(g, masks)
        assert norm == pytest.approx(brute.normalized, abs=1e-9)
        assert unnorm == pytest.approx(brute.unnormalized, abs=1e-9)
        assert res.normalized == pytest.approx(brute.normalized, abs=1e-9)
        assert res.unnormalized == pytest.approx(brute.unnormalized, abs=1e-9)
        assert res.num_paths == brute.num_paths
        lean = brute_force_path_lengths(g, masks, per_layer=False)
        assert (lean.normalized, lean.unnormalized) == pytest.approx((brute.normalized, brute.unnormalized), abs=1e-12)
        for name, value in brute.per_layer_normalized.items():
            assert res.per_layer_normalized[name] == pytest.approx(value, abs=1e-9)
            assert res.per_layer_unnormalized[name] == pytest.approx(brute.per_layer_unnormalized[name], abs=1e-9)
        checked += 1
    assert checked >= 40


def _small_models():
    yield "mlp", linearize(models.MLP(6, 3, width=5, depth=3), torch.randn(2, 6)), torch.randn(2, 6)
    x = torch.randn(2, 1, 12)
    yield "cnn", linearize(models.SmallCNN((1, 12), 3, width=2, depth=2), x), x
    x = torch.randn(1, 2, 8, 8)
    yield "resnet", linearize(models.ResNet((2, 8, 8), 3, depth=8, width=0.125), x), x
    tok = torch.randint(0, 7, (2, 5))
    yield "transformer", linearize(models.TransformerClassifier(7, 2, 5, d_model=4, depth=1, heads=2,
                                                                ff_width=4), tok), tok
    x = torch.randn(2, 3, 4)
    yield "encoder_layer", linearize(nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation=nn.ReLU(),
                                                                batch_first=True), x), x


@pytest.mark.parametrize("case", range(5))
def test_models_agree_with_brute_force(case):
    name, m, x = list(_small_models())[case]
    g = unit_graph(m, x)
    rng = np.random.default_rng(case)
    for gate in gates(m):
        gate.set_linear(np.flatnonzero(rng.random(gate.num_units) < 0.4).tolist())
    masks = g.masks_from_model(m)
    brute = brute_force_path_lengths(g, masks)
    assert brute.unnormalized > 0
    res = path_lengths(g, masks)
    assert res.normalized == pytest.approx(brute.normalized, abs=1e-9), name
    assert res.unnormalized == pytest.approx(brute.unnormalized, abs=1e-9), name
    for gate in gates(m):
        gate.set_linear()
    fixed = [layer for layer in g.gate_layers if layer.kind != "gate"]  # norms, softmax, products, max-pool
    assert (average_path_length(m, x, graph=g) == 0.0) == (not fixed), name
    with using_nonlinear_policy(["activation"]):  # gates only: every gate linear leaves nothing nonlinear
        assert average_path_length(m, x) == 0.0, name


def test_transformer_encoder_layer_by_hand():
    x = torch.randn(2, 5, 16)
    m = linearize(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation=nn.ReLU(), batch_first=True), x)
    d, heads, ff = 16, 2, 32
    # Post-norm: norm2(h + ff(h)), h = norm1(x + attention(x)); attention: q, k, v (dense), one softmax unit per head
    # fed by its d/heads query and key units, weighted values (a product), the output map.
    # Normalized: both norms always (2); the gate with probability 1/2; inside the first residual sum (1/2) the
    # product (1) and, half of the time, the softmax: 2 + 1/2 + 1/2 * (1 + 1/2).
    assert average_path_length(m, x) == pytest.approx(3.25, abs=1e-12)
    # Unnormalized: 1 + A paths reach a unit of the first sum (A through attention: per weighted value d through its
    # value unit, 2 d^2 / heads through its head's softmax); the feed-forward multiplies them by ff * d.
    attention = d * (d + 2 * d * d / heads)
    via_softmax = (2 * d * d / heads) / (d + 2 * d * d / heads)
    expected = 2 + ff * d / (1 + ff * d) + attention / (1 + attention) * (1 + via_softmax)
    assert average_path_length(m, x, normalized=False) == pytest.approx(expected, abs=1e-12)
    with using_nonlinear_policy(["activation"]):  # the gate alone: 1/2, and ff d / (1 + ff d) of all paths
        assert average_path_length(m, x) == pytest.approx(0.5, abs=1e-12)
        assert average_path_length(m, x, normalized=False) == pytest.approx(ff * d / (1 + ff * d), abs=1e-12)


def test_huge_path_counts_do_not_overflow():
    g = UnitGraph()
    prev = g.add_layer("in", 512, "input")
    g.mark_input(prev)
    for i in range(150):  # 512**150 paths: far beyond float64
        lin = g.add_layer(f"lin{i}", 512)
        g.add_edges(prev, lin, "dense")
        prev = g.add_layer(f"gate{i}", 512, "gate")
        g.add_edges(lin, prev, "identity")
    out = g.add_layer("out", 3)
    g.add_edges(prev, out, "dense")
    g.mark_output(out)
    masks = {f"gate{i}": np.arange(512) < 128 for i in range(150)}
    norm, unnorm = dp_path_lengths(g, masks)
    assert norm == pytest.approx(150 * 0.25, rel=1e-12) and unnorm == pytest.approx(150 * 0.25, rel=1e-12)
    res = path_lengths(g, masks)
    assert res.unnormalized == pytest.approx(37.5, rel=1e-10)  # log scales of ~940 lose a few digits
    assert res.num_paths == math.inf and res.log_num_paths == pytest.approx(151 * math.log(512) + math.log(3))


def test_path_metrics_follow_the_gates(figure_one):
    m, x = figure_one
    metrics = path_metrics(m, x)
    assert set(metrics) == {"apl_normalized", "apl_unnormalized", "nonlinear_layers"}
    assert metrics["apl_normalized"](m) == pytest.approx(2.0)
    assert metrics["apl_unnormalized"](m) == pytest.approx(1024 / 257)
    assert metrics["nonlinear_layers"](m) == 4
    gates(m)[3].set_linear()
    assert metrics["apl_normalized"](m) == pytest.approx(1.5)
    assert metrics["nonlinear_layers"](m) == 3
    with torch.no_grad():
        gates(m)[0].alpha[:] = 1.0  # plain alpha edits (free units) are seen too
    assert metrics["apl_normalized"](m) == pytest.approx(1.0)
    other = copy.deepcopy(m)  # found by module path: a copy works
    gates(other)[1].set_linear()
    assert metrics["apl_unnormalized"](other) == pytest.approx(256 / 257)  # only layer 2 is left
    assert metrics["apl_unnormalized"](m) == pytest.approx(512 / 257)  # layers 1 and 2


def test_masks_are_checked():
    x = torch.randn(2, 4)
    m = linearize(models.MLP(4, 2, width=3, depth=1), x)
    g = unit_graph(m, x)
    with pytest.raises(KeyError, match="no mask for gate layer 'net.2'"):
        dp_path_lengths(g, {})
    with pytest.raises(ValueError, match="has 2 entries"):
        path_lengths(g, {"net.2": [1, 0]})
    with pytest.raises(KeyError, match="no module"):
        g.masks_from_model(models.MLP(4, 2, width=3, depth=0 + 1).net[0])
