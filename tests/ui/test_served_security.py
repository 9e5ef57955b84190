"""The served app under attack: any local process is a potential client. Without the token nothing but static files
is served; a script cannot open a Bokeh session (no token, no Origin, no signed session id); a page elsewhere cannot
drive it through the user's browser (foreign Origin, DNS rebinding: foreign Host); what the page may write stays in
the folder chosen at start. And a real browser with the printed URL works, also from the network with --host 0.0.0.0.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from served_app import TOKEN, ServedPage, app_status, served_app, serving

pytestmark = pytest.mark.ui

CONFIG = {"dataset": "spirals", "dataset_kwargs": {"num_samples": 300}, "model_kwargs": {"width": 8, "depth": 2},
          "epochs": 5000, "eval_every": 5}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served-root")
    with served_app("training", CONFIG, root) as base:
        yield base, root


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    """(status, headers, body) of a GET, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(errors="replace")


def sessions(base: str) -> int:
    return len(app_status(base))


def test_the_page_and_the_status_need_the_token(server):
    base, _ = server
    before = sessions(base)
    status, headers, _ = fetch(f"{base}/")
    assert status in (302, 403) and "token" not in headers.get("Location", "")
    if status == 302:
        assert fetch(urllib.parse.urljoin(base + "/", headers["Location"]))[0] == 403
    assert fetch(f"{base}/?token=wrong")[0] in (302, 403)
    assert fetch(f"{base}/status.json")[0] == 403
    assert fetch(f"{base}/status.json?token=nope")[0] == 403
    assert sessions(base) == before  # nothing was built for them
    status, headers, body = fetch(f"{base}/?token={TOKEN}")
    assert status == 200 and "nonlin_explorer" in body
    cookie = headers.get("Set-Cookie", "")
    assert TOKEN in cookie and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    name = cookie.split("=", 1)[0]
    assert fetch(f"{base}/", headers={"Cookie": f"{name}={TOKEN}"})[0] == 200  # the cookie alone is enough


def test_a_foreign_host_header_is_refused_even_with_the_token(server):
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    base, _ = server
    port = base.rsplit(":", 1)[1]
    assert fetch(f"{base}/?token={TOKEN}", headers={"Host": f"evil.example:{port}"})[0] in (302, 403)
    assert fetch(f"{base}/status.json?token={TOKEN}", headers={"Host": f"evil.example:{port}"})[0] == 403


def test_a_script_cannot_open_a_bokeh_session(server):
    """What the outside review did: bokeh.client.pull_session, then set Export to and click."""
    from bokeh.client import pull_session

    base, _ = server
    before = sessions(base)
    for url in (f"{base}/", f"{base}/?token={TOKEN}"):
        with pytest.raises(Exception):  # noqa: B017 (refused: bokeh raises IOError or a protocol error)
            session = pull_session(url=url, arguments={"token": TOKEN})
            session.close()
    assert sessions(base) == before


def _ws(base: str, headers: dict) -> str:
    """Open the app's WebSocket with these headers; "open" or the error."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    async def go() -> str:
        req = HTTPRequest(base.replace("http", "ws") + "/ws", headers=headers)
        try:
            conn = await asyncio.wait_for(websocket_connect(req, subprotocols=["bokeh", "x"]), 20)
        except Exception as exc:
            return f"refused: {exc}"
        msg = await asyncio.wait_for(conn.read_message(), 20)
        conn.close()
        return "open" if msg is not None else "closed"

    out: list[str] = []
    worker = threading.Thread(target=lambda: out.append(asyncio.run(go())))  # Playwright owns this thread's loop
    worker.start()
    worker.join(60)
    return out[0] if out else "refused: no answer"


def test_websockets_need_this_pages_origin_and_the_token(server):
    base, root = server
    log = root / "serve.log"
    cookie = {"Cookie": f"nonlin_explorer_token_{base.rsplit(':', 1)[1]}={TOKEN}"}
    for headers, reason in ((cookie, "a WebSocket without an Origin header"),  # a script
                            ({"Origin": base}, "no valid token")):  # this page's Origin, no token
        assert _ws(base, headers).startswith(("refused", "closed"))
        assert f"refused GET /ws from 127.0.0.1: {reason}" in log.read_text()
    # A page elsewhere (its own Origin): Bokeh's origin list refuses it before the token is even looked at.
    assert _ws(base, {**cookie, "Origin": "http://evil.example"}).startswith("refused")


def test_exports_stay_in_the_folder_chosen_at_start(browser, server):
    base, root = server
    page = ServedPage.__new__(ServedPage)
    page.ready_button = "Start"
    ServedPage.__init__(page, browser, base)
    try:
        p = page.page
        assert "token" not in p.url  # dropped from the address bar after the first load (the cookie remains)
        p.get_by_text("Export and record").click()
        box = p.get_by_label("Export to (netCDF)")
        for bad, why in (("../outside.nc", "outside the folder"), ("/tmp/outside.nc", "outside the folder"),
                         ("~/outside.nc", "(no ~)"), ("\\..\\outside\\x.nc", "a backslash"),
                         ("x\u202e.nc", "U+202E")):
            box.fill(bad)
            p.get_by_role("button", name="Export", exact=True).click()
            p.locator(".ne-notice[data-kind='danger']").get_by_text(why).wait_for()
            assert not (root.parent / "outside.nc").exists() and not (root.parent / "outside" / "x.nc").exists()
        (root / "inside.nc").write_text("mine")  # an existing file is never overwritten from the page
        box.fill("inside.nc")
        p.get_by_role("button", name="Export", exact=True).click()
        p.locator(".ne-notice[data-kind='success']").get_by_text("wrote inside-1.nc (inside.nc exists)").wait_for()
        assert (root / "inside.nc").read_text() == "mine" and (root / "inside-1.nc").is_file()
        p.reload()  # the cookie lets the page load without the token in its URL
        p.get_by_role("button", name="Start", exact=True).wait_for()
    finally:
        page.close()


def test_bad_serve_arguments_get_one_line_and_exit_2(tmp_path):
    for args, words in ((["--port", "99999"], "0..65535"), (["--rate", "0"], "--rate"), (["--speed", "-1"], "--speed"),
                        (["--root", str(tmp_path / "missing")], "not a folder")):
        out = subprocess.run([sys.executable, "-m", "nonlin_explorer.ui.serve", *args], capture_output=True,
                             text=True, timeout=120)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and words in lines[0], (args, out.stderr)


def _lan_address() -> str | None:
    """An address of this machine other than loopback (what a browser elsewhere on the network would use)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent: only picks the outgoing interface
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


def test_from_the_network_with_host_0000_a_warning_and_a_real_browser_works(browser, tmp_path):
    addr = _lan_address()
    if addr is None:
        pytest.skip("this machine has no address besides loopback")
    with serving(["--config", json.dumps(CONFIG)], tmp_path, host="0.0.0.0") as base:
        log = (tmp_path / "serve.log").read_text()
        assert "warning: --host 0.0.0.0 is reachable from the network" in log
        lan = base.replace("127.0.0.1", addr)
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{lan}/?token={TOKEN}")
            page.get_by_role("button", name="Start", exact=True).wait_for(timeout=60_000)
            page.get_by_role("button", name="Start", exact=True).click()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(d["status"] == "running" for d in app_status(base)):
                time.sleep(0.2)
            assert any(d["status"] == "running" for d in app_status(base))  # the page drove the session
        finally:
            context.close()
        assert fetch(f"{lan}/")[0] in (302, 403)  # and without the token, nothing
