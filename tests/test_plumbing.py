"""Model plumbing: eval mode and hooks always put back, and the gate index written once (queries only read)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nonlin_explorer as ne
from nonlin_explorer.gates import GATE_INDEX, LinearizableReLU, gates
from nonlin_explorer.linearize import index_gates
from nonlin_explorer.plumbing import eval_mode, forward_hooks, set_gate_index


def test_eval_mode_puts_the_mode_back_even_on_an_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with pytest.raises(RuntimeError), eval_mode(model):
        assert not model.training and not torch.is_grad_enabled()
        raise RuntimeError("boom")
    assert model.training and torch.is_grad_enabled()
    with eval_mode(model, grad=True):
        assert torch.is_grad_enabled()


def test_forward_hooks_are_removed_even_on_an_error():
    model = nn.Linear(2, 2)
    seen = []
    with pytest.raises(RuntimeError), forward_hooks([(model, lambda m, i, o: seen.append(1))]):
        model(torch.zeros(1, 2))
        raise RuntimeError("boom")
    model(torch.zeros(1, 2))
    assert seen == [1] and not model._forward_hooks


def test_the_gate_index_is_written_once_and_queries_only_read():
    model = nn.Sequential(nn.Linear(3, 4), LinearizableReLU(4), nn.Linear(4, 4), LinearizableReLU(4))
    assert [g.name for g in gates(model)] == ["", ""]  # a query names nothing
    index_gates(model, torch.randn(2, 3))
    assert [g.name for g in gates(model)] == ["1", "3"] and getattr(model, GATE_INDEX) == ("1", "3")
    set_gate_index(model, ["3", "1"])  # forward order is what the index says
    assert [g.name for g in gates(model)] == ["3", "1"]
    with pytest.raises(ValueError, match="no gate named"):
        set_gate_index(model, ["nope"])


def test_a_session_names_the_gates_of_a_model_built_by_hand():
    model = nn.Sequential(nn.Linear(2, 8), LinearizableReLU(8), nn.Linear(8, 3))
    s = ne.TrainingSession(dataset="spirals", dataset_kwargs={"num_samples": 200}, model=model)
    assert s.gate_names == ["1"]
    s.toggle("1", [0], 1)
    assert int(model[1].state[0]) == 1
