"""ui.access: the one check in front of every route of a served app, on requests built in memory (the served app
under real HTTP and a real browser: tests/ui/test_served_security.py)."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from nonlin_explorer.ui.access import AccessGuard
from nonlin_explorer.ui.url_settings import DASHBOARD_KEYS

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guard():
    return AccessGuard("127.0.0.1", 5006, token=TOKEN, page_keys=DASHBOARD_KEYS)


def request(guard: AccessGuard, path: str = "/", query: str = f"token={TOKEN}", method: str = "GET",
            **headers: str) -> HTTPServerRequest:
    """A request for ``guard.prefix + path`` (``path`` taken as is when it starts with "//": outside the prefix)."""
    full = path[1:] if path.startswith("//") else guard.prefix + path
    head = HTTPHeaders({"Host": "127.0.0.1:5006", **headers})
    line = RequestStartLine(method, full + (f"?{query}" if query else ""), "HTTP/1.1")
    return HTTPServerRequest(start_line=line, headers=head)


def test_the_url_holds_a_random_path_and_the_token():
    a, b = AccessGuard("127.0.0.1", 5006, token=TOKEN), AccessGuard("127.0.0.1", 5006, token=TOKEN)
    assert a.prefix != b.prefix and len(a.prefix) == 17
    assert a.url() == f"http://127.0.0.1:5006{a.prefix}/?token={TOKEN}"
    assert AccessGuard("localhost", 5006).url().startswith("http://localhost:5006/")
    assert AccessGuard("0.0.0.0", 5006).url().startswith("http://127.0.0.1:5006/")


def test_the_page_with_the_token_or_its_cookie_passes(guard):
    assert guard.verdict(request(guard)) is None
    assert guard.verdict(request(guard, query="width=8", Cookie=f"{guard.cookie}={TOKEN}")) is None
    assert guard.verdict(request(guard, "/static/js/bokeh.min.js", query="v=abc123",
                                 Cookie=f"{guard.cookie}={TOKEN}")) is None


REFUSED = [
    # (path, query, headers, status, words)
    ("/", "", {}, 403, "no valid token"),
    ("/", "token=wrong", {}, 403, "no valid token"),
    ("/", "token=%E2%91%A0", {}, 403, "no valid token"),  # non-ASCII: compared as bytes, no TypeError
    ("/", "", {"Cookie": "nonlin_explorer_token_5006=\xe9"}, 403, "no valid token"),
    ("//components/this/x/y/z", "", {}, 403, "no valid token"),  # outside the path: still guarded
    ("/components/this/x/y/z", "", {}, 403, "no valid token"),
    ("/autoload.js", "", {}, 403, "no valid token"),
    ("/", f"token={TOKEN}", {"Host": "evil.example:5006"}, 403, "Host 'evil.example:5006' is not this server"),
    ("/", f"token={TOKEN}", {"Host": "127.0.0.1:5007"}, 403, "is not this server"),  # another port
    ("/ws", f"token={TOKEN}", {"Upgrade": "websocket"}, 403, "a WebSocket without an Origin header"),
    ("/ws", f"token={TOKEN}", {"Upgrade": "websocket", "Origin": "http://127.0.0.1:9999"}, 403,
     "WebSocket Origin 'http://127.0.0.1:9999' is not this page's"),
    ("/ws", f"token={TOKEN}", {"Upgrade": "websocket", "Origin": "http://[::1"}, 400, "a malformed request"),
    ("/", f"token={TOKEN}", {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Mode": "navigate"},
     403, "a request from another site"),
    ("/components/this/x/y/z", f"token={TOKEN}", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"}, 403,
     "a request from another site"),
    ("/", f"token={TOKEN}&width=%E2%91%A0", {}, 400, "query argument 'width': not printable ASCII"),
    ("/", f"token={TOKEN}&width=%EF%BC%95", {}, 400, "not printable ASCII"),
    ("/", f"token={TOKEN}&width=" + "9" * 10_000, {}, 400, "longer than 1024 characters"),
    ("/", f"token={TOKEN}&junk=1", {}, 400, "unknown setting 'junk' in the URL; this page takes dataset, depth"),
    ("/", f"token={TOKEN}&" + "&".join(f"k{i}=1" for i in range(33)), {}, 400, "more than 32 query arguments"),
    ("/", f"token={TOKEN}", {"Host": "[::1]:5006"}, 307, "http://127.0.0.1:5006/"),  # the printed URL's host
    ("/status.json", f"token={TOKEN}", {"Host": "[::1]:5006"}, 400, "open this app at http://127.0.0.1:5006/"),
]


@pytest.mark.parametrize("path, query, headers, status, words", REFUSED,
                         ids=[f"{r[0]}?{r[1][:30]}{sorted(r[2])}" for r in REFUSED])
def test_refused_requests_get_their_status_and_reason(guard, path, query, headers, status, words):
    verdict = guard.verdict(request(guard, path, query, **headers))
    assert verdict is not None and verdict[0] == status and words in verdict[1], verdict


def test_a_link_from_elsewhere_opens_the_page_and_other_routes_ignore_the_page_settings(guard):
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
    assert guard.verdict(request(guard, **link)) is None
    assert guard.verdict(request(guard, "/static/x.js", query=f"token={TOKEN}&v=1")) is None
