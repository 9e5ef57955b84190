"""Gates for every common activation: lerp(act(x), x, alpha), exact at alpha = 0 and 1, through linearize, training,
toggles, the unit graph and collapse."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nonlin_explorer as ne
from nonlin_explorer import gate_kernels
from nonlin_explorer.gates import (
    FUNCTIONAL_KINDS,
    MODULE_KINDS,
    LinearizableActivation,
    LinearizableReLU,
    activation_kind,
    make_gate,
)

MODULES = [nn.ReLU(), nn.LeakyReLU(0.2), nn.ReLU6(), nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(),
           nn.Hardswish(), nn.ELU(0.7), nn.SELU(), nn.CELU(1.3), nn.Mish(), nn.Softplus(beta=2.0), nn.Tanh(),
           nn.Hardtanh(-2.0, 2.0)]


@pytest.mark.parametrize("act", MODULES, ids=lambda m: repr(m))
@pytest.mark.parametrize("axis, shape", [(1, (4, 5, 3, 3)), (-1, (4, 7, 5))])
def test_gate_is_the_activation_at_zero_linear_at_one_and_lerps_between(act, axis, shape):
    x = torch.randn(*shape) * 3
    g = make_gate(act, 5, axis=axis, name="g")
    assert isinstance(g, LinearizableReLU) == (type(act) is nn.ReLU) and g.kind == activation_kind(act)
    torch.testing.assert_close(g(x), act(x), rtol=0, atol=1e-6)
    g.set_linear()
    assert torch.equal(g(x), x)
    g.release([1, 3])
    with torch.no_grad():
        g.alpha[1], g.alpha[3] = 0.25, 0.75
    a = torch.tensor([1.0, 0.25, 1.0, 0.75, 1.0]).reshape([-1 if d == (axis % len(shape)) else 1
                                                           for d in range(len(shape))])
    torch.testing.assert_close(g(x), act(x) + a * (x - act(x)), rtol=1e-6, atol=1e-6)


def test_the_slope_gets_a_gradient_and_forced_units_hold():
    g = make_gate(nn.GELU(), 3)
    x = torch.randn(16, 3, requires_grad=True)
    g(x).sum().backward()
    expected = (x - F.gelu(x)).sum(0).detach()
    torch.testing.assert_close(g.alpha.grad, expected)
    g.set_nonlinear([0])
    with torch.no_grad():
        g.alpha.add_(0.3)
    g.clamp_()
    assert float(g.alpha.detach()[0]) == 0.0 and float(g.alpha.detach()[1]) == pytest.approx(0.3)


def test_in_place_activation_modules_are_gated_out_of_place():
    act = nn.ReLU6(inplace=True)
    g = make_gate(act, 4)
    x = torch.randn(2, 4) * 10
    before = x.clone()
    g(x)
    assert torch.equal(x, before) and act.inplace  # the model's own module is left as it was


def test_functional_calls_keep_their_arguments():
    x = torch.randn(3, 4) * 3
    cases = [(F.gelu, (), {"approximate": "tanh"}), (F.leaky_relu, (0.3,), {}), (F.elu, (), {"alpha": 0.5}),
             (F.silu, (), {}), (F.relu_, (), {})]
    for fn, args, kwargs in cases:
        g = make_gate(fn, 4, args=args, kwargs=kwargs)
        ref = {F.relu_: F.relu}.get(fn, fn)(x.clone(), *args, **kwargs)
        torch.testing.assert_close(g(x), ref)
    assert set(FUNCTIONAL_KINDS.values()) >= {"relu", "gelu", "silu", "leaky_relu", "relu6", "hardswish", "elu",
                                               "mish"}
    with pytest.raises(ValueError, match="not a supported activation"):
        make_gate(torch.sigmoid, 4)


class _Mixed(nn.Module):
    """Modules, a reused module and functional calls of several kinds."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3, self.l4 = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.gelu = nn.GELU()
        self.hs = nn.Hardswish()

    def forward(self, x):
        h = self.gelu(self.l1(x))
        h = F.silu(self.l2(h)) + self.hs(h)
        h = F.leaky_relu(self.l3(h), 0.1)
        return self.l4(self.gelu(h))


def test_linearize_gates_every_activation_by_default_and_keeps_the_function():
    model, x = _Mixed(), torch.randn(10, 6)
    with torch.no_grad():
        before = model(x)
    gm = ne.linearize(model, x)
    kinds = sorted(g.kind for g in ne.gates(gm))
    assert kinds == ["gelu", "gelu", "hardswish", "leaky_relu", "silu"]
    with torch.no_grad():
        torch.testing.assert_close(gm(x), before)
        for g in ne.gates(gm):
            g.set_linear()
        linear = gm(x)
    # Every unit linear: an affine map of x (checked by linearity in x).
    with torch.no_grad():
        y1, y2 = gm(x[:1]), gm(x[1:2])
        mid = gm((x[:1] + x[1:2]) / 2)
    torch.testing.assert_close(mid, (y1 + y2) / 2, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(linear, before)


def test_activations_narrows_what_is_gated():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 2))
    x = torch.randn(5, 4)
    only_relu = ne.linearize(model, x, activations=("relu",))
    assert [g.kind for g in ne.gates(only_relu)] == ["relu"] and isinstance(only_relu[3], nn.GELU)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 2))
    by_type = ne.linearize(model, x, activations=(nn.GELU,))
    assert [g.kind for g in ne.gates(by_type)] == ["gelu"]
    with pytest.raises(ValueError, match="module classes or kind names"):
        ne.linearize(nn.Sequential(nn.ReLU()), x, activations=(3,))


def test_hugging_face_activation_classes_are_recognized():
    cls = type("NewGELUActivation", (nn.Module,), {
        "forward": lambda self, x: 0.5 * x * (1 + torch.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))})
    cls.__module__ = "transformers.activations"
    assert activation_kind(cls()) == "newgeluactivation"
    model = nn.Sequential(nn.Linear(4, 6), cls(), nn.Linear(6, 2))
    x = torch.randn(3, 4)
    with torch.no_grad():
        before = model(x)
    ne.linearize(model, x)
    assert isinstance(model[1], LinearizableActivation) and model[1].kind == "newgeluactivation"
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)
    skip = type("LinearActivation", (nn.Module,), {"forward": lambda self, x: x})
    skip.__module__ = "transformers.activations"
    assert activation_kind(skip()) is None


def test_a_gelu_network_trains_under_the_prior_and_its_units_turn_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.GELU(), nn.Linear(16, 16), nn.SiLU(), nn.Linear(16, 2))
    x = torch.randn(256, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()
    model = ne.linearize(model, x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y) + 0.01 * ne.sparsity_penalty(model)
        loss.backward()
        opt.step()
        ne.clamp_slopes_(model)
    assert ne.nonlinear_count(model) < ne.unit_count(model)  # the prior pushed units to linear
    alphas = torch.cat([g.alpha.detach() for g in ne.gates(model)])
    assert float(alphas.min()) >= 0.0 and float(alphas.max()) <= 1.0


def test_path_length_is_monotone_and_collapse_exact_with_gelu_gates():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 12), nn.GELU(), nn.Linear(12, 12), nn.GELU(), nn.Linear(12, 3))
    x = torch.randn(7, 5)
    model = ne.linearize(model, x)
    g1, g2 = ne.gates(model)
    full = ne.average_path_length(model, x)
    g2.set_linear()
    some = ne.average_path_length(model, x)
    g1.set_linear(list(range(6)))
    fewer = ne.average_path_length(model, x)
    g1.set_linear()
    none = ne.average_path_length(model, x)
    assert full > some > fewer > none == 0.0
    g1.release()
    with torch.no_grad():
        g1.alpha.zero_()
    g1.set_linear(list(range(6)))
    result = ne.collapse(model, x)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-5, atol=1e-6)
    kept = ne.gates(result.model)
    assert [g.kind for g in kept] == ["gelu"] and kept[0].num_units == 6


def test_every_module_kind_has_a_name():
    assert len(set(MODULE_KINDS.values())) == len(MODULE_KINDS)


def test_every_activation_the_gates_know_the_unit_graph_knows_and_vice_versa():
    from nonlin_explorer import activations
    from nonlin_explorer.graph import ops

    assert set(MODULE_KINDS) <= set(ops.ACTIVATION_MODULES)
    for fn in FUNCTIONAL_KINDS:  # torch.fx records a Tensor method by name, a function by itself
        assert fn in ops.ACTIVATION_FUNCTIONS or (getattr(torch.Tensor, fn.__name__, None) is fn
                                                 and fn.__name__ in ops.ACTIVATION_METHODS), fn
    assert set(ops.ACTIVATION_MODULES) == set(MODULE_KINDS) | set(activations.UNGATED_MODULES)
    gated_or_not = set(FUNCTIONAL_KINDS) | activations.UNGATED_FUNCTIONS
    assert ops.ACTIVATION_FUNCTIONS <= gated_or_not
    assert all(getattr(torch.Tensor, name) in gated_or_not for name in ops.ACTIVATION_METHODS)
    assert not set(MODULE_KINDS) & set(activations.UNGATED_MODULES)
    assert not set(FUNCTIONAL_KINDS) & activations.UNGATED_FUNCTIONS
    assert set(activations.OUT_OF_PLACE) <= set(FUNCTIONAL_KINDS)


class _InPlaceActivations(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(F.elu_(F.leaky_relu_(self.a(x), 0.1)))


def test_in_place_leaky_relu_and_elu_are_activations_in_the_unit_graph_gated_or_not():
    x = torch.randn(3, 4)
    kinds = lambda g: [(layer.name, layer.kind) for layer in g.layers]
    assert kinds(ne.unit_graph(_InPlaceActivations(), x)) == [
        ("x", "input"), ("a", "linear"), ("leaky_relu_", "activation"), ("elu_", "activation"), ("b", "linear")]
    gated = ne.linearize(_InPlaceActivations(), x)
    assert [g.kind for g in ne.gates(gated)] == ["leaky_relu", "elu"]
    assert kinds(ne.unit_graph(gated, x)) == [
        ("x", "input"), ("a", "linear"), ("leaky_relu_", "gate"), ("elu_", "gate"), ("b", "linear")]


class _InPlaceUnassigned(nn.Module):
    """In-place activations whose result is used through the tensor, not the return value (torchvision's
    SiLU/Hardswish/ReLU6 are built with inplace=True)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.silu, self.hardswish = nn.SiLU(inplace=True), nn.Hardswish(inplace=True)

    def forward(self, x):
        h = self.a(x)
        self.silu(h)  # h is now silu(h)
        g = self.b(h)
        F.elu(g, inplace=True)
        self.hardswish(g)
        return self.c(g)


def test_in_place_activations_of_every_kind_keep_the_function():
    torch.manual_seed(0)
    model, x = _InPlaceUnassigned(), torch.randn(5, 4)
    with torch.no_grad():
        before = model(x)
    lin = ne.linearize(model, x)
    assert sorted(g.kind for g in ne.gates(lin)) == ["elu", "hardswish", "silu"]
    with torch.no_grad():
        torch.testing.assert_close(lin(x), before, rtol=0, atol=0)
        for g in ne.gates(lin):
            g.set_linear()
        linear = lin(x)
    assert not torch.allclose(linear, before)


def _gate_with_alpha(gate):
    """The gate as a function of (input, alpha), for gradcheck and torch.autograd.grad."""
    return lambda x, alpha: torch.func.functional_call(gate, {"alpha": alpha}, (x,))


@pytest.fixture(params=["autograd", "hand-written"])
def gate_path(request, monkeypatch):
    """Run a test on both gate paths: autograd (small inputs) and the hand-written backward (every input)."""
    if request.param == "hand-written":
        monkeypatch.setattr(gate_kernels, "FUNCTION_MIN_NUMEL", 0)
    return request.param


@pytest.mark.parametrize("act", MODULES, ids=lambda m: repr(m))
@pytest.mark.parametrize("axis, shape", [(1, (3, 4, 2, 2)), (-1, (2, 3, 4)), (1, (4,))])
def test_gate_gradients_pass_gradcheck_in_float64(act, axis, shape, gate_path):
    g = make_gate(act, 4, axis=axis).double()
    x = (torch.randn(*shape, dtype=torch.float64) * 3).requires_grad_(True)
    alpha = torch.tensor([0.0, 0.3, 0.8, 1.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_gate_with_alpha(g), (x, alpha))


@pytest.mark.parametrize("act", [m for m in MODULES if type(m) is not nn.ReLU], ids=lambda m: repr(m))
def test_hand_written_backward_is_used_and_equals_autograd_through_act_then_lerp(act, monkeypatch):
    monkeypatch.setattr(gate_kernels, "FUNCTION_MIN_NUMEL", 0)
    monkeypatch.setenv("NONLIN_EXPLORER_FUSED", "0")  # the eager hand-written path (tests/test_fused.py: the fused one)
    g = make_gate(act, 6).double()
    x = (torch.randn(5, 6, 3, dtype=torch.float64) * 3).requires_grad_(True)
    alpha = torch.linspace(0, 1, 6, dtype=torch.float64, requires_grad=True)
    y = _gate_with_alpha(g)(x, alpha)
    assert type(y.grad_fn).__name__ == "LerpGateBackward"
    grad = torch.randn_like(y)
    ours = torch.autograd.grad(y, (x, alpha), grad)
    reference = torch.autograd.grad(torch.lerp(act(x), x, alpha.view(1, -1, 1)), (x, alpha), grad)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b)



@pytest.mark.parametrize("act", [nn.GELU(), nn.Hardswish()], ids=repr)
def test_small_inputs_take_autograd_and_large_ones_the_hand_written_backward_with_equal_gradients(act, monkeypatch):
    monkeypatch.setenv("NONLIN_EXPLORER_FUSED", "0")  # the eager paths (tests/test_fused.py: the fused one)
    g = make_gate(act, 512)
    with torch.no_grad():
        g.alpha.copy_(torch.linspace(0, 1, 512))
    x = torch.randn(gate_kernels.FUNCTION_MIN_NUMEL // 512 + 1, 512) * 3
    assert type(g(x[:4].requires_grad_(True)).grad_fn).__name__.startswith("LerpBackward")

    def grads():
        xi = x.clone().requires_grad_(True)
        y = g(xi)
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        got = type(y.grad_fn).__name__, xi.grad, g.alpha.grad
        g.alpha.grad = None
        return got

    name, gx, galpha = grads()
    assert name == "LerpGateBackward"
    monkeypatch.setattr(gate_kernels, "FUNCTION_MIN_NUMEL", x.numel())
    ref_name, ref_gx, ref_galpha = grads()
    assert ref_name.startswith("LerpBackward")
    torch.testing.assert_close(gx, ref_gx)
    torch.testing.assert_close(galpha, ref_galpha, rtol=1e-5, atol=1e-4)
