"""The cold start, each figure in a fresh interpreter: ``import torch``, then ``import nonlin_explorer`` on top of it
(target: at most 0.5 s more), and the first and second ``linearize`` of a torchvision ResNet-50 at 224 px (target:
the first at most 1 s), beside the baseline every user pays too: the first forward pass of the plain model in a
fresh interpreter (torch's convolution kernels are set up per shape on first use). Medians over ``--repeats``
interpreters.

    python benchmarks/bench_cold_start.py [--repeats 3]
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
from nonlin_explorer import linearize
from nonlin_explorer.torchvision_compat import import_torchvision
tv = import_torchvision()
x = torch.randn(1, 3, 224, 224)
"""

_LINEARIZE = _SETUP + """
times = []
for _ in range(2):
    model = tv.models.resnet50().eval()
    t = time.perf_counter(); linearize(model, x); times.append(time.perf_counter() - t)
print(json.dumps({"first": times[0], "second": times[1]}))
"""

_FORWARD = _SETUP + """
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
    args = ap.parse_args()
    imports = [_fresh(_IMPORTS) for _ in range(args.repeats)]
    torch_s = statistics.median(r["torch"] for r in imports)
    extra = statistics.median(r["package"] for r in imports)
    print(f"import torch {torch_s:.2f} s; import nonlin_explorer after it +{extra:.2f} s "
          f"{'OK' if extra <= 0.5 else 'ABOVE'} (<= 0.5)", flush=True)
    runs = [(_fresh(_LINEARIZE), _fresh(_FORWARD)) for _ in range(args.repeats)]
    first = statistics.median(r["first"] for r, _ in runs)
    second = statistics.median(r["second"] for r, _ in runs)
    f_first = statistics.median(f["first"] for _, f in runs)
    f_second = statistics.median(f["second"] for _, f in runs)
    print(f"linearize(ResNet-50, 224 px): first {first:.2f} s {'OK' if first <= 1.0 else 'ABOVE'} (<= 1), "
          f"second {second:.2f} s; plain forward: first {f_first:.2f} s, second {f_second:.2f} s", flush=True)


if __name__ == "__main__":
    main()
