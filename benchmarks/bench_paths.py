"""Average path length (both normalizations) as a ratio to one forward pass of the same model at batch 128,
measured interleaved in one run (target < 1), on ResNet-56 and a 10x1024 MLP; graph build time reported
separately; and the speedup of the dynamic program over brute-force path enumeration on the largest graph
whose enumeration finishes within 10 s.

    python benchmarks/bench_paths.py [--repeats 15] [--device cpu|cuda] [--enum-limit 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from nonlin_explorer import gates, linearize, models
from nonlin_explorer.graph import unit_graph
from nonlin_explorer.paths import brute_force_path_lengths, dp_path_lengths, path_lengths


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def _partly_linear(model: nn.Module, seed: int = 0) -> None:
    """About half the units linear, a few layers entirely: a model mid-way through sparsification."""
    rng = np.random.default_rng(seed)
    for i, g in enumerate(gates(model)):
        if i % 5 == 4:
            g.set_linear()
        else:
            g.set_linear(np.flatnonzero(rng.random(g.num_units) < 0.5).tolist())


def bench_model(name: str, model: nn.Module, x: torch.Tensor, repeats: int, device: torch.device) -> None:
    model = model.to(device).eval()
    x = x.to(device)
    probe = x[:2]
    model = linearize(model, probe)
    _partly_linear(model)
    builds = [_timed(lambda: unit_graph(model, probe), device) for _ in range(3)]
    graph = unit_graph(model, probe)

    def forward():
        with torch.no_grad():
            model(x)

    def dp_both():  # read the gates, then one forward DP gives both normalizations
        dp_path_lengths(graph, graph.masks_from_model(model))

    def cached_both():  # per-unit weights cached on the graph: a dot product per gate layer
        path_lengths(graph, graph.masks_from_model(model))

    for _ in range(2):  # warm-up (the first path_lengths call computes the weights)
        forward()
        dp_both()
        cached_both()
    fwd, dp, cached = [], [], []
    for i in range(repeats):  # interleaved, alternating order: all three see the same machine noise
        order = [(fwd, forward), (dp, dp_both), (cached, cached_both)]
        for times, fn in (order if i % 2 else order[::-1]):
            times.append(_timed(fn, device))
    f, d, c = statistics.median(fwd), statistics.median(dp), statistics.median(cached)
    res = path_lengths(graph, graph.masks_from_model(model))
    print(f"{name:<18} {device.type:<4} {graph}")
    print(f"  graph build {statistics.median(builds) * 1e3:8.2f} ms (median of 3, reported separately)")
    print(f"  forward, batch {x.shape[0]}: {f * 1e3:8.2f} ms")
    print(f"  APL, both normalizations, forward DP:      {d * 1e3:8.3f} ms   ratio {d / f:7.4f}  "
          f"{'OK' if d / f < 1 else 'ABOVE TARGET'} (target < 1)")
    print(f"  APL, both normalizations, cached weights:  {c * 1e3:8.3f} ms   ratio {c / f:7.4f}  "
          f"{'OK' if c / f < 1 else 'ABOVE TARGET'} (target < 1)")
    print(f"  APL normalized {res.normalized:.4f}, unnormalized {res.unnormalized:.4f}, "
          f"paths 10^{res.log_num_paths / np.log(10):.1f}  (median of {repeats})")


class _SkipChain(nn.Module):
    """Figure 1 of the paper with width w: 1 -> 4 ReLU layers of width w -> 1, plus a skip (w**4 + 1 paths)."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.ModuleList([nn.Linear(1, width)] + [nn.Linear(width, width) for _ in range(3)])
        self.relu = nn.ModuleList([nn.ReLU() for _ in range(4)])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        h = x
        for fc, relu in zip(self.fc, self.relu):
            h = relu(fc(h))
        return self.out(h) + x


def bench_enumeration(limit: float) -> None:
    print(f"brute-force enumeration vs dynamic program (Figure-1 chain of width w, enumeration limit {limit:g} s)")
    best = None
    for width in range(8, 200, 6):
        x = torch.randn(2, 1)
        model = linearize(_SkipChain(width), x)
        _partly_linear(model, seed=width)
        graph = unit_graph(model, x)
        masks = graph.masks_from_model(model)
        t = time.perf_counter()
        try:
            brute = brute_force_path_lengths(graph, masks, max_paths=10**12, time_limit=limit, per_layer=False)
        except RuntimeError:
            print(f"  w={width:3d}: {width ** 4 + 1:>12,} paths  enumeration did not finish in {limit:g} s")
            break
        t_brute = time.perf_counter() - t
        dp_t = []
        for _ in range(21):
            t = time.perf_counter()
            norm, unnorm = dp_path_lengths(graph, masks)
            dp_t.append(time.perf_counter() - t)
        t_dp = statistics.median(dp_t)
        assert abs(norm - brute.normalized) < 1e-9 and abs(unnorm - brute.unnormalized) < 1e-9
        best = (width, int(brute.num_paths), t_brute, t_dp)
        print(f"  w={width:3d}: {int(brute.num_paths):>12,} paths  enumeration {t_brute:8.3f} s  "
              f"DP {t_dp * 1e3:7.3f} ms  speedup {t_brute / t_dp:12,.0f}x")
    if best:
        w, n, tb, td = best
        print(f"  largest graph enumerated within {limit:g} s: w={w} ({n:,} paths): DP speedup {tb / td:,.0f}x "
              f"(same APLs to 1e-9)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--device", default=None)
    ap.add_argument("--enum-limit", type=float, default=10.0)
    ap.add_argument("--skip-enumeration", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device or "cpu")
    torch.manual_seed(0)
    bench_model("ResNet-56", models.resnet56((3, 32, 32), 10), torch.randn(128, 3, 32, 32), args.repeats, device)
    bench_model("MLP 10x1024", models.MLP(1024, 10, width=1024, depth=10), torch.randn(128, 1024), args.repeats,
                device)
    if not args.skip_enumeration:
        bench_enumeration(args.enum_limit)


if __name__ == "__main__":
    main()
