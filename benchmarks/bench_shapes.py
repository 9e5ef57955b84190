"""What the target's draw alone does to the shape of the exact optimum: the calibration of ``frame_shape``.

On targets whose law has no mean and no anisotropy (W = N(0, I/d), a = (1 + g)/N) the mean-field optimum is an
untilted simplex ETF (M <= d + 1), so the tilt and the cosine scatter of the exact optimum come from the draw. For
each (d, M, N) and seed this prints the tilt (degrees; the angle of the units' mean direction out of their
hyperplane), the cosine spread (largest deviation of a cosine from their mean) and the scale spread ((max - min) /
mean of ``|b_j| |v_j|``), then fits ``scale * N^-power`` to the mean over seeds and d, per M, and prints the largest
spreads times sqrt(N): the numbers behind ``diagnostics.NOISE_TILT``, ``EQUIANGULAR_SCALE`` and ``SCALE_SCALE``.
About 6 minutes on one core. ``--checks`` instead prints the named shapes quoted in docs/compression.md (about a
minute).

    python benchmarks/bench_shapes.py [--seeds 3] [--ns 500 2000 8000] [--ds 6 10 20] [--ms 4 2] [--checks]
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
import torch
from bench_meanfield_gap import law

from nonlin_explorer.compression import compress, random_target


def tilt_and_spread(result) -> tuple[float, float, float]:
    """Tilt (degrees) of the unit directions' mean, the largest deviation of a cosine from the mean cosine, and the
    relative spread (max - min) / mean of the output scales ``|b_j| |v_j|``."""
    V = result.V
    U = V / V.norm(dim=1, keepdim=True)
    tilt = math.degrees(math.asin(min(1.0, float(U.mean(0).norm()))))
    G = U @ U.T
    off = G[~torch.eye(G.shape[0], dtype=torch.bool)]
    c = result.b.abs() * V.norm(dim=1)
    return tilt, float((off - off.mean()).abs().max()), float((c.max() - c.min()) / c.mean())


def fit(ns, values) -> tuple[float, float]:
    """``(scale, power)`` with ``values ~ scale * ns^-power`` (least squares in logs)."""
    slope, intercept = np.polyfit(np.log(ns), np.log(values), 1)
    return float(math.exp(intercept)), float(-slope)


def describe(result) -> str:
    """A result's shape in one line: its label, distances, spreads and relative loss."""
    s = result.shape
    if s.name == "vacuous":
        return f"vacuous, relative loss {result.relative_loss:.4f}"
    return (f"{s.label}: {s.distance:.4f} from it, simplex distance {s.distances['simplex ETF']:.3f}, tilt "
            f"{s.tilt_degrees:.2f} deg (named above {s.tilt_threshold:.2f}), cosine spread {s.cosine_spread:.3f}, "
            f"scale spread {s.scale_spread:.3f}, relative loss {result.relative_loss:.4f}")


def checks() -> None:
    """The configurations docs/compression.md quotes, with their shape names."""
    print("centred, N = 2000, d = 20, M = 4, seed 0:", describe(compress(random_target(2000, 20, seed=0), M=4)))
    for N in (1000, 4000):
        for s in (0, 1):
            r = compress(random_target(N, 5, seed=s), M=6, seed=s)
            print(f"centred, N = {N}, d = 5, M = 6, seed {s}:", describe(r), flush=True)
    t = random_target(2000, 20, w_mean=0.5, seed=0)
    ex, mf = compress(t, M=4), compress(t, M=4, method="meanfield")
    print("w ~ N(0.5 e1, I/d), N = 2000, d = 20, M = 4: exact", describe(ex))
    print("    mean field", describe(mf), f"({mf.relative_loss / ex.relative_loss:.3f}x exact)")
    t = random_target(2000, 20, a_mean=0.0, seed=0)
    print("zero-mean a, N = 2000, d = 20, M = 4: exact", describe(compress(t, M=4)))
    print("    mean field", describe(compress(t, M=4, method="meanfield")))
    for M in (4, 5):  # the anisotropic law of bench_meanfield_gap.py
        mf = compress(law("anisotropic", 600, 0), M=M, method="meanfield")
        off = mf.gram[~torch.eye(M, dtype=torch.bool)]
        top = mf.V[:, :3].norm(dim=1) / mf.V.norm(dim=1)
        print(f"anisotropic law, mean field, M = {M}:", describe(mf), f"cosines {float(off.min()):.3f}.."
              f"{float(off.max()):.3f}, share of each unit in the top-3 eigenspace "
              + " ".join(f"{float(x):.3f}" for x in top), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ns", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--ds", type=int, nargs="+", default=[6, 10, 20])
    parser.add_argument("--ms", type=int, nargs="+", default=[4, 2])
    parser.add_argument("--checks", action="store_true", help="print the shapes docs/compression.md quotes")
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
                rows = [tilt_and_spread(compress(random_target(N, d, seed=s), M=M, seed=s, restarts=2))
                        for s in range(args.seeds)]
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
