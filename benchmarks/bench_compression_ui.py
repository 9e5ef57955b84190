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


def wait_applied(ex: CompressionExplorer, timeout: float = 120.0) -> float:
    """Poll flush() until the newest request's result is on the views; returns the duration of the flush
    that applied it (the views' update)."""
    t0 = time.perf_counter()
    while ex.applied_gen < ex.requested_gen:
        if ex.state == "error":
            raise RuntimeError(ex.message.object)
        tf = time.perf_counter()
        ex.flush()
        if ex.applied_gen == ex.requested_gen:
            return time.perf_counter() - tf
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
    ui, bare, inner, views = [], [], [], []
    for _ in range(args.repeats):
        for M in MS:
            t0 = time.perf_counter()
            compress(target, M=M)
            bare.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ex.update(M=M)
            views.append(wait_applied(ex))
            ui.append(time.perf_counter() - t0)
            inner.append(ex.result.time)  # compress inside the explorer (with the streaming callback)
            s = ex.status_dict()
            assert s["gram_size"] == M and s["pca_points"] == M and s["view3d_points"] == (M if M >= 4 else 0)
    ex.close()
    mu, mb = statistics.median(ui), statistics.median(bare)
    print(f"compression explorer, N={N}, d={D}, M in {MS}, {len(ui)} changes")
    print(f"  change -> updated views: median {mu:.3f} s (max {max(ui):.3f} s)")
    print(f"  bare compress():         median {mb:.3f} s")
    print(f"  of which: compress in the explorer (streaming its loss) median {statistics.median(inner):.3f} s, "
          f"views' update (the flush that applies the result) median {statistics.median(views) * 1e3:.1f} ms")
    print(f"  overhead: {mu - mb:+.3f} s ({mu / mb:.2f}x); target <= 1 s: {'met' if mu <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
