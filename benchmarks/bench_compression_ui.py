"""Median time from a parameter change in the compression explorer to its updated views (N=2000, d=20,
M <= 8), against the bare ``compress`` call on the same target in the same run (interleaved, medians).

The explorer runs without a server here: a change is ``explorer.update(M=...)`` (what a widget's watcher
calls), and the views count as updated when ``flush()`` (the periodic callback's body, polled every 5 ms
here instead of every 100 ms) has applied the new result to the Bokeh sources.

    OMP_NUM_THREADS=1 python benchmarks/bench_compression_ui.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from nonlin_explorer.compression import compress, random_target
from nonlin_explorer.ui.compression_explorer import CompressionExplorer

N, D = 2000, 20
MS = (3, 4, 5, 6, 8)


def wait_applied(ex: CompressionExplorer, timeout: float = 120.0) -> None:
    t0 = time.perf_counter()
    while ex.applied_gen < ex.requested_gen:
        if ex.state == "error":
            raise RuntimeError(ex.message.object)
        ex.flush()
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("no result")
        time.sleep(0.005)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    target = random_target(N, D, seed=0)
    ex = CompressionExplorer(N=N, d=D, M=2)
    wait_applied(ex)  # warm-up (target built and cached)
    compress(target, M=2)
    ui, bare = [], []
    for _ in range(args.repeats):
        for M in MS:
            t0 = time.perf_counter()
            compress(target, M=M)
            bare.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ex.update(M=M)
            wait_applied(ex)
            ui.append(time.perf_counter() - t0)
            assert ex.status_dict()["gram_size"] == M
    ex.close()
    mu, mb = statistics.median(ui), statistics.median(bare)
    print(f"compression explorer, N={N}, d={D}, M in {MS}, {len(ui)} changes")
    print(f"  change -> updated views: median {mu:.3f} s (max {max(ui):.3f} s)")
    print(f"  bare compress():         median {mb:.3f} s")
    print(f"  overhead: {mu - mb:+.3f} s ({mu / mb:.2f}x); target <= 1 s: {'met' if mu <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
