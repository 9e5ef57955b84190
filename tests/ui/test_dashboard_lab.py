"""The training dashboard widget in a real JupyterLab (headless Chromium): a cell displays it, the user drives it in
the page while it trains, and the kernel reports what the session really did (a second client of the same kernel,
so the answer does not wait on the page). One notebook and kernel for the module; the tests run in file order (one
user story).

What a person meets is measured here with loose ceilings for a busy CI machine (the strict targets live in
benchmarks/bench_live.py): a click shows at once, the page keeps drawing frames, another cell starts within a second.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest
from page_checks import click_latencies, frames_per_second, median
from panel_lab import PanelNotebook, open_panel_notebook
from playwright.sync_api import expect

pytestmark = pytest.mark.ui

SETUP = """\
import json, os, time
from nonlin_explorer.ui import TrainingDashboard"""

APP = """\
dash = TrainingDashboard(dataset="spirals", dataset_kwargs={"num_samples": 600},
                         model_kwargs={"width": 16, "depth": 2}, epochs=5000, eval_every=5, batch_size=64,
                         slope_lr=0.05, rate=10)
dash"""

#: Run while training: when did the kernel start this cell, counted from the moment the page sent the request
#: (the execute request's header date, set by JupyterLab in the browser; same machine, same clock)?
QUICK = """\
_t = time.time()
_date = get_ipython().kernel.get_parent()["header"]["date"]
_sent = _date.timestamp() if hasattr(_date, "timestamp") else __import__("datetime").datetime.fromisoformat(
    _date.replace("Z", "+00:00")).timestamp()
_quick = {"n": globals().get("_quick", {}).get("n", 0) + 1, "lag": _t - _sent}
print("QUICK", _quick["n"])"""

SETUP_CELL, APP_CELL, QUICK_CELL = 0, 1, 2
STATE = "json.loads(json.dumps({**dash.status_dict(), 'pid': os.getpid()}, default=str))"
#: Loose ceilings for CI (see the module docstring); documented in docs/dashboard.md.
CLICK_MEDIAN_CEILING_MS = 1000
CLICK_MAX_CEILING_MS = 3000
MIN_FPS_WHILE_TRAINING = 10


class DashboardNotebook(PanelNotebook):
    def state(self) -> dict:
        return self.query(STATE)

    def wait(self, pred, what: str, timeout: float = 60.0) -> dict:
        return self.wait_value(STATE, pred, what, timeout=timeout, direct=True)

    def button(self, name: str):  # noqa: D102 (the dashboard's buttons)
        return super().button(APP_CELL, name)


@pytest.fixture(scope="module")
def nb(browser, lab_server):
    from lab_helpers import open_page

    context, rec = open_page(browser, lab_server)
    notebook = open_panel_notebook(rec, lab_server.root, "dashboard.ipynb", [SETUP, APP, QUICK], DashboardNotebook)
    notebook.run(SETUP_CELL)
    notebook.run(APP_CELL)
    notebook.output(APP_CELL).locator(".ne-dash .ne-network .ne-unit").first.wait_for(timeout=120_000)
    yield notebook
    context.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_train_steer_click_pause_and_run_cells_while_training(nb):
    page = nb.page
    out = nb.output(APP_CELL)
    s = nb.state()
    assert s["status"] == "idle" and s["sparsity"] == 0.0 and s["step"] == 0
    expect(out.locator(".ne-network .ne-unit")).to_have_count(32)

    nb.button("Start").click()
    s = nb.wait(lambda s: s["status"] == "running" and s["history"] >= 3, "training to run")
    full = sum(s["nonlinear"])
    assert full > 0
    out.locator(".ne-dash[data-status='running']").wait_for()

    # The page keeps drawing while it trains, and the curves grow.
    out.locator(".ne-network").scroll_into_view_if_needed()
    fps = frames_per_second(page, 2.0)
    assert fps >= MIN_FPS_WHILE_TRAINING, f"{fps:.1f} frames per second while training"
    evals = int(out.locator(".ne-dash").get_attribute("data-evals"))
    nb.wait(lambda s: s["history"] >= evals + 3, "more evaluations")
    expect(out.locator(".ne-dash")).not_to_have_attribute("data-evals", str(evals))

    # Another cell runs while the session trains: the kernel starts it within a second of the page sending it.
    t0 = time.monotonic()
    nb.run(QUICK_CELL)
    nb.output(QUICK_CELL).get_by_text("QUICK 1", exact=True).wait_for(timeout=30_000)
    round_trip = time.monotonic() - t0
    quick = nb.query("_quick")
    assert nb.state()["status"] == "running" and quick["n"] == 1
    assert 0 <= quick["lag"] < 1.0, (f"the kernel started a cell {quick['lag']:.2f} s after the page sent it "
                                      f"(browser round trip {round_trip:.2f} s)")

    # Clicks on units show at once and reach the session.
    latencies = click_latencies(page, out.locator(".ne-network .ne-unit"), 5)
    assert len(latencies) == 5 and median(latencies) <= CLICK_MEDIAN_CEILING_MS, latencies
    assert max(latencies) <= CLICK_MAX_CEILING_MS, latencies
    nb.wait(lambda s: sum(map(sum, s["unit_states"])) == 5, "the clicks to reach the session")
    print(f"\nwhile training: {fps:.0f} fps, click -> visible median {median(latencies):.0f} ms, "
          f"cell start {quick['lag'] * 1000:.0f} ms")

    # The sparsity slider, moved with the keyboard in the page, sets the kernel's session; nonlinear units fall.
    slider = nb.widget(APP_CELL, "Sparsity λ (log scale)")
    slider.focus()
    before = slider.input_value()
    slider.press("ArrowLeft" if int(before) > 0 else "ArrowRight")  # arrows stay the slider's, not the notebook's
    expect(slider).not_to_have_value(before)
    slider.press("End")
    s = nb.wait(lambda s: s["sparsity"] == pytest.approx(0.1), "the session's sparsity to change")
    expect(nb.widget(APP_CELL, "Sparsity λ (exact)")).to_have_value("0.1")
    nb.wait(lambda s: sum(s["nonlinear"]) < full / 2, "nonlinear units to fall", timeout=60)

    nb.button("Pause").click()
    s = nb.wait(lambda s: s["status"] == "paused", "pause")
    step = s["step"]
    time.sleep(0.5)
    assert nb.state()["step"] == step
    nb.button("Start").click()
    nb.wait(lambda s: s["status"] == "running" and s["step"] > step, "resume")
    assert nb.rec.external_requests() == []


def test_present_shows_the_live_dashboard_in_its_own_full_size_tab(nb):
    page = nb.page
    before = sum(map(sum, nb.state()["unit_states"]))
    panel = nb.present(APP_CELL)
    dash = panel.locator(".ne-dash")
    dash.wait_for(timeout=30_000)
    box = dash.bounding_box()
    assert box["width"] > 1000 and box["height"] > 500, box  # full size, not blank
    expect(panel.locator(".ne-network .ne-unit")).to_have_count(32)
    expect(dash).to_have_attribute("data-status", "running")  # the same live session, still training
    panel.locator(".ne-network .ne-unit").nth(7).click()
    nb.wait(lambda s: sum(map(sum, s["unit_states"])) != before, "the presented tab's click to reach the session")
    page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon").click()
    nb.output(APP_CELL).locator(".ne-dash").wait_for()


def _api(server, method: str, path: str):
    req = urllib.request.Request(f"{server.base}/api/{path}?token={server.token}", method=method,
                                 data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def test_kernel_restart_leaves_no_training_thread_busy(nb):
    s = nb.wait(lambda s: s["status"] == "running", "training")
    pid = s["pid"]
    busy = _cpu_seconds(pid)
    time.sleep(1.0)
    assert _cpu_seconds(pid) - busy > 0.3  # training keeps the kernel busy: the check below can fail

    server = nb.rec.server
    kernel = nb.kernel_id()
    _api(server, "POST", f"kernels/{kernel}/restart")
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the old kernel (with its training thread) is still running"

    nb.page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(timeout=60_000)
    new = nb.evaluate("__import__('os').getpid()")  # through the page: its kernel is the new one
    assert new != pid and _alive(new) and f"kernel-{kernel}" in _cmdline(new)
    assert nb.query("'dash' in globals()") is False
    time.sleep(1.0)  # let its start-up settle
    before = _cpu_seconds(new)
    time.sleep(2.0)
    assert _cpu_seconds(new) - before < 0.2
