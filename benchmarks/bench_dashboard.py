"""Training throughput with the dashboard attached and refreshing at its default rate, over headless training.

Both runs train the same config in the same process, alternating (A B A B ...) so machine noise hits both;
the ratio of median steps per second is printed (target >= 0.90).

"Attached" means: the dashboard widget (its controller and its flush thread, as in a notebook) subscribed to the
session: its buffer copies each event on the training thread, the flush thread drains it ``rate`` times a second
into series messages and the network view reads the gates. Sending over a real comm and drawing in a browser are
measured in a browser by benchmarks/bench_live.py.

    .venv/bin/python benchmarks/bench_dashboard.py [--repeats 5] [--epochs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nonlin_explorer.training import TrainConfig, TrainingSession
from nonlin_explorer.ui.dashboard import TrainingDashboard


def _config(epochs: float) -> TrainConfig:
    return TrainConfig(dataset="mnist1d", dataset_kwargs={"num_samples": 4000}, model="mlp",
                       model_kwargs={"width": 128, "depth": 3}, epochs=epochs, eval_every=20, sparsity=1e-3,
                       slope_lr=5e-2, seed=0)


def headless(epochs: float) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second of the whole process)."""
    session = TrainingSession(_config(epochs))
    t0, c0 = time.perf_counter(), time.process_time()
    session.run(progress=False)
    return session.step / (time.perf_counter() - t0), session.step / (time.process_time() - c0)


def attached(epochs: float) -> tuple[float, float, int]:
    session = TrainingSession(_config(epochs))
    dash = TrainingDashboard(session)  # its flush thread runs at the dashboard's rate
    sent: list[int] = []
    dash.send = lambda content, buffers=None: sent.append(len(content.get("evals", {}).get("step", [])))
    t0, c0 = time.perf_counter(), time.process_time()
    session.run(progress=False)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0  # CPU: training and flush threads
    dash.wait_flushed()
    flushes = dash.controller.flushes
    dash.close()
    assert sum(sent) == len(session.history), (sum(sent), len(session.history))
    return session.step / elapsed, session.step / cpu, flushes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=float, default=30.0)
    args = p.parse_args()
    torch.set_num_threads(2)
    headless(0.5)  # warm-up: data generation caches, allocator
    base, dash, flushes = [], [], []
    for _ in range(args.repeats):
        base.append(headless(args.epochs))
        *rates, n = attached(args.epochs)
        dash.append(tuple(rates))
        flushes.append(n)
    for i, what in enumerate(("wall-clock", "CPU-time")):
        b, d = statistics.median(r[i] for r in base), statistics.median(r[i] for r in dash)
        pairs = statistics.median(x[i] / y[i] for x, y in zip(dash, base))
        print(f"{what}: headless {b:.1f} steps/s, dashboard attached {d:.1f} steps/s "
              f"(runs: {', '.join(f'{y[i]:.1f}/{x[i]:.1f}' for x, y in zip(dash, base))} headless/attached)")
        print(f"  ratio attached / headless: {d / b:.3f} (medians), {pairs:.3f} (median of paired runs); "
              "target >= 0.90")
    print(f"flushes per attached run: {flushes}")


if __name__ == "__main__":
    main()
