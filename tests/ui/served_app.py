"""The ``serve`` app under test: start it in a subprocess with ``--status-endpoint`` and drive one tab of it.

``/status.json`` reports the live Python state of every app the server runs (one per browser tab), so tests
act in the page and assert on the Python side. The server needs its access token (``TOKEN``, given with ``--token``)
for both, as a browser gets it from the URL the server prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from lab_helpers import VIEWPORT, _free_port, wait_until_serving

#: The access token the tests start servers with.
TOKEN = "test-token-3f9c1a7e5b2d"


@contextlib.contextmanager
def served_app(demo: str, config: dict, log_dir: Path, timeout: float = 60.0) -> Iterator[str]:
    """Run ``nonlin-explorer serve --demo DEMO`` on a free localhost port; yields its base URL."""
    with serving(["--demo", demo, "--config", json.dumps(config)], log_dir, timeout) as base:
        yield base


@contextlib.contextmanager
def serving(args: list[str], log_dir: Path, timeout: float = 60.0, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``nonlin-explorer serve ARGS`` (with its status endpoint and ``TOKEN``) on a free port; yields its base
    URL (with the server's random path) once ``/status.json`` answers, and stops the server on exit."""
    port = _free_port()
    log = log_dir / "serve.log"
    cmd = [sys.executable, "-m", "nonlin_explorer.ui.serve", "--port", str(port), "--no-show", "--status-endpoint",
           "--token", TOKEN, "--root", str(log_dir), "--host", host, *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = served_base(proc, log, timeout)
        wait_until_serving(proc, f"{base}/status.json?token={TOKEN}", log, timeout, "serve")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def served_base(proc: subprocess.Popen, log: Path, timeout: float) -> str:
    """The app's base URL (``http://127.0.0.1:PORT/PREFIX``, the server's random path) from the line the server
    prints, read from its ``log``."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(r"serving at (http://\S+?)/\?token=", log.read_text())
        if found:
            return found.group(1)
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"serve printed no URL (exit code {proc.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def app_status(base: str) -> list[dict]:
    """The live state of every app the server runs."""
    with urllib.request.urlopen(f"{base}/status.json?token={TOKEN}", timeout=5) as r:
        return json.loads(r.read())["dashboards"]


def wait_for(fn, timeout: float = 20.0, what: str = "condition"):
    """Poll ``fn`` until it returns something truthy; that value, or an AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class ServedPage:
    """One browser tab on the app, the live state of its app, and every request the tab made."""

    #: the button that shows the app has rendered
    ready_button = ""
    timeout = 20.0

    def __init__(self, browser, base: str, query: str = "", context=None, url: str | None = None):
        """Open the app with the token and ``query`` (``a=1&b=2``) in its URL, or at ``url``; in a new browser
        context, or in ``context`` (its cookies: the token)."""
        self.base = base
        self.context = context or browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        #: the browser console's errors and uncaught page errors
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        newest = lambda: max((d["serial"] for d in app_status(base)), default=0)
        before = newest()
        self.page.goto(url or f"{base}/?token={TOKEN}" + (f"&{query}" if query else ""))
        self.page.get_by_role("button", name=self.ready_button).wait_for()
        self.serial = wait_for(lambda: newest() > before and newest(), what="the page's app")

    def state(self) -> dict:
        return next(d for d in app_status(self.base) if d["serial"] == self.serial)

    def wait(self, pred, what: str, timeout: float | None = None) -> dict:
        return wait_for(lambda: (lambda s: s if pred(s) else None)(self.state()), timeout or self.timeout, what)

    def external_requests(self) -> list[str]:
        local = (self.base + "/", self.base.replace("http", "ws") + "/", "data:", "blob:", "about:")
        return [u for u in self.requests if not u.startswith(local)]

    def close(self) -> None:
        self.context.close()
