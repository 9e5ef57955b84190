"""Browser test of ``serve --demo compression``: act in the page (Chromium), assert on the live Python state
(``/status.json``, the same mechanism as tests/ui/test_dashboard.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import xarray as xr
from playwright.sync_api import expect
from served_app import ServedPage, served_app

pytestmark = pytest.mark.ui

CONFIG = {"N": 500, "d": 10, "M": 3}


@pytest.fixture(scope="module")
def explorer_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")  # also the only folder the page may export into
    with served_app("compression", CONFIG, root) as base:
        SERVER_ROOT[base] = root
        yield base


SERVER_ROOT: dict[str, object] = {}


class ExplorerPage(ServedPage):
    """One browser tab on the compression explorer app."""

    ready_button = "Re-optimize"
    timeout = 30.0

    def type_into(self, label: str, text: str) -> None:
        box = self.page.get_by_label(label, exact=True)
        box.fill(text)
        box.press("Enter")


@pytest.fixture
def explorer(browser, explorer_server):
    e = ExplorerPage(browser, explorer_server)
    yield e
    e.context.close()


def _done(s: dict) -> bool:
    return s["state"] == "done" and s["applied_gen"] == s["requested_gen"]


def test_change_m_switch_method_export(explorer, tmp_path):
    s = explorer.wait(lambda s: _done(s) and s.get("M") == 3, "the first result")
    assert s["gram_size"] == 3 and s["etf_size"] == 3 and s["pca_points"] == 3
    loss3 = s["loss"]
    explorer.page.locator(".ne-table").get_by_text("relative loss").wait_for()

    explorer.type_into("M", "5")
    s = explorer.wait(lambda s: _done(s) and s.get("M") == 5, "the M = 5 result")
    assert s["gram_size"] == 5 and s["etf_size"] == 5 and s["pca_points"] == 5
    assert s["loss"] < loss3  # more units: a strictly better fit
    assert s["convergence_points"] > 1  # the exact optimizer streamed its loss
    explorer.page.locator(".ne-table").get_by_text(f"{s['loss']:.6g}").wait_for()  # the page shows it
    exact5 = s["loss"]

    explorer.page.get_by_label("Method", exact=True).select_option("magnitude")
    s = explorer.wait(lambda s: _done(s) and s.get("method") == "magnitude", "the magnitude result")
    assert s["gram_size"] == 5 and s["loss"] > exact5  # pruning is worse than the exact optimum

    explorer.type_into("Export to (netCDF)", str(tmp_path / "outside.nc"))  # outside the served folder: refused
    explorer.page.get_by_role("button", name="Export", exact=True).click()
    explorer.page.locator(".ne-message").get_by_text("outside the folder").wait_for()
    assert not (tmp_path / "outside.nc").exists()
    path = SERVER_ROOT[explorer.base] / "result.nc"
    explorer.type_into("Export to (netCDF)", "result.nc")
    explorer.page.get_by_role("button", name="Export", exact=True).click()
    explorer.page.locator(".ne-message").get_by_text("wrote").wait_for()
    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds = ds.load()
    s = explorer.state()
    assert float(ds["loss"]) == s["loss"] and ds.attrs["method"] == "magnitude"
    np.testing.assert_array_equal(ds["b"].values, s["b"])
    np.testing.assert_array_equal(ds["V"].values, s["V"])
    assert ds["gram"].shape == (5, 5)

    explorer.type_into("Export to (netCDF)", str(tmp_path / "missing" / "r.nc"))
    explorer.page.get_by_role("button", name="Export", exact=True).click()
    explorer.page.locator(".ne-message").get_by_text("export failed").wait_for()
    assert explorer.external_requests() == []


def test_loading_the_page_leaves_the_server_log_and_the_console_clean(explorer):
    """Every column a glyph reads exists from the first frame on: Bokeh logs E-1001 (BAD_COLUMN_NAME) otherwise."""
    explorer.wait(lambda s: _done(s) and s.get("M") == 3, "the first result")
    explorer.page.wait_for_timeout(500)  # the first result's updates reach the page and the server's checks run
    log = (SERVER_ROOT[explorer.base] / "serve.log").read_text()
    assert "serving at" in log  # the log being read is this server's
    bad = [line for line in log.splitlines() if "ERROR" in line or "E-1001" in line or "Traceback" in line]
    assert bad == []
    assert explorer.console_errors == []


#: Page coordinates of a data point (x, y) in the Bokeh plot whose title starts with the given text, from the
#: plot's own scales (Bokeh's views are reachable from window.Bokeh.index).
_DATA_TO_PAGE = """([title, x, y]) => {
  const seen = new Set();
  let found = null;
  function walk(v) {
    if (!v || seen.has(v) || found) return;
    seen.add(v);
    if (v.model?.title?.text?.startsWith(title)) { found = v; return; }
    for (const c of (v.child_views ?? [])) walk(c);
  }
  for (const v of Object.values(window.Bokeh.index)) walk(v);
  if (!found) throw new Error('no plot titled ' + title);
  const r = found.el.getBoundingClientRect();
  return [r.left + found.frame.x_scale.compute(x), r.top + found.frame.y_scale.compute(y)];
}"""


def test_drag_a_unit_then_reoptimize_from_there(explorer):
    s = explorer.wait(lambda s: _done(s) and s.get("M") == 3, "the first result")
    best, others = s["loss"], (s["pca_xy"][0], s["pca_xy"][2])
    x, y = s["pca_xy"][1]
    page = explorer.page
    src = page.evaluate(_DATA_TO_PAGE, ["Directions (PCA", x, y])
    dst = page.evaluate(_DATA_TO_PAGE, ["Directions (PCA", 0.3 * x, 0.3 * y])
    page.mouse.move(*src)
    page.mouse.down()
    page.mouse.move((src[0] + dst[0]) / 2, (src[1] + dst[1]) / 2)
    page.mouse.move(*dst)
    page.mouse.up()
    s = explorer.wait(lambda s: s.get("dragged"), "the drag to reach Python")
    assert s["method"] == "dragged" and s["loss"] > best * 1.01  # away from the optimum: worse
    # The unit shows where it was dropped (to the mouse's pixel accuracy); the others did not move.
    assert abs(s["pca_xy"][1][0] - 0.3 * x) < 0.03 and abs(s["pca_xy"][1][1] - 0.3 * y) < 0.03
    assert len(s["pca_xy"]) == 3
    assert s["pca_xy"][0] == pytest.approx(others[0]) and s["pca_xy"][2] == pytest.approx(others[1])
    page.locator(".ne-message").get_by_text("dragged unit 1").wait_for()
    page.locator(".ne-table").get_by_text(f"{s['loss']:.6g}").wait_for()
    dragged = s["loss"]

    page.get_by_role("button", name="Re-optimize", exact=True).click()
    s = explorer.wait(lambda s: _done(s) and s.get("method") == "exact", "the warm-started optimization")
    assert s["restarts"] == 1 and not s["dragged"]  # one run, from the dragged weights
    assert s["loss"] < dragged and s["loss"] == pytest.approx(best, rel=1e-3)
    assert explorer.external_requests() == []


def test_bad_input_keeps_last_valid_state(explorer):
    s = explorer.wait(_done, "the first result")
    before = (s["params"], s["loss"])
    for label, text, msg in (("M", "500", "M must be smaller than N"), ("M", "many", "not a number"),
                             ("d", "0", "d: must be >= 1")):
        explorer.type_into(label, text)
        explorer.page.locator(".ne-message").get_by_text(msg).wait_for()
        # the box shows the last valid value again (the server's answer reaches the page just after the message)
        expect(explorer.page.get_by_label(label, exact=True)).to_have_value(str(before[0][label]))
    explorer.page.get_by_label("Activation", exact=True).select_option("tanh")
    explorer.page.locator(".ne-message").get_by_text("tanh has no exact").wait_for()
    time.sleep(0.3)
    s = explorer.state()
    assert (s["params"], s["loss"]) == before and s["requested_gen"] == s["applied_gen"]
    assert explorer.external_requests() == []


def test_the_url_carries_the_settings_never_the_token(browser, explorer_server):
    e = ExplorerPage(browser, explorer_server, query="M=4&d=6&seed=2")
    try:
        s = e.wait(lambda s: _done(s) and s.get("M") == 4, "the URL's M = 4")
        assert (s["params"]["d"], s["params"]["seed"], s["params"]["N"]) == (6, 2, 500)  # N: the server's
        e.page.wait_for_url(lambda url: "token" not in url)  # the server rewrote the address: settings only
        assert "M=4" in e.page.url and "d=6" in e.page.url and "seed=2" in e.page.url
        e.type_into("M", "5")
        e.wait(lambda s: _done(s) and s.get("M") == 5, "M = 5")
        e.page.wait_for_url(lambda url: "M=5" in url)
        again = ExplorerPage(browser, explorer_server, context=e.context, url=e.page.url)  # the cookie, no token
        s = again.wait(lambda s: _done(s) and s.get("M") == 5, "the shared URL's M = 5")
        assert (s["params"]["d"], s["params"]["seed"]) == (6, 2)
    finally:
        e.context.close()


def test_bad_settings_in_the_url_say_why_and_start_from_the_server_settings(browser, explorer_server):
    e = ExplorerPage(browser, explorer_server, query="M=700")
    try:
        e.page.locator(".ne-message").get_by_text("settings in the URL ignored: M must be smaller than N").wait_for()
        s = e.wait(lambda s: _done(s), "the first result")
        assert s["params"]["M"] == 3
    finally:
        e.context.close()
