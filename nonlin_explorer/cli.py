"""The ``nonlin-explorer`` command line. Bad arguments give one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from nonlin_explorer._version import __version__
from nonlin_explorer.validation import MAX_SEED, OneLineParser, check_seed, json_object

_Parser = OneLineParser  # (the old name, used by the sweep CLI)


def _seed(text: str) -> int:
    """argparse type: a seed, with the allowed range in the message."""
    try:
        return check_seed(int(text) if text.strip().lstrip("-").isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    from nonlin_explorer.datasets import DATASETS
    from nonlin_explorer.models import MODELS
    from nonlin_explorer.training import SCHEDULES

    p = _Parser(prog="nonlin-explorer", description="Partial linearization of neural networks.")
    p.add_argument("--version", action="version", version=f"nonlin_explorer {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train with the sparsity prior and write an xarray result set (netCDF)")
    t.add_argument("--dataset", default="mnist1d", help=f"one of {', '.join(DATASETS)}")
    t.add_argument("--data-root", help="folder with local data files (cifar10)")
    t.add_argument("--model", default="mlp", help=f"one of {', '.join(MODELS)}")
    t.add_argument("--width", type=float, help="model width (units, channels or multiplier)")
    t.add_argument("--depth", type=int, help="model depth (layers, stages or ResNet depth)")
    t.add_argument("--model-kwargs", type=json_object, default={}, help="more model settings as JSON")
    t.add_argument("--epochs", type=float, default=10.0)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--sparsity", type=float, default=0.0, help="lambda of the prior lambda * sum(1 - alpha)")
    t.add_argument("--schedule", default="early", choices=SCHEDULES)
    t.add_argument("--switch-epoch", type=float, help="epoch at which the prior switches on (late/custom)")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--slope-lr", type=float, default=1e-2)
    t.add_argument("--slope-optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam (default): lambda sets which units go; sgd: lambda also sets how fast (a prior weight)")
    t.add_argument("--eval-every", type=int, default=50, help="evaluate every N steps")
    t.add_argument("--seed", type=_seed, default=0, help=f"random seed, 0..{MAX_SEED}")
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    t.add_argument("--out", default="results.nc", help="netCDF file for the result set")
    t.add_argument("--checkpoint", help="also save a checkpoint (torch.save) here")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    k = sub.add_parser("kernels", help="build the fused CPU gate kernels once (about a minute; needs c++ and ninja)")
    k.add_argument("--verbose", action="store_true", help="show the compiler's output")

    from nonlin_explorer.sweep.cli import add_sweep_parser
    from nonlin_explorer.ui.serve import add_serve_parser

    add_sweep_parser(sub)
    add_serve_parser(sub)
    return p


def _train(args) -> int:
    from nonlin_explorer.devices import pick_device
    from nonlin_explorer.results import check_writable, save_run
    from nonlin_explorer.training import TrainConfig, TrainingSession

    model_kwargs = dict(args.model_kwargs)
    if args.width is not None:
        model_kwargs["width"] = args.width  # whole numbers for mlp/cnn: models.build checks (2.5 is refused)
    if args.depth is not None:
        model_kwargs["depth"] = args.depth
    dataset_kwargs = {"root": args.data_root} if args.data_root else {}
    config = TrainConfig(dataset=args.dataset, model=args.model, model_kwargs=model_kwargs,
                         dataset_kwargs=dataset_kwargs, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, slope_lr=args.slope_lr, slope_optimizer=args.slope_optimizer,
                         sparsity=args.sparsity, schedule=args.schedule,
                         switch_epoch=args.switch_epoch, eval_every=args.eval_every, seed=args.seed,
                         device=args.device)
    config.validate()
    pick_device(config.device)  # an unknown device: one line, before anything is built
    out = check_writable(args.out)  # before training: never lose a run to an unwritable path
    if args.checkpoint:
        check_writable(args.checkpoint)
    session = TrainingSession(config)  # settings and model size are checked before the model is built
    with stop_on_signals(session) as caught:
        session.run(progress=not args.quiet)
        evaluated = session.history[-1]["step"] if session.history else -1
        if caught and session.status == "stopped" and evaluated != session.step:
            session.record()  # the result set ends at the step training stopped at
        written, notes = save_run(session, out, args.checkpoint)  # checkpoint first; a failed write falls back
    if "results" not in written:  # one line: why, where it was tried, and what was saved
        saved = f"; its checkpoint is in {written['checkpoint']}" if "checkpoint" in written else ""
        print(f"nonlin-explorer: error: the run (step {session.step}) was not saved: {notes[-1]}{saved}",
              file=sys.stderr)
        return 1
    for note in notes:
        print(f"nonlin-explorer: {note}", file=sys.stderr)
    last = session.history[-1] if session.history else {}
    print(f"{session.status}: step {session.step}, test accuracy {last.get('test_acc', float('nan')):.4f}, "
          f"nonlinear units {session.nonlinear_count()}; wrote {written['results']}")
    if caught:
        return 128 + caught[0]
    if notes:
        return 1
    return 0 if session.status in ("finished", "stopped") else 1


@contextlib.contextmanager
def stop_on_signals(session):
    """While the block runs (training, then saving), SIGINT (Ctrl-C) and SIGTERM stop training after the current step
    and never interrupt the save: the run ends written. Yields the list of signal numbers caught (the first one
    sets the exit code, 128 + its number). Only in the main thread (elsewhere signals cannot be caught)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, frame):
        caught.append(signum)
        session.stop(wait=False)
        if len(caught) == 1:
            print(f"\nnonlin-explorer: {signal.Signals(signum).name}: stopping after this step and saving the run "
                  "(kill -9 abandons it)", file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "kernels":
            from nonlin_explorer.fused import build_and_say

            return build_and_say(verbose=args.verbose)
        if args.command == "sweep":
            from nonlin_explorer.sweep.cli import sweep_main

            return sweep_main(args)
        if args.command == "serve":
            from nonlin_explorer.ui.serve import serve_main

            return serve_main(args)
    except (ValueError, OSError, KeyError, IndexError) as exc:
        print(f"nonlin-explorer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nonlin-explorer: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
