"""Who may use a served app: a random token (in the URL once, then a cookie scoped to this server's random path), the
Host header checked against the bound address, the Origin of every WebSocket checked against the Host (no Origin, no
WebSocket), a query that only our own settings may fill, and Bokeh's sessions signed with a secret only this process
knows.

One check (:meth:`AccessGuard.verdict`) runs in front of every route the server answers, Panel's and Bokeh's included:
a refused request reaches no handler of theirs, so nothing is imported, read, built or run for it. Every response says
that no other site may frame it.

Any local process is a potential client: without the token nothing is served, and a script cannot open a session
(``bokeh.client.pull_session`` has no token, no Origin and no signed session id). A web page elsewhere cannot drive
the app through the user's browser either: its WebSocket carries its own Origin, DNS rebinding fails the Host check,
and the cookie, whose Path is this server's random prefix, never reaches a server on another port of this host.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
import sys
from collections.abc import Iterable
from urllib.parse import urlparse

from tornado.httputil import HTTPServerRequest
from tornado.routing import Matcher
from tornado.web import OutputTransform, RequestHandler

#: Host names that always mean this machine.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
#: Longest query value any route takes (Bokeh's and Panel's own arguments included), and most arguments.
MAX_QUERY_VALUE = 1024
MAX_QUERY_ARGS = 32
#: Headers on every response: no page elsewhere may frame this one, or learn its path from a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


#: The packages whose components Panel's ``/components/`` route may import (it imports the module a URL names).
COMPONENT_PACKAGES = ("nonlin_explorer", "panel")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _interface_addresses() -> set[str]:
    """IPv4 addresses of this machine's network interfaces (Linux: one ioctl per interface), and the address of the
    default route's interface (anywhere)."""
    out: set[str] = set()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            out.add(s.getsockname()[0])
    except OSError:
        pass
    try:
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
                    out.add(socket.inet_ntoa(packed[20:24]))
                except OSError:
                    continue
    except (ImportError, OSError, AttributeError):
        pass
    return out


def local_names() -> set[str]:
    """This machine's host names and addresses (what a browser elsewhere on the network puts in Host)."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names.update(socket.gethostbyname_ex(name)[2])
        except OSError:
            pass
    names |= _interface_addresses()
    return {n.lower() for n in names if n}


def _printable_ascii(value: bytes) -> bool:
    return all(0x20 <= b < 0x7F for b in value)


def _foreign_fetch(request: HTTPServerRequest) -> str | None:
    """Why a browser's request from another site (another port of this host included) is refused (Fetch Metadata:
    a frame, an image, a script or a fetch), or None. Following a link to the app (a top-level navigation) is fine,
    and so are clients that send no Sec-Fetch headers (scripts, which need the token anyway)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site in (None, "same-origin", "none"):
        return None
    dest, mode = request.headers.get("Sec-Fetch-Dest"), request.headers.get("Sec-Fetch-Mode")
    if mode == "navigate" and dest == "document":
        return None
    return f"a request from another site (Sec-Fetch-Site {site[:20]!r}, Sec-Fetch-Dest {str(dest)[:20]!r})"


def _same(given: bytes | None, token: bytes) -> bool:
    """Constant-time comparison of bytes (any bytes: a str with non-ASCII characters cannot be compared so)."""
    return given is not None and hmac.compare_digest(given, token)


class AccessGuard:
    """The rules of one server: ``token``, the ``host`` it is bound to, its ``port``, extra allowed host names, and
    ``page_keys``, the settings its page's URL may carry (ui.url_settings). It serves under a random path, ``prefix``,
    which scopes the token's cookie to this server."""

    def __init__(self, host: str, port: int, token: str | None = None, allow_hosts: Iterable[str] = (),
                 page_keys: Iterable[str] = ()):
        self.token = token or secrets.token_urlsafe(24)
        self._token = self.token.encode("utf-8", "surrogateescape")
        self.host = host
        self.port = int(port)
        self.prefix = "/" + secrets.token_hex(8)
        self.cookie = f"nonlin_explorer_token_{self.port}"
        self.session_secret = secrets.token_urlsafe(32)
        self.page_keys = frozenset(page_keys) | {"token"}
        names = set(LOOPBACK_NAMES)
        if host in ("0.0.0.0", "::", ""):
            names |= local_names()
        else:
            names.add(host.lower() if ":" not in host else f"[{host.lower()}]")
        names |= {h.lower() for h in allow_hosts}
        self.names = names

    @property
    def hosts(self) -> set[str]:
        """Allowed ``host:port`` values of the Host header (and of WebSocket Origins)."""
        return {f"{n}:{self.port}" for n in self.names}

    @property
    def shown_host(self) -> str:
        """The host name of the printed URL (never an IPv6 literal: Panel cannot serve a page under one)."""
        if self.host in ("0.0.0.0", "::", ""):
            return "127.0.0.1"
        return "localhost" if ":" in self.host else self.host

    def url(self, path: str = "/") -> str:
        """The address to open: this server's prefix, ``path``, and the token."""
        return f"http://{self.shown_host}:{self.port}{self.prefix}{path}?token={self.token}"

    def verdict(self, request: HTTPServerRequest) -> tuple[int, str] | None:
        """``(status, reason)`` when ``request`` must be refused (403: not allowed; 400: malformed; 307: the same
        page under another name, ``reason`` its URL), or None. Never raises: what cannot be read is refused."""
        try:
            return self._verdict(request)
        except (ValueError, UnicodeError) as exc:
            return 400, f"a malformed request ({type(exc).__name__})"

    def _verdict(self, request: HTTPServerRequest) -> tuple[int, str] | None:
        host = (request.host or "").lower()
        if host not in self.hosts:
            return 403, f"Host {host[:80]!r} is not this server"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            origin = request.headers.get("Origin")
            if not origin:
                return 403, "a WebSocket without an Origin header"
            if urlparse(origin).netloc.lower() != host:
                return 403, f"WebSocket Origin {origin[:80]!r} is not this page's"
        foreign = _foreign_fetch(request)
        if foreign:
            return 403, foreign
        if not (self._token_in_query(request) or self._token_in_cookie(request)):
            return 403, "no valid token (open the URL that nonlin-explorer serve printed)"
        component = self._component_problem(request)
        if component:
            return 403, component
        problem = self._query_problem(request)
        if problem is None and host.startswith("["):
            # Panel cannot serve a page whose Host is an IPv6 literal (nor Bokeh check its Origin): the same page
            # under the printed URL's host (with --host localhost, bound to ::1 too); the token in the query goes along.
            where = f"http://{self.shown_host}:{self.port}"
            if request.method in ("GET", "HEAD") and request.path in (self.prefix, self.prefix + "/"):
                return 307, where + request.uri
            return 400, f"Host {host!r}: open this app at {where}{self.prefix}/ instead"
        return problem

    def _component_problem(self, request: HTTPServerRequest) -> str | None:
        """Panel's ``/components/<module>/...`` imports the module it names: only this package's and Panel's own."""
        head = self.prefix + "/components/"
        if not request.path.startswith(head):
            return None
        module = request.path[len(head):].split("/", 1)[0]
        if module.split(".")[0] in COMPONENT_PACKAGES:
            return None
        return f"component module {module[:80]!r} is not served (only {', '.join(COMPONENT_PACKAGES)})"

    def _token_in_query(self, request: HTTPServerRequest) -> bool:
        values = request.query_arguments.get("token")
        return bool(values) and _same(values[-1], self._token)

    def _token_in_cookie(self, request: HTTPServerRequest) -> bool:
        morsel = request.cookies.get(self.cookie)
        return morsel is not None and _same(morsel.value.encode("utf-8", "surrogateescape"), self._token)

    def _query_problem(self, request: HTTPServerRequest) -> tuple[int, str] | None:
        """A query is printable ASCII, short, and on the page carries only its settings: what Panel or Bokeh would
        parse from it (and fail on, or misread: '５' as 5) never reaches them."""
        args = request.query_arguments
        if len(args) > MAX_QUERY_ARGS:
            return 400, f"more than {MAX_QUERY_ARGS} query arguments"
        for key, values in args.items():
            if not key.isascii() or not key.isprintable():
                return 400, f"query argument {key[:40]!r}: not printable ASCII"
            for value in values:
                if len(value) > MAX_QUERY_VALUE:
                    return 400, f"query argument {key[:40]!r}: longer than {MAX_QUERY_VALUE} characters"
                if not _printable_ascii(value):
                    return 400, f"query argument {key[:40]!r}: not printable ASCII"
        if request.path in (self.prefix, self.prefix + "/"):
            unknown = sorted(set(args) - self.page_keys)
            if unknown:
                allowed = ", ".join(sorted(self.page_keys - {"token"})) or "no settings"
                return 400, f"unknown setting {unknown[0][:40]!r} in the URL; this page takes {allowed}"
        return None

    def refuse_reason(self, handler: RequestHandler) -> str | None:
        """Why ``handler``'s request is refused (also printed on stderr), or None when it may go on. Sets the token
        cookie (HttpOnly, SameSite=Strict, Path: this server's prefix) on a page load that brings the token."""
        verdict = self.verdict(handler.request)
        if verdict:
            self.log_refusal(handler.request, verdict[1])
            return verdict[1]
        if self._token_in_query(handler.request) and handler.request.headers.get("Upgrade", "").lower() != "websocket":
            handler.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path=self.prefix)
        return None

    @staticmethod
    def log_refusal(request: HTTPServerRequest, reason: str) -> None:
        print(f"nonlin-explorer: refused {request.method} {request.path[:200]} from {request.remote_ip}: {reason}",
              file=sys.stderr, flush=True)

    def install(self, app) -> None:
        """Put this guard in front of every route of ``app`` (a tornado Application: the Bokeh server's), and the
        security headers on every response, through tornado's public ``add_handlers`` and ``add_transform``."""
        from tornado.routing import Rule

        app.add_handlers(r".*", [Rule(_Refused(self), _RefusalHandler, {"guard": self})])
        app.add_transform(_SecurityHeaders)

    def auth_provider(self):
        """A Bokeh ``AuthProvider`` applying the same rules inside Bokeh's own handlers (and setting the cookie)."""
        from bokeh.server.auth_provider import AuthProvider

        guard = self

        class Refused(RequestHandler):
            def get(self) -> None:
                _write_refusal(self, 403, "no valid token")

        class TokenAuth(AuthProvider):
            @property
            def get_user(self):
                return lambda handler: None if guard.refuse_reason(handler) else "token"

            @property
            def login_url(self):
                return "/refused"

            @property
            def login_handler(self):
                return Refused

        return TokenAuth()


def _write_refusal(handler: RequestHandler, status: int, reason: str) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "text/plain; charset=utf-8")
    handler.set_header("Cache-Control", "no-store")
    hint = (" Open the URL with the token that `nonlin-explorer serve` printed in its terminal." if status == 403
            else "")
    handler.finish(f"nonlin_explorer: {'access refused' if status == 403 else 'bad request'}: {reason}.{hint}\n")


class _Refused(Matcher):
    """Matches the requests its guard refuses (so they go to :class:`_RefusalHandler`); the others fall through to
    the server's own routes."""

    def __init__(self, guard: AccessGuard):
        self.guard = guard

    def match(self, request: HTTPServerRequest) -> dict | None:
        return {} if self.guard.verdict(request) else None

    def reverse(self, *args):
        return None


class _RefusalHandler(RequestHandler):
    """Answers a refused request, any method, with its status and one line; logs it on stderr."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, guard: AccessGuard) -> None:
        self.guard = guard

    def prepare(self) -> None:
        status, reason = self.guard.verdict(self.request) or (403, "refused")
        if status == 307:
            self.redirect(reason, status=307)
            return
        self.guard.log_refusal(self.request, reason)
        _write_refusal(self, status, reason)


class _SecurityHeaders(OutputTransform):
    """Adds :data:`SECURITY_HEADERS` to every response."""

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        return status_code, headers, chunk
