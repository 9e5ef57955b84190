"""Helpers for the browser tests and benchmarks/bench_ui.py: start a real JupyterLab server (127.0.0.1, a
token, a temporary root), launch the system Chromium through Playwright (never a downloaded browser), record
every request a page makes, and drive notebooks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

CHROMIUM = os.environ.get("NONLIN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Flags that avoid hangs on a closed network (see /work/shared/TOOLCHAIN.md); Playwright adds --headless
#: and a fresh user-data-dir of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 900}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

#: Lab settings for the tests: notebook windowing off (outputs scrolled out of view stay rendered), no
#: news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


@dataclass
class LabServer:
    base: str
    token: str
    root: Path
    proc: subprocess.Popen
    log: Path

    def url(self, path: str = "lab", **query: str) -> str:
        q = "&".join([*(f"{k}={v}" if v else k for k, v in query.items()), f"token={self.token}"])
        return f"{self.base}/{path.lstrip('/')}?{q}"

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab_server(tmp: Path, timeout: float = 90.0, app: str = "jupyterlab") -> LabServer:
    """Start JupyterLab (``app="notebook"``: Jupyter Notebook 7) of this interpreter, with its root, settings,
    config and runtime under ``tmp``."""
    root, settings = tmp / "root", tmp / "settings"
    root.mkdir(parents=True, exist_ok=True)
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               PYTHONUNBUFFERED="1")
    log = tmp / "server.log"
    kind = {"jupyterlab": "LabApp", "notebook": "JupyterNotebookApp"}[app]
    cmd = [sys.executable, "-m", app, "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--{kind}.user_settings_dir={settings}",
           f"--{kind}.workspaces_dir={tmp / 'workspaces'}", "--ServerApp.allow_root=True"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, proc, log)
    try:
        wait_until_serving(proc, f"{server.base}/api/status?token={token}", log, timeout, app)
    except RuntimeError:
        server.stop()
        raise
    return server


def wait_until_serving(proc: subprocess.Popen, url: str, log: Path, timeout: float, what: str) -> None:
    """Poll ``url`` until it answers; ``RuntimeError`` with the log's tail if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start in {timeout:.0f} s:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)


def launch_chromium(playwright):
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: ./dev.sh test installs Debian's chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@dataclass
class RecordedPage:
    """A browser page on the lab server, with every request it made."""

    page: object
    server: LabServer
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def external_requests(self) -> list[str]:
        """Requests that went anywhere but the lab server (data:/blob: URLs stay in the page)."""
        local = (self.server.base + "/", "data:", "blob:", "about:")
        return [u for u in self.requests if not u.startswith(local)]


#: Pages open now (screenshots are saved from them when a test fails).
OPEN_PAGES: list[RecordedPage] = []


def open_page(browser, server: LabServer):
    """(context, RecordedPage): a fresh browser context (no shared storage) and page."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    rec = RecordedPage(page, server)
    OPEN_PAGES.append(rec)

    def dismiss(dialog) -> None:  # a JupyterLab dialog in the way of an action: note it, dismiss it
        rec.dialogs.append(dialog.inner_text())
        dialog.locator(".jp-Dialog-button.jp-mod-reject, .jp-Dialog-button").first.click()

    page.add_locator_handler(page.locator(".jp-Dialog"), dismiss)
    context.on("close", lambda _: OPEN_PAGES.remove(rec) if rec in OPEN_PAGES else None)
    page.on("request", lambda r: rec.requests.append(r.url))
    page.on("console", lambda m: rec.console_errors.append(m.text) if m.type == "error" else None)
    return context, rec


def write_notebook(root: Path, name: str, sources: list[str]) -> str:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, root / name)
    return name


def mlp_view_cell(width: int) -> str:
    """A notebook cell that shows a NetworkView of a linearized MLP (8 inputs, two layers of ``width`` units, seed 0);
    :data:`CHECK_CELL` reads its gates back."""
    return ("import torch, nonlin_explorer as ne\n"
            "from nonlin_explorer.ui import NetworkView\n"
            "torch.manual_seed(0)\n"
            f"model = ne.linearize(ne.models.MLP(in_features=8, num_classes=3, width={width}, depth=2), "
            "torch.randn(4, 8))\n"
            "view = NetworkView(model, torch.randn(16, 8))\n"
            "view")


#: The last cell of the test notebooks: prints the gates' states as the kernel has them, with a counter so
#: a fresh output can be told from the previous one.
CHECK_CELL = ('_check = globals().get("_check", 0) + 1\n'
              'import json\n'
              'print(f"CHECK {_check}", json.dumps([g.state.tolist() for g in ne.gates(model)]))')


class Notebook:
    """Drive a notebook open in JupyterLab: run cells, read kernel-side state."""

    def __init__(self, rec: RecordedPage, path: str, app: str = "jupyterlab"):
        self.rec, self.page, self.path, self.app = rec, rec.page, path, app
        self.checks = 0

    def open(self) -> Notebook:
        if self.app == "notebook":  # Jupyter Notebook 7: one notebook per page
            self.page.goto(self.rec.server.url(f"notebooks/{self.path}"))
        else:
            self.page.goto(self.rec.server.url(f"lab/tree/{self.path}", reset=""))
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        # Loaded when the panel's spinner (which holds the focus meanwhile) is gone.
        self.page.locator(".jp-NotebookPanel .jp-Spinner").wait_for(state="detached", timeout=60_000)
        # The kernel is up when the toolbar's execution indicator says idle.
        self.page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(timeout=60_000)
        return self

    def cell(self, index: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def run(self, index: int) -> None:
        """Run one cell (Ctrl+Enter in the cell); retried once if the keystroke got lost while the page
        was still settling."""
        cell = self.cell(index)
        prompt = cell.locator(".jp-InputArea-prompt")
        before = prompt.inner_text()
        for _ in range(2):
            cell.locator(".cm-content").click()
            self.page.keyboard.press("Control+Enter")
            try:
                self.page.wait_for_function(
                    "([el, before]) => el.textContent !== before || el.textContent.includes('*')",
                    arg=[prompt.element_handle(), before], timeout=5_000)
                return
            except Exception:  # not started: press again
                continue
        raise AssertionError(f"cell {index} of {self.path} did not start running")

    def present(self, index: int):
        """Run "Present widget output in its own tab" on cell ``index`` from the command palette, as a speaker
        would; returns the tab's content (``.ne-present-panel``)."""
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Escape")  # command mode, this cell active
        self.page.keyboard.press("Control+Shift+C")
        self.page.locator(".lm-CommandPalette-input").fill("Present widget output")
        self.page.locator(".lm-CommandPalette-item", has_text="Present widget output in its own tab").click()
        return self.page.locator(".ne-present-panel")

    def kernel_states(self) -> list[list[int]]:
        """Run the CHECK cell (the last one) and return every gate's state as the kernel has it."""
        last = self.page.locator(".jp-Notebook .jp-Cell").count() - 1
        self.checks += 1
        self.run(last)
        out = self.cell(last).locator(".jp-OutputArea-output", has_text=f"CHECK {self.checks} ")
        out.wait_for(timeout=60_000)
        return json.loads(out.inner_text().split(" ", 2)[2])


def unit_button(page, layer: str, unit: int, word: str):
    """The focusable element of one unit, found by its accessible name."""
    return page.get_by_role("button", name=f"{layer} unit {unit}: {word}", exact=True)


#: The scrolling panel of the notebook in view (JupyterLab 4 and Notebook 7).
NOTEBOOK_SCROLLER = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"


def scroll_to_top(page, selector: str, scroller: str = NOTEBOOK_SCROLLER) -> None:
    """Scroll the notebook so that the first element matching ``selector`` starts at the top of its panel."""
    page.evaluate("""([sel, box]) => { const s = document.querySelector(box); const d = document.querySelector(sel);
      s.scrollTop += d.getBoundingClientRect().top - s.getBoundingClientRect().top; }""", [selector, scroller])
    page.wait_for_timeout(300)  # let the layout settle (resize observers)


def set_lab_theme(page, name: str) -> None:
    """Settings > Theme > ``name`` ("JupyterLab Light", "JupyterLab Dark") from the menu bar, as a user would."""
    import re

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Settings$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{name}$")).click()
    page.locator(f"body[data-jp-theme-name='{name}']").wait_for(state="attached")


def accept_kernel_dialog(page) -> None:
    """Answer JupyterLab's "Select Kernel" dialog (shown now and then while a notebook opens) with the notebook's
    own kernel."""
    page.add_locator_handler(page.locator(".jp-Dialog", has_text="Select Kernel"),
                             lambda d: d.locator(".jp-Dialog-button.jp-mod-accept").click())
