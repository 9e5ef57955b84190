"""Who may use a served app: a random token (in the URL once, then a cookie), the Host header checked against the
bound address, the Origin of every WebSocket checked against the Host (no Origin, no WebSocket), and Bokeh's sessions
signed with a secret only this process knows.

Any local process is a potential client: without the token nothing but static files (Bokeh's and Panel's JavaScript)
is served, and a script cannot open a session (``bokeh.client.pull_session`` has no token, no Origin and no signed
session id). A web page elsewhere cannot drive the app through the user's browser either: its WebSocket carries its own
Origin, and DNS rebinding fails the Host check.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
import sys
from collections.abc import Iterable
from urllib.parse import urlparse

from tornado.web import RequestHandler
from tornado.websocket import WebSocketHandler

#: Host names that always mean this machine.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


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


class AccessGuard:
    """The rules of one server: ``token``, the ``host`` it is bound to, its ``port``, and extra allowed host names."""

    def __init__(self, host: str, port: int, token: str | None = None, allow_hosts: Iterable[str] = ()):
        self.token = token or secrets.token_urlsafe(24)
        self.host = host
        self.port = int(port)
        self.cookie = f"nonlin_explorer_token_{self.port}"
        self.session_secret = secrets.token_urlsafe(32)
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

    def url(self, path: str = "/") -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{shown}:{self.port}{path}?token={self.token}"

    def refuse_reason(self, handler: RequestHandler) -> str | None:
        """Why ``handler``'s request is refused (also printed on stderr), or None when it may go on. Sets the token
        cookie on a page load that brings the token in its URL."""
        reason = self._reason(handler)
        if reason:
            print(f"nonlin-explorer: refused {handler.request.method} {handler.request.path} from "
                  f"{handler.request.remote_ip}: {reason}", file=sys.stderr, flush=True)
        return reason

    def _reason(self, handler: RequestHandler) -> str | None:
        request = handler.request
        host = (request.host or "").lower()
        if host not in self.hosts:
            return f"Host {host!r} is not this server"
        if isinstance(handler, WebSocketHandler):
            origin = request.headers.get("Origin")
            if not origin:
                return "a WebSocket without an Origin header"
            if urlparse(origin).netloc.lower() != host:
                return f"WebSocket Origin {origin!r} is not this page's"
        given = handler.get_query_argument("token", None)
        if given is not None and hmac.compare_digest(given, self.token):
            if not isinstance(handler, WebSocketHandler):
                handler.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path="/")
            return None
        cookie = handler.get_cookie(self.cookie)
        if cookie is not None and hmac.compare_digest(cookie, self.token):
            return None
        return "no valid token (open the URL that nonlin-explorer serve printed)"

    def auth_provider(self):
        """A Bokeh ``AuthProvider`` enforcing these rules on pages, sessions and WebSockets."""
        from bokeh.server.auth_provider import AuthProvider

        guard = self

        class Refused(RequestHandler):
            def get(self) -> None:
                self.set_status(403)
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                self.write("nonlin_explorer: access refused. Open the URL with the token that "
                           "`nonlin-explorer serve` printed in its terminal.\n")

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
