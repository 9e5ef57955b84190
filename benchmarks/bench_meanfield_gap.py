"""The mean field's loss against the exact optimum's, and how much of the gap is the orientation on the draw.

Averaged over targets, the exact loss of any fixed network equals the mean-field objective: no solution that
ignores the draw beats the mean field on average. What remains at finite N is how the draw orients the optimum. So
for each law, N and seed this prints the plain ratio (relative loss of the mean-field weights on the target over the
exact optimum's) and the orientation-oracle ratio (the mean-field weights rotated, by the rotation of R^d that fits
this target best, b refitted), then fits ``ratio - 1 ~ N^-rate`` per law (means over seeds), and the time each N
took. The prediction: a law that leaves the orientation free (isotropic with a mean: free about the mean) gives a
plain gap falling like about N^-1/2; one that fixes it (anisotropic) about N^-1; the oracle ratio stays near 1.
Each point is ``nonlin_explorer.compression.studies.gap_point`` (laws in ``studies.LAWS``), the function of the
stored set ``results/compression_gap.nc``, whose tables docs/compression.md shows (M = 4).

    python benchmarks/bench_meanfield_gap.py [--ns 1000 2000 4000 8000] [--d 12] [--seeds 2] [--laws ...]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from nonlin_explorer.compression.studies import LAWS, gap_point, shape_names


def rate(ns, gaps) -> float:
    """``r`` with ``gaps ~ N^-r`` (least squares in logs; NaN if a gap is not positive)."""
    if min(gaps) <= 0:
        return math.nan
    return float(-np.polyfit(np.log(ns), np.log(gaps), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--d", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--laws", nargs="+", choices=LAWS, default=list(LAWS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"d = {args.d}, M = 4, seeds 0..{args.seeds - 1}; ratios are relative losses over the exact optimum's")
    print(f"{'law':>15} {'N':>6} | {'plain ratio per seed':>22} | {'oracle ratio per seed':>22} | shapes (mf, exact)")
    for name in args.laws:
        plain_means, oracle_means = [], []
        for N in args.ns:
            t0 = time.perf_counter()
            points = [gap_point(name, N, args.d, seed) for seed in range(args.seeds)]
            plain = [p["plain_ratio"] for p in points]
            oracle = [p["oracle_ratio"] for p in points]
            shapes = ["{} / {}".format(*shape_names([p["shape_index_meanfield"], p["shape_index_exact"]]))
                      for p in points]
            plain_means.append(statistics.mean(plain) - 1.0)
            oracle_means.append(statistics.mean(oracle) - 1.0)
            elapsed = time.perf_counter() - t0
            print(f"{name:>15} {N:>6} | {' '.join(f'{r:.4f}' for r in plain):>22} | "
                  f"{' '.join(f'{r:.4f}' for r in oracle):>22} | {'; '.join(shapes)} ({elapsed:.0f} s)", flush=True)
        print(f"{name:>15} fitted: plain gap ~ N^-{rate(args.ns, plain_means):.2f}, "
              f"oracle gap ~ N^-{rate(args.ns, oracle_means):.2f}", flush=True)


if __name__ == "__main__":
    main()
