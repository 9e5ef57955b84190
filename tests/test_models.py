"""Model families: shapes, names of their ReLU modules, clear errors."""

import pytest
import torch
from torch import nn

from nonlin_explorer import average_path_length, datasets, gates, linearize, models, unit_graph


@pytest.mark.parametrize("name, shape, kwargs", [
    ("mlp", (1, 40), dict(width=8, depth=2)),
    ("cnn", (1, 40), dict(width=4)),
    ("cnn", (3, 16, 16), dict(width=4)),
    ("resnet20", (3, 32, 32), dict(width=0.25)),
    ("resnet", (1, 40), dict(depth=8, width=0.5)),
])
def test_models_give_logits(name, shape, kwargs):
    m = models.build(name, shape, 10, **kwargs)
    assert m(torch.randn(2, *shape)).shape == (2, 10)


def test_resnet_sizes_match_the_paper_families():
    count = lambda m: sum(isinstance(x, torch.nn.ReLU) for x in m.modules())
    assert count(models.resnet20()) == 19 and count(models.resnet56()) == 55
    n20 = sum(p.numel() for p in models.resnet20().parameters())
    assert 0.26e6 < n20 < 0.30e6  # ~0.27M with projection shortcuts


def test_transformer_predicts_per_token():
    m = models.build("transformer", (7,), 5, vocab_size=11, d_model=16, heads=2, depth=1, ff_width=8)
    assert m(torch.randint(0, 11, (3, 7))).shape == (3, 7, 5)


@pytest.mark.parametrize("call, match", [
    (lambda: models.build("vgg", (3, 32, 32), 10), "unknown model 'vgg'"),
    (lambda: models.ResNet(depth=21), "6n \\+ 2"),
    (lambda: models.MLP(4, 2, depth=0), "depth >= 1"),
    (lambda: models.build("transformer", (8,), 10), "needs vocab_size"),
])
def test_bad_model_settings_are_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mlp_takes_any_activation_and_linearize_gates_it():
    x = torch.randn(4, 6)
    model = linearize(models.MLP(6, 3, width=5, depth=2, activation=nn.GELU), x)
    assert [g.kind for g in gates(model)] == ["gelu", "gelu"]


def test_seq2seq_on_translation_gates_its_ffn_units_and_its_graph_has_cross_attention():
    data = datasets.load("translation", num_samples=50, seq_len=4, vocab_size=5)
    x, y = data.x_train[:3], data.y_train[:3]
    rev = x[:, :4].flip(1)
    assert torch.equal(y[:, :-1], (rev[:, :-1] + rev[:, 1:]) % 5) and torch.equal(y[:, -1], rev[:, -1])
    assert torch.equal(x[:, 4], torch.full((3,), 5)) and torch.equal(x[:, 5:], y[:, :-1])  # start token, shifted
    model = models.build("seq2seq", data.input_shape, data.num_classes, vocab_size=data.vocab_size, d_model=8,
                         heads=2, ff_width=6, depth=1)
    assert model(x).shape == (3, 4, 5)
    model = linearize(model, x)
    assert [g.name for g in gates(model)] == ["transformer.encoder.layers.0.activation",
                                              "transformer.decoder.layers.0.activation"]
    g = unit_graph(model, x)
    cross = g.layer("transformer.decoder.layers.0.multihead_attn.k")
    assert [g.layers[e.src].name for e in g.in_edges(cross.index)] == ["transformer.encoder.norm"]  # keys: memory
    for gate in gates(model):
        gate.set_linear()
    assert average_path_length(model, x, graph=g) > 0  # attention and norms stay nonlinear
