"""LinearizableReLU: slopes in [0, 1], three unit states, model-level helpers."""

import pytest
import torch
from torch import nn

from nonlin_explorer.gates import (
    LinearizableReLU,
    UnitState,
    gate_snapshot,
    make_gate,
    nonlinear_count,
    restore_gates,
    sparsity_penalty,
    temporary_gates,
)


def test_alpha_zero_is_relu_and_alpha_one_is_identity():
    x = torch.randn(64, 5)
    g = LinearizableReLU(5)
    assert torch.equal(g(x), torch.relu(x))
    g.set_linear()
    assert torch.equal(g(x), x)


def test_partial_slope_matches_formula_on_channel_and_last_axes():
    alpha = torch.tensor([0.0, 0.25, 0.5, 1.0])
    for axis, x in ((1, torch.randn(3, 4, 7, 7)), (-1, torch.randn(3, 6, 4))):
        g = LinearizableReLU(4, axis=axis)
        with torch.no_grad():
            g.alpha.copy_(alpha)
        shape = [1] * x.dim()
        shape[axis] = 4
        a = alpha.reshape(shape)
        expected = torch.clamp(x, min=0) + a * torch.clamp(x, max=0)
        torch.testing.assert_close(g(x), expected)


def test_clamp_projects_slopes_back_to_the_unit_interval():
    g = LinearizableReLU(2)
    with torch.no_grad():
        g.alpha.copy_(torch.tensor([-3.0, 7.0]))  # only a direct write can do this; training clamps
    g.clamp_()
    assert g.alpha.tolist() == [0.0, 1.0] and g.slope.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 3, 4, 4), (300, 3, 100)])
def test_fast_backward_matches_prelu_on_both_kernels(shape):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    g = LinearizableReLU(3).double()
    with torch.no_grad():
        g.alpha.copy_(torch.tensor([0.0, 0.3, 1.0]))
    grad = torch.randn(shape, dtype=torch.float64)
    ours = torch.autograd.grad(g(x), (x, g.alpha), grad)
    ref_alpha = g.alpha.detach().clone().requires_grad_()
    ref = torch.autograd.grad(torch.nn.functional.prelu(x, ref_alpha), (x, ref_alpha), grad)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_states_force_slopes_and_release_keeps_alpha():
    g = LinearizableReLU(4)
    g.set_linear([0, 1])
    g.set_nonlinear(3)
    assert g.state.tolist() == [UnitState.LINEAR, UnitState.LINEAR, UnitState.FREE, UnitState.NONLINEAR]
    assert g.slope.tolist() == [1.0, 1.0, 0.0, 0.0]
    g.release(0)
    assert g.state[0] == UnitState.FREE and g.slope[0] == 1.0  # continues from alpha = 1


def test_forced_units_get_no_gradient():
    g = LinearizableReLU(3)
    g.set_linear(0)
    g.set_nonlinear(1)
    g(-torch.rand(8, 3)).sum().backward()
    assert g.alpha.grad[0] == 0 and g.alpha.grad[1] == 0 and g.alpha.grad[2] != 0


def test_nonlinear_mask_uses_tolerance():
    g = LinearizableReLU(3)
    with torch.no_grad():
        g.alpha.copy_(torch.tensor([0.0, 0.9995, 0.99]))
    assert g.nonlinear_mask(tol=1e-3).tolist() == [True, False, True]
    assert g.nonlinear_mask(tol=0.02).tolist() == [True, False, False]


@pytest.mark.parametrize("units", [[5], [-6], torch.ones(3, dtype=torch.bool)])
def test_bad_unit_selection_is_a_clear_error(units):
    g = LinearizableReLU(4, name="layer1")
    with pytest.raises((IndexError, ValueError), match="layer1|shape"):
        g.set_linear(units)


def test_wrong_input_width_is_a_clear_error():
    g = LinearizableReLU(4, name="fc")
    with pytest.raises(ValueError, match="fc has 4 units"):
        g(torch.randn(2, 5))


def test_model_helpers_and_temporary_toggles():
    model = nn.Sequential(nn.Linear(3, 4), LinearizableReLU(4, name="a"),
                          nn.Linear(4, 2), LinearizableReLU(2, name="b"))
    assert nonlinear_count(model) == 6
    assert sparsity_penalty(model).item() == pytest.approx(6.0)
    model[1].set_linear([0, 1])
    assert nonlinear_count(model) == 4
    assert sparsity_penalty(model).item() == pytest.approx(4.0)  # forced units are outside the prior
    snap = gate_snapshot(model)
    with temporary_gates(model) as gd:
        gd["b"].set_linear()
        assert nonlinear_count(model) == 2
    assert nonlinear_count(model) == 4
    model[3].set_linear()
    restore_gates(model, snap)
    assert model[3].state.tolist() == [0, 0]


@pytest.mark.parametrize("units", [[2.5], 2.0, [True], True, torch.tensor([1.0])])
def test_unit_indices_must_be_integers_not_coerced(units):
    g = LinearizableReLU(6)
    with pytest.raises(TypeError, match="unit indices must be integers"):
        g.set_linear(units)
    assert int(g.state.sum()) == 0
    g.set_linear([])  # nothing selected is fine
    assert int(g.state.sum()) == 0


@pytest.mark.parametrize("act", [nn.ReLU(), nn.GELU()], ids=repr)
def test_a_gate_with_every_unit_forced_does_no_alpha_work_and_still_passes_the_input_gradient(act):
    g = make_gate(act, 3)
    g.set_linear([0, 2])
    g.set_nonlinear(1)
    x = torch.randn(8, 3, requires_grad=True)
    y = g(x)
    y.sum().backward()
    assert g.alpha.grad is None  # the slopes were constants: no d alpha reduction ran
    torch.testing.assert_close(y, torch.stack([x[:, 0], act(x[:, 1]), x[:, 2]], 1).detach())
    expected = torch.ones(8, 3)
    expected[:, 1] = torch.autograd.functional.vjp(act, x[:, 1].detach(), torch.ones(8))[1]
    torch.testing.assert_close(x.grad, expected)
    g.release(1)  # a free unit again: alpha gets its gradient back
    g(x).sum().backward()
    assert g.alpha.grad is not None and g.alpha.grad[1] != 0 and g.alpha.grad[0] == 0


@pytest.mark.parametrize("wants", ["x", "alpha"])
def test_fast_backward_gives_the_one_gradient_asked_for(wants):
    x = torch.randn(300, 3, 100, dtype=torch.float64, requires_grad=wants == "x")
    g = LinearizableReLU(3).double()
    with torch.no_grad():
        g.alpha.copy_(torch.tensor([0.0, 0.3, 1.0]))
    g.alpha.requires_grad_(wants == "alpha")
    grad = torch.randn(x.shape, dtype=torch.float64)
    (ours,) = torch.autograd.grad(g(x), x if wants == "x" else g.alpha, grad)
    ref_x, ref_alpha = x.detach().requires_grad_(), g.alpha.detach().clone().requires_grad_()
    ref = torch.autograd.grad(torch.nn.functional.prelu(ref_x, ref_alpha), (ref_x, ref_alpha), grad)
    torch.testing.assert_close(ours, ref[0] if wants == "x" else ref[1])
