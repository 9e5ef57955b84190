"""The compression explorer in a real JupyterLab (Chromium): act on the rendered Panel app in the notebook's
output, read the explorer's state back from the kernel; and the launcher item that opens it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from panel_lab import PANEL_SETUP, PanelNotebook, open_panel_notebook
from playwright.sync_api import expect

pytestmark = pytest.mark.ui

APP_CELL = 1  # cell 0: panel setup; cell 1: the explorer; last: scratch
STATE = "ex.status_dict()"


def _opened_notebook(page, stem: str) -> str:
    """The file name of the notebook the launcher created and opened: stem.ipynb, or stem-1.ipynb... when an
    earlier test of the session left one in the same folder."""
    tab = page.locator(".lm-TabBar-tab.lm-mod-current", has_text=re.compile(rf"^{stem}(-\d+)?\.ipynb"))
    tab.wait_for()
    return re.search(rf"{stem}(-\d+)?\.ipynb", tab.inner_text()).group(0)


def _done(s: dict) -> bool:
    return s["state"] == "done" and s["applied_gen"] == s["requested_gen"]


def _state(nb: PanelNotebook, cond, what: str) -> dict:
    return nb.wait_value(STATE, lambda s: _done(s) and cond(s), what)


def test_explorer_in_a_notebook_slider_method_export(lab_page, lab_server):
    nb = open_panel_notebook(lab_page, lab_server.root, "compression_lab.ipynb", [
        PANEL_SETUP,
        "from nonlin_explorer.ui import CompressionExplorer\nex = CompressionExplorer(N=500, d=10, M=3)\nex",
    ])
    nb.run(0)
    nb.run(APP_CELL)
    nb.wait_panel(APP_CELL, "Re-optimize")
    s = _state(nb, lambda s: s.get("M") == 3, "the M = 3 result")
    assert s["gram_size"] == 3 and s["etf_size"] == 3 and not s["view3d_visible"]
    loss3 = s["loss"]
    nb.by_class(APP_CELL, "ne-table").get_by_text(f"{loss3:.6g}").wait_for()

    # The M slider, moved with the keyboard on its handle (as a user can): 3 -> 5.
    handle = nb.by_class(APP_CELL, "ne-m-slider").locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    handle.press("ArrowRight")
    s = _state(nb, lambda s: s.get("M") == 5, "the M = 5 result")
    assert s["m_slider"] == 5 and s["params"]["M"] == 5
    assert s["gram_size"] == 5 and s["etf_size"] == 5 and s["pca_points"] == 5
    assert s["loss"] < loss3  # more units: a strictly better fit, and the table shows the new loss
    assert s["view3d_visible"] and s["view3d_points"] == 5 and s["view3d_edges"] == 10
    expect(nb.widget(APP_CELL, "M")).to_have_value("5")  # the text box follows the slider (the page may lag the kernel)
    nb.by_class(APP_CELL, "ne-table").get_by_text(f"{s['loss']:.6g}").wait_for()
    exact5 = s["loss"]

    nb.widget(APP_CELL, "Method").select_option("magnitude")
    s = _state(nb, lambda s: s.get("method") == "magnitude", "the magnitude result")
    assert s["gram_size"] == 5 and s["loss"] > exact5  # pruning is worse than the exact optimum

    path = lab_server.root / "explorer_result.nc"
    nb.type_into(APP_CELL, "Export to (netCDF)", str(path))
    nb.button(APP_CELL, "Export").click()
    nb.by_class(APP_CELL, "ne-message").get_by_text("wrote").wait_for()
    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds = ds.load()
    s = nb.evaluate(STATE)
    assert float(ds["loss"]) == s["loss"] and ds.attrs["method"] == "magnitude"
    np.testing.assert_array_equal(ds["b"].values, s["b"])
    np.testing.assert_array_equal(ds["V"].values, s["V"])
    assert ds["gram"].shape == (5, 5) and ds.attrs["M"] == 5
    # The kernel's own dataset round-trips through the file unchanged.
    assert nb.evaluate(f"__import__('xarray').open_dataset({str(path)!r}).load().equals(ex.dataset())") is True
    assert lab_page.external_requests() == []  # offline: Panel's stylesheets stay inline (ui.panel_notebook)
    nb.evaluate("ex.close() or 0")


def test_launcher_item_opens_the_explorer(lab_page, lab_server):
    page = lab_page.page
    page.goto(lab_server.url("lab", reset=""))
    page.locator(".jp-Launcher").wait_for(timeout=60_000)
    section = page.locator(".jp-Launcher-section", has=page.locator(".jp-Launcher-sectionTitle",
                                                                      has_text="Nonlinear Explorer"))
    assert section.locator(".jp-LauncherCard", has_text="Training dashboard").count() == 1
    card = section.locator(".jp-LauncherCard", has_text="Compression explorer")
    assert card.count() == 1
    card.click()
    name = _opened_notebook(page, "compression-explorer")
    nb = PanelNotebook(lab_page, name)
    # The launcher ran the cell: the explorer renders without any further action.
    nb.wait_panel(0, "Re-optimize", timeout=120)
    nb.by_class(0, "ne-table").get_by_text("relative loss").wait_for(timeout=120_000)
    source = (lab_server.root / name).read_text()
    assert "CompressionExplorer()" in source and "nonlin_explorer_app" in source
    assert lab_page.external_requests() == []  # offline: Panel's stylesheets stay inline (ui.panel_notebook)


def test_launcher_item_opens_the_training_dashboard(lab_page, lab_server):
    """The dashboard opens from the launcher on its demo, in a small notebook (no Panel/Bokeh JS inlined)."""
    import time

    page = lab_page.page
    page.goto(lab_server.url("lab", reset=""))
    page.locator(".jp-Launcher").wait_for(timeout=60_000)
    t0 = time.monotonic()
    page.locator(".jp-Launcher-section .jp-LauncherCard", has_text="Training dashboard").click()
    name = _opened_notebook(page, "training-dashboard")
    nb = PanelNotebook(lab_page, name)
    out = nb.output(0)
    out.locator(".ne-dash .ne-network .ne-unit").first.wait_for(timeout=120_000)
    seconds = time.monotonic() - t0
    assert out.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    out.locator(".ne-dash-status", has_text="idle").wait_for()
    source = (lab_server.root / name).read_text()
    assert "TrainingDashboard.demo()" in source and "panel" not in source
    assert seconds < 90, f"launcher click -> visible dashboard took {seconds:.0f} s"  # target 10 s: bench_live
    print(f"\nlauncher click -> visible dashboard: {seconds:.1f} s")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    size = (lab_server.root / name).stat().st_size
    assert size < 1_000_000, f"the saved launcher notebook is {size} bytes"
    assert lab_page.external_requests() == []


def test_present_shows_the_explorer_full_tab_and_it_stays_live(lab_page, lab_server):
    nb = open_panel_notebook(lab_page, lab_server.root, "compression_present.ipynb", [
        PANEL_SETUP,
        "from nonlin_explorer.ui import CompressionExplorer\nex = CompressionExplorer(N=400, d=8, M=3)\nex",
    ])
    nb.run(0)
    nb.run(APP_CELL)
    nb.wait_panel(APP_CELL, "Re-optimize")
    _state(nb, lambda s: s.get("M") == 3, "the M = 3 result")
    page = nb.page
    panel = nb.present(APP_CELL)
    panel.get_by_role("button", name="Re-optimize").wait_for(timeout=30_000)
    panel.get_by_text("Status: done").wait_for()  # the live app, not a copy frozen at its first render
    box = panel.bounding_box()
    assert box["width"] > 1000 and box["height"] > 500  # a full-size tab, not a blank one
    canvases = panel.locator("canvas")
    assert canvases.count() >= 4 and canvases.first.bounding_box()["width"] > 100  # the plots are drawn
    # The presented app is the live one: its M box reaches the kernel, and the result comes back to the tab.
    box_m = panel.get_by_label("M", exact=True)
    box_m.fill("4")
    box_m.press("Enter")
    panel.get_by_text("Status: done (exact, N = 400, d = 8, M = 4)").wait_for(timeout=60_000)
    presented_table = panel.locator(".ne-table table").inner_text()
    # Closing the tab puts the app back into the notebook, still live.
    page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon").click()
    nb.output(APP_CELL).get_by_text("Status: done (exact, N = 400, d = 8, M = 4)").wait_for()
    assert nb.output(APP_CELL).locator(".ne-present-placeholder").count() == 0
    s = _state(nb, lambda s: s.get("M") == 4, "M = 4 from the presented tab")
    assert s["gram_size"] == 4 and f"{s['loss']:.6g}" in presented_table
    assert lab_page.external_requests() == []
    nb.evaluate("ex.close() or 0")
