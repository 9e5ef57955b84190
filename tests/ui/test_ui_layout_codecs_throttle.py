"""The pure helpers under NetworkView: binary codecs, the drawing layout, the update throttle."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import nonlin_explorer as ne
from nonlin_explorer.ui.codecs import decode, encode
from nonlin_explorer.ui.layout import network_layout
from nonlin_explorer.ui.throttle import Throttle


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_codecs_round_trip(dtype, as_bytes):
    values = np.arange(7) % 3
    data = encode(torch.tensor(values), dtype, as_bytes=as_bytes)
    assert isinstance(data["view"], bytes if as_bytes else memoryview)
    assert data["dtype"] == dtype and data["shape"] == [7]
    assert len(memoryview(data["view"]).cast("B")) == 7 * np.dtype(dtype).itemsize
    back = decode(data)
    assert back.dtype == np.dtype(dtype) and back.tolist() == values.tolist()
    assert decode({"view": None, "dtype": dtype, "shape": [0]}).shape == (0,)


def test_codecs_reject_unknown_dtypes():
    with pytest.raises(ValueError, match="dtype"):
        encode([1.0], "float64")
    with pytest.raises(ValueError, match="dtype"):
        decode({"view": b"", "dtype": "int64", "shape": [0]})


def test_the_widget_trait_and_the_live_state_store_and_send_through_the_one_codec():
    from nonlin_explorer.ui.live_state import Field
    from nonlin_explorer.ui.widget_host import trait_for

    field = Field("slopes", kind="float32")
    stored = field.coerce(torch.tensor([[0.25, 1.0], [0.0, 0.5]]))
    assert stored.dtype == np.float32 and stored.tolist() == [0.25, 1.0, 0.0, 0.5]
    sent = trait_for(field).metadata["to_json"](stored, None)
    assert isinstance(sent["view"], memoryview) and decode(sent).tolist() == [0.25, 1.0, 0.0, 0.5]


def test_layout_of_a_plain_chain():
    model = ne.linearize(ne.models.MLP(in_features=4, num_classes=2, width=3, depth=3), torch.randn(2, 4))
    lay = network_layout(model)
    assert [(layer["name"], layer["units"], layer["offset"]) for layer in lay["layers"]] == [
        ("net.2", 3, 0), ("net.4", 3, 3), ("net.6", 3, 6)]
    assert lay["blocks"] == []


def test_layout_of_resnet56_has_2032_units_in_27_blocks():
    model = ne.linearize(ne.models.resnet56(input_shape=(3, 8, 8)), torch.randn(2, 3, 8, 8))
    lay = network_layout(model)
    assert len(lay["layers"]) == 55 and sum(layer["units"] for layer in lay["layers"]) == 2032
    assert len(lay["blocks"]) == 27 and sum(b["projection"] for b in lay["blocks"]) == 2


def test_layout_marks_transformer_layers_as_residual_blocks():
    model = ne.models.TransformerClassifier(vocab_size=5, num_classes=5, seq_len=6, d_model=8, depth=2, heads=2,
                                            ff_width=16)
    model = ne.linearize(model, torch.randint(0, 5, (2, 6)))
    lay = network_layout(model)
    assert [b["name"] for b in lay["blocks"]] == ["encoder.layers.0", "encoder.layers.1"]
    assert [layer["units"] for layer in lay["layers"]] == [16, 16]


def test_layout_needs_gates():
    with pytest.raises(ValueError, match="linearize"):
        network_layout(torch.nn.Linear(2, 2))


def test_throttle_coalesces_requests_and_limits_the_rate():
    calls = []
    done = threading.Event()
    throttle = Throttle(lambda reasons: (calls.append((time.monotonic(), reasons)), done.set()), rate=20)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.5:
        throttle.request("slopes")
        time.sleep(0.001)
    throttle.request("states")
    assert throttle.wait_idle(2)
    assert 5 <= len(calls) <= 0.5 * 20 + 2
    gaps = np.diff([t for t, _ in calls])
    assert (gaps >= 1 / 20 - 0.005).all()
    assert "states" in calls[-1][1]
    throttle.close()
    throttle.request("slopes")
    time.sleep(0.1)
    assert len(calls) <= 0.5 * 20 + 2 and throttle.closed


def test_throttle_survives_a_failing_call(capsys):
    calls = []

    def fn(reasons):
        calls.append(reasons)
        if len(calls) == 1:
            raise RuntimeError("boom")

    throttle = Throttle(fn, rate=100)
    throttle.request("a")
    assert throttle.wait_idle(2)
    throttle.request("b")
    assert throttle.wait_idle(2)
    assert calls == [{"a"}, {"b"}]
    assert "boom" in capsys.readouterr().err
    throttle.close()


@pytest.mark.parametrize("rate", [0, -1, float("nan"), "fast"])
def test_throttle_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="rate"):
        Throttle(lambda reasons: None, rate=rate)
