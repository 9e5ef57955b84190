"""The gates' kernels: no compiler touched at run time; torch.compile only when the user opts in."""

import pytest
import torch
from torch import nn

from nonlin_explorer import gate_kernels
from nonlin_explorer.gates import make_gate


def _forward_backward(gate, x):
    x = x.clone().requires_grad_(True)
    y = gate(x)
    y.backward(torch.ones_like(y))
    return y.detach(), x.grad, gate.alpha.grad


def test_gates_are_not_compiled_without_the_opt_in(monkeypatch):
    monkeypatch.delenv(gate_kernels.COMPILE_ENV, raising=False)
    compiled_before = dict(gate_kernels._COMPILED)
    _forward_backward(make_gate(nn.GELU(), 8), torch.randn(4, 8))
    assert gate_kernels.gate_backend()["backend"] in ("fused", "eager")
    assert gate_kernels._COMPILED == compiled_before


def test_only_the_value_1_opts_in(monkeypatch):
    monkeypatch.setenv(gate_kernels.COMPILE_ENV, "yes")
    assert not gate_kernels.compile_requested()
    monkeypatch.setenv(gate_kernels.COMPILE_ENV, "1")
    assert gate_kernels.compile_requested()


@pytest.mark.compile
@pytest.mark.parametrize("act", [nn.GELU(), nn.ReLU()], ids=repr)
def test_compiled_gate_matches_the_eager_gate_and_reports_its_compile_time(act, monkeypatch):
    x = torch.randn(16, 32) * 3
    with torch.no_grad():
        eager_gate = make_gate(act, 32)
        eager_gate.alpha.copy_(torch.linspace(0, 1, 32))
    compiled_gate = make_gate(act, 32)
    compiled_gate.load_state_dict(eager_gate.state_dict())
    monkeypatch.delenv(gate_kernels.COMPILE_ENV, raising=False)
    expected = _forward_backward(eager_gate, x)
    monkeypatch.setenv(gate_kernels.COMPILE_ENV, "1")
    got = _forward_backward(compiled_gate, x)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    report = gate_kernels.gate_backend()
    assert report["backend"] == "compiled", report["fallback"]
    assert any("(16, 32)" in k and v > 0 for k, v in report["first_call_s"].items())
