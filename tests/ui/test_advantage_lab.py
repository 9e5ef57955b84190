"""The early-vs-late view (AdvantageView) in a real JupyterLab: runs stream their points into the page, and
*Present* shows the live app full-tab (a speaker runs it again from there)."""

from __future__ import annotations

import pytest
from panel_lab import PANEL_SETUP, open_panel_notebook

pytestmark = pytest.mark.ui

APP_CELL = 1
#: Two runs (early, late) of a tiny MLP on 300 spiral points: seconds on one CPU core.
APP = """\
from nonlin_explorer.ui import AdvantageView
view = AdvantageView(dict(dataset="spirals", dataset_kwargs={"num_samples": 300}, model="mlp",
                          model_kwargs={"width": 8, "depth": 2}, epochs=2, eval_every=1000, batch_size=64),
                     sparsities=[0.01], seeds=[0])
view"""
STATE = "{**view.status_dict(), 'gen': view._gen}"


def _finished(s: dict) -> bool:
    return s["gen"] == 1 and s["state"] == "finished" and s["runs"] == 2


def test_runs_stream_into_the_page_and_present_keeps_the_app_live(lab_page, lab_server):
    nb = open_panel_notebook(lab_page, lab_server.root, "advantage_lab.ipynb", [PANEL_SETUP, APP])
    nb.run(0)
    nb.run(APP_CELL)
    nb.wait_panel(APP_CELL, "Run")
    out = nb.output(APP_CELL)
    out.get_by_text("Status: idle").wait_for()

    nb.button(APP_CELL, "Run").click()
    s = nb.wait_value(STATE, _finished, "two runs from the page's Run button", timeout=120)
    assert s["points"] == {"early": 1, "late": 1} and set(s["gaps"]) and s["error"] == ""
    out.get_by_text("Status: finished, 2/2 runs").wait_for()
    out.locator(".ne-gap").get_by_text("Gap (late minus early test accuracy)").wait_for()

    panel = nb.present(APP_CELL)
    panel.get_by_role("button", name="Run").wait_for(timeout=30_000)
    panel.get_by_text("Status: finished, 2/2 runs").wait_for()
    box = panel.bounding_box()
    assert box["width"] > 1000 and box["height"] > 500  # a full-size tab
    canvases = panel.locator("canvas")
    assert canvases.count() >= 2 and canvases.first.bounding_box()["width"] > 300  # both plots drawn
    # Live: a second seed typed and run in the presented tab reaches the kernel, and its runs come back to the tab.
    seeds = panel.get_by_label("Seeds", exact=True)
    seeds.fill("0, 1")
    seeds.press("Enter")
    panel.get_by_role("button", name="Run").click()
    s = nb.wait_value(STATE, lambda s: s["gen"] == 2 and s["state"] == "finished", "the runs from the presented tab",
                      timeout=180, direct=True)
    assert s["runs"] == 4 and s["points"] == {"early": 2, "late": 2}
    panel.get_by_text("Status: finished, 4/4 runs").wait_for()
    assert lab_page.external_requests() == []
    nb.query("view.close() or 0")
