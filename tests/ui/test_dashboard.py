"""Browser tests of the ``serve`` app: act in the page (Chromium), assert on the live Python session.

The server runs in a subprocess with ``--status-endpoint``: ``/status.json`` reports each dashboard's
session as the server process has it (sparsity, status, nonlinear units per layer).
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from served_app import ServedPage, served_app

pytestmark = pytest.mark.ui

#: A tiny, fast run that does not finish during the tests.
CONFIG = {"dataset": "spirals", "dataset_kwargs": {"num_samples": 600}, "model_kwargs": {"width": 16, "depth": 2},
          "epochs": 5000, "eval_every": 5, "batch_size": 64, "slope_lr": 0.05}


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
        box = self.page.get_by_label(label)
        box.fill(text)
        box.press("Enter")


@pytest.fixture
def dash(browser, dashboard_server):
    d = DashboardPage(browser, dashboard_server)
    yield d
    d.close()


def _move_sparsity_slider_to_max(page) -> None:
    """Drag the sparsity slider's handle to its right end (the largest λ)."""
    slider = page.locator(".ne-sparsity-slider .noUi-target")
    handle = slider.locator(".noUi-handle")
    box, hbox = slider.bounding_box(), handle.bounding_box()
    page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] + 20, hbox["y"] + hbox["height"] / 2, steps=8)
    page.mouse.up()


def test_start_slider_pause_resume(dash):
    s = dash.state()
    assert s["status"] == "idle" and s["sparsity"] == 0.0
    dash.click("Start")
    s = dash.wait(lambda s: s["status"] == "running" and s["history"] >= 3, "training to run")
    full = sum(s["nonlinear"])
    assert full > 0

    _move_sparsity_slider_to_max(dash.page)
    s = dash.wait(lambda s: s["sparsity"] == pytest.approx(0.1), "the session's sparsity to change")
    assert s["message"] == ""
    expect(dash.page.get_by_label("Sparsity λ (exact)")).to_have_value("0.1")
    dash.wait(lambda s: sum(s["nonlinear"]) < full / 2, "nonlinear units to fall", timeout=40)

    dash.click("Pause")
    s = dash.wait(lambda s: s["status"] == "paused", "pause")
    step = s["step"]
    time.sleep(0.5)
    assert dash.state()["step"] == step  # paused: no steps
    dash.click("Start")  # resumes
    dash.wait(lambda s: s["status"] == "running" and s["step"] > step, "resume")
    dash.page.get_by_text("Status: running").wait_for()  # the page follows the session
    assert dash.external_requests() == []


def test_bad_input_shows_message_and_keeps_settings(dash):
    dash.type_into("Sparsity λ (exact)", "0.003")
    dash.wait(lambda s: s["sparsity"] == pytest.approx(0.003), "a valid sparsity to apply")

    dash.type_into("Sparsity λ (exact)", "lots")
    dash.page.locator(".ne-message").get_by_text("not a number").wait_for()
    expect(dash.page.get_by_label("Sparsity λ (exact)")).to_have_value("0.003")
    dash.type_into("Sparsity λ (exact)", "-1")
    dash.page.locator(".ne-message").get_by_text("must be >= 0").wait_for()
    dash.type_into("Sparsity λ (exact)", "5")
    dash.page.locator(".ne-message").get_by_text("must be <= 1").wait_for()
    time.sleep(0.3)
    assert dash.state()["sparsity"] == pytest.approx(0.003)

    # A model that does not fit the dataset: the message, and the old run is kept.
    before = dash.state()
    dash.page.get_by_label("Dataset").select_option("reverse")
    dash.page.get_by_label("Model").select_option("cnn")
    dash.click("Apply & reset")
    dash.page.locator(".ne-message").get_by_text("the current run is kept").wait_for()
    after = dash.state()
    assert (after["dataset"], after["model"], after["model_kwargs"]) == (
        before["dataset"], before["model"], before["model_kwargs"])
    expect(dash.page.get_by_label("Dataset")).to_have_value(before["dataset"])

    # Non-numeric width: a message, nothing rebuilt.
    dash.type_into("Width", "wide")
    dash.click("Apply & reset")
    dash.page.locator(".ne-message").get_by_text("not a number").wait_for()
    assert dash.state()["model_kwargs"] == before["model_kwargs"]

    # A valid change rebuilds the session.
    dash.type_into("Width", "8")
    dash.click("Apply & reset")
    dash.wait(lambda s: s["model_kwargs"].get("width") == 8 and s["nonlinear"] == [8, 8], "the rebuilt session")
    assert dash.external_requests() == []


def test_network_view_click_toggles_the_unit_in_the_session(dash):
    units = dash.page.locator(".ne-network .ne-unit")
    s = dash.state()
    expect(units).to_have_count(sum(len(v) for v in s["unit_states"]))
    assert s["unit_states"][0][3] == 0
    dash.click("Start")
    dash.wait(lambda s: s["status"] == "running", "training to run")

    dash.page.get_by_role("button", name="net.2 unit 3: nonlinear", exact=True).click()
    s = dash.wait(lambda s: s["unit_states"][0][3] == 1, "the click to force the unit linear in the session")
    assert s["network_requests"] == 1 and s["unit_states"][1] == [0] * len(s["unit_states"][1])
    dash.page.get_by_role("button", name="net.2 unit 3: forced linear", exact=True).wait_for()
    # The view follows the session while it trains.
    step = s["step"]
    dash.wait(lambda s: s["step"] > step + 50, "training to go on")
    status = dash.page.locator(".ne-network .ne-status")
    expect(status).to_contain_text("running")
    shown = int(status.inner_text().rsplit("step", 1)[1])
    assert shown > step
    # A second click cycles it on to forced nonlinear.
    dash.page.get_by_role("button", name="net.2 unit 3: forced linear", exact=True).click()
    dash.wait(lambda s: s["unit_states"][0][3] == 2, "the unit to be forced nonlinear")
    dash.page.get_by_role("button", name="net.2 unit 3: forced nonlinear", exact=True).wait_for()
    assert dash.external_requests() == []
