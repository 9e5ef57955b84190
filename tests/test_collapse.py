"""collapse: a smaller network with the same outputs (1e-5, float32), and clear errors where it cannot."""

import numpy as np
import pytest
import torch
from tiny_models import FigureOne
from torch import nn

from nonlin_explorer import gates, linearize, models
from nonlin_explorer.collapse import AffineSum, collapse, count_flops
from nonlin_explorer.core_network import core_network


def _assert_same(a, b, x):
    a.eval()
    b.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), atol=1e-5, rtol=1e-5)


def _randomize_free_slopes(model, rng):
    with torch.no_grad():
        for g in gates(model):
            free = g.state == 0
            g.alpha[free] = torch.as_tensor(rng.uniform(0, 0.6, int(free.sum())), dtype=g.alpha.dtype)


def _count(model, kind):
    return sum(1 for m in model.modules() if isinstance(m, kind))


def test_mlp_with_most_gate_layers_linear_collapses():
    x = torch.randn(8, 20)
    m = linearize(models.MLP(20, 5, width=32, depth=5), x)
    gs = gates(m)
    for i in (0, 1, 3, 4):
        gs[i].set_linear()
    _randomize_free_slopes(m, np.random.default_rng(0))
    res = collapse(m, x, timing_repeats=0)
    c = res.model
    _assert_same(m, c, torch.randn(256, 20))
    assert res.removed == ["net.2", "net.4", "net.8", "net.10"]
    assert [g.name for g in gates(c)] == ["net.6"] and gates(c)[0].num_units == 32
    assert _count(c, nn.Linear) + _count(c, AffineSum) == 2  # 6 Linear layers became 2
    assert res.params_after < 0.5 * res.params_before and res.params_after == sum(p.numel() for p in c.parameters())
    assert res.flops_after < 0.5 * res.flops_before
    assert res.max_abs_error < 1e-5


def test_partially_linear_layers_keep_only_their_nonlinear_units():
    x = torch.randn(8, 12)
    m = linearize(models.MLP(12, 4, width=16, depth=4), x)
    rng = np.random.default_rng(1)
    for g in gates(m):
        g.set_linear(np.flatnonzero(rng.random(16) < 0.6).tolist())
    _randomize_free_slopes(m, rng)
    res = collapse(m, x, timing_repeats=0)
    _assert_same(m, res.model, torch.randn(256, 12))
    assert res.split == [g.name for g in gates(m)]
    kept = gates(res.model)
    assert [g.num_units for g in kept] == [g.nonlinear_count(0.0) for g in gates(m)]
    g0 = gates(m)[0]
    assert kept[0].original_units == np.flatnonzero(g0.nonlinear_mask(0.0).numpy()).tolist()
    torch.testing.assert_close(kept[0].alpha, g0.alpha[g0.nonlinear_mask(0.0)])
    assert res.params_after < res.params_before
    # the collapsed model is still explorable: its graph and core network work on it
    assert core_network(res.model, x).widths.tolist() == [g.num_units for g in kept]


def test_an_all_linear_mlp_becomes_one_affine_map():
    x = torch.randn(4, 1, 12)
    m = linearize(models.MLP(12, 4, width=16, depth=3), x)
    for g in gates(m):
        g.set_linear()
    res = collapse(m, x, timing_repeats=0)
    lin = [mod for mod in res.model.modules() if isinstance(mod, nn.Linear)]
    assert len(lin) == 1 and (lin[0].in_features, lin[0].out_features) == (12, 4)
    assert not gates(res.model) and res.params_after == 12 * 4 + 4
    _assert_same(m, res.model, torch.randn(64, 1, 12))


def test_skips_and_bypasses_become_affine_sums():
    x = torch.randn(4, 1)
    m = linearize(FigureOne(), x)
    gs = gates(m)
    gs[0].set_linear([0, 1])
    gs[1].set_linear()
    gs[2].set_linear()
    res = collapse(m, x, timing_repeats=0)
    _assert_same(m, res.model, torch.randn(128, 1))
    assert res.removed == ["relu.1", "relu.2"] and res.split == ["relu.0"]
    assert _count(res.model, AffineSum) >= 1  # the last hidden layer sees relu.0's output and the bypass from x
    assert [(g.name, g.num_units) for g in gates(res.model)] == [("relu.0", 2), ("relu.3", 4)]


def test_a_bottleneck_is_not_merged_into_a_bigger_map():
    x = torch.randn(4, 32)
    m = linearize(nn.Sequential(nn.Linear(32, 2), nn.ReLU(), nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1)), x)
    gates(m)[0].set_linear()
    res = collapse(m, x, timing_repeats=0)
    _assert_same(m, res.model, torch.randn(64, 32))
    assert res.params_after <= res.params_before - 2  # the gate's slopes; no 32 x 32 product
    assert _count(res.model, nn.Linear) == 3


def _trained_bn(model, shape):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(shape) * 2 + 0.5)
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return model.eval()


def test_batchnorm_folds_and_1x1_conv_chains_merge():
    shape = (4, 3, 8, 8)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 6, 1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 6, 1, bias=False), nn.ReLU(),
                        nn.Conv2d(6, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    x = torch.randn(shape)
    m = linearize(_trained_bn(net, shape), x)
    gs = gates(m)
    gs[0].set_linear()  # 3x3 conv + BN, then 1x1 conv + BN: one 3x3 conv
    res = collapse(m, x, timing_repeats=0)
    _assert_same(m, res.model, torch.randn(16, 3, 8, 8))
    assert _count(res.model, nn.BatchNorm2d) == 0 and _count(res.model, nn.Conv2d) == 3
    assert any("0 + 1 + 3 + 4" in s for s in res.merges)
    gs[2].set_linear()  # bias-free 1x1 conv before a padded 3x3 conv: merges as well
    res = collapse(m, x, timing_repeats=0)
    _assert_same(m, res.model, torch.randn(16, 3, 8, 8))
    assert _count(res.model, nn.Conv2d) == 2 and res.params_after < res.params_before


def test_resnet_collapses_exactly():
    shape = (2, 3, 8, 8)
    x = torch.randn(shape)
    m = linearize(_trained_bn(models.ResNet((3, 8, 8), 5, depth=14, width=0.5), shape), x)
    names = [g.name for g in gates(m)]
    for g in gates(m):
        if g.name.endswith("relu1") or g.name.startswith("blocks.5"):
            g.set_linear()
    res = collapse(m, x, timing_repeats=0)
    _assert_same(m, res.model, torch.randn(8, 3, 8, 8))
    assert _count(res.model, nn.BatchNorm2d) == 0
    assert res.params_after < res.params_before and res.flops_after < res.flops_before
    assert set(res.removed) == {n for n in names if n.endswith("relu1") or n.startswith("blocks.5")}


def test_partially_linear_conv_layers_raise_or_stay():
    x = torch.randn(2, 1, 16)
    m = linearize(models.SmallCNN((1, 16), 3, width=4, depth=2), x)
    gates(m)[0].set_linear([1, 2])
    with pytest.raises(NotImplementedError, match=r"gate layer 'features.2' is partially linear \(2 of 4"):
        collapse(m, x, timing_repeats=0)
    res = collapse(m, x, strict=False, timing_repeats=0)
    assert res.kept == ["features.2"]
    _assert_same(m, res.model, torch.randn(16, 1, 16))


def test_transformers_collapse_only_what_is_exact():
    tok = torch.randint(0, 7, (2, 5))
    t = linearize(models.TransformerClassifier(7, 3, 5, d_model=8, depth=2, heads=2, ff_width=12), tok)
    res = collapse(t, tok, timing_repeats=0)
    _assert_same(t, res.model, torch.randint(0, 7, (6, 5)))
    assert res.removed == [] and res.flops_after == res.flops_before
    gates(t)[1].set_linear([0])
    with pytest.raises(NotImplementedError, match="'encoder.layers.1.activation' inside TransformerEncoder"):
        collapse(t, tok, timing_repeats=0)
    res = collapse(t, tok, strict=False, timing_repeats=0)
    assert res.kept == ["encoder.layers.1.activation"]
    _assert_same(t, res.model, torch.randint(0, 7, (6, 5)))
    x = torch.randn(2, 3, 8)
    layer = linearize(nn.TransformerEncoderLayer(8, 2, 6, dropout=0.0, activation=nn.ReLU(), batch_first=True), x)
    gates(layer)[0].set_linear()
    with pytest.raises(NotImplementedError, match="'activation' inside TransformerEncoderLayer"):
        collapse(layer, x, timing_repeats=0)


def test_the_original_is_untouched_and_the_report_is_complete():
    x = torch.randn(8, 10)
    m = linearize(models.MLP(10, 2, width=4, depth=1), x)
    assert count_flops(m, x) == 2 * 10 * 4 + 4 + 2 * 4 * 2  # two Linear layers and one gate per example
    gates(m)[0].set_linear()
    with torch.no_grad():
        before = m(x)
    m.train()
    res = collapse(m, x, timing_repeats=3)
    assert m.training and gates(m)[0].num_units == 4
    with torch.no_grad():
        torch.testing.assert_close(m(x), before)
    assert res.time_before > 0 and res.time_after > 0 and np.isfinite(res.time_ratio)
    assert res.flops_after == 2 * 10 * 2 and res.param_ratio < 1
    text = str(res)
    for word in ("parameters", "FLOPs", "time [ms]", "removed (all linear): net.2", "merged: net.1 + net.3"):
        assert word in text


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.s = AffineSum([3, 5], 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.s(x[:, :3], x[:, 3:]))


def test_flops_count_affine_sums_and_attention():
    assert count_flops(_TwoInputs(), torch.randn(5, 8)) == 2 * 8 * 4 + 2 * 4 * 2
    x = torch.randn(2, 3, 8)
    layer = nn.TransformerEncoderLayer(8, 2, 6, dropout=0.0, batch_first=True)
    # q, k, v and output projections, scores and weighted sum, feed-forward, two LayerNorms, the ReLU (F.relu:
    # a function, not counted)
    expected = 2 * (4 * 3 * 8 * 8 + 2 * 3 * 3 * 8) + 2 * 2 * 3 * 8 * 6 + 2 * 2 * 3 * 8
    assert count_flops(layer, x) == expected


def test_tol_trades_exactness_for_size():
    x = torch.randn(64, 10)
    m = linearize(models.MLP(10, 2, width=8, depth=2), x)
    with torch.no_grad():
        gates(m)[0].alpha.fill_(0.999)
    exact = collapse(m, x, timing_repeats=0)
    assert exact.removed == [] and exact.max_abs_error < 1e-6
    loose = collapse(m, x, tol=1e-2, timing_repeats=0)
    assert loose.removed == ["net.2"] and 0 < loose.max_abs_error < 1e-2
