"""Every analysis on torchvision's classification families (random weights, eval mode, batch 1): seconds for
linearize, the unit graph, APL + core network after a toggle, collapse, and one forward pass.

Target (interactive after a click): plain ``average_path_length(model, x)`` + ``core_network(model, x)`` after a
toggle (no graph passed: the package reuses its own) at most 0.5x one forward pass at batch 1, for every family.
Prints without and, with ``--hog``, beside another process spinning a core; the first is labelled quiet only when
other processes' load (``load.py``: the load average less this run's own share) stayed below 0.5.

    python benchmarks/bench_models.py [--models resnet50,vit_b_16] [--hog] [--skip-collapse]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from cpu_hog import cpu_hog
from load import OtherLoad

from nonlin_explorer import average_path_length, collapse, core_network, gates, linearize, unit_graph
from nonlin_explorer.torchvision_compat import CLASSIFIERS, import_torchvision

#: (name, input size, constructor keyword arguments): torchvision's families at 224 px (or their own size)
MODELS = [(name, max(224, size), kwargs) for name, (size, kwargs) in CLASSIFIERS.items()]


def _time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str, size: int, kwargs: dict, skip_collapse: bool = False) -> None:
    tv = import_torchvision()
    torch.manual_seed(0)
    model = getattr(tv.models, name)(**kwargs).eval()
    x = torch.randn(1, 3, size, size)
    t = time.perf_counter()
    model = linearize(model, x).eval()
    t_linearize = time.perf_counter() - t
    gate_list = gates(model)
    units = sum(g.num_units for g in gate_list)
    t = time.perf_counter()
    unit_graph(model, x)  # the trace alone (timed; the analyses below build their own once)
    t_graph = time.perf_counter() - t
    with torch.no_grad():
        t_forward = _time(lambda: model(x))
    average_path_length(model, x)  # the first plain call traces once and caches the graph and its path weights

    flip = iter(range(10**9))

    def toggle_then_analyse():
        g = gate_list[next(flip) % len(gate_list)]
        g.set_linear([0])
        average_path_length(model, x)
        core_network(model, x)
        g.set_nonlinear([0])

    t_click = _time(toggle_then_analyse, 5)
    t_collapse = float("nan")
    if not skip_collapse:
        for g in gate_list[: len(gate_list) // 2]:
            g.set_linear()
        t = time.perf_counter()
        collapse(model, x, timing_repeats=0)
        t_collapse = time.perf_counter() - t
    ratio = t_click / t_forward
    print(f"{name:<20} {units:>7} units  linearize {t_linearize:6.2f} s  graph {t_graph:6.2f} s  "
          f"APL+core after a toggle {t_click * 1e3:7.1f} ms = {ratio:5.2f}x forward ({t_forward * 1e3:6.1f} ms) "
          f"{'OK' if ratio <= 0.5 else 'ABOVE'} (<= 0.5)  collapse {t_collapse:6.2f} s", flush=True)


def run(names: list[str], skip_collapse: bool = False) -> None:
    for name, size, kwargs in MODELS:
        if names and name not in names:
            continue
        try:
            bench(name, size, kwargs, skip_collapse)
        except Exception as exc:  # a model that fails is a finding to print, not a reason to stop
            print(f"{name:<20} FAILED {type(exc).__name__}: {str(exc)[:200]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--hog", action="store_true", help="also run beside another process spinning a core")
    ap.add_argument("--skip-collapse", action="store_true", help="time everything but collapse")
    args = ap.parse_args()
    names = [n for n in args.models.split(",") if n]
    load = OtherLoad()
    print("== without a hog ==")
    run(names, args.skip_collapse)
    print(f"[{load.label()}]")
    if args.hog:
        with cpu_hog():
            print("== beside a CPU hog ==")
            run(names, args.skip_collapse)


if __name__ == "__main__":
    main()
