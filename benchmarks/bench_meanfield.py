"""Mean field against the exact optimum on targets whose weights have a mean direction: time and loss, side by side.

For each target (W = N(mu e1, I/d), a = (1 + g)/N) both methods run in the same process, alternately; printed per
row: exact and mean-field wall time (median over seeds), their ratio, and the mean-field relative loss over the
exact one (min..max over seeds). The same table is printed without and beside a CPU hog (another process spinning
one core); the first is labelled quiet only when other processes' load (``load.py``: the load average less this
run's own share) stayed below 0.5. The mean field's cost does not grow with N (it solves a fixed 4096-point
population), the exact one's does; its loss ratio falls towards 1 as N grows (docs/compression.md).

    python benchmarks/bench_meanfield.py [--seeds 2] [--no-hog] [--full (quiet only)]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
from cpu_hog import cpu_hog
from load import OtherLoad

from nonlin_explorer.compression import compress, random_target

ROWS = [(0.0, 10, 3, 4000), (0.2, 10, 3, 4000), (0.6, 10, 5, 4000), (0.4, 30, 4, 4000)]
#: The grid behind docs/compression.md's loss-ratio table (about 20 minutes on one core, quiet).
FULL_ROWS = list(itertools.product((0.0, 0.2, 0.6), (10, 30), (3, 5), (4000, 16000)))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def table(rows, seeds: int) -> None:
    print(f"{'mean':>5} {'d':>3} {'M':>2} {'N':>6} | {'exact s':>8} {'mf s':>6} {'time ratio':>10} | "
          f"{'loss ratio mf/exact (min..max)':>30}")
    for mu, d, M, N in rows:
        te, tm, ratios = [], [], []
        for seed in range(seeds):
            t = random_target(N, d, w_mean=mu or None, seed=seed)  # mu = 0: the closed form
            ex, dt_e = timed(lambda t=t, M=M: compress(t, M=M))
            mf, dt_m = timed(lambda t=t, M=M: compress(t, M=M, method="meanfield"))
            te.append(dt_e)
            tm.append(dt_m)
            ratios.append(mf.relative_loss / ex.relative_loss)
        e, m = statistics.median(te), statistics.median(tm)
        print(f"{mu:>5} {d:>3} {M:>2} {N:>6} | {e:>8.2f} {m:>6.2f} {e / m:>9.2f}x | "
              f"{min(ratios):>14.3f} .. {max(ratios):.3f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--no-hog", action="store_true", help="skip the loaded run")
    p.add_argument("--full", action="store_true", help="add N = 16000 rows (minutes)")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (default settings), float64, CPU")
    load = OtherLoad()
    rows = FULL_ROWS if args.full else ROWS
    compress(random_target(500, 5, w_mean=0.3), M=2, method="meanfield")  # warm up
    for hog in (False,) if args.no_hog or args.full else (False, True):
        print(f"\n{'beside a CPU hog' if hog else 'without a hog'}:")
        with cpu_hog(hog):
            table(rows, args.seeds)
            if not hog:  # quiet only if other processes left the cores free meanwhile
                print(f"[{load.label()}]")


if __name__ == "__main__":
    main()
