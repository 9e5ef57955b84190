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
from typing import Any

from nonlin_explorer.cli import json_object

#: Demo runs: a name -> TrainConfig fields. "training": a tiny MLP on spirals, live on a laptop CPU.
DEMOS: dict[str, dict[str, Any]] = {
    "training": dict(dataset="spirals", model="mlp", model_kwargs={"width": 32, "depth": 3}, epochs=400,
                     eval_every=10, batch_size=64, lr=3e-3, slope_lr=5e-2, sparsity=0.0, schedule="early"),
    "mnist1d": dict(dataset="mnist1d", model="mlp", model_kwargs={"width": 128, "depth": 3}, epochs=50,
                    eval_every=50, sparsity=1e-4, schedule="late"),
}

#: The compression explorer (``--demo compression``; ``--config`` holds its settings, e.g. '{"N": 500}').
COMPRESSION_DEMO = "compression"

#: Live dashboards of this process (read by the status endpoint).
_DASHBOARDS: list = []
_LOCK = threading.Lock()
_SERIAL = [0]


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an argparse ``subparsers`` object."""
    s = subparsers.add_parser("serve", help="serve the live training dashboard as a web page (Panel)")
    _add_arguments(s)
    return s


def _add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--port", type=int, default=5006, help="port (0: any free port)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the dashboard to the network)")
    s.add_argument("--demo", default="training", choices=sorted([*DEMOS, COMPRESSION_DEMO]),
                   help="which run to load (compression: the compression explorer)")
    s.add_argument("--config", type=json_object, default={}, help="TrainConfig fields overriding the demo, as JSON")
    s.add_argument("--replay", metavar="PATH",
                   help="replay a recording (a folder saved by the dashboard's Record or save_recording) instead of "
                        "training")
    s.add_argument("--speed", type=float, default=10.0, help="replay speed, times real time (default 10)")
    s.add_argument("--theme", default="light", choices=("light", "dark"))
    s.add_argument("--rate", type=float, default=10.0, help="plot refresh rate in Hz (default 10)")
    s.add_argument("--show", action=argparse.BooleanOptionalAction, default=False, help="open a browser tab")
    s.add_argument("--status-endpoint", action="store_true",
                   help="also serve the live sessions' state as JSON at /status.json (for tests and scripts)")


def demo_config(name: str, overrides: dict | None = None):
    from nonlin_explorer.training import TrainConfig

    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; demos: {', '.join(sorted(DEMOS))}")
    fields = {**DEMOS[name], **(overrides or {})}
    try:
        return TrainConfig(**fields).validate()
    except TypeError as exc:
        raise ValueError(f"bad --config: {exc}") from None


def make_app(config, theme: str = "light", rate: float = 10.0):
    """A function building one full-screen page per browser session."""
    import dataclasses

    from nonlin_explorer.ui.dashboard import TrainingDashboard

    def app():
        return _serve_view(TrainingDashboard(dataclasses.replace(config, model_kwargs=dict(config.model_kwargs)),
                                             rate=rate, theme=theme))

    return app


def make_replay_app(path, theme: str = "light", rate: float = 10.0, speed: float = 10.0):
    """Like :func:`make_app`, replaying the recording at ``path`` (read once here: a bad file fails before
    serving; each tab gets its own replay)."""
    from nonlin_explorer.recording import load_recording
    from nonlin_explorer.ui.dashboard import TrainingDashboard

    load_recording(path).session()  # fail now on a missing, truncated or foreign recording

    def app():
        return _serve_view(TrainingDashboard.from_recording(path, speed=speed, rate=rate, theme=theme))

    return app


def make_compression_app(initial: dict, theme: str = "light", rate: float = 10.0):
    """Like :func:`make_app`, for the compression explorer (``initial``: its settings)."""

    from nonlin_explorer.ui.compression_core import validate_params
    from nonlin_explorer.ui.compression_explorer import CompressionExplorer

    validate_params(initial)  # bad --config: an error before serving

    def app():
        return _serve_view(CompressionExplorer(rate=rate, theme=theme, **initial))

    return app


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


def _status_handler():
    from tornado.web import RequestHandler

    class StatusHandler(RequestHandler):
        def get(self):
            with _LOCK:
                state = [{**d.status_dict(), "serial": getattr(d, "serial", 0)} for d in _DASHBOARDS]
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            self.write(json.dumps({"dashboards": state}))

    return StatusHandler


def serve_main(args) -> int:
    """Run the server until interrupted."""
    import panel as pn

    if getattr(args, "replay", None):
        app = make_replay_app(args.replay, theme=args.theme, rate=args.rate, speed=args.speed)
    elif args.demo == COMPRESSION_DEMO:
        app = make_compression_app(args.config, theme=args.theme, rate=args.rate)
    else:
        app = make_app(demo_config(args.demo, args.config), theme=args.theme, rate=args.rate)
    pn.extension()
    pn.config.theme = "dark" if args.theme == "dark" else "default"
    extra = [(r"/status\.json", _status_handler())] if args.status_endpoint else []
    origins = [f"{args.host}:{args.port}", f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
    print(f"nonlin-explorer: serving the dashboard at http://{args.host}:{args.port}/ (Ctrl+C stops)", flush=True)
    pn.serve({"/": app}, port=args.port, address=args.host,
             websocket_origin=origins, show=args.show, title="nonlin_explorer", extra_patterns=extra,
             verbose=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nonlin-explorer serve", description="Serve the live training dashboard.")
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
