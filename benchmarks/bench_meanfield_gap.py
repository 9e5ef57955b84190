"""The mean field's loss against the exact optimum's, and how much of the gap is the orientation on the draw.

Averaged over targets, the exact loss of any fixed network equals the mean-field objective: no solution that
ignores the draw beats the mean field on average. What remains at finite N is how the draw orients the optimum. So
for each law, N and seed this prints the plain ratio (relative loss of the mean-field weights on the target over the
exact optimum's) and the orientation-oracle ratio (the mean-field weights rotated, by the rotation of R^d that fits
this target best, b refitted), then fits ``ratio - 1 ~ N^-rate`` per law (means over seeds). The prediction: a
law that leaves the orientation free (isotropic with a mean: free about the mean) gives a plain gap falling like
about N^-1/2; one that fixes it (anisotropic) about N^-1; the oracle ratio stays near 1. Laws (d = 12, M = 4):
``isotropic+mean`` W = N(0.3 e1, I), ``anisotropic`` W = N(0, diag(3, 2, 1.5, 0.5, ...) / d), ``erf`` W = N(0.5
e1, I/d) with erf units; a = (1 + g)/N throughout. About 10 minutes on one core (N up to 8000, 2 seeds).

    python benchmarks/bench_meanfield_gap.py [--ns 1000 2000 4000 8000] [--seeds 2] [--laws ...]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from nonlin_explorer.compression import compress, random_target

D, M = 12, 4


def law(name: str, N: int, seed: int):
    """The target of one law at N units."""
    if name == "isotropic+mean":
        return random_target(N, D, w_mean=0.3, w_cov=1.0, seed=seed)
    if name == "anisotropic":
        cov = torch.tensor([3.0, 2.0, 1.5] + [0.5] * (D - 3), dtype=torch.float64) / D
        return random_target(N, D, w_cov=cov, seed=seed)
    if name == "erf":
        return random_target(N, D, w_mean=0.5, seed=seed, activation="erf")
    raise ValueError(f"unknown law {name!r}")


def _skew(p: torch.Tensor) -> torch.Tensor:
    A = torch.zeros(D, D, dtype=p.dtype)
    i, j = torch.triu_indices(D, D, 1)
    A = A.index_put((i, j), p)
    return A - A.T


def oracle_loss(target, V: torch.Tensor, iters: int = 60) -> float:
    """Relative loss of ``V R^T`` with the best rotation R of R^d for this target (b refitted): L-BFGS on
    ``R = exp(skew(p))`` from the identity."""
    loss_fn = target.loss_fn()
    p = torch.zeros(D * (D - 1) // 2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=iters, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss_fn.reduced(V @ torch.linalg.matrix_exp(_skew(p)).T)[0]
        value.backward()
        return value

    opt.step(closure)
    with torch.no_grad():
        return float(loss_fn.reduced(V @ torch.linalg.matrix_exp(_skew(p)).T)[0] / loss_fn.energy)


def rate(ns, gaps) -> float:
    """``r`` with ``gaps ~ N^-r`` (least squares in logs; NaN if a gap is not positive)."""
    if min(gaps) <= 0:
        return math.nan
    return float(-np.polyfit(np.log(ns), np.log(gaps), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--laws", nargs="+", default=["isotropic+mean", "anisotropic", "erf"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"d = {D}, M = {M}, seeds 0..{args.seeds - 1}; ratios are relative losses over the exact optimum's")
    print(f"{'law':>15} {'N':>6} | {'plain ratio per seed':>22} | {'oracle ratio per seed':>22} | shapes (mf, exact)")
    for name in args.laws:
        plain_means, oracle_means = [], []
        for N in args.ns:
            plain, oracle, shapes = [], [], []
            t0 = time.perf_counter()
            for seed in range(args.seeds):
                target = law(name, N, seed)
                exact = compress(target, M=M, seed=seed)
                mf = compress(target, M=M, method="meanfield", seed=seed)
                plain.append(mf.relative_loss / exact.relative_loss)
                oracle.append(oracle_loss(target, mf.V) / exact.relative_loss)
                shapes.append(f"{mf.shape.label} / {exact.shape.label}")
            plain_means.append(statistics.mean(plain) - 1.0)
            oracle_means.append(statistics.mean(oracle) - 1.0)
            elapsed = time.perf_counter() - t0
            print(f"{name:>15} {N:>6} | {' '.join(f'{r:.4f}' for r in plain):>22} | "
                  f"{' '.join(f'{r:.4f}' for r in oracle):>22} | {'; '.join(shapes)} ({elapsed:.0f} s)", flush=True)
        print(f"{name:>15} fitted: plain gap ~ N^-{rate(args.ns, plain_means):.2f}, "
              f"oracle gap ~ N^-{rate(args.ns, oracle_means):.2f}", flush=True)


if __name__ == "__main__":
    main()
