"""``nonlin-explorer serve``: the training dashboard as a standalone page (Panel server), for talks.

Bound to 127.0.0.1 unless ``--host`` says otherwise; Panel and Bokeh serve their JavaScript from this server
(nothing loads from a CDN). Each browser tab gets its own dashboard and session; closing the tab stops its
training thread. ``python -m nonlin_explorer.ui.serve`` runs it without the main CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

from nonlin_explorer.demos import DEFAULT_DEMO, DEMOS, demo_config
from nonlin_explorer.ui.url_settings import ADVANTAGE_KEYS, DASHBOARD_KEYS, EXPLORER_KEYS, from_query, to_query
from nonlin_explorer.validation import OneLineParser, json_object

#: The compression explorer (``--demo compression``; ``--config`` holds its settings, e.g. '{"N": 500}').
COMPRESSION_DEMO = "compression"
#: Early vs late linearization (``--demo advantage``; ``--config``: TrainConfig fields, plus "sparsities" and "seeds").
ADVANTAGE_DEMO = "advantage"

#: Live dashboards of this process (read by the status endpoint).
_DASHBOARDS: list = []
_LOCK = threading.Lock()
_SERIAL = [0]


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an argparse ``subparsers`` object."""
    s = subparsers.add_parser("serve", help="serve the live training dashboard as a web page (Panel)")
    _add_arguments(s)
    return s


def _port(text: str) -> int:
    """argparse type: a TCP port, 0 for any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port lies in 0..65535 (0: any free port), got {value}")
    return value


def _positive(low: float, high: float):
    """argparse type: a number in [low, high]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (low <= value <= high):
            raise argparse.ArgumentTypeError(f"must lie in [{low:g}, {high:g}], got {text}")
        return value
    return parse


def _add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--port", type=_port, default=5006, help="port (0: any free port)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; anything else is reachable from the "
                        "network and prints a warning)")
    s.add_argument("--token", default=None,
                   help="the access token (default: a new random one, printed in the URL); kept in a cookie, scoped to "
                        "the app's random path, after the first page load")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another host name the page may be reached by (e.g. behind a proxy); repeatable")
    s.add_argument("--root", default=".", metavar="FOLDER",
                   help="the only folder the page may write exports and recordings into (default: here)")
    s.add_argument("--demo", default=DEFAULT_DEMO,
                   choices=sorted([*DEMOS, "training", COMPRESSION_DEMO, ADVANTAGE_DEMO]),
                   help="which run to load (compression: the compression explorer; advantage: early vs late "
                        "linearization, run by run)")
    s.add_argument("--config", type=json_object, default={}, help="TrainConfig fields overriding the demo, as JSON")
    s.add_argument("--replay", metavar="PATH",
                   help="replay a recording (a folder saved by the dashboard's Record or save_recording) instead of "
                        "training")
    s.add_argument("--speed", type=_positive(1e-3, 1e6), default=10.0,
                   help="replay speed, times real time (default 10)")
    s.add_argument("--theme", default="light", choices=("light", "dark"))
    s.add_argument("--rate", type=_positive(0.5, 60.0), default=10.0, help="refreshes per second (default 10)")
    s.add_argument("--show", action=argparse.BooleanOptionalAction, default=False, help="open a browser tab")
    s.add_argument("--status-endpoint", action="store_true",
                   help="also serve the live sessions' state as JSON at /status.json (token required; for tests "
                        "and scripts)")


def make_app(config, theme: str = "light", rate: float = 10.0, files_root=None):
    """A function building one full-page dashboard per browser tab (each with its own session)."""
    import dataclasses

    from nonlin_explorer.ui.dashboard_controller import DashboardController, check_size, config_from_settings
    from nonlin_explorer.ui.dashboard_panel import TrainingDashboardPane

    def app():
        run_config, problem = _with_url_settings(config, DASHBOARD_KEYS,
                                                 lambda base, s: check_size(config_from_settings(base, s)))
        controller = DashboardController(dataclasses.replace(run_config, model_kwargs=dict(run_config.model_kwargs)),
                                         rate=rate, theme=theme, files_root=files_root)
        if problem:
            controller.notify(problem, "warning", lasting=True)
        _follow_in_url(lambda: controller.state["settings"], DASHBOARD_KEYS)
        return _serve_view(TrainingDashboardPane(controller))

    return app


def _session_args() -> dict:
    """This tab's URL query, as Tornado gives it (name -> list of bytes)."""
    import panel as pn

    return pn.state.session_args or {}


def _with_url_settings(base, keys, merge):
    """``merge(base, settings)`` with the settings among ``keys`` in this tab's URL (``base`` when it has none), and
    what was wrong with them (None: nothing; ``base`` is used then). ``merge`` checks them as the page's form would
    and raises ValueError (RequestError is one) naming a refused value."""
    try:
        settings = from_query(_session_args(), keys)
        return (merge(base, settings) if settings else base), None
    except ValueError as exc:
        problem = f"settings in the URL ignored: {exc}"
        print(f"nonlin-explorer: {problem}", file=sys.stderr, flush=True)
        return base, problem


def _follow_in_url(current, keys, period_ms: int = 500) -> None:
    """Keep this tab's URL showing ``current()`` (settings), looked at every ``period_ms`` (no token in it). Looked
    at, not pushed: on load the page's own address (with the token) replaces whatever the server set first."""
    import panel as pn

    location = pn.state.location
    if location is None:
        return

    def show() -> None:
        query = to_query(current(), keys)
        if location.search != query:
            location.search = query

    show()
    pn.state.add_periodic_callback(show, period=period_ms)


def make_replay_app(path, theme: str = "light", rate: float = 10.0, speed: float = 10.0, files_root=None):
    """Like :func:`make_app`, replaying the recording at ``path`` (read once here: a bad file fails before
    serving; each tab gets its own replay, starting at the beginning)."""
    from nonlin_explorer.recording import load_recording
    from nonlin_explorer.ui.dashboard_controller import ReplayController
    from nonlin_explorer.ui.dashboard_panel import TrainingDashboardPane

    load_recording(path).session()  # fail now on a missing, truncated or foreign recording

    def app():
        controller = ReplayController(path, speed=speed, rate=rate, theme=theme, files_root=files_root)
        return _serve_view(TrainingDashboardPane(controller))

    return app


def make_compression_app(initial: dict, theme: str = "light", rate: float = 10.0, files_root=None):
    """Like :func:`make_app`, for the compression explorer (``initial``: its settings)."""

    from nonlin_explorer.ui.compression_controller import CompressionController
    from nonlin_explorer.ui.compression_core import validate_params
    from nonlin_explorer.ui.compression_panel import CompressionExplorerPane

    validate_params(initial)  # bad --config: an error before serving

    def app():
        settings, problem = _with_url_settings(initial, EXPLORER_KEYS, _checked_explorer_settings)
        controller = CompressionController(rate=rate, theme=theme, files_root=files_root, **settings)
        if problem:
            controller.notify(problem, "warning")
        _follow_in_url(lambda: controller.params.to_dict(), EXPLORER_KEYS)
        return _serve_view(CompressionExplorerPane(controller))

    return app


def _checked_explorer_settings(initial: dict, settings: dict) -> dict:
    """``initial`` updated by ``settings``, after the explorer's own checks (ValueError)."""
    from nonlin_explorer.ui.compression_core import validate_params

    merged = {**initial, **settings}
    validate_params(merged)
    return merged


def make_advantage_app(settings: dict, theme: str = "light", rate: float = 4.0, files_root=None):
    """Like :func:`make_app`, for the early-vs-late view: it opens on a stored result set (``"set"``: its name,
    default mlp) and runs new grids on top (``settings``: TrainConfig fields for new runs, and optionally
    ``sparsities`` and ``seeds``). The URL may carry ``set``, ``sparsities``, ``seeds`` and ``epochs``."""
    from nonlin_explorer.ui.advantage_controller import AdvantageController
    from nonlin_explorer.ui.advantage_core import DEFAULT_SET
    from nonlin_explorer.ui.advantage_panel import AdvantagePane

    settings = dict(settings)
    grid = {k: settings.pop(k) for k in ("sparsities", "seeds") if k in settings}
    stored = settings.pop("set", DEFAULT_SET)
    try:  # bad --config: an error before serving
        AdvantageController(settings or None, stored=stored, **grid).close()
    except TypeError as exc:
        raise ValueError(f"--config: {exc}") from None

    def app():
        query, problem = _with_url_settings({}, ADVANTAGE_KEYS, _checked_advantage_settings)
        controller = AdvantageController(settings or None, stored=query.pop("set", stored), rate=rate, theme=theme,
                                         files_root=files_root, **grid)
        controller.configure(**query)  # checked above: the form shows them, Run trains them
        if problem:
            controller.notify(problem, "warning", lasting=True)
        _follow_in_url(lambda: controller.state["settings"], ADVANTAGE_KEYS)
        return _serve_view(AdvantagePane(controller))

    return app


def _checked_advantage_settings(_base: dict, settings: dict) -> dict:
    """The early-vs-late settings of a URL, checked as the page's form would (ValueError naming a refused one)."""
    from nonlin_explorer.ui.advantage_controller import check_grid
    from nonlin_explorer.ui.advantage_core import stored_names

    settings = dict(settings)
    if "set" in settings and settings["set"] not in stored_names():
        raise ValueError(f"set: {settings['set']!r} is not a stored set ({', '.join(stored_names()) or 'none here'})")
    check_grid(**{k: v for k, v in settings.items() if k != "set"})
    return settings


def _serve_view(view):
    """Register one browser tab's app (numbered, listed for /status.json); close it when the tab closes."""
    import panel as pn

    with _LOCK:
        _SERIAL[0] += 1
        view.serial = _SERIAL[0]
        _DASHBOARDS.append(view)

    def cleanup(session_context):
        with _LOCK:
            if view in _DASHBOARDS:
                _DASHBOARDS.remove(view)
        view.close()

    pn.state.on_session_destroyed(cleanup)
    return pn.Column(view, sizing_mode="stretch_both", styles={"padding": "8px"})


def _status_handler(guard):
    from tornado.web import RequestHandler

    class StatusHandler(RequestHandler):
        def get(self):
            reason = guard.refuse_reason(self)
            if reason:
                self.set_status(403)
                self.write({"error": reason})
                return
            with _LOCK:
                state = [{**d.status_dict(), "serial": getattr(d, "serial", 0)} for d in _DASHBOARDS]
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            self.write(json.dumps({"dashboards": state}))

    return StatusHandler


def _icon_route() -> tuple:
    """The page's icon under the app's path, where the page asks for it (Bokeh serves its own at /favicon.ico only,
    outside the path the token's cookie covers): Panel's icon file."""
    from pathlib import Path

    import panel as pn
    from tornado.web import StaticFileHandler

    return r"/(favicon\.ico)", StaticFileHandler, {"path": str(Path(pn.__file__).parent / "dist" / "images")}


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host if host not in ("", "0.0.0.0") else "0.0.0.0", 0))
        return s.getsockname()[1]


def serve_main(args) -> int:
    """Run the server until interrupted."""
    server, guard, root = build_server(args)
    print(f"nonlin-explorer: serving at {guard.url()} (Ctrl+C stops); exports go to {root}", flush=True)
    if args.show:
        import webbrowser

        server.io_loop.add_callback(lambda: webbrowser.open(guard.url()))
    server.start()
    server.io_loop.start()
    return 0


def build_server(args):
    """The Panel server that ``args`` ask for, bound but not started, with its guard in front of every route:
    ``(server, guard, root)``."""
    from pathlib import Path

    import panel as pn

    from nonlin_explorer.ui.access import AccessGuard, is_loopback

    root = Path(args.root).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"--root {args.root}: not a folder")
    if ":" in args.host:
        raise ValueError(f"--host {args.host}: Panel cannot serve a page under an IPv6 address; use 127.0.0.1, "
                         "localhost (both loopback addresses where it names both) or 0.0.0.0")
    page_keys: tuple[str, ...] = ()  # the settings this page's URL may carry (anything else: 400)
    if getattr(args, "replay", None):
        app = make_replay_app(args.replay, theme=args.theme, rate=args.rate, speed=args.speed, files_root=root)
    elif args.demo == COMPRESSION_DEMO:
        app = make_compression_app(args.config, theme=args.theme, rate=args.rate, files_root=root)
        page_keys = EXPLORER_KEYS
    elif args.demo == ADVANTAGE_DEMO:
        app = make_advantage_app(args.config, theme=args.theme, rate=args.rate, files_root=root)
        page_keys = ADVANTAGE_KEYS
    else:
        name = DEFAULT_DEMO if args.demo == "training" else args.demo  # "training": the default demo's old name
        app = make_app(demo_config(name, args.config), theme=args.theme, rate=args.rate, files_root=root)
        page_keys = DASHBOARD_KEYS
    port = args.port or _free_port(args.host)
    guard = AccessGuard(args.host, port, token=args.token, allow_hosts=args.allow_host, page_keys=page_keys)
    if not is_loopback(args.host):
        print(f"nonlin-explorer: warning: --host {args.host} is reachable from the network; anyone with the URL "
              "(token included) can drive this app", file=sys.stderr, flush=True)
    pn.extension()
    pn.config.theme = "dark" if args.theme == "dark" else "default"
    extra = [_icon_route()] + ([(r"/status\.json", _status_handler(guard))] if args.status_endpoint else [])
    origins = sorted(h for h in guard.hosts if not h.startswith("["))  # Bokeh's list takes no IPv6 literals
    server = pn.serve({"/": app}, port=port, address=args.host, websocket_origin=origins, prefix=guard.prefix,
                      show=False, title="nonlin_explorer", extra_patterns=extra, verbose=False, start=False,
                      auth_provider=guard.auth_provider(), sign_sessions=True, secret_key=guard.session_secret,
                      generate_session_ids=True,
                      # A closed tab's app (and its training thread) ends within seconds, not Bokeh's default 15 s
                      # later: left running, closed tabs' runs starve the server on a small machine.
                      unused_session_lifetime=3000, check_unused_sessions=1000)
    guard.install(server._tornado)  # the Bokeh server's tornado Application (BaseServer keeps no public handle)
    return server, guard, root


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="nonlin-explorer serve", description="Serve the live training dashboard.")
    _add_arguments(p)
    args = p.parse_args(argv)
    try:
        return serve_main(args)
    except (ValueError, OSError) as exc:
        print(f"nonlin-explorer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
