"""A 16-point CPU training sweep on a 2-worker LocalCluster against the same points run serially, in one run.

Target: >= 1.7x on 2 cores (warm cluster). Runs are interleaved (serial, parallel, serial, ...) so machine
noise hits both alike; medians are reported. Serial runs the points in this process through the same code
path (``workers=0``) with one torch thread per point, as on the workers (``--default-threads`` also times
torch's default thread count); the speedup is taken against the fastest serial time. "cold" adds starting
and stopping the cluster (worker processes importing torch) to the parallel time. "cores used" is the CPU
time of our processes per wall second: on a machine busy with other sessions the kernel's autogroup
scheduling gives each session a share of the CPU however many processes it runs, and the speedup follows it.

    python benchmarks/bench_sweep.py [--repeats 3] [--epochs 20] [--workers 2] [--no-cold] [--default-threads]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch


def make_spec(epochs: float) -> dict:
    return {
        "kind": "training", "seeds": [0, 1], "threads": 1,
        "base": {"dataset": "teacher", "dataset_kwargs": {"num_samples": 4000, "dim": 20},
                 "model": "mlp", "model_kwargs": {"width": 64, "depth": 2}, "epochs": epochs, "batch_size": 64,
                 "eval_every": 50},
        "grid": {"sparsity": [0.0, 1e-3, 1e-2, 1e-1], "schedule": ["early", "late"]},
    }


def main(argv: list[str] | None = None) -> int:
    from distributed import Client

    from nonlin_explorer import sweep

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=float, default=20.0, help="epochs per point (20: about 1.5 s on one core)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-cold", action="store_true", help="skip the cold runs (cluster start included)")
    p.add_argument("--default-threads", action="store_true",
                   help="also time serial runs with torch's default thread count (slow on a busy machine)")
    args = p.parse_args(argv)
    spec = sweep.load_spec(make_spec(args.epochs))
    assert spec.size == 16
    default_threads = torch.get_num_threads()
    print(f"{spec.size} points ({' x '.join(f'{d}={n}' for d, n in zip(spec.dims, spec.shape))}), "
          f"{args.epochs:g} epochs each; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    cores: dict[str, list[float]] = {}
    others: dict[str, list[float]] = {}
    ncores = os.cpu_count() or 1

    def cpu_seconds(client=None) -> float:
        """CPU time of this process and (with a client) of the worker processes, all threads."""
        return time.process_time() + (sum(client.run(time.process_time).values()) if client is not None else 0.0)

    def machine_busy() -> tuple[float, float]:
        """(busy, total) jiffies of all CPUs since boot (Linux), to see how much others used meanwhile."""
        try:
            with open("/proc/stat") as fh:
                v = [int(x) for x in fh.readline().split()[1:9]]
        except OSError:
            return 0.0, 0.0
        return float(sum(v) - v[3] - v[4]), float(sum(v))

    def timed(name: str, fn, client=None):
        c0, t0, (b0, j0) = cpu_seconds(client), time.perf_counter(), machine_busy()
        out = fn()
        wall = time.perf_counter() - t0
        b1, j1 = machine_busy()
        times[name].append(wall)
        ours = (cpu_seconds(client) - c0) / wall
        cores.setdefault(name, []).append(ours)
        if j1 > j0:
            others.setdefault(name, []).append(max(0.0, (b1 - b0) / (j1 - j0) * ncores - ours))
        return out

    def serial(threads: int):
        torch.set_num_threads(threads)
        spec.threads = threads
        try:
            return sweep.run(spec, workers=0, progress=False)
        finally:
            spec.threads = 1
            torch.set_num_threads(default_threads)

    cluster = sweep.local_cluster(args.workers)
    client = Client(cluster)
    client.run(lambda: __import__("nonlin_explorer.training"))  # workers import torch before the clock starts
    sweep.run(spec, client=client, progress=False)  # and warm up (first dataset, first model)
    serial(1)
    warm, cold = f"{args.workers} workers, warm", f"{args.workers} workers, cold"
    times: dict[str, list[float]] = {"serial, 1 thread": [], f"serial, {default_threads} threads": [], warm: [],
                                     cold: []}
    reference = None
    try:
        for r in range(args.repeats):
            ds = timed("serial, 1 thread", lambda: serial(1))
            reference = ds if reference is None else reference
            if args.default_threads and default_threads != 1:
                timed(f"serial, {default_threads} threads", lambda: serial(default_threads))
            par = timed(warm, lambda: sweep.run(spec, client=client, progress=False), client)
            for name in ("test_acc", "test_loss", "nonlinear_total"):
                assert np.array_equal(par[name].values, reference[name].values), f"{name} differs from serial"
            print(f"  repeat {r + 1}: " + ", ".join(
                f"{k} {v[-1]:.2f} s on {cores[k][-1]:.2f} cores" + (f" (others: {others[k][-1]:.2f})" if k in others
                                                                      else "")
                for k, v in times.items() if v), flush=True)
    finally:
        client.close()
        cluster.close()
    if not args.no_cold:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            sweep.run(spec, workers=args.workers, progress=False)
            times[cold].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    print("\nmedian wall time (cores used: CPU seconds of our processes per wall second; others: the rest of the "
          "machine's busy time meanwhile)")
    for k, v in med.items():
        used = f"on {statistics.median(cores[k]):.2f} cores" if k in cores else ""
        if k in others:
            used += f", others on {statistics.median(others[k]):.2f}"
        print(f"  {k:<22} {v:7.2f} s {used:>31}   (runs: {', '.join(f'{x:.2f}' for x in times[k])})")
    best_serial = min(v for k, v in med.items() if k.startswith("serial"))
    speedup = best_serial / med[warm]
    pairs = statistics.median(a / b for a, b in zip(times["serial, 1 thread"], times[warm]))
    print(f"\nspeedup, {args.workers} workers (warm cluster) over the best serial: {speedup:.2f}x of the medians, "
          f"{pairs:.2f}x median of the interleaved pairs (target >= 1.7x)")
    if cold in med:
        print(f"speedup with cluster start and stop included: {best_serial / med[cold]:.2f}x")
    print(f"load average now {os.getloadavg()[0]:.2f}. With other sessions busy, the kernel (autogroup) gives this "
          "session a share of the CPU however many processes it runs: the speedup then follows the ratio of "
          "cores used, not the code. Run at a quiet moment.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
