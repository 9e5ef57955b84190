"""The served app under attack: any local process is a potential client. Every route the server answers (Panel's and
Bokeh's included) is listed in docs/security.md and refused without the token; a script cannot open a Bokeh session
(no token, no Origin, no signed session id); a page elsewhere cannot drive it through the user's browser (foreign
Origin, DNS rebinding: foreign Host), frame it, or receive its token (the cookie's path is the server's random
prefix); malformed requests get a 4xx with one line before anything is built; what the page may write stays in the
folder chosen at start. And a real browser with the printed URL works, also from the network with --host 0.0.0.0.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

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
    for url in (f"{base}/", f"{base}/?token=wrong", f"{base}/status.json", f"{base}/status.json?token=nope"):
        status, headers, body = fetch(url)
        assert status == 403 and "Location" not in headers and "access refused: no valid token" in body, url
    assert sessions(base) == before  # nothing was built for them
    status, headers, body = fetch(f"{base}/?token={TOKEN}")
    assert status == 200 and "nonlin_explorer" in body
    cookie = headers.get("Set-Cookie", "")
    assert TOKEN in cookie and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    name = cookie.split("=", 1)[0]
    assert fetch(f"{base}/", headers={"Cookie": f"{name}={TOKEN}"})[0] == 200  # the cookie alone is enough


def test_the_token_cookie_is_scoped_to_this_servers_random_path(server):
    """Cookies are scoped by host, not port: the cookie's Path, a random prefix of this server, keeps it from every
    other server on 127.0.0.1 (which do not serve that path, and whose pages cannot learn it)."""
    base, _ = server
    prefix = urllib.parse.urlparse(base).path
    assert re.fullmatch(r"/[0-9a-f]{16}", prefix)
    cookie = fetch(f"{base}/?token={TOKEN}")[1]["Set-Cookie"]
    assert f"Path={prefix};" in cookie or cookie.endswith(f"Path={prefix}")
    # The server itself answers nothing outside that path (not even with the token: 404).
    origin = base[: -len(prefix)]
    assert fetch(f"{origin}/")[0] == 403 and fetch(f"{origin}/?token={TOKEN}")[0] == 404


def test_a_foreign_host_header_is_refused_even_with_the_token(server):
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    base, _ = server
    port = urllib.parse.urlparse(base).port
    assert fetch(f"{base}/?token={TOKEN}", headers={"Host": f"evil.example:{port}"})[0] == 403
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
    url = urllib.parse.urlparse(base)
    cookie = {"Cookie": f"nonlin_explorer_token_{url.port}={TOKEN}"}
    origin = f"{url.scheme}://{url.netloc}"
    for headers, reason in ((cookie, "a WebSocket without an Origin header"),  # a script
                            ({"Origin": origin}, "no valid token"),  # this page's Origin, no token
                            ({**cookie, "Origin": "http://evil.example"}, "WebSocket Origin 'http://evil.example'")):
        assert _ws(base, headers).startswith(("refused", "closed"))
        assert f"refused GET {url.path}/ws from 127.0.0.1: {reason}" in log.read_text()


def test_exports_stay_in_the_folder_chosen_at_start(browser, server):
    base, root = server
    page = ServedPage.__new__(ServedPage)
    page.ready_button = "Start"
    ServedPage.__init__(page, browser, base)
    try:
        p = page.page
        p.wait_for_url(lambda url: "token" not in url)  # dropped from the address bar after the first load
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
                        (["--root", str(tmp_path / "missing")], "not a folder"),
                        (["--host", "::1"], "Panel cannot serve a page under an IPv6 address")):
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
        assert fetch(f"{lan}/")[0] == 403  # and without the token, nothing


# --- Every route, malformed requests, framing, other servers on this host -------------------------------------------

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def _routes() -> tuple[list[str], str]:
    """The path patterns of every route the server answers (built in this process as ``serve`` builds it, with its
    status endpoint, then closed), with its random prefix written ``/<prefix>``; and the guard's own rule."""
    from nonlin_explorer.ui.serve import _add_arguments, build_server
    from nonlin_explorer.validation import OneLineParser

    parser = OneLineParser(prog="serve")
    _add_arguments(parser)
    server, guard, _ = build_server(parser.parse_args(["--port", "0", "--status-endpoint", "--token", TOKEN]))
    try:
        app = server._tornado
        patterns = [rule.matcher.regex.pattern.replace(guard.prefix, "/<prefix>")
                    for rule in app.wildcard_router.rules]
        first = app.default_router.rules[0].target.rules[0]  # in front of the wildcard router: the guard's rule
        return patterns, type(first.matcher).__name__
    finally:
        server.unlisten()


def _documented_routes() -> set[str]:
    """The first column of docs/security.md's table of routes."""
    section = SECURITY_DOC.read_text().split("### Every route", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def _sample_path(pattern: str) -> str:
    """A path that ``pattern`` (a tornado route) matches."""
    path = pattern.rstrip("$").replace("(?!extensions/)", "").replace("\\.", ".").replace("/?", "/")
    return re.sub(r"[()]", "", re.sub(r"\(\.\*\)", "panel/x/y/z", path))


def test_every_route_is_documented_and_refused_without_the_token(server):
    """A new route (ours, Panel's or Bokeh's) that docs/security.md does not list fails here; each one, asked without
    the token, answers 403 and builds nothing, and the guard is the first rule the server consults."""
    patterns, first = _routes()
    assert first == "_Refused"
    assert set(patterns) == _documented_routes()
    base, root = server
    prefix = urllib.parse.urlparse(base).path
    origin = base[: -len(prefix)]
    before = sessions(base)
    for pattern in patterns:
        url = origin + _sample_path(pattern).replace("/<prefix>", prefix)
        status, headers, body = fetch(url)
        assert status == 403 and "no valid token" in body, (pattern, status, body[:200])
        assert headers.get("X-Frame-Options") == "SAMEORIGIN"
        port = urllib.parse.urlparse(base).port  # the token, from a page elsewhere (DNS rebinding): refused too
        assert fetch(url + f"?token={TOKEN}", headers={"Host": f"evil.example:{port}"})[0] == 403, pattern
    assert sessions(base) == before


def test_components_import_nothing_without_the_token_and_only_our_modules_with_it(server):
    """Panel's /components/<module>/... imports the module it names: `import this` prints the Zen of Python."""
    base, root = server
    for url in (f"{base}/components/this/x/y/z", f"{base}/components/this/x/y/z?token=wrong"):
        assert fetch(url)[0] == 403
    cookie = f"nonlin_explorer_token_{urllib.parse.urlparse(base).port}={TOKEN}"
    # A cross-site <img> from another port of this host: the browser sends the cookie (same site) only to a page
    # that knows the path; even then, Fetch Metadata marks it as not this page's own request.
    img = {"Cookie": cookie, "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    status, _, body = fetch(f"{base}/components/this/x/y/z", headers=img)
    assert status == 403 and "a request from another site" in body
    # With the token, the route still imports only this package's and Panel's modules.
    for module in ("this", "antigravity", "nonlin_explorerx", "os"):
        status, _, body = fetch(f"{base}/components/{module}/x/y/z?token={TOKEN}")
        assert status == 403 and f"component module '{module}' is not served" in body, (module, status, body[:200])
    time.sleep(0.5)
    assert "Beautiful is better than ugly" not in (root / "serve.log").read_text()


#: (query after the token, headers, status, words in the answer): what the outside review sent, and what it gets.
MALFORMED = [
    ("width=%E2%91%A0", {}, 400, "query argument 'width': not printable ASCII"),  # ① (isdigit, not int)
    ("junk=%E2%91%A0", {}, 400, "query argument 'junk': not printable ASCII"),
    ("width=" + "9" * 10_000, {}, 400, "query argument 'width': longer than 1024 characters"),
    ("junk=" + "9" * 10_000, {}, 400, "query argument 'junk': longer than 1024 characters"),
    ("width=%EF%BC%95", {}, 400, "query argument 'width': not printable ASCII"),  # a fullwidth 5, never read as 5
    ("width=4096&depth=3&bogus=1", {}, 400, "unknown setting 'bogus' in the URL; this page takes dataset"),
    ("junk=" + "%5B" * 1000, {}, 400, "unknown setting 'junk'"),  # Panel would literal_eval it
    ("&".join(f"width={i}" for i in range(40)), {}, 200, "nonlin_explorer"),  # one key 40 times: the last wins
    ("&".join(f"k{i}=1" for i in range(40)), {}, 400, "more than 32 query arguments"),
]


@pytest.mark.parametrize("query, headers, status, words", MALFORMED, ids=[m[0][:24] for m in MALFORMED])
def test_malformed_page_requests_get_a_4xx_with_one_line_and_build_nothing(server, query, headers, status, words):
    base, root = server
    before = sessions(base)
    started = time.monotonic()
    got, _, body = fetch(f"{base}/?token={TOKEN}&{query}", headers=headers)
    assert (got, words in body) == (status, True), body[:300]
    if status >= 400:
        assert body.count("\n") == 1 and time.monotonic() - started < 5  # one line, refused before any work
        assert sessions(base) == before  # no model was built for it
    assert "Traceback" not in (root / "serve.log").read_text()


def test_bad_tokens_and_hosts_are_refused_never_a_500(server):
    base, root = server
    url = urllib.parse.urlparse(base)
    cases = [
        (f"{base}/?token=%E2%91%A0", {}, 403),  # non-ASCII token: compared as bytes
        (f"{base}/?token=%FF%FE", {}, 403),  # not even UTF-8
        (f"{base}/", {"Cookie": f"nonlin_explorer_token_{url.port}=\xe9t\xe9"}, 403),
        (f"{base}/autoload.js", {}, 403),
        (f"{base}/autoload.js?token={TOKEN}", {}, 400),  # Bokeh's own answer: no element id
        (f"{base}/ws?token={TOKEN}", {}, 400),  # not a WebSocket upgrade
        (f"{base}/?token={TOKEN}", {"Host": f"[::2]:{url.port}"}, 403),
        (f"{base}/status.json?token={TOKEN}", {"Host": f"[::1]:{url.port}"}, 400),  # use localhost, it says
    ]
    for target, headers, status in cases:
        got, _, body = fetch(target, headers=headers)
        assert got == status and body.count("\n") <= 1, (target, headers, got, body[:200])
    req = urllib.request.Request(f"{base}/", data=b"x" * 1000, method="POST")  # any method: refused the same way
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 403
    assert "Traceback" not in (root / "serve.log").read_text()


def test_an_ipv6_loopback_host_is_sent_to_the_same_page_under_the_printed_host(server):
    """Host [::1]:PORT (allowed): Panel cannot serve a page under an IPv6 literal, so the page redirects to the same
    path under the printed URL's host, token and settings kept; the page there works, also as localhost."""
    base, _ = server
    url = urllib.parse.urlparse(base)
    status, headers, _ = fetch(f"{base}/?token={TOKEN}&width=12", headers={"Host": f"[::1]:{url.port}"})
    assert status == 307
    assert headers["Location"] == f"{base}/?token={TOKEN}&width=12"
    for host in ("127.0.0.1", "localhost"):
        status, _, body = fetch(f"{base}/?token={TOKEN}&width=12", headers={"Host": f"{host}:{url.port}"})
        assert status == 200 and "nonlin_explorer" in body


def test_no_response_may_be_framed_by_another_site(server):
    base, _ = server
    for target in (f"{base}/?token={TOKEN}", f"{base}/", f"{base}/status.json?token={TOKEN}",
                   f"{base}/static/js/bokeh.min.js?token={TOKEN}"):
        headers = fetch(target)[1]
        assert headers.get("Content-Security-Policy") == "frame-ancestors 'self'", target
        assert headers.get("X-Frame-Options") == "SAMEORIGIN" and headers.get("Referrer-Policy") == "no-referrer"


class _OtherServer:
    """Another web server on this host (another port): serves ``html`` at every path and records the Cookie header
    of every request it gets."""

    def __init__(self, html: str = "<p>elsewhere</p>"):
        import http.server

        cookies = self.cookies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                cookies.append(self.headers.get("Cookie") or "")
                body = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_token_never_reaches_another_server_on_this_host_and_no_page_there_can_frame_the_app(browser, server):
    """A browser that opened the app visits another server on 127.0.0.1 (same site, another port): no request
    there carries the token, and a page there that frames the app (knowing its path) gets no app and builds no
    session."""
    base, _ = server
    app = ServedPage.__new__(ServedPage)
    app.ready_button = "Start"
    ServedPage.__init__(app, browser, base)
    frame_page = f'<iframe id="f" src="{base}/"></iframe><img src="{base}/components/this/x/y/z">'
    other = _OtherServer(frame_page)
    try:
        assert any(c["name"].startswith("nonlin_explorer_token") for c in app.context.cookies(base + "/"))
        assert app.context.cookies(other.base + "/") == []  # the browser's own view: not for that server
        before = sessions(base)
        tab = app.context.new_page()
        for path in ("/", "/ws", "/static/x", "/status.json"):
            tab.goto(other.base + path)
        tab.wait_for_timeout(2000)  # let the frame and the image try
        assert other.cookies and not any(TOKEN in c for c in other.cookies)
        assert sessions(base) == before  # the framed page built nothing
        frame = tab.frame_locator("#f")
        assert frame.get_by_role("button", name="Start").count() == 0
        tab.close()
    finally:
        other.close()
        app.close()


def test_a_model_the_dataset_cannot_take_is_a_clear_refusal_in_the_page(browser, server):
    """?model=seq2seq&dataset=translation with the demo's width: the page names the problem, logs it, and starts
    the demo (not a blank page)."""
    base, root = server
    page = ServedPage.__new__(ServedPage)
    page.ready_button = "Start"
    ServedPage.__init__(page, browser, base, query="model=seq2seq&dataset=translation")
    try:
        page.page.locator(".ne-notice").get_by_text("settings in the URL ignored").wait_for()
        assert page.state()["dataset"] == "spirals"
        assert "settings in the URL ignored: model 'seq2seq' has no setting 'width'" in (root / "serve.log").read_text()
    finally:
        page.close()
