"""Browser tests of the ``serve`` dashboard: act in the page (Chromium), assert on the live Python session and on
what the page shows.

The server runs in a subprocess with ``--status-endpoint``: ``/status.json`` reports each dashboard's session as the
server process has it (sparsity, status, nonlinear units per layer, unit states).
"""

from __future__ import annotations

import re
import time

import pytest
from chart_exports import check_figure_png, download
from page_checks import click_latencies, install, median
from playwright.sync_api import expect
from served_app import ServedPage, served_app

pytestmark = pytest.mark.ui

#: A tiny, fast run that does not finish during the tests.
CONFIG = {"dataset": "spirals", "dataset_kwargs": {"num_samples": 600}, "model_kwargs": {"width": 16, "depth": 2},
          "epochs": 5000, "eval_every": 5, "batch_size": 64, "slope_lr": 0.05, "sparsity": 0.0,
          "schedule": "early"}
#: Loose ceilings for a busy CI machine (benchmarks/bench_live.py holds the strict targets: 250 ms median, 500 ms
#: p90): the page shows a click at once, before the kernel answers, so even a loaded machine stays far below these.
CLICK_MEDIAN_CEILING_MS = 1000
CLICK_MAX_CEILING_MS = 3000


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory):
    with served_app("training", CONFIG, tmp_path_factory.mktemp("serve")) as base:
        yield base


class DashboardPage(ServedPage):
    """One browser tab on the dashboard app."""

    ready_button = "Start"

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def type_into(self, label: str, text: str) -> None:
        box = self.page.get_by_label(label, exact=True)
        box.fill(text)
        box.press("Enter")

    def notice(self, text: str):
        return self.page.locator(".ne-notice").get_by_text(text)


@pytest.fixture
def dash(browser, dashboard_server):
    d = DashboardPage(browser, dashboard_server)
    yield d
    d.close()


def test_start_slider_pause_resume_and_clicks_show_at_once(dash):
    s = dash.state()
    assert s["status"] == "idle" and s["sparsity"] == 0.0
    dash.click("Start")
    s = dash.wait(lambda s: s["status"] == "running" and s["history"] >= 3, "training to run")
    full = sum(s["nonlinear"])
    assert full > 0
    dash.page.locator(".ne-dash[data-status='running']").wait_for()

    # While it trains, a click on a unit shows in the page at once (optimistic), and reaches the session.
    units = dash.page.locator(".ne-network .ne-unit")
    latencies = click_latencies(dash.page, units, 6)
    assert len(latencies) == 6, latencies
    assert median(latencies) <= CLICK_MEDIAN_CEILING_MS and max(latencies) <= CLICK_MAX_CEILING_MS, latencies
    try:
        dash.wait(lambda s: sum(map(sum, s["unit_states"])) == 6, "the six clicks to reach the session")
    except AssertionError as err:  # say what the session holds: which units, in which states, at which step
        s = dash.state()
        held = [(layer, unit, v) for layer, states in enumerate(s["unit_states"])
                for unit, v in enumerate(states) if v]
        raise AssertionError(f"{err}; the session holds {held} (status {s['status']}, step {s['step']})") from None

    # The sparsity slider, moved with the keyboard as a user can, sets the session's lambda.
    slider = dash.page.get_by_label("Sparsity λ (log scale)")
    slider.focus()
    slider.press("End")
    s = dash.wait(lambda s: s["sparsity"] == pytest.approx(0.1), "the session's sparsity to change")
    expect(dash.page.get_by_label("Sparsity λ (exact)")).to_have_value("0.1")
    dash.wait(lambda s: sum(s["nonlinear"]) < full / 2, "nonlinear units to fall", timeout=40)

    dash.click("Pause")
    s = dash.wait(lambda s: s["status"] == "paused", "pause")
    step = s["step"]
    time.sleep(0.5)
    assert dash.state()["step"] == step  # paused: no steps
    dash.page.locator(".ne-dash[data-status='paused']").wait_for()
    dash.click("Start")  # shown as Resume, named Start
    dash.wait(lambda s: s["status"] == "running" and s["step"] > step, "resume")
    dash.page.locator(".ne-dash[data-status='running']").wait_for()
    assert dash.external_requests() == []


def test_bad_input_shows_the_reason_and_keeps_settings(dash):
    dash.type_into("Sparsity λ (exact)", "0.003")
    dash.wait(lambda s: s["sparsity"] == pytest.approx(0.003), "a valid sparsity to apply")

    dash.type_into("Sparsity λ (exact)", "lots")
    dash.notice("not a number").wait_for()
    expect(dash.page.get_by_label("Sparsity λ (exact)")).to_have_value("3e-3")  # rolled back
    dash.type_into("Sparsity λ (exact)", "-1")
    dash.notice("must be >= 0").wait_for()
    dash.type_into("Sparsity λ (exact)", "5")
    dash.notice("must be <= 1").wait_for()
    time.sleep(0.3)
    assert dash.state()["sparsity"] == pytest.approx(0.003)

    # A model that does not fit the dataset: the reason, and the old run is kept.
    before = dash.state()
    dash.page.get_by_label("Dataset").select_option("reverse")
    dash.page.get_by_label("Model").select_option("cnn")
    dash.click("Apply & reset")
    dash.notice("the current run is kept").wait_for(timeout=60_000)
    after = dash.state()
    assert (after["dataset"], after["model"], after["model_kwargs"]) == (
        before["dataset"], before["model"], before["model_kwargs"])
    expect(dash.page.get_by_label("Dataset")).to_have_value(before["dataset"])

    # Non-numeric or huge width: the reason, nothing rebuilt.
    dash.type_into("Width", "wide")
    dash.click("Apply & reset")
    dash.notice("not a number").wait_for()
    dash.type_into("Width", "100000000")
    dash.click("Apply & reset")
    dash.notice("must be <= 4096").wait_for()
    assert dash.state()["model_kwargs"] == before["model_kwargs"]

    # A valid change rebuilds the session; the old run stays as a faded overlay.
    dash.type_into("Width", "8")
    dash.click("Apply & reset")
    dash.wait(lambda s: s["model_kwargs"].get("width") == 8 and s["nonlinear"] == [8, 8], "the rebuilt session")
    expect(dash.page.locator(".ne-network .ne-unit")).to_have_count(16)
    assert dash.external_requests() == []


def test_the_url_carries_the_settings_never_the_token(browser, dashboard_server):
    """Open with settings in the URL: the run has them, the address bar shows them (the token gone: a cookie
    keeps access), a change follows into the URL, and that URL opens the same settings again."""
    plain = DashboardPage(browser, dashboard_server)  # the URL the server printed: token only
    try:
        plain.page.wait_for_url(lambda url: "dataset=spirals" in url and "width=16" in url and "token" not in url)
    finally:
        plain.close()
    dash = DashboardPage(browser, dashboard_server, query="sparsity=0.002&width=12&seed=3")
    try:
        s = dash.state()
        assert (s["sparsity"], s["model_kwargs"]["width"], s["seed"]) == (pytest.approx(0.002), 12, 3)
        expect(dash.page.get_by_label("Width", exact=True)).to_have_value("12")
        dash.page.wait_for_url(lambda url: "token" not in url)  # the address rewritten: settings only
        assert "width=12" in dash.page.url and "sparsity=0.002" in dash.page.url and "seed=3" in dash.page.url

        dash.type_into("Width", "10")
        dash.click("Apply & reset")
        dash.wait(lambda s: s["model_kwargs"].get("width") == 10, "the rebuilt session")
        dash.page.wait_for_url(lambda url: "width=10" in url)
        shared = dash.page.url
        assert "token" not in shared

        again = DashboardPage(browser, dashboard_server, context=dash.context, url=shared)  # its cookie, no token
        s = again.state()
        assert (s["sparsity"], s["model_kwargs"]["width"], s["seed"]) == (pytest.approx(0.002), 10, 3)
        assert again.external_requests() == []
    finally:
        dash.close()


@pytest.mark.parametrize("query, reason", [("width=wide", "not a number"), ("sparsity=7", "must be <= 1"),
                                           ("dataset=" + "x" * 80, "longer than 64"),
                                           ("width=4096&depth=200", "the dashboard builds at most")])
def test_bad_settings_in_the_url_say_why_and_start_the_demo(browser, dashboard_server, query, reason):
    dash = DashboardPage(browser, dashboard_server, query=query)
    try:
        dash.notice(reason).wait_for()
        dash.notice("settings in the URL ignored").wait_for()
        s = dash.state()
        assert (s["sparsity"], s["model_kwargs"]["width"], s["dataset"]) == (0.0, 16, "spirals")  # CONFIG's
    finally:
        dash.close()


def test_network_view_click_toggles_the_unit_in_the_session(dash):
    units = dash.page.locator(".ne-network .ne-unit")
    s = dash.state()
    expect(units).to_have_count(sum(len(v) for v in s["unit_states"]))
    assert s["unit_states"][0][3] == 0
    dash.click("Start")
    dash.wait(lambda s: s["status"] == "running", "training to run")

    dash.page.get_by_role("button", name="net.2 unit 3: nonlinear", exact=True).click()
    # Shown at once, then confirmed by the session.
    dash.page.get_by_role("button", name="net.2 unit 3: forced linear", exact=True).wait_for(timeout=2000)
    s = dash.wait(lambda s: s["unit_states"][0][3] == 1, "the click to force the unit linear in the session")
    assert s["unit_states"][1] == [0] * len(s["unit_states"][1])
    step = s["step"]
    dash.wait(lambda s: s["step"] > step + 50, "training to go on")
    status = dash.page.locator(".ne-network .ne-status")
    expect(status).to_contain_text("running")
    assert int(status.inner_text().rsplit("step", 1)[1]) > step  # the view follows the session
    dash.page.get_by_role("button", name="net.2 unit 3: forced linear", exact=True).click()
    dash.wait(lambda s: s["unit_states"][0][3] == 2, "the unit to be forced nonlinear")
    dash.page.get_by_role("button", name="net.2 unit 3: forced nonlinear", exact=True).wait_for()
    assert dash.external_requests() == []


def test_step_charts_share_one_x_range_while_training(dash):
    dash.click("Start")
    dash.wait(lambda s: s["status"] == "running" and s["history"] >= 3, "training to run")
    page = dash.page
    install(page)  # a query that reaches into the page's shadow roots
    seen = []
    for _ in range(60):  # one look per ~0.1 s while the curves grow (and their axes cross round ends)
        ends = page.evaluate("""() => Object.fromEntries(window.__neChecks.deep('.ne-chart[data-x-end]')
          .map(c => [c.dataset.chart, Number(c.dataset.xEnd)]))""")
        assert {"loss", "accuracy", "heatmap", "nonlinear", "apl", "sparsity"} <= set(ends), ends
        assert len(set(ends.values())) == 1, ends
        seen.append(next(iter(ends.values())))
        page.wait_for_timeout(100)
    assert len(set(seen)) > 1, seen  # the looks saw the axis grow
    dash.click("Pause")


def test_every_chart_exports_png_svg_and_csv_and_the_page_saves_an_offline_snapshot(dash):
    dash.click("Start")
    s = dash.wait(lambda s: s["history"] >= 4, "a few evaluations")
    dash.click("Pause")
    dash.wait(lambda s: s["status"] == "paused", "pause")
    page = dash.page
    charts = page.locator(".ne-chart:visible")
    names = [c.get_attribute("data-chart") for c in charts.all()]
    assert {"loss", "accuracy", "heatmap", "nonlinear", "apl", "sparsity", "core", "boundary"} <= set(names)
    for name in names:
        chart = page.locator(f".ne-chart[data-chart='{name}']")
        title = chart.locator("h3").inner_text()
        save = {kind: chart.get_by_role("button", name=f"{title}: save {kind}") for kind in ("PNG", "SVG", "CSV")}
        png = download(page, save["PNG"].click)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000, name
        check_figure_png(png, chart, name)
        svg = download(page, save["SVG"].click).decode()
        assert svg.startswith("<svg") and svg.endswith("</svg>") and ("<path" in svg or "<rect" in svg), name
        sizes = [float(v) for v in re.findall(r'font-size="([\d.]+)"', svg)]  # the chart's own text, as drawn
        assert sizes and min(sizes) >= 14, (name, sorted(set(sizes)))
        csv = download(page, save["CSV"].click).decode()
        header, *rows = csv.strip().splitlines()
        assert rows and "," in header, name
    # The loss CSV holds the plotted numbers: every evaluation's test loss of this run.
    csv = download(page, lambda: page.get_by_role("button", name="Loss: save CSV").click()).decode()
    test_rows = [r.split(",") for r in csv.strip().splitlines()[1:] if r.split(",")[1] == "test_loss"]
    s = dash.state()
    assert len(test_rows) == s["history"]
    # The network as PNG and SVG.
    png = download(page, lambda: page.get_by_role("button", name="network: save PNG").click())
    assert png[:4] == b"\x89PNG"
    svg = download(page, lambda: page.get_by_role("button", name="network: save SVG").click()).decode()
    assert svg.count("<rect") == sum(len(v) for v in s["unit_states"])
    # A snapshot: one HTML file, no script, no external reference, every chart inside.
    page.get_by_text("Export and record").click()
    html = download(page, lambda: page.get_by_role("button", name="Save a snapshot (HTML)").click()).decode()
    assert html.startswith("<!doctype html>") and "<script" not in html and "http" not in html.replace(
        "http://www.w3.org/2000/svg", "")
    assert html.count("<svg") >= len(names) and "data:image/png;base64," in html and "TrainingSession" in html


def test_a_dataset_without_a_decision_boundary_renders(browser, tmp_path):
    """MNIST-1D (40 inputs: no 2-D decision boundary, so that field keeps its default) draws its units and trains;
    a default holding bytes once made BokehJS fail to clone it and left this page blank."""
    config = {"dataset_kwargs": {"num_samples": 600}, "model_kwargs": {"width": 8, "depth": 2}, "epochs": 500,
              "eval_every": 5, "batch_size": 64, "schedule": "early"}
    with served_app("mnist1d", config, tmp_path) as base:
        dash = DashboardPage(browser, base)
        try:
            messages: list[str] = []
            dash.page.on("console", lambda m: messages.append(m.text) if m.type in ("error", "trace") else None)
            expect(dash.page.locator(".ne-network .ne-unit")).to_have_count(16)
            assert dash.state()["dataset"] == "mnist1d"
            dash.click("Start")
            dash.wait(lambda s: s["status"] == "running" and s["step"] > 0, "training to run")
            dash.page.locator(".ne-dash[data-status='running']").wait_for()
            assert messages == [] and dash.external_requests() == []
        finally:
            dash.close()
