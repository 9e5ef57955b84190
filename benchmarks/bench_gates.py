"""Training-step time of a gated model (TrainingSession.train_step, prior on) over the same architecture
with plain nn.ReLU and a hand-written Adam step, measured interleaved in one run. Target ratio <= 1.10.

    python benchmarks/bench_gates.py [--steps 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from nonlin_explorer import TrainingSession, datasets, models


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(name: str, data, build, steps: int, batch_size: int, device: torch.device) -> float:
    session = TrainingSession(model=build(), data=data, batch_size=batch_size, sparsity=1e-4, epochs=1000,
                              eval_every=10**9, device=str(device), amp=False, seed=0)
    plain = build().to(device)
    opt = torch.optim.Adam(plain.parameters(), lr=1e-3)
    x_all, y_all = session._x_train, session._y_train
    gen = torch.Generator().manual_seed(0)

    def plain_step():
        idx = torch.randint(0, len(x_all), (batch_size,), generator=gen).to(device)
        loss = F.cross_entropy(plain(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # the session reads the loss every step too (divergence check)

    def timed(fn):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - t

    for _ in range(3):  # warm-up
        session.train_step()
        plain_step()
    gated_t, plain_t = [], []
    for i in range(steps):  # interleaved, alternating order: both see the same machine noise
        if i % 2:
            gated_t.append(timed(session.train_step))
            plain_t.append(timed(plain_step))
        else:
            plain_t.append(timed(plain_step))
            gated_t.append(timed(session.train_step))
    g, p = statistics.median(gated_t), statistics.median(plain_t)
    ratio = g / p
    print(f"{name:<28} {device.type:<5} gated {g * 1e3:8.2f} ms  relu {p * 1e3:8.2f} ms  "
          f"ratio {ratio:5.3f}  {'OK' if ratio <= 1.10 else 'ABOVE TARGET'} (target <= 1.10, median of {steps})")
    return ratio


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
