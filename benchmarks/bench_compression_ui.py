"""The compression explorer's speed, against the bare engine on the same target in the same run (medians):

1. a parameter change -> the updated state the page draws (N=2000, d=20, M in 3..8) against the bare ``compress``;
2. "loss against M" at the explorer's default settings (N=500, d=10, exact): the seconds to its first point and to
   M = 1..8 of the chosen method, against the same eight ``compress`` calls run bare.

Each part runs without and then beside another process spinning one core (``cpu_hog.py``); the first is labelled
quiet only when other processes' load (``load.py``: the load average less this run's own share) is below 0.5. The
explorer runs without a page here: its controller, which the widget and the served page both host, is driven
through its public API.

    OMP_NUM_THREADS=1 python benchmarks/bench_compression_ui.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_hog import cpu_hog  # noqa: E402
from load import OtherLoad  # noqa: E402

from nonlin_explorer.compression import compress, random_target  # noqa: E402
from nonlin_explorer.ui.compression_controller import SWEEP_M_MAX, CompressionController  # noqa: E402
from nonlin_explorer.ui.compression_core import DEFAULTS, make_target, validate_params  # noqa: E402

N, D = 2000, 20
MS = (3, 4, 5, 6, 8)
#: Loss against M (issue targets): the first point within 2 s, M = 1..8 of the default method within 10 s.
FIRST_POINT_S, ALL_POINTS_S = 2.0, 10.0


def wait_shown(c: CompressionController, timeout: float = 120.0) -> None:
    """Until the newest request's result is in the state the page draws."""
    end = time.perf_counter() + timeout
    while c.applied_gen < c.requested_gen or c.state["status"].get("state") != "done":
        if time.perf_counter() > end:
            raise TimeoutError("no result")
        time.sleep(0.002)


def changes(repeats: int) -> tuple[list[float], list[float]]:
    target = random_target(N, D, seed=0)
    c = CompressionController(N=N, d=D, M=2)
    wait_shown(c)  # warm-up (target built and cached)
    compress(target, M=2)
    ui, bare = [], []
    for _ in range(repeats):
        for M in MS:
            t0 = time.perf_counter()
            compress(target, M=M)
            bare.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            c.update(M=M)
            wait_shown(c)
            ui.append(time.perf_counter() - t0)
            assert len(c.state["shown"]["gram"]) == M and len(c.state["shown"]["coords3"]) == M
    c.close()
    return ui, bare


def sweep_once() -> tuple[float, float, float]:
    """(first point, all M of the default method, the same compress calls bare) in seconds."""
    p = validate_params({})
    target = make_target(p)
    t0 = time.perf_counter()
    for M in range(1, SWEEP_M_MAX + 1):
        compress(target, M=M, method=p.method, seed=p.seed)
    bare = time.perf_counter() - t0
    c = CompressionController()
    wait_shown(c)
    first = None
    t0 = time.perf_counter()
    c.request_sweep()
    while True:
        row = c.state["sweep"]["losses"].get(p.method, {})
        if first is None and row:
            first = time.perf_counter() - t0
        if len(row) == SWEEP_M_MAX:
            break
        time.sleep(0.002)
    every = time.perf_counter() - t0
    c.close()
    return first, every, bare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    load = OtherLoad()
    for loaded in (False, True):
        with cpu_hog(loaded):
            ui, bare = changes(args.repeats)
            sweeps = [sweep_once() for _ in range(args.repeats)]
            where = "beside cpu_hog (one core busy)" if loaded else f"without a hog, {load.label()}"
        mu, mb = statistics.median(ui), statistics.median(bare)
        print(f"compression explorer, {where} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"  change of M -> shown (N={N}, d={D}, M in {MS}, {len(ui)} changes): median {mu:.3f} s, "
              f"bare compress() {mb:.3f} s ({mu / mb:.2f}x)")
        first = statistics.median(s[0] for s in sweeps)
        every = statistics.median(s[1] for s in sweeps)
        base = statistics.median(s[2] for s in sweeps)
        settings = f"N={DEFAULTS['N']}, d={DEFAULTS['d']}, {DEFAULTS['method']}"
        print(f"  loss vs M ({settings}): first point {first:.2f} s (target <= {FIRST_POINT_S:g} s: "
              f"{'met' if first <= FIRST_POINT_S else 'NOT met'}), M = 1..{SWEEP_M_MAX} {every:.2f} s (target <= "
              f"{ALL_POINTS_S:g} s: {'met' if every <= ALL_POINTS_S else 'NOT met'}); the same compress calls bare "
              f"{base:.2f} s ({every / base:.2f}x)")


if __name__ == "__main__":
    main()
