"""What the target's draw alone does to the shape of the exact optimum: the calibration of ``frame_shape``.

On targets whose law has no mean and no anisotropy (W = N(0, I/d), a = (1 + g)/N) the mean-field optimum is an
untilted simplex ETF (M <= d + 1), so the tilt and the cosine scatter of the exact optimum come from the draw. For
each (d, M, N) and seed this prints the tilt (degrees; the angle of the units' mean direction out of their
hyperplane), the cosine spread (largest deviation of a cosine from their mean) and the scale spread ((max - min) /
mean of the output scales), then fits ``scale * N^-power`` to the mean over seeds and d, per M, and prints the
largest spreads times sqrt(N): a quick look at the draws behind ``frame_shape``'s thresholds, whose constants
(``diagnostics.NOISE_TILT``, ``COSINE_SCATTER``, ``SCALE_SCATTER``: fits in N and d) come from the stored set
(``findings.draw_calibration``). Each point is ``nonlin_explorer.compression.studies.shape_point``, the function of
the stored set ``results/compression_shapes.nc``. ``--checks`` instead prints seed 0 of each configuration of
``studies.CASES`` (the stored set ``results/compression_cases.nc``) and the time each took.

    python benchmarks/bench_shapes.py [--seeds 3] [--ns 500 2000 8000] [--ds 6 10 20] [--ms 4 2] [--checks]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from nonlin_explorer.compression.studies import CASES, case_point, shape_names, shape_point


def fit(ns, values) -> tuple[float, float]:
    """``(scale, power)`` with ``values ~ scale * ns^-power`` (least squares in logs)."""
    slope, intercept = np.polyfit(np.log(ns), np.log(values), 1)
    return float(math.exp(intercept)), float(-slope)


def checks() -> None:
    """Seed 0 of each named configuration, exact optimum and mean field."""
    for case in CASES:
        for method in ("exact", "meanfield"):
            t0 = time.perf_counter()
            r = case_point(case, method, 0)
            print(f"{case:>26} {method:>9}: {shape_names([r['shape_index']])[0]}, tilt {r['tilt_degrees']:.2f} deg "
                  f"(named above {r['tilt_threshold']:.2f}), cosines {r['cosine_min']:.3f}..{r['cosine_max']:.3f}, "
                  f"scale spread {r['scale_spread']:.3f}, relative loss {r['relative_loss']:.4f} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ns", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--ds", type=int, nargs="+", default=[6, 10, 20])
    parser.add_argument("--ms", type=int, nargs="+", default=[4, 2])
    parser.add_argument("--checks", action="store_true", help="print seed 0 of each named configuration")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.checks:
        checks()
        return
    print(f"{'d':>3} {'M':>2} {'N':>6}  tilt (deg) per seed        cosine spread per seed     scale spread per seed")
    table: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
    for M in args.ms:
        for d in args.ds:
            for N in args.ns:
                points = [shape_point(N, d, M, s, restarts=2) for s in range(args.seeds)]
                rows = [(p["tilt_degrees"], p["cosine_spread"], p["scale_spread"]) for p in points]
                table.setdefault((M, N), []).extend(rows)
                print(f"{d:>3} {M:>2} {N:>6}  " + " ".join(f"{t:6.2f}" for t, _, _ in rows).ljust(26)
                      + " ".join(f"{c:6.3f}" for _, c, _ in rows).ljust(27)
                      + " ".join(f"{c:6.3f}" for _, _, c in rows), flush=True)
    for M in args.ms:
        tilts = [statistics.mean(r[0] for r in table[(M, N)]) for N in args.ns]
        ts, tp = fit(args.ns, tilts)
        line = f"M = {M}: tilt ~ {ts:.0f} N^-{tp:.2f} deg"
        if M > 2:
            spreads = [statistics.mean(r[1] for r in table[(M, N)]) for N in args.ns]
            cs, cp = fit(args.ns, spreads)
            worst_c = max(r[1] * math.sqrt(N) for N in args.ns for r in table[(M, N)])
            worst_s = max(r[2] * math.sqrt(N) for N in args.ns for r in table[(M, N)])
            line += (f"; cosine spread ~ {cs:.2f} N^-{cp:.2f}, largest {worst_c:.2f} / sqrt(N);"
                     f" scale spread largest {worst_s:.2f} / sqrt(N)")
        print(line)


if __name__ == "__main__":
    main()
