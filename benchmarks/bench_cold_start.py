"""The cold start, each figure in a fresh interpreter: ``import torch``, then ``import nonlin_explorer`` on top of it
(target: at most 0.5 s more), and the first and second ``linearize`` of a torchvision ResNet-50 at 224 px (target:
the first at most 1 s), beside the baseline every user pays too: the first and second forward pass of the plain model
in a fresh interpreter (torch's convolution kernels are set up per shape on first use). ``linearize`` runs the model
twice (a probe whose output is the reference, and the check), so about two forward passes plus the trace is its floor;
the ratios against the plain forwards of the same repeat hold better than seconds on a loaded machine. Medians over
``--repeats`` pairs of interpreters, run one after the other; the load average is printed with them.

    python benchmarks/bench_cold_start.py [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_IMPORTS = """
import time, json
t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); import nonlin_explorer; t2 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "package": t2 - t1}))
"""

_SETUP = """
import time, json, torch
torch.set_num_threads({threads})
from nonlin_explorer import linearize
from nonlin_explorer.torchvision_compat import import_torchvision
tv = import_torchvision()
x = torch.randn(1, 3, 224, 224)
"""

_LINEARIZE = """
times = []
for _ in range(2):
    model = tv.models.resnet50().eval()
    t = time.perf_counter(); linearize(model, x); times.append(time.perf_counter() - t)
print(json.dumps({"first": times[0], "second": times[1]}))
"""

_FORWARD = """
model = tv.models.resnet50().eval()
times = []
for _ in range(2):
    t = time.perf_counter()
    with torch.no_grad():
        model(x)
    times.append(time.perf_counter() - t)
print(json.dumps({"first": times[0], "second": times[1]}))
"""


def _fresh(code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the linearize and forward runs")
    args = ap.parse_args()
    imports = [_fresh(_IMPORTS) for _ in range(args.repeats)]
    torch_s = statistics.median(r["torch"] for r in imports)
    extra = statistics.median(r["package"] for r in imports)
    print(f"import torch {torch_s:.2f} s; import nonlin_explorer after it +{extra:.2f} s "
          f"{'OK' if extra <= 0.5 else 'ABOVE'} (<= 0.5)", flush=True)
    setup = _SETUP.replace("{threads}", str(args.threads))
    load = os.getloadavg()[0]
    runs = [(_fresh(setup + _LINEARIZE), _fresh(setup + _FORWARD)) for _ in range(args.repeats)]
    load = max(load, os.getloadavg()[0])

    def median(pick):
        return statistics.median(pick(lin, fwd) for lin, fwd in runs)

    first, second = median(lambda r, f: r["first"]), median(lambda r, f: r["second"])
    f_first, f_second = median(lambda r, f: f["first"]), median(lambda r, f: f["second"])
    print(f"linearize(ResNet-50, 224 px), {args.threads} torch thread(s), load average up to {load:.1f} on "
          f"{os.cpu_count()} CPUs: first {first:.2f} s {'OK' if first <= 1.0 else 'ABOVE'} (<= 1), second "
          f"{second:.2f} s; plain forward: first {f_first:.2f} s, second {f_second:.2f} s; first linearize / first "
          f"forward {median(lambda r, f: r['first'] / f['first']):.2f}x, second / second "
          f"{median(lambda r, f: r['second'] / f['second']):.2f}x", flush=True)


if __name__ == "__main__":
    main()
