"""linearize: same function at alpha = 0; affine when every unit is linear; gates on every code path."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nonlin_explorer import gates, linearize, models


def _affine_defect(model, x):
    """max |f(x+y) - f(x) - f(y) + f(0)| relative to max |f(x)|: zero for an affine map."""
    y, z = torch.randn_like(x), torch.zeros_like(x)
    with torch.no_grad():
        fx = model(x)
        return ((model(x + y) - fx - model(y) + model(z)).abs().max() / fx.abs().max()).item()


CASES = {
    "mlp": (lambda: models.MLP(40, 10, width=16, depth=3), (4, 1, 40)),
    "cnn1d": (lambda: models.SmallCNN((1, 40), 10, width=8), (4, 1, 40)),
    "cnn2d": (lambda: models.SmallCNN((3, 16, 16), 10, width=8), (4, 3, 16, 16)),
    "resnet20": (lambda: models.resnet20((3, 32, 32), 10, width=0.5), (2, 3, 32, 32)),
}


@pytest.mark.parametrize("name", CASES)
def test_linearize_keeps_the_function_and_all_linear_is_affine(name):
    build, shape = CASES[name]
    model = build().eval()
    x = torch.randn(shape)
    with torch.no_grad():
        before = model(x)
    model = linearize(model, x)
    assert gates(model), "no gates were inserted"
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    assert _affine_defect(model, x) > 1e-3  # ReLU network: not affine
    for g in gates(model):
        g.set_linear()
    assert _affine_defect(model, x) < 1e-5  # eval mode: BatchNorm is affine too
    if name == "mlp":  # no BatchNorm: affine in train mode as well
        model.train()
        assert _affine_defect(model, x) < 1e-5


def test_unit_axes_and_counts_are_inferred():
    r = linearize(models.resnet20((3, 32, 32), 10), torch.randn(2, 3, 32, 32))
    gs = gates(r)
    assert len(gs) == 19 and gs[0].name == "stem.2" and gs[-1].name == "blocks.8.relu2"
    assert [g.num_units for g in gs[:3]] == [16, 16, 16] and all(g.axis == 1 for g in gs)
    t = linearize(models.TransformerClassifier(10, 10, seq_len=6, d_model=16, depth=2, heads=2, ff_width=24),
                  torch.randint(0, 10, (2, 6)))
    assert [(g.name, g.num_units, g.axis) for g in gates(t)] == [
        ("encoder.layers.0.activation", 24, -1), ("encoder.layers.1.activation", 24, -1)]


@pytest.mark.parametrize("activation", [nn.ReLU(), "relu"])
def test_transformer_layer_gates_hold_on_the_fused_inference_path(activation):
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation=activation, batch_first=True).eval()
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        before = layer(x)
    layer = linearize(layer, x)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), before, atol=1e-5, rtol=1e-5)
    gates(layer)[0].set_linear()
    reference = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation=nn.Identity(), batch_first=True)
    missing = reference.load_state_dict(layer.state_dict(), strict=False)
    assert not missing.missing_keys
    reference.eval()
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            torch.testing.assert_close(layer(x), reference(x), atol=1e-5, rtol=1e-5)


class _Functional(nn.Module):
    """Reuses one ReLU module and calls F.relu: every call site must get its own gate."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.act = nn.Linear(4, 6), nn.Linear(6, 6), nn.ReLU()

    def forward(self, x):
        h = self.act(self.a(x))
        return F.relu(self.b(h)) + self.act(h)


def test_reused_and_functional_relus_each_get_a_gate():
    model, x = _Functional(), torch.randn(5, 4)
    with torch.no_grad():
        before = model(x)
    model = linearize(model, x)
    assert len(gates(model)) == 3
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)
    for g in gates(model):
        g.set_linear()
    assert _affine_defect(model, x) < 1e-5


def test_linearize_twice_is_an_error():
    m = linearize(models.MLP(4, 2, 3, 1), torch.randn(2, 4))
    with pytest.raises(ValueError, match="already linearized"):
        linearize(m, torch.randn(2, 4))


def test_explicit_axis_overrides_inference():
    m = linearize(nn.Sequential(nn.Conv1d(2, 3, 1), nn.ReLU()), torch.randn(2, 2, 5), axis=-1)
    assert gates(m)[0].axis == -1 and gates(m)[0].num_units == 5


class _InPlaceMethod(nn.Module):
    def __init__(self):
        super().__init__()
        self.f, self.g = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = self.f(x)
        h.relu_()  # the result is read through h
        return self.g(h)


class _InPlaceFunctional(_InPlaceMethod):
    def forward(self, x):
        h = self.f(x)
        F.relu(h, inplace=True)
        return self.g(h)


class _InPlaceModuleUnassigned(_InPlaceMethod):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.f(x)
        self.act(h)
        return self.g(h)


class _InPlaceModuleAssigned(_InPlaceModuleUnassigned):  # torchvision's style: x = self.relu(x)
    def forward(self, x):
        return self.g(self.act(self.f(x)))


@pytest.mark.parametrize("cls", [_InPlaceMethod, _InPlaceFunctional, _InPlaceModuleUnassigned,
                                 _InPlaceModuleAssigned])
def test_in_place_relus_keep_the_function_and_linearize_for_real(cls):
    torch.manual_seed(0)
    model = cls()
    x = torch.randn(8, 4)
    ref = model(x).detach()
    lin = linearize(model, x)
    assert torch.allclose(lin(x), ref, atol=1e-6)  # alpha = 0: the same function
    (gate,) = gates(lin)
    gate.set_linear()
    torch.manual_seed(0)
    plain = cls()  # the same weights, no activation at all
    assert torch.allclose(lin(x), plain.g(plain.f(x)), atol=1e-6)  # alpha = 1: really linear


def test_a_function_that_cannot_be_kept_is_refused_with_a_clear_error():
    class Untraceable(nn.Module):  # data-dependent control flow (no fx) and an in-place ReLU read afterwards
        def __init__(self):
            super().__init__()
            self.f, self.act = nn.Linear(4, 4), nn.ReLU(inplace=True)

        def forward(self, x):
            h = self.f(x)
            self.act(h)
            return h * 2 if float(h.detach().sum()) > -1e9 else h

    with pytest.raises(ValueError, match="linearize"):
        linearize(Untraceable(), torch.randn(8, 4))


class _Bottleneck(nn.Module):
    """torchvision's style: one ReLU module called three times, a functional ReLU, and downsample=None."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        self.relu = nn.ReLU()
        self.downsample = None

    def forward(self, x):
        h = self.relu(self.a(x))
        h = self.relu(self.b(h))
        return self.relu(F.relu(h) + x)


def test_reused_and_functional_call_sites_get_names_in_the_model_hierarchy():
    model = nn.Sequential(_Bottleneck(), _Bottleneck())
    x = torch.randn(3, 4)
    lin = linearize(model, x)
    assert [g.name for g in gates(lin)] == ["0.relu", "0.relu_1", "0.relu_2", "0.relu_3",
                                            "1.relu", "1.relu_1", "1.relu_2", "1.relu_3"]
    assert lin.get_submodule("0").downsample is None  # the residual marker the trace dropped is back


class _Widths(nn.Module):
    """One ReLU module reused on two widths, and a functional ReLU on a third: each gate has its own width."""

    def __init__(self, relu: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.a, self.b, self.c, self.act = nn.Linear(4, 6), nn.Linear(6, 3), nn.Linear(3, 5), relu()

    def forward(self, x):
        h = self.act(self.b(self.act(self.a(x))))
        return F.relu(self.c(h))


class _TracedThroughReLU(nn.ReLU):
    """A ReLU class of the user's own: torch.fx traces into it (only torch's modules are leaves), so the trace sees
    its F.relu where the probe saw the module called."""

    def forward(self, x):
        return F.relu(x)


@pytest.mark.parametrize("relu", [nn.ReLU, _TracedThroughReLU])
def test_each_call_site_gets_the_width_of_its_own_input(relu):
    model, x = _Widths(relu), torch.randn(7, 4)
    with torch.no_grad():
        before = model(x)
    lin = linearize(model, x)
    assert [g.num_units for g in gates(lin)] == [6, 3, 5]
    with torch.no_grad():
        torch.testing.assert_close(lin(x), before, rtol=0, atol=0)


@pytest.mark.parametrize("build", [lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)),
                                   lambda: nn.Sequential(_Bottleneck(), nn.Linear(4, 2))],
                         ids=["swapped", "traced"])
def test_linearize_runs_the_model_twice_a_probe_and_the_check(build):
    model, x = build(), torch.randn(3, 4)
    calls = []
    model[-1].register_forward_hook(lambda m, i, o: calls.append(1))
    linearize(model, x)
    assert len(calls) == 2


class _LazyScale(nn.Module):
    """Sets its scale in place at the end of its first call (a lazy initialization): the first output differs from
    every later one."""

    def __init__(self):
        super().__init__()
        self.f, self.act = nn.Linear(4, 4), nn.ReLU()
        self.register_buffer("scale", torch.zeros(()))

    def forward(self, x):
        h = self.act(self.f(x))
        out = h * self.scale if self.scale else h
        if not self.scale:
            self.scale.fill_(2.0)
        return out


def test_a_model_that_changes_its_state_on_the_probe_is_checked_against_its_next_call():
    model, x = _LazyScale(), torch.randn(5, 4)
    lin = linearize(model, x)
    assert len(gates(lin)) == 1
    with torch.no_grad():
        torch.testing.assert_close(lin(x), 2.0 * F.relu(model.f(x)))
