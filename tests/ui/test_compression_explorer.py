"""Browser tests of ``serve --demo compression`` (Chromium against the real server): act in the page as a person
does, read the page and the live Python state (``/status.json``) back. Nothing here reads a charting library's
internals: the page's own elements and their data attributes say what each view shows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from chart_exports import check_figure_png, download
from compression_look import check_look
from playwright.sync_api import expect
from served_app import ServedPage, served_app

pytestmark = pytest.mark.ui

CONFIG = {"N": 500, "d": 10, "M": 3}
SERVER_ROOT: dict[str, object] = {}


@pytest.fixture(scope="module")
def explorer_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")  # also the only folder the page may export into
    with served_app("compression", CONFIG, root) as base:
        SERVER_ROOT[base] = root
        yield base


class ExplorerPage(ServedPage):
    """One browser tab on the compression explorer app."""

    ready_button = "Re-optimize"
    timeout = 30.0

    def box(self, label: str):
        return self.page.get_by_label(label, exact=True)

    def type_into(self, label: str, text: str) -> None:
        self.box(label).fill(text)
        self.box(label).press("Enter")

    def chart(self, name: str):
        return self.page.locator(f".ne-cx [data-chart='{name}']")

    def unit_at(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of the point (x, y) of the 2-D view (its unit circle's frame, from the page)."""
        self.chart("directions").locator("canvas").scroll_into_view_if_needed()
        cx, cy, r = json.loads(self.chart("directions").get_attribute("data-frame"))
        box = self.chart("directions").locator("canvas").bounding_box()
        return box["x"] + cx + x * r, box["y"] + cy - y * r


@pytest.fixture
def explorer(browser, explorer_server):
    e = ExplorerPage(browser, explorer_server)
    yield e
    e.context.close()


def _done(s: dict) -> bool:
    return s["state"] == "done" and s["applied_gen"] == s["requested_gen"]


def test_loading_the_page_leaves_the_server_log_and_the_console_clean(browser, explorer_server):
    """Runs first, on a server no tab has left yet: whatever the log holds came from opening this page."""
    explorer = ExplorerPage(browser, explorer_server)
    try:
        explorer.wait(lambda s: _done(s) and s.get("M") == 3, "the first result")
        explorer.page.wait_for_timeout(500)
        log = (SERVER_ROOT[explorer.base] / "serve.log").read_text()
        assert "serving at" in log  # the log being read is this server's
        assert [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line] == []
        assert explorer.console_errors == []
    finally:
        explorer.close()


def test_the_first_result_appears_and_every_view_follows_m(explorer):
    s = explorer.wait(lambda s: _done(s) and s.get("M") == 3, "the first result")
    page = explorer.page
    expect(page.locator(".ne-cx-status")).to_contain_text("Status: done")
    for name in ("gram", "ideal"):
        expect(explorer.chart(name)).to_have_attribute("data-size", "3")
    for name in ("directions", "view3d"):
        expect(explorer.chart(name)).to_have_attribute("data-points", "3")
    page.locator(".ne-cx-table").get_by_text(f"{s['loss']:.6g}").wait_for()
    loss3 = s["loss"]

    explorer.type_into("M (compressed units)", "6")
    s = explorer.wait(lambda s: _done(s) and s.get("M") == 6, "the M = 6 result")
    assert s["gram_size"] == 6 and s["pca_points"] == 6 and s["view3d_points"] == 6 and s["loss"] < loss3
    expect(explorer.chart("gram")).to_have_attribute("data-size", "6")
    expect(explorer.chart("directions")).to_have_attribute("data-points", "6")
    expect(explorer.chart("view3d")).to_have_attribute("data-points", "6")
    expect(page.locator(".ne-cx-m-slider")).to_have_value("6")  # the slider follows the text box
    assert int(explorer.chart("convergence").get_attribute("data-points")) > 1  # the optimizer streamed its loss

    explorer.box("Method").select_option("magnitude")
    s = explorer.wait(lambda s: _done(s) and s.get("method") == "magnitude", "the magnitude result")
    assert s["gram_size"] == 6 and s["loss"] > loss3 * 0  # a result of the other method, shown
    page.locator(".ne-cx-table").get_by_text("magnitude").first.wait_for()
    assert explorer.console_errors == [] and explorer.external_requests() == []


def test_the_ideal_panel_names_the_shape_the_table_names(explorer):
    explorer.wait(_done, "the first result")
    explorer.type_into("w mean (along e1)", "0.5")
    s = explorer.wait(lambda s: _done(s) and s["params"]["w_mean"] == 0.5, "the result with a mean")
    shape = s["shape"]
    ideal = explorer.chart("ideal")
    expect(ideal).to_have_attribute("data-shape", shape)
    title = ideal.locator(".ne-chart-title")
    if shape == "none":
        expect(title).to_have_text("No ideal shape near these directions")
        expect(ideal).to_have_attribute("data-size", "0")
    elif shape == "tilted simplex":
        expect(title).to_contain_text("tilted simplex")
    explorer.page.locator(".ne-cx-table").get_by_text(shape).first.wait_for()


@pytest.mark.parametrize("label, text, message", [
    ("M (compressed units)", "500", "M must be smaller than N"),
    ("M (compressed units)", "many", "M"),
    ("d (input dimension)", "0", "d"),
])
def test_bad_input_answers_next_to_its_control_and_keeps_the_last_valid_state(explorer, label, text, message):
    s = explorer.wait(_done, "the first result")
    before = (s["params"], s["loss"], s["requested_gen"])
    key = label.split()[0]
    explorer.type_into(label, text)
    answer = explorer.page.locator(f".ne-cx-answer-{key}")
    expect(answer).to_contain_text(message)
    expect(answer).to_contain_text("keeping the last valid settings")
    assert answer.evaluate("e => e.getClientRects().length") == 1 or "\n" not in answer.inner_text()
    expect(explorer.box(label)).to_have_value(str(before[0][key]))  # the box shows the last valid value again
    s = explorer.state()
    assert (s["params"], s["loss"], s["requested_gen"]) == before


def test_an_activation_without_an_exact_loss_is_refused_for_the_exact_method(explorer):
    s = explorer.wait(_done, "the first result")
    explorer.box("Activation").select_option("tanh")
    expect(explorer.page.locator(".ne-cx-answer-activation")).to_contain_text("tanh has no exact")
    expect(explorer.box("Activation")).to_have_value("relu")
    assert explorer.state()["params"] == s["params"]


def test_drag_a_unit_then_reoptimize_from_there(explorer):
    s = explorer.wait(lambda s: _done(s) and s.get("M") == 3, "the first result")
    best, others = s["loss"], (s["pca_xy"][0], s["pca_xy"][2])
    x, y = s["pca_xy"][1]
    page = explorer.page
    expect(explorer.chart("directions")).to_have_attribute("data-points", "3")
    src = explorer.unit_at(x, y)
    dst = explorer.unit_at(0.3 * x, 0.3 * y)
    page.mouse.move(*src)
    page.mouse.down()
    page.mouse.move((src[0] + dst[0]) / 2, (src[1] + dst[1]) / 2)
    page.mouse.move(*dst)
    page.mouse.up()
    s = explorer.wait(lambda s: s.get("dragged"), "the drag to reach Python")
    assert s["method"] == "dragged" and s["loss"] > best * 1.01  # away from the optimum: worse
    assert abs(s["pca_xy"][1][0] - 0.3 * x) < 0.03 and abs(s["pca_xy"][1][1] - 0.3 * y) < 0.03
    assert s["pca_xy"][0] == pytest.approx(others[0]) and s["pca_xy"][2] == pytest.approx(others[1])
    page.locator(".ne-cx-table").get_by_text(f"{s['loss']:.6g}").wait_for()  # the exact loss there, shown
    expect(page.locator(".ne-cx-status")).to_contain_text("Re-optimize starts from here")
    dragged = s["loss"]

    page.get_by_role("button", name="Re-optimize", exact=True).click()
    s = explorer.wait(lambda s: _done(s) and s.get("method") == "exact", "the warm-started optimization")
    assert s["restarts"] == 1 and not s["dragged"]  # one run, from the dragged weights
    assert s["loss"] < dragged and s["loss"] == pytest.approx(best, rel=1e-3)
    assert explorer.external_requests() == []


def test_loss_against_m_fills_in_point_by_point_with_progress(explorer):
    explorer.wait(_done, "the first result")
    chart = explorer.chart("sweep")
    expect(chart).to_have_attribute("data-points", "0")
    explorer.page.get_by_role("button", name="Loss vs M", exact=True).click()
    seen: set[int] = set()
    progress = explorer.page.locator(".ne-cx-sweep-progress")
    for _ in range(600):
        done = int(chart.get_attribute("data-done") or 0)
        seen.add(int(progress.evaluate("e => e.value")))
        if chart.get_attribute("data-running") == "false" and done > 0:
            break
        explorer.page.wait_for_timeout(50)
    total = int(progress.evaluate("e => e.max"))
    assert total > 8 and int(chart.get_attribute("data-points")) == total
    assert len(seen) >= 4  # visible progress: the page saw the count grow, not only the end
    expect(explorer.page.locator(".ne-cx-sweep-text")).to_contain_text(f"{total} of {total} points")
    s = explorer.state()
    assert sorted(int(M) for M in s["sweep"]["exact"]) == list(range(1, 9))


def test_export_writes_netcdf_next_to_its_button_and_never_overwrites(explorer, tmp_path):
    s = explorer.wait(_done, "the first result")
    page = explorer.page
    answer = page.locator(".ne-cx-export-answer")
    path_box = page.locator(".ne-cx-export-path")
    path_box.fill(str(tmp_path / "outside.nc"))  # outside the served folder: refused
    page.get_by_role("button", name="Export", exact=True).click()
    expect(answer).to_contain_text("outside")
    assert not (tmp_path / "outside.nc").exists()
    root = SERVER_ROOT[explorer.base]
    path_box.fill("explorer-result.nc")
    page.get_by_role("button", name="Export", exact=True).click()
    expect(answer).to_have_text("wrote explorer-result.nc")
    page.get_by_role("button", name="Export", exact=True).click()
    expect(answer).to_have_text("wrote explorer-result-1.nc (explorer-result.nc exists)")
    with xr.open_dataset(root / "explorer-result.nc", engine="netcdf4") as ds:
        ds = ds.load()
    assert float(ds["loss"]) == s["loss"] and ds.attrs["method"] == "exact"
    np.testing.assert_array_equal(ds["V"].values, s["V"])
    assert ds["gram"].shape == (3, 3) and (root / "explorer-result-1.nc").is_file()
    assert explorer.external_requests() == []


def test_every_chart_exports_png_at_twice_its_size_svg_and_csv(explorer):
    import re

    explorer.wait(_done, "the first result")
    page = explorer.page
    names = [c.get_attribute("data-chart") for c in page.locator(".ne-cx .ne-chart canvas").all()
             for c in [c.locator("xpath=ancestor::figure[1]")]]
    assert names == ["gram", "ideal", "directions", "view3d", "convergence", "sweep"]
    for name in names:
        chart = explorer.chart(name)
        chart.scroll_into_view_if_needed()
        title = chart.locator("h3").inner_text()
        save = {kind: chart.get_by_role("button", name=f"{title}: save {kind}") for kind in ("PNG", "SVG", "CSV")}
        png = download(page, save["PNG"].click)
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        check_figure_png(png, chart, name)
        svg = download(page, save["SVG"].click).decode()
        sizes = [float(v) for v in re.findall(r'font-size="([\d.]+)"', svg)]
        assert svg.startswith("<svg") and sizes and min(sizes) >= 14, (name, sorted(set(sizes)))
        header, *rows = download(page, save["CSV"].click).decode().strip().splitlines()
        assert "," in header and (rows or name == "sweep"), name  # no loss against M before it is asked for


def test_the_url_carries_the_settings_never_the_token(browser, explorer_server):
    e = ExplorerPage(browser, explorer_server, query="M=4&d=6&seed=2")
    try:
        s = e.wait(lambda s: _done(s) and s.get("M") == 4, "the URL's M = 4")
        assert (s["params"]["d"], s["params"]["seed"], s["params"]["N"]) == (6, 2, 500)  # N: the server's
        e.page.wait_for_url(lambda url: "token" not in url)  # the server rewrote the address: settings only
        assert "M=4" in e.page.url and "d=6" in e.page.url and "seed=2" in e.page.url
        e.type_into("M (compressed units)", "5")
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
        expect(e.page.locator(".ne-dash-header .ne-notice")).to_contain_text(
            "settings in the URL ignored: M must be smaller than N")
        s = e.wait(_done, "the first result")
        assert s["params"]["M"] == 3
    finally:
        e.context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_look_at_m8_fits_reads_and_logs_nothing(browser, tmp_path, theme):
    from served_app import TOKEN, serving

    shots = Path(__file__).resolve().parents[2] / ".test-artifacts" / "screens"  # ignored by git
    shots.mkdir(parents=True, exist_ok=True)
    with serving(["--demo", "compression", "--theme", theme, "--config", json.dumps({"M": 8})], tmp_path) as base:
        for width, height in ((1280, 720), (1920, 1080)):
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            messages: list[tuple[str, str]] = []
            requests: list[str] = []
            page.on("console", lambda m, log=messages: log.append((m.type, m.text)))
            page.on("request", lambda r, log=requests: log.append(r.url))
            try:
                page.goto(f"{base}/?token={TOKEN}")
                page.locator(".ne-cx-status", has_text="Status: done").wait_for(timeout=60_000)
                page.locator(".ne-cx [data-chart='directions'][data-labels]").wait_for()
                page.wait_for_timeout(500)
                page.screenshot(path=str(shots / f"explorer-served-{theme}-{width}x{height}.png"), full_page=True)
                where = f"{theme}, {width}x{height}"
                check_look(page, where)
                # No unit label lies across the unit circle's line (a digit on the line is hard to read).
                chart = page.locator(".ne-cx [data-chart='directions']")
                cx, cy, r = json.loads(chart.get_attribute("data-frame"))
                boxes = json.loads(chart.get_attribute("data-labels"))
                assert len(boxes) == 8, where
                for x, y, w, h in boxes:
                    near = math.hypot(max(x, min(cx, x + w)) - cx, max(y, min(cy, y + h)) - cy)
                    far = math.hypot(max(abs(x - cx), abs(x + w - cx)), max(abs(y - cy), abs(y + h - cy)))
                    assert not (near < r + 1 and far > r - 1), (where, (x, y, w, h), (cx, cy, r))
                import page_checks as pc

                assert pc.console_problems(messages) == [], (where, pc.console_problems(messages))
                local = (base, base.replace("http", "ws"), "data:", "blob:", "about:")
                assert [u for u in requests if not u.startswith(local)] == [], where
            finally:
                context.close()
