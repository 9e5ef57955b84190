"""Compression engine against the baselines a user would otherwise run, all measured in one run.

(a) exact loss + gradient vs Monte Carlo loss + gradient at equal accuracy (MC standard error <= 0.1% of
    the loss), target speedup >= 100x;
(b) compress vs SGD distillation (Adam in float32 on fresh Gaussian inputs, its best learning rate of a
    small grid), both stopped as soon as they are within 1% of compress's optimum loss, target >= 20x;
(c) wall time of compress(N=2000, d=20, M=4) on a fresh target (its O(N^2 d) energy included), target <= 1 s.

Ratios use baselines timed in the same process (compress timings interleaved with the SGD runs, wall and
CPU time both reported, since the machine may be shared); times are medians over repeats. Everything runs
on --threads torch threads (1 by default).

    python benchmarks/bench_compression.py [--repeats 5] [--sgd-steps 60000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from nonlin_explorer.compression import PopulationLoss, compress, random_target, sgd_distill
from nonlin_explorer.compression.kernels import get_activation


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def mc_loss_and_grad(target, b, V, n: int, chunk: int, seed: int):
    """Monte Carlo loss and its gradient in (b, V) from n Gaussian samples, in chunks; also the s.e."""
    act = get_activation("relu")
    b = b.clone().requires_grad_()
    V = V.clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)
    total, total_sq, gb, gV = 0.0, 0.0, torch.zeros_like(b), torch.zeros_like(V)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        x = torch.randn(m, target.d, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            y = act(x @ target.W.T) @ target.a
        r = (act(x @ V.T) @ b - y) ** 2
        g1, g2 = torch.autograd.grad(r.sum(), (b, V))
        gb += g1
        gV += g2
        rd = r.detach()
        total += float(rd.sum())
        total_sq += float((rd * rd).sum())
    mean = total / n
    se = math.sqrt(max(total_sq / n - mean * mean, 0.0) / n)
    return mean, se, gb / n, gV / n


def bench_a(target, res, repeats: int) -> None:
    fn = PopulationLoss(target.a, target.W)
    b, V = res.b.clone(), res.V.clone()

    def exact():
        bb, VV = b.clone().requires_grad_(), V.clone().requires_grad_()
        torch.autograd.grad(fn(bb, VV), (bb, VV))

    exact()
    t_exact = median_time(exact, max(repeats, 50))
    t_energy = median_time(lambda: PopulationLoss(target.a, target.W), repeats)
    # Pilot: how many samples give a standard error of 0.1% of the loss?
    mean, se, _, _ = mc_loss_and_grad(target, b, V, 200_000, 50_000, seed=1)
    n_needed = int(math.ceil(200_000 * (se / (1e-3 * mean)) ** 2))
    chunk = 1 << 16
    t0 = time.perf_counter()
    mc_mean, mc_se, _, _ = mc_loss_and_grad(target, b, V, n_needed, chunk, seed=2)
    t_mc = time.perf_counter() - t0
    exact_value = float(fn(b, V))
    print("(a) exact loss + gradient vs Monte Carlo at equal accuracy")
    print(f"    point: compress optimum, loss {exact_value:.6g} (relative {exact_value / fn.energy.item():.4f})")
    print(f"    Monte Carlo: {n_needed:,} samples for s.e. <= 0.1% (got {mc_se / mc_mean:.3%}), "
          f"|MC - exact| = {abs(mc_mean - exact_value) / mc_se:.2f} s.e., {t_mc:.2f} s")
    print(f"    exact: {t_exact * 1e3:.3f} ms per loss + gradient (energy precomputed once: "
          f"{t_energy * 1e3:.1f} ms)")
    print(f"    speedup per evaluation: {t_mc / t_exact:,.0f}x; including the energy: "
          f"{t_mc / (t_exact + t_energy):,.0f}x   (target >= 100x)")


def _clocks(fn):
    """Wall and process (CPU) seconds of one call, and its result."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def bench_b(target, repeats: int, budget: int) -> None:
    best = compress(target, M=4)
    goal = 1.01 * best.loss
    a, W = target.a.clone(), target.W.clone()

    def compress_to_goal():  # fresh target each time (energy included); stops once within 1% of the optimum
        return compress(a, W, 4, callback=lambda p: p.loss <= goal)

    def compress_full():
        return compress(a, W, 4)

    c_goal, c_full = [], []

    def time_compress():
        for _ in range(repeats):
            c_goal.append(_clocks(compress_to_goal)[:2])
            c_full.append(_clocks(compress_full)[:2])

    time_compress()
    runs = []
    for lr in (1e-3, 3e-3, 1e-2):
        w0, p0 = time.perf_counter(), time.process_time()
        sgd = sgd_distill(target, M=4, lr=lr, steps=budget, target_loss=goal, eval_every=100, seed=0)
        wall, cpu = time.perf_counter() - w0, time.process_time() - p0
        # Training share of the CPU time (the loss checks are excluded from sgd.time, so from this too).
        cpu_train = cpu * sgd.time / max(wall, 1e-12)
        if sgd.info["reached"]:
            runs.append((sgd.time, cpu_train, lr))
        state = ("reached" if sgd.info["reached"]
                 else f"not reached in {budget:,} steps (loss {sgd.loss / best.loss:.3f}x)")
        print(f"    SGD (Adam, float32, lr {lr:g}, batch 256): {state}, {sgd.iterations:,} steps, {sgd.time:.2f} s")
        time_compress()  # interleaved, so that both see the same machine load
    goal_wall = statistics.median(w for w, _ in c_goal)
    goal_cpu = statistics.median(c for _, c in c_goal)
    full_wall = statistics.median(w for w, _ in c_full)
    full_cpu = statistics.median(c for _, c in c_full)
    print("(b) compress vs SGD distillation, both stopped within 1% of compress's optimum loss")
    print(f"    compress to that loss: {goal_wall:.3f} s wall, {goal_cpu:.3f} s CPU; to full convergence: "
          f"{full_wall:.3f} s wall, {full_cpu:.3f} s CPU (medians of {len(c_goal)}, energy included)")
    if not runs:
        print(f"    no SGD run got there within {budget:,} steps")
        return
    t_sgd, cpu_sgd, lr = min(runs)
    print(f"    best SGD (lr {lr:g}): {t_sgd:.2f} s wall, {cpu_sgd:.2f} s CPU of training (loss checks not timed)")
    print(f"    speedup to the same loss: {t_sgd / goal_wall:,.1f}x wall, {cpu_sgd / goal_cpu:,.1f}x CPU   "
          f"(target >= 20x); against compress run to full convergence: {t_sgd / full_wall:,.1f}x wall")


def bench_c(repeats: int) -> None:
    times = []
    for seed in range(repeats):
        t = random_target(2000, 20, seed=seed)
        a, W = t.a.clone(), t.W.clone()  # raw tensors: nothing cached
        t0 = time.perf_counter()
        compress(a, W, 4)
        times.append(time.perf_counter() - t0)
    print("(c) compress(N=2000, d=20, M=4), fresh targets, energy included")
    print(f"    median {statistics.median(times):.3f} s over {repeats} targets "
          f"(min {min(times):.3f}, max {max(times):.3f})   (target <= 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sgd-steps", type=int, default=60_000, help="most SGD steps per learning rate")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: these problems are small, and on a shared machine two "
                             "spinning OpenMP threads per process make timings swing tenfold)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64, CPU")
    target = random_target(2000, 20, seed=0)
    compress(target, M=4)  # warm up
    res = compress(target, M=4)
    bench_c(args.repeats)
    bench_a(target, res, args.repeats)
    bench_b(target, args.repeats, args.sgd_steps)


if __name__ == "__main__":
    main()
