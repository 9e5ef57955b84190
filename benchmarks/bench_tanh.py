"""The tanh kernel at scale: one target energy and one loss + gradient, Hermite series against 2-D quadrature.

For a random tanh target (W = N(0, I/d), a = (1 + g)/N, d = 16) and M = 4 units, prints per N: the wall and CPU
time of the target's energy (``PopulationLoss(...)``, O(N^2) kernel entries, computed once per target) and of one
loss + gradient (O(N M) entries), for the Hermite series (``"tanh"``) and, at the smaller N, the 64-point
quadrature (``QuadratureTanh``), with the relative difference of their losses. The quadrature's O(N^2) energy is
timed only up to ``--quad-max-n`` (its cost grows like N^2 * 64^2). Target: energy + gradient <= 2 s at N = 4000.

    python benchmarks/bench_tanh.py [--ns 500 1000 4000] [--quad-max-n 500] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from nonlin_explorer.compression import PopulationLoss, population_loss, random_target
from nonlin_explorer.compression.kernels import QuadratureTanh, Tanh


def clocks(fn):
    """``(result, wall seconds, CPU seconds)`` of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def one(target, act, b, V):
    """Energy (construction) and one loss + gradient with ``act``: times and the loss."""
    loss_fn, e_wall, e_cpu = clocks(lambda: PopulationLoss(target.a, target.W, act))
    Vr, br = V.clone().requires_grad_(), b.clone().requires_grad_()

    def step():
        value = loss_fn(br, Vr)
        value.backward()
        return float(value.detach())

    value, g_wall, g_cpu = clocks(step)
    return value, e_wall, e_cpu, g_wall, g_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[500, 1000, 4000])
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--M", type=int, default=4)
    parser.add_argument("--quad-max-n", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)  # first backward loads autograd's lazy imports
    population_loss(torch.ones(3), torch.eye(3), torch.ones(2), x, "tanh").backward()
    gen = torch.Generator().manual_seed(1)
    V = torch.randn(args.M, args.d, generator=gen, dtype=torch.float64) / args.d ** 0.5
    b = torch.full((args.M,), 1.0 / args.M, dtype=torch.float64)
    print(f"tanh target, d = {args.d}, M = {args.M}, {args.threads} torch thread(s); seconds wall / CPU")
    print(f"{'N':>6} {'kernel':>10} {'energy':>15} {'loss+grad':>15} {'total':>15} {'rel. diff':>10}")
    for N in args.ns:
        target = random_target(N, args.d, seed=0, activation="tanh")
        rows = [("series", *one(target, Tanh(), b, V))]
        if N <= args.quad_max_n:
            rows.append(("quadrature", *one(target, QuadratureTanh(), b, V)))
        for name, value, ew, ec, gw, gc in rows:
            diff = abs(value - rows[0][1]) / abs(rows[0][1]) if name != "series" else 0.0
            print(f"{N:>6} {name:>10} {ew:7.3f} /{ec:6.3f} {gw:7.3f} /{gc:6.3f} {ew + gw:7.3f} /{ec + gc:6.3f}"
                  f" {diff:10.1e}")


if __name__ == "__main__":
    main()
