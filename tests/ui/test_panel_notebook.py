"""Panel apps in a notebook output (ui.panel_notebook): the kernel's patches reach the page in the order they were
made, and nothing the page is sent points at the internet. Real Panel and Bokeh; only the comm's wire is
replaced, by a recorder (the browser side is tests/ui/test_advantage_lab.py)."""

from __future__ import annotations

import asyncio
import json
import threading

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import ImportedStyleSheet, UIElement
from panel.io import notebook
from pyviz_comms import Comm

from nonlin_explorer.ui import panel_notebook


class RecordedComm(Comm):
    """A notebook comm that the page has not opened yet (``_comm`` None) until :meth:`open`."""

    def __init__(self):
        super().__init__()
        self._comm = None

    def open(self):
        self._comm = object()

    def init(self, on_msg=None):
        pass

    def close(self):
        pass


def run(scenario):
    """``asyncio.run(scenario())`` on a thread of its own (the suite's browser tests leave an event loop running
    on the main thread); its value, or its exception."""
    out: dict = {}

    def main():
        try:
            out["value"] = asyncio.run(scenario())
        except BaseException as exc:  # handed to the test's thread
            out["error"] = exc

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(30)
    if "error" in out:
        raise out["error"]
    return out["value"]


def show(viewable, comm):
    """Render ``viewable`` as a notebook output does (its document holds events until Panel pushes them)."""
    doc = Document()
    root = viewable.get_root(doc, comm)
    notebook.render_mimebundle(root, doc, comm)
    return root


@pytest.fixture
def sent(monkeypatch):
    """The patches Panel sends, as decoded JSON, in order."""
    assert panel_notebook.install()
    out: list[dict] = []
    monkeypatch.setattr(notebook, "send", lambda comm, msg: out.append(json.loads(msg.content_json)))
    return out


def _texts(messages: list[dict]) -> list[str]:
    return [e["new"] for m in messages for e in m["events"] if e.get("attr") == "text"]


def test_a_patch_made_before_the_comm_opened_does_not_overwrite_a_newer_one(sent):
    """Panel alone: "optimizing" (waiting for the comm) was sent after "done" (made once it had opened)."""

    async def scenario():
        text = pn.widgets.StaticText(value="starting")
        comm = RecordedComm()
        show(text, comm)
        text.value = "optimizing"  # the page has not opened the comm yet
        comm.open()
        text.value = "done"  # the comm is open, but an older patch still waits: this one waits behind it
        await asyncio.sleep(4 * panel_notebook.RETRY_S)
        text.value = "done again"  # nothing waits: straight out
        return _texts(sent)

    assert run(scenario) == ["optimizing", "done", "done again"]


def test_patches_wait_for_as_long_as_the_comm_stays_closed(sent):
    async def scenario():
        text = pn.widgets.StaticText(value="a")
        comm = RecordedComm()
        show(text, comm)
        text.value = "b"
        await asyncio.sleep(3 * panel_notebook.RETRY_S)
        assert sent == [] and panel_notebook.waiting_patches(comm) == 1  # retried, still closed: kept
        comm.open()
        await asyncio.sleep(3 * panel_notebook.RETRY_S)
        return _texts(sent)

    assert run(scenario) == ["b"]


def test_without_a_running_timer_the_first_push_after_the_comm_opened_sends_what_waits(sent):
    """No event loop runs the retry (a plain thread): the patches still leave, in order, with the next push."""
    out: dict = {}

    def main():
        text = pn.widgets.StaticText(value="a")
        comm = RecordedComm()
        show(text, comm)
        text.value = "b"
        out["waiting"] = panel_notebook.waiting_patches(comm)
        comm.open()
        text.value = "c"
        out["after"] = panel_notebook.waiting_patches(comm)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(30)
    assert (out["waiting"], out["after"], _texts(sent)) == (1, 0, ["b", "c"])


def _imported(model) -> list[str]:
    return [s.url for m in model.select({"type": UIElement}) for s in m.stylesheets
            if isinstance(s, ImportedStyleSheet)]


def test_updated_panes_keep_panel_stylesheets_inline(sent):
    """A Markdown table and an alert, updated after the first render: no link to cdn.holoviz.org (offline)."""
    assert panel_notebook.install()

    async def scenario():
        with pn.config.set(inline=True):
            table = pn.pane.Markdown("| a |\n|---|\n| 1 |")
            alert = pn.pane.Alert("fine", alert_type="info")
            layout = pn.Column(table, alert)
            comm = RecordedComm()
            comm.open()
            root = show(layout, comm)
            assert _imported(root) == []  # the first render: inline
            table.object = "| a |\n|---|\n| 2 |"
            alert.alert_type = "danger"
            alert.object = "wrong"
            await asyncio.sleep(0)
            return root

    root = run(scenario)
    assert _imported(root) == []
    wire = json.dumps(sent)
    assert "cdn.holoviz.org" not in wire and "http" not in wire, wire[:500]
    assert "wrong" in wire and "alert-danger" in wire  # the updates themselves were sent


def test_a_repeated_update_sends_the_stylesheets_once(sent):
    async def scenario():
        with pn.config.set(inline=True):
            table = pn.pane.Markdown("first")
            comm = RecordedComm()
            comm.open()
            show(table, comm)
            sizes = []
            for k in range(3):
                sent.clear()
                table.object = f"update {k}"
                assert _texts(sent) and f"update {k}" in _texts(sent)[0]
                sizes.append(len(json.dumps(sent)))
            return sizes

    sizes = run(scenario)
    assert max(sizes) < 2000, sizes  # the text; the stylesheets are the same models as before
