"""Inference time of a collapsed network over the original, measured interleaved in one run: an MLP with 80%
of its gate layers fully linear (target ratio <= 0.6); also with the remaining layers half linear (split
layers with an affine bypass), and a ResNet-20 with BatchNorm folded and 20% of its gate layers linear.

    python benchmarks/bench_collapse.py [--repeats 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from nonlin_explorer import gates, linearize, models
from nonlin_explorer.collapse import collapse


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(model: nn.Module, x: torch.Tensor, device: torch.device) -> float:
    _sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        model(x)
    _sync(device)
    return time.perf_counter() - t


def bench(name: str, model: nn.Module, x: torch.Tensor, repeats: int, device: torch.device,
          target: float | None) -> float:
    model = model.to(device).eval()
    x = x.to(device)
    res = collapse(model, x[:8], timing_repeats=0)
    small = res.model
    with torch.no_grad():
        err = float((small(x) - model(x)).abs().max())
    for _ in range(3):  # warm-up
        _timed(model, x, device)
        _timed(small, x, device)
    orig_t, small_t = [], []
    for i in range(repeats):  # interleaved, alternating order: both see the same machine noise
        pair = [(orig_t, model), (small_t, small)]
        for times, m in (pair if i % 2 else pair[::-1]):
            times.append(_timed(m, x, device))
    o, s = statistics.median(orig_t), statistics.median(small_t)
    ratio = s / o
    verdict = "" if target is None else ("  OK" if ratio <= target else "  ABOVE TARGET") + f" (target <= {target})"
    print(f"{name:<44} {device.type:<4} original {o * 1e3:8.3f} ms  collapsed {s * 1e3:8.3f} ms  "
          f"ratio {ratio:5.3f}{verdict}")
    print(f"{'':<49} params {res.params_before:>11,} -> {res.params_after:>11,} ({res.param_ratio:.3f})  "
          f"FLOPs/example {res.flops_before:>11,} -> {res.flops_after:>11,} ({res.flop_ratio:.3f})  "
          f"max |diff| {err:.1e}  (median of {repeats}, batch {x.shape[0]})")
    return ratio


def _mlp(partial: bool, device: torch.device) -> nn.Module:
    x = torch.randn(2, 1024)
    m = linearize(models.MLP(1024, 10, width=1024, depth=10), x)
    rng = np.random.default_rng(0)
    for i, g in enumerate(gates(m)):
        if i % 5 != 4:  # 8 of 10 gate layers fully linear
            g.set_linear()
        elif partial:
            g.set_linear(np.flatnonzero(rng.random(g.num_units) < 0.5).tolist())
    return m


def _resnet() -> nn.Module:
    x = torch.randn(2, 3, 32, 32)
    m = models.resnet20((3, 32, 32), 10)
    m.train()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for _ in range(3):
            m(torch.randn(16, 3, 32, 32))
    m = linearize(m.eval(), x)
    for i, g in enumerate(gates(m)):
        if i % 5 == 4:
            g.set_linear()
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    device = torch.device(args.device or "cpu")
    torch.manual_seed(0)
    x = torch.randn(128, 1024)
    bench("MLP 10x1024, 8/10 gate layers linear", _mlp(False, device), x, args.repeats, device, target=0.6)
    bench("  same, remaining 2 layers half linear", _mlp(True, device), x, args.repeats, device, target=None)
    bench("ResNet-20, BN folded, 4/19 gate layers linear", _resnet(), torch.randn(32, 3, 32, 32),
          max(5, args.repeats // 3), device, target=None)


if __name__ == "__main__":
    main()
