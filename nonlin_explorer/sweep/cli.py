"""``nonlin-explorer sweep spec.toml [--scheduler ADDRESS | --workers N] --out results.nc [--resume]``."""

from __future__ import annotations

import argparse
import sys


def _workers(text: str) -> int:
    from nonlin_explorer.sweep.engine import check_workers

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    try:
        return check_workers(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("workers ")) from None


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``sweep`` command to ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "sweep", help="run a grid of training or compression runs (Dask) into one result set",
        description="Run every point of a sweep spec (TOML) as a Dask task and gather the results into one "
                    "xarray result set. Failed points are recorded; --resume runs only those and the missing.")
    p.add_argument("spec", help="sweep specification (.toml or .json)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler, e.g. "
                       "tcp://10.0.0.5:8786 (default: a local cluster on this machine)")
    where.add_argument("--workers", type=_workers, metavar="N", help="worker processes of the local cluster "
                       "(default: one per core; at most 4 per core; 0: run the points one by one in this "
                       "process)")
    p.add_argument("--out", required=True, help="result file (.nc, or .zarr when zarr is installed)")
    p.add_argument("--resume", action="store_true", help="continue --out: run only failed and missing points")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def sweep_main(args) -> int:
    """Run the sweep the parsed ``args`` describe. 0: every point done; 1: some failed; 2: bad input."""
    from nonlin_explorer.sweep.engine import run

    try:
        ds = run(args.spec, client=args.scheduler, out=args.out, resume=args.resume, progress=not args.quiet,
                 workers=args.workers)
    except (ValueError, OSError, KeyError) as exc:
        print(f"nonlin-explorer: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nonlin-explorer: interrupted; finished points are saved in {args.out}: continue with --resume",
              file=sys.stderr)
        return 130
    counts = {s: int(ds.attrs.get(f"points_{s}", 0)) for s in ("finished", "diverged", "skipped", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "finished")
    print(f"sweep: {summary} of {ds.attrs.get('points')} points; wrote {args.out}")
    if counts["failed"]:
        failed = ds["error"].where(ds["status"] == "failed").values.ravel()
        first = next(str(e) for e in failed if isinstance(e, str) and e)
        print(f"nonlin-explorer: {counts['failed']} point(s) failed (first: {first}); rerun with --resume",
              file=sys.stderr)
        return 1
    return 0
