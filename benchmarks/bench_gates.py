"""Training-step time of a gated model over the same architecture with plain nn.ReLU, measured interleaved
in one run. Target ratio <= 1.10. Two ratios per model:

- ``gates``: the same hand-written Adam step for both models; the gated one also does what gating needs (the
  slopes in the optimizer, the prior's gradient, the projection to [0, 1]). This is the cost of the gates.
- ``session``: ``TrainingSession.train_step`` (prior on; it also counts correct predictions, drains the
  command queue and keeps running sums) over the bare ReLU step. This is the cost of gates plus the engine.

    python benchmarks/bench_gates.py [--steps 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from nonlin_explorer import TrainingSession, clamp_slopes_, datasets, gates, linearize, models


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(name: str, data, build, steps: int, batch_size: int, device: torch.device) -> tuple[float, float]:
    sparsity = 1e-4
    session = TrainingSession(model=build(), data=data, batch_size=batch_size, sparsity=sparsity, epochs=1000,
                              eval_every=10**9, device=str(device), amp=False, seed=0)
    x_all, y_all = session._x_train, session._y_train
    gen = torch.Generator().manual_seed(0)

    def make_step(model: torch.nn.Module, gated: bool):
        """The same hand-written step for both models; the gated one adds the prior gradient and projection."""
        model = model.to(device)
        if gated:
            model = linearize(model, x_all[:2])
        gate_list = gates(model)
        slopes = {id(g.alpha) for g in gate_list}
        weights = [p for p in model.parameters() if id(p) not in slopes]
        groups = [dict(params=weights)] + ([dict(params=[g.alpha for g in gate_list], lr=1e-2)] if gated else [])
        opt = torch.optim.Adam(groups, lr=1e-3)
        alphas = [g.alpha for g in gate_list]

        def step():
            idx = torch.randint(0, len(x_all), (batch_size,), generator=gen).to(device)
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if gated:  # d/d alpha of sparsity * sum(1 - alpha) = -sparsity (every unit free here)
                torch._foreach_add_([a.grad for a in alphas], -sparsity)
            opt.step()
            if gated:
                clamp_slopes_(model, gate_list)
            float(loss.detach())  # the session reads the loss every step too (divergence check)
        return step

    plain_step = make_step(build(), gated=False)
    gated_step = make_step(build(), gated=True)

    def timed(fn):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - t

    fns = {"relu": plain_step, "gated": gated_step, "session": session.train_step}
    for _ in range(3):  # warm-up
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for i in range(steps):  # interleaved, rotating order: all three see the same machine noise
        for k in order[i % 3:] + order[:i % 3]:
            times[k].append(timed(fns[k]))
    med = {k: statistics.median(v) for k, v in times.items()}
    gates_ratio, session_ratio = med["gated"] / med["relu"], med["session"] / med["relu"]
    for label, ratio, key in (("gates", gates_ratio, "gated"), ("session", session_ratio, "session")):
        print(f"{name:<24} {device.type:<5} {label:<8} {med[key] * 1e3:8.2f} ms  relu {med['relu'] * 1e3:8.2f} ms  "
              f"ratio {ratio:5.3f}  {'OK' if ratio <= 1.10 else 'ABOVE TARGET'} (target <= 1.10, median of {steps})")
    return gates_ratio, session_ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    devices = [torch.device(args.device)] if args.device else [torch.device("cpu")] + (
        [torch.device("cuda")] if torch.cuda.is_available() else [])
    mnist = datasets.mnist1d(num_samples=4000)
    g = torch.Generator().manual_seed(0)
    cifar_like = datasets.from_arrays(torch.randn(512, 3, 32, 32, generator=g), torch.arange(512) % 10,
                                      name="random32x32")
    mlp = lambda: models.MLP(40, 10, width=256, depth=4)
    resnet = lambda: models.resnet20((3, 32, 32), 10)
    for device in devices:
        big = device.type == "cuda"
        bench("MLP 4x256 on MNIST-1D", mnist, mlp, args.steps, 512 if big else 128, device)
        bench("ResNet-20 on 32x32", cifar_like, resnet, args.steps if big else max(20, args.steps // 2),
              128 if big else 32, device)


if __name__ == "__main__":
    main()
