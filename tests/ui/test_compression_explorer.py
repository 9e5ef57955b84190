"""Browser test of ``serve --demo compression``: act in the page (Chromium), assert on the live Python state
(``/status.json``, the same mechanism as tests/ui/test_dashboard.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import xarray as xr
from lab_helpers import VIEWPORT, _free_port

pytestmark = pytest.mark.ui

CONFIG = {"N": 500, "d": 10, "M": 3}


@pytest.fixture(scope="module")
def explorer_server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [sys.executable, "-m", "nonlin_explorer.ui.serve", "--port", str(port), "--no-show", "--status-endpoint",
           "--demo", "compression", "--config", json.dumps(CONFIG)]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{base}/status.json", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    yield base
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _status(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/status.json", timeout=5) as r:
        return json.loads(r.read())["dashboards"]


def _wait_for(fn, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class ExplorerPage:
    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        before = max((d["serial"] for d in _status(base)), default=0)
        self.page.goto(base + "/")
        self.page.get_by_role("button", name="Re-optimize").wait_for()
        self.serial = _wait_for(lambda: max((d["serial"] for d in _status(base)), default=0) > before and
                                max(d["serial"] for d in _status(base)), what="the page's explorer")

    def state(self) -> dict:
        return next(d for d in _status(self.base) if d["serial"] == self.serial)

    def wait(self, pred, what: str, timeout: float = 30.0) -> dict:
        return _wait_for(lambda: (lambda s: s if pred(s) else None)(self.state()), timeout, what)

    def type_into(self, label: str, text: str) -> None:
        box = self.page.get_by_label(label, exact=True)
        box.fill(text)
        box.press("Enter")

    def external_requests(self) -> list[str]:
        local = (self.base + "/", self.base.replace("http", "ws") + "/", "data:", "blob:", "about:")
        return [u for u in self.requests if not u.startswith(local)]


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

    path = tmp_path / "result.nc"
    explorer.type_into("Export to (netCDF)", str(path))
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


def test_bad_input_keeps_last_valid_state(explorer):
    s = explorer.wait(_done, "the first result")
    before = (s["params"], s["loss"])
    for label, text, msg in (("M", "500", "M must be smaller than N"), ("M", "many", "not a number"),
                             ("d", "0", "d: must be >= 1")):
        explorer.type_into(label, text)
        explorer.page.locator(".ne-message").get_by_text(msg).wait_for()
        assert explorer.page.get_by_label(label, exact=True).input_value() == str(before[0][label])
    explorer.page.get_by_label("Activation", exact=True).select_option("tanh")
    explorer.page.locator(".ne-message").get_by_text("tanh has no exact").wait_for()
    time.sleep(0.3)
    s = explorer.state()
    assert (s["params"], s["loss"]) == before and s["requested_gen"] == s["applied_gen"]
    assert explorer.external_requests() == []
