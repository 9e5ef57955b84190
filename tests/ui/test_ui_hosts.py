"""One field spec, two hosts: the anywidget widget and the Panel component are built from a controller's fields, the
TypeScript interfaces name the same fields, and both hosts deliver requests and answers the same way."""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from nonlin_explorer.ui.advantage_controller import ADVANTAGE_FIELDS
from nonlin_explorer.ui.compression_controller import COMPRESSION_FIELDS
from nonlin_explorer.ui.controller import Controller, RequestError
from nonlin_explorer.ui.dashboard_controller import DASHBOARD_FIELDS
from nonlin_explorer.ui.live_state import Field, LiveState, jsonable
from nonlin_explorer.ui.network_controller import NETWORK_FIELDS

JS = Path(__file__).resolve().parents[2] / "js" / "src"


def interface_keys(path: Path, name: str) -> set[str]:
    """The property names of ``export interface NAME { ... }`` (one level, as written in the file)."""
    text = path.read_text()
    m = re.search(rf"export interface {name}(?: extends (\w+))? \{{(.*?)\n\}}", text, re.S)
    assert m, f"no interface {name} in {path}"
    return set(re.findall(r"^\s{2}(\w+)\??:", m.group(2), re.M))


def test_the_typescript_interfaces_name_exactly_the_synced_fields():
    network = interface_keys(JS / "network_view_types.ts", "NetworkViewModel") - {"request"}
    assert network == {f.name for f in NETWORK_FIELDS}
    dashboard = interface_keys(JS / "dashboard" / "types.ts", "DashboardModel") | network
    assert dashboard == {f.name for f in DASHBOARD_FIELDS}
    assert interface_keys(JS / "advantage" / "types.ts", "AdvantageModel") == {f.name for f in ADVANTAGE_FIELDS}
    compression = interface_keys(JS / "compression" / "types.ts", "CompressionModel")
    assert compression == {f.name for f in COMPRESSION_FIELDS}


def test_both_hosts_are_built_from_the_same_fields():
    from nonlin_explorer.ui.advantage_panel import AdvantagePane
    from nonlin_explorer.ui.advantage_view import AdvantageView
    from nonlin_explorer.ui.compression_explorer import CompressionExplorer
    from nonlin_explorer.ui.compression_panel import CompressionExplorerPane
    from nonlin_explorer.ui.dashboard import TrainingDashboard
    from nonlin_explorer.ui.dashboard_panel import TrainingDashboardPane
    from nonlin_explorer.ui.network_view import NetworkView
    from nonlin_explorer.ui.network_view_panel import NetworkViewPane

    for widget, pane, fields in ((NetworkView, NetworkViewPane, NETWORK_FIELDS),
                                 (TrainingDashboard, TrainingDashboardPane, DASHBOARD_FIELDS),
                                 (AdvantageView, AdvantagePane, ADVANTAGE_FIELDS),
                                 (CompressionExplorer, CompressionExplorerPane, COMPRESSION_FIELDS)):
        names = {f.name for f in fields}
        # a host's own attributes never hide a synced field (the flush thread sets each one)
        assert [n for n in names if not isinstance(widget.class_traits().get(n), __import__("traitlets").TraitType)
                ] == [], widget
        synced = {n for n, t in widget.class_traits().items() if t.metadata.get("sync")}
        assert names <= synced and synced - names <= {"_esm", "_css", "_anywidget_id", "_model_name",
                                                       "_model_module", "_model_module_version", "_view_name",
                                                       "_view_module", "_view_module_version", "_dom_classes",
                                                       "layout", "tabbable", "tooltip", "_view_count"}
        assert names | {"request"} <= set(pane.param)


class Echo(Controller):
    """A tiny controller: a JSON field, a binary field, requests that set them or fail."""

    FIELDS = (Field("label", ""), Field("values", kind="float32"))
    BUNDLE = "network_view"  # any built bundle (not rendered here)

    def handle(self, message):
        if message["type"] == "set":
            self.state.update(label=str(message["label"]))
        elif message["type"] == "nan":
            self.state.post({"type": "value", "value": math.nan})
        else:
            raise RequestError(f"unknown request {message['type']!r}")


def test_live_state_marks_only_changes_and_keeps_messages_in_order():
    s = LiveState(Echo.FIELDS)
    assert set(s.take()) == {"label", "values"}  # everything is new at first
    s.update(label="")
    assert s.take() == {}  # unchanged JSON: nothing to send
    s.update(values=[1, 2])
    assert s.take()["values"].dtype == np.float32
    s.post({"n": 1})
    s.post({"n": 2})
    assert s.take_messages() == [{"n": 1}, {"n": 2}] and s.take_messages() == []
    with pytest.raises(KeyError, match="no field"):
        s.update(colour=1)
    assert jsonable({"a": [math.nan, math.inf, 1.0]}) == {"a": [None, None, 1.0]}


def test_the_widget_host_sends_changes_made_on_any_thread_and_answers_requests(monkeypatch):
    from nonlin_explorer.ui.widget_host import widget_base

    sent = []
    Widget = widget_base(Echo)
    monkeypatch.setattr(Widget, "send", lambda self, content, buffers=None: sent.append(content))
    c = Echo()
    w = Widget(c)
    try:
        t = threading.Thread(target=lambda: c.state.update(values=np.arange(3)))
        t.start()
        t.join()
        assert w.wait_flushed()
        assert w.values.tolist() == [0.0, 1.0, 2.0]
        assert w.get_state(["values"])["values"]["dtype"] == "float32"  # sent as a binary buffer
        w._on_msg(w, {"type": "set", "label": "hi", "id": "a"}, [])
        w._on_msg(w, {"type": "boom", "id": "b"}, [])
        w._on_msg(w, {"type": "nan", "id": "c"}, [])
        assert w.wait_flushed()
        assert w.label == "hi"
        assert {"type": "ack", "id": "a"} in sent and {"type": "value", "value": None} in sent
        (error,) = [m for m in sent if m["type"] == "error"]
        assert error["id"] == "b" and "unknown request 'boom'" in error["message"]
    finally:
        w.close()
    assert c.closed and not w._thread.is_alive()


def test_the_panel_host_takes_requests_as_a_numbered_parameter(monkeypatch):
    from nonlin_explorer.ui.panel_host import panel_base

    sent = []
    Pane = panel_base(Echo)
    monkeypatch.setattr(Pane, "send", lambda self, msg: sent.append(msg))
    c = Echo()
    pane = Pane(c)
    c.state.update(values=[4.0])
    pane.flush()
    assert pane.values["dtype"] == "float32" and np.frombuffer(pane.values["view"], np.float32).tolist() == [4.0]
    pane.request = {"type": "set", "label": "x", "id": "q1", "seq": 1}  # what the page sets
    assert pane.label == "x" and {"type": "ack", "id": "q1"} in sent  # answered at once, not at the next tick
    pane.request = {"type": "boom", "id": "q2", "seq": 2}
    assert sent[-1]["type"] == "error" and sent[-1]["id"] == "q2"
    pane.close()
    assert c.closed
