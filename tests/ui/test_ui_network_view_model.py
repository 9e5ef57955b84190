"""NetworkView's kernel side, without a browser: typed binary state, layout, requests and their answers, session
following (the widget over its NetworkController)."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest
import torch

import nonlin_explorer as ne
from nonlin_explorer.gates import UnitState
from nonlin_explorer.ui import NetworkView


@pytest.fixture
def mlp():
    return ne.linearize(ne.models.MLP(in_features=8, num_classes=3, width=6, depth=2), torch.randn(4, 8))


@pytest.fixture
def replies(monkeypatch):
    """Messages the view sends to the front end."""
    sent = []
    monkeypatch.setattr(NetworkView, "send", lambda self, content, buffers=None: sent.append(content))
    return sent


def set_state(view, layer, units, state, rid="r"):
    """What the page sends on a click (through anywidget's model.send)."""
    view._on_msg(view, {"type": "set_state", "targets": [{"layer": layer, "units": units}], "state": state,
                        "id": rid}, [])


def test_state_is_sent_as_binary_typed_arrays(mlp):
    view = NetworkView(mlp, torch.randn(16, 8))
    wire = view.get_state()  # what ipywidgets sends (memoryviews become binary buffers)
    for name, dtype in (("slopes", "float32"), ("states", "uint8"), ("activations", "float32")):
        assert isinstance(wire[name]["view"], memoryview), name  # a binary buffer, not a JSON list
        assert wire[name]["dtype"] == dtype and wire[name]["shape"] == [12]
        assert getattr(view, name).dtype == np.dtype(dtype)  # the trait holds a typed numpy array
    assert view.slopes.tolist() == [0.0] * 12
    acts = view.activations
    assert np.isfinite(acts).all() and (acts >= 0).all()  # mean ReLU outputs
    assert view.layers == [{"name": "net.2", "units": 6, "offset": 0, "block": -1},
                           {"name": "net.4", "units": 6, "offset": 6, "block": -1}]
    assert view.blocks == [] and view.status == "model" and view.title == "MLP"
    view.close()


def test_without_an_example_input_activations_are_unknown(mlp):
    view = NetworkView(mlp)
    assert np.isnan(view.activations).all()
    view.close()


def test_a_bad_example_input_is_a_clear_error(mlp):
    with pytest.raises(ValueError, match="example input does not run through the model"):
        NetworkView(mlp, torch.randn(2, 5))


def test_a_click_message_sets_the_gate_and_the_view_follows(mlp):
    view = NetworkView(mlp, torch.randn(16, 8))
    set_state(view, 0, [3], UnitState.LINEAR)
    gate = ne.gates(mlp)[0]
    assert gate.state.tolist() == [0, 0, 0, 1, 0, 0]  # applied at once: no session
    assert view.wait_idle()
    assert view.states.tolist()[:6] == [0, 0, 0, 1, 0, 0]
    assert view.slopes[3] == 1.0
    set_state(view, 1, None, UnitState.NONLINEAR)  # units null: the whole layer
    assert ne.gates(mlp)[1].state.tolist() == [2] * 6
    view.toggle("net.4", [0, 1], UnitState.FREE)  # the same from Python, by gate name
    assert ne.gates(mlp)[1].state.tolist() == [0, 0, 2, 2, 2, 2]
    view.close()


@pytest.mark.parametrize("content, error", [
    ({"type": "set_state", "targets": [{"layer": 5, "units": [0]}], "state": 1}, "out of range"),
    ({"type": "set_state", "targets": [{"layer": 0, "units": [9]}], "state": 1}, "has units 0..5"),
    ({"type": "set_state", "targets": [{"layer": 0, "units": [0]}, {"layer": 1, "units": [9]}], "state": 1},
     "has units 0..5"),  # checked before anything changes: the first target is not applied either
    ({"type": "set_state", "targets": [{"layer": 0, "units": [0]}], "state": 7}, "state must be"),
    ({"type": "set_state", "targets": [{"layer": 0, "units": [0]}], "state": True}, "state must be"),
    ({"type": "set_state", "targets": [{"layer": 0, "units": "all"}], "state": 1}, "units must be"),
    ({"type": "set_state", "targets": [{"layer": 0, "units": [1.5]}], "state": 1}, "units must be"),
    ({"type": "set_state", "targets": [], "state": 1}, "non-empty"),
    ({"type": "explode"}, "unknown message type"),
])
def test_bad_requests_get_an_error_answer_and_change_nothing(mlp, replies, content, error):
    view = NetworkView(mlp)
    view._on_msg(view, {**content, "id": "bad"}, [])
    assert view.wait_flushed()
    errors = [r for r in replies if r["type"] == "error"]
    assert len(errors) == 1 and errors[0]["id"] == "bad" and error in errors[0]["message"], replies
    assert all(g.state.sum() == 0 for g in ne.gates(mlp))
    view.close()


def test_a_good_request_is_acknowledged_by_its_id(mlp, replies):
    view = NetworkView(mlp)
    set_state(view, 0, [1], UnitState.LINEAR, rid="page-7")
    assert view.wait_flushed()
    assert {"type": "ack", "id": "page-7"} in replies
    view.close()


def small_session(**kw):
    return ne.TrainingSession(dataset="spirals", model="mlp", model_kwargs=dict(width=16, depth=2),
                              sparsity=1e-2, eval_every=5, seed=0, **kw)


def test_clicks_go_through_the_session_queue_while_it_trains():
    session = small_session(epochs=400)
    view = NetworkView(session, max_rate=20)
    assert view.title == "mlp on spirals"
    session.start()
    try:
        calls = []
        original = session.toggle
        session.toggle = lambda *a: (calls.append(a), original(*a))[1]
        set_state(view, 1, [2, 5], UnitState.LINEAR)
        assert calls == [("net.4", [2, 5], UnitState.LINEAR)]
        deadline = time.monotonic() + 10
        while not any(e["kind"] == "toggle" for e in session.events) and time.monotonic() < deadline:
            time.sleep(0.01)
        toggle = next(e for e in session.events if e["kind"] == "toggle")
        assert toggle["layer"] == "net.4" and toggle["units"] == [2, 5] and toggle["state"] == "linear"
        deadline = time.monotonic() + 5
        while view.states[16 + 2] != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert view.states[[18, 21]].tolist() == [1, 1]
        assert view.status == "running" and view.step > 0
    finally:
        session.stop()
        view.close()


def test_slope_updates_are_throttled_while_training():
    session = small_session(epochs=400)
    view = NetworkView(session, max_rate=10)
    pushes = []
    view.observe(lambda change: pushes.append(time.monotonic()), names="step")  # changes with every push
    session.start()
    time.sleep(1.5)
    session.stop()
    view.wait_idle()
    assert session.step > 30  # many steps ...
    assert 3 <= len(pushes) <= 1.5 * 10 + 2  # ... at most ~10 pushes a second
    view.close()


def test_a_stopped_session_is_toggled_at_once_and_close_unsubscribes():
    session = small_session(epochs=1)
    view = NetworkView(session)
    set_state(view, 0, [0], UnitState.NONLINEAR)
    assert ne.gates(session.model)[0].state[0] == UnitState.NONLINEAR  # not running: applied now
    assert session.events[-1]["kind"] == "toggle"
    listeners = session.trainer.subscribers
    view.close()
    assert len(session.trainer.subscribers) == len(listeners) - 1


def test_residual_blocks_and_skips_are_in_the_layout():
    model = ne.linearize(ne.models.resnet20(input_shape=(3, 8, 8)), torch.randn(2, 3, 8, 8))
    view = NetworkView(model, torch.randn(2, 3, 8, 8))
    assert len(view.layers) == 19 and sum(layer["units"] for layer in view.layers) == 16 + 6 * 16 + 6 * 32 + 6 * 64
    assert view.layers[0]["name"] == "stem.2" and view.layers[0]["block"] == -1
    assert len(view.blocks) == 9
    assert view.blocks[0] == {"name": "blocks.0", "first": 1, "last": 2, "projection": False}
    assert [b["projection"] for b in view.blocks] == [False] * 3 + [True] + [False] * 2 + [True] + [False] * 2
    assert all(view.layers[b["first"]]["block"] == k == view.layers[b["last"]]["block"]
               for k, b in enumerate(view.blocks))
    view.close()


def test_refresh_rereads_the_gates(mlp):
    view = NetworkView(mlp)
    ne.gates(mlp)[0].set_linear([1])  # changed behind the view's back
    view.refresh()
    assert view.states[1] == UnitState.LINEAR
    view.close()


def test_activations_are_computed_off_the_comm_thread(mlp):
    view = NetworkView(mlp, torch.randn(16, 8))
    threads = []
    controller = view.controller
    original = controller._activations
    controller._activations = lambda: (threads.append(threading.current_thread().name), original())[1]
    set_state(view, 0, [0], UnitState.LINEAR)
    assert view.wait_idle()
    assert threads == ["nonlin-explorer-network-view-activations"]  # its own thread: clicks never wait on it
    view.close()


def test_update_repaints_from_the_gates_for_custom_training_loops(mlp):
    view = NetworkView(mlp)
    with torch.no_grad():
        ne.gates(mlp)[1].alpha[:] = 0.5
    view.update()
    assert view.wait_idle()
    assert view.slopes[6:].tolist() == [0.5] * 6


def test_wait_idle_returns_once_the_widget_shows_a_change_not_when_it_was_taken(mlp, monkeypatch):
    """A flush takes the changes, then sets them on the widget (for a big model's arrays that takes a while):
    wait_idle waits for both, so what it promises is on the widget when it returns."""
    view = NetworkView(mlp, torch.randn(16, 8))
    assert view.wait_idle()
    original = NetworkView.hold_sync

    @contextlib.contextmanager
    def slow_hold_sync(self):
        time.sleep(0.3)  # between taking the changes and setting them
        with original(self):
            yield

    monkeypatch.setattr(NetworkView, "hold_sync", slow_hold_sync)
    before = np.array(view.activations, dtype=np.float32)
    view.toggle(0, [2], UnitState.LINEAR)  # the states, then the mean activations (another thread) change
    assert view.wait_idle()
    assert view.states[2] == UnitState.LINEAR
    assert not np.array_equal(np.array(view.activations, dtype=np.float32), before)  # the last change is shown too
    view.close()
