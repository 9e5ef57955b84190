"""Training-step time of a gated model over the same architecture with plain nn.ReLU, measured interleaved
in one run. Target ratio <= 1.10. Two ratios per model:

- ``gates``: the same hand-written Adam step for both models, on the trainer's optimizer
  (:func:`nonlin_explorer.trainer.make_optimizer`: the weights on torch's ``foreach`` kernels, the slopes in a group
  of their own on its fused kernel); the gated one also does what gating needs (the slopes in the optimizer, the
  prior's gradient, the projection to [0, 1]). This is the cost of the gates.
- ``session``: ``TrainingSession.train_step`` (prior on; it also counts correct predictions, drains the
  command queue and keeps running sums) over the bare ReLU step. This is the cost of gates plus the engine.
- ``prelu`` (MLP only): the same hand-written step of the same MLP with torch's own per-unit-slope activation,
  ``nn.PReLU(width)`` (the paper's unit, the gate's function at the same slopes), its slopes trained as the gates'
  are (a second Adam group, the prior's gradient, the projection to [0, 1]): what any per-unit slope costs on top of
  ReLU in torch (its input kept for the backward, the slopes' own optimizer group, a reduction per layer), against
  which the gate's step is the gates' own share.

Then, per activation (ReLU, LeakyReLU, ReLU6, GELU, SiLU, Hardswish, ELU, Mish, GPT-2's tanh GELU):

- ``op``: forward + backward of the activation alone on a (256, 1024) input, gate vs plain activation (and, for
  ReLU, vs torch's PReLU, the paper's unit), interleaved with nothing else (variants that allocate several
  full-size buffers a call would make every op pay page faults), and the same gate with its slopes frozen (no d
  alpha: its gap to the gate is what summing d alpha costs inside the fused backward pass). Targets: every gate
  <= 1.25x plain; a ReLU gate <= 1.0x PReLU.
  Beside it: the same gate through autograd (``lerp(act(x), x, alpha)``, no hand-written backward), and the
  floor: the plain op's forward + backward plus the per-unit d alpha reduction ``sum(g * (x - act(x)))`` that
  any gate needs and the plain op does not, at its best eager form (a scratch buffer allocated once, in place); the
  gate's ratio to that floor, and the reduction's time alone.
- ``mlp``: a training step of an MLP 4x256 on MNIST-1D with that activation, gated (slopes trained, prior on)
  vs plain. This is what a user pays; the op ratio is the worst case (no matmul to hide it).

Each line ends with the load other processes put on the machine (benchmarks/load.py): the 1-minute load average
sampled before the first measurement, and later the load average less this benchmark's own share (its CPU use
since the start, weighted as the kernel's average weights it), so that its own busy thread does not count.
``quiet`` only when that is below 0.5.

    python benchmarks/bench_gates.py [--steps 30] [--device cpu|cuda] [--only activations|models] [--hog]
        [--threads N] [--compile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from cpu_hog import cpu_hog
from load import OtherLoad

from nonlin_explorer import TrainingSession, clamp_slopes_, datasets, gates, linearize, make_gate, models
from nonlin_explorer.fused import FUSED_ENV
from nonlin_explorer.gate_kernels import COMPILE_ENV, gate_backend
from nonlin_explorer.trainer import make_optimizer

#: The activations compared one by one: (label, plain module factory).
ACTIVATIONS = [
    ("relu", torch.nn.ReLU), ("leaky_relu", torch.nn.LeakyReLU), ("relu6", torch.nn.ReLU6),
    ("gelu", torch.nn.GELU), ("gelu_tanh", lambda: torch.nn.GELU(approximate="tanh")), ("silu", torch.nn.SiLU),
    ("hardswish", torch.nn.Hardswish), ("elu", torch.nn.ELU), ("mish", torch.nn.Mish),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_step(model: torch.nn.Module, gated: bool, x_all, y_all, batch_size: int, device: torch.device,
              gen: torch.Generator, sparsity: float = 1e-4):
    """One hand-written Adam step, the same for a plain and a gated model; a model with slopes (``gated``: linearized
    here; or built with nn.PReLU) also trains them, adds the prior's gradient and projects them to [0, 1]."""
    model = model.to(device)
    if gated:
        model = linearize(model, x_all[:2])
    gate_list = gates(model)
    prelus = [m for m in model.modules() if isinstance(m, torch.nn.PReLU)]
    alphas = [g.alpha for g in gate_list] + [m.weight for m in prelus]
    slopes = {id(a) for a in alphas}
    weights = [p for p in model.parameters() if id(p) not in slopes]
    opt = (make_optimizer(weights, alphas, lr=1e-3, slope_lr=1e-2) if alphas
           else torch.optim.Adam([dict(params=weights, lr=1e-3, foreach=True)]))

    def step():
        idx = torch.randint(0, len(x_all), (batch_size,), generator=gen).to(device)
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if alphas:  # d/d alpha of sparsity * sum(1 - alpha) = -sparsity (every unit free here)
            torch._foreach_add_([a.grad for a in alphas], -sparsity)
        opt.step()
        if gate_list:
            clamp_slopes_(model, gate_list)
        elif prelus:
            with torch.no_grad():
                torch._foreach_clamp_min_(alphas, 0.0)
                torch._foreach_clamp_max_(alphas, 1.0)
        float(loss.detach())  # the session reads the loss every step too (divergence check)
    return step


def bench(name: str, data, build, steps: int, batch_size: int, device: torch.device, build_prelu=None
          ) -> tuple[float, float]:
    sparsity = 1e-4
    session = TrainingSession(model=build(), data=data, batch_size=batch_size, sparsity=sparsity, epochs=1000,
                              eval_every=10**9, device=str(device), amp=False, seed=0)
    x_all, y_all = session.data.x_train.to(device), session.data.y_train.to(device)
    gen = torch.Generator().manual_seed(0)

    plain_step = hand_step(build(), False, x_all, y_all, batch_size, device, gen, sparsity)
    gated_step = hand_step(build(), True, x_all, y_all, batch_size, device, gen, sparsity)
    fns = {"relu": plain_step, "gated": gated_step, "session": session.train_step,
           "gated_eager": _eager(gated_step), "session_eager": _eager(session.train_step)}
    if build_prelu is not None:
        fns["prelu"] = hand_step(build_prelu(), False, x_all, y_all, batch_size, device, gen, sparsity)
    # interleaved, rotating order: all of them see the same machine noise
    med = _median_interleaved(fns, steps, device)
    gates_ratio, session_ratio = med["gated"] / med["relu"], med["session"] / med["relu"]
    for label, ratio, key in (("gates", gates_ratio, "gated"), ("session", session_ratio, "session")):
        print(f"{name:<24} {device.type:<5} {label:<8} {med[key] * 1e3:8.2f} ms  relu {med['relu'] * 1e3:8.2f} ms  "
              f"ratio {ratio:5.3f}  {'OK' if ratio <= 1.10 else 'ABOVE TARGET'} (target <= 1.10, median of {steps}; "
              f"eager gates {med[key + '_eager'] / med['relu']:5.3f})  [{load_label()}]")
    if build_prelu is not None:
        prelu_ratio, vs_prelu = med["prelu"] / med["relu"], med["gated"] / med["prelu"]
        print(f"{name:<24} {device.type:<5} {'prelu':<8} {med['prelu'] * 1e3:8.2f} ms  relu {med['relu'] * 1e3:8.2f} "
              f"ms  ratio {prelu_ratio:5.3f}  (torch's nn.PReLU, slopes trained alike; gated step / this "
              f"{vs_prelu:5.3f})  [{load_label()}]")
    return gates_ratio, session_ratio


#: The other processes' load, from before the first measurement (the script's own threads not counted).
LOAD = OtherLoad()


#: Set while the CPU hog of ``--hog`` runs: those lines say so, whatever the load average shows yet (it lags).
HOG = {"on": False}


def load_label() -> str:
    """``quiet`` when other processes' load is below 0.5, else ``loaded, others' load X`` (a shared machine's
    noise); see benchmarks/load.py. Beside the hog: ``beside a CPU hog`` and the load it reads."""
    if HOG["on"]:
        return f"beside a CPU hog, others' load {LOAD.others():.1f}"
    return LOAD.label()


def _median_interleaved(fns: dict, steps: int, device: torch.device) -> dict[str, float]:
    """Median seconds per call of each function, run interleaved in a rotating order (same machine noise)."""
    for _ in range(3):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for i in range(steps):
        for k in order[i % len(order):] + order[:i % len(order)]:
            _sync(device)
            t = time.perf_counter()
            fns[k]()
            _sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _with_env(name: str, value: str, fn):
    """``fn`` run with one environment variable set (the gates read it at each call)."""
    def run():
        os.environ[name] = value
        try:
            return fn()
        finally:
            del os.environ[name]
    return run


def _with_compile(fn):
    """``fn`` run with compiled gates opted in (:data:`nonlin_explorer.gate_kernels.COMPILE_ENV`)."""
    return _with_env(COMPILE_ENV, "1", fn)


def _eager(fn):
    """``fn`` run with the fused kernels turned off (:data:`nonlin_explorer.fused.FUSED_ENV` = 0): the eager gate."""
    return _with_env(FUSED_ENV, "0", fn)


def bench_activation(kind: str, build, steps: int, device: torch.device, mnist, compiled: bool = False) -> None:
    """Op-level (forward + backward) and MLP-step cost of one activation's gate against the plain activation."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1024, generator=g).to(device).requires_grad_(True)
    plain, gate = build().to(device), make_gate(build(), 1024).to(device)
    prelu = torch.nn.PReLU(1024, init=0.0).to(device)
    upstream = torch.ones_like(x)  # one upstream gradient for every backward: no allocation of it inside the timing

    def op(module):
        def run():
            y = module(x)
            y.backward(upstream)
            x.grad = None
            for p in module.parameters():
                p.grad = None
        return run

    slope = gate.alpha.detach().clone().requires_grad_(True)
    act = build().to(device)

    def unfused():  # the gate through autograd: act, then lerp, and their generic backward
        y = torch.lerp(act(x), x, slope)
        y.backward(upstream)
        x.grad = slope.grad = None

    buf = torch.empty_like(x, requires_grad=False)  # the d alpha kernel's scratch, allocated once (page faults apart)
    x_const, ones = x.detach(), torch.ones_like(x)
    a_const = act(x_const)

    def dalpha():  # the per-unit d alpha reduction alone, at its best eager: one scratch buffer reused, in place
        torch.sub(x_const, a_const, out=buf).mul_(ones).sum(0)

    def floor():  # the least any gate does: the plain op forward + backward, plus the d alpha reduction
        y = act(x)
        g = upstream
        y.backward(g)
        with torch.no_grad():
            torch.sub(x, y, out=buf).mul_(g).sum(0)
        x.grad = None

    # The gate against the plain op, interleaved with nothing else: the other variants allocate several full-size
    # buffers per call, and interleaved with them every op pays page faults that the allocator would otherwise spare.
    # The same gate with its slopes frozen (no d alpha asked for): gate - this is what the per-unit d alpha sum costs
    # inside the fused backward, the one thing a gate must do beyond the plain op and a lerp.
    frozen = make_gate(build(), 1024).to(device)
    frozen.alpha.requires_grad_(False)
    head = {"plain": op(plain), "gate": op(gate), "frozen": op(frozen)}
    if kind == "relu":
        head["prelu"] = op(prelu)
    med = _median_interleaved(head, steps * 2, device)
    ratio = med["gate"] / med["plain"]
    d_alpha_cost = med["gate"] - med["frozen"]
    # The variants, each against the plain op in its own interleaving.
    others = {"plain": op(plain), "eager": _eager(op(gate)), "unfused": unfused, "floor": floor, "dalpha": dalpha}
    if compiled:  # the same gate through torch.compile (first call: compile, timed apart)
        others["compiled"] = _with_compile(op(make_gate(build(), 1024).to(device)))
        start = time.perf_counter()
        others["compiled"]()
        print(f"{kind:<11} {device.type:<5} compile + first call {time.perf_counter() - start:6.1f} s")
    rest = _median_interleaved(others, steps * 2, device)
    rel = {k: v / rest["plain"] for k, v in rest.items()}
    line = (f"{kind:<11} {device.type:<5} op   gate {med['gate'] * 1e6:7.0f} us  plain {med['plain'] * 1e6:7.0f} us  "
            f"x{ratio:5.2f} plain  (eager gate x{rel['eager']:5.2f}, autograd gate x{rel['unfused']:5.2f}, "
            f"floor x{rel['floor']:5.2f}: gate / floor x{ratio / rel['floor']:5.2f}, "
            f"d alpha alone {rest['dalpha'] * 1e6:.0f} us; in the gate's pass {d_alpha_cost * 1e6:.0f} us = "
            f"x{d_alpha_cost / med['plain']:4.2f} plain, slopes frozen x{med['frozen'] / med['plain']:5.2f})")
    if compiled:
        line += f"  compiled x{rel['compiled']:5.2f}"
    if kind == "relu":
        vs_prelu = med["gate"] / med["prelu"]
        verdict = "OK" if vs_prelu <= 1.0 else "ABOVE"
        line += f"  x{vs_prelu:5.2f} PReLU ({med['prelu'] * 1e6:.0f} us) {verdict} (<= 1.0)"
    line += f"  {'OK' if ratio <= 1.25 else 'ABOVE'} (<= 1.25 plain)"
    print(f"{line}  [{load_label()}]")

    x_all, y_all = mnist.x_train.to(device), mnist.y_train.to(device)
    sparsity, batch = 1e-4, 128

    def mlp_step(gated: bool):
        torch.manual_seed(0)
        model = models.MLP(40, 10, width=256, depth=4, activation=build)
        return hand_step(model, gated, x_all, y_all, batch, device, torch.Generator().manual_seed(0), sparsity)

    med = _median_interleaved({"plain": mlp_step(False), "gate": mlp_step(True), "eager": _eager(mlp_step(True))},
                              steps, device)
    ratio = med["gate"] / med["plain"]
    print(f"{kind:<11} {device.type:<5} mlp  gate {med['gate'] * 1e3:7.2f} ms  plain {med['plain'] * 1e3:7.2f} ms  "
          f"x{ratio:5.2f} plain (eager gate x{med['eager'] / med['plain']:5.2f})  "
          f"{'OK' if ratio <= 1.25 else 'ABOVE'} (<= 1.25, MLP 4x256, batch {batch})  "
          f"[{load_label()}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default=None)
    ap.add_argument("--only", choices=("activations", "models"), default=None)
    ap.add_argument("--hog", action="store_true", help="also run beside another process spinning a core")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--compile", action="store_true",
                    help="also time each gate through torch.compile (NONLIN_EXPLORER_COMPILE=1; compile time printed)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, 1-minute load "
          f"average before the first measurement {LOAD.before:.2f}; gates: {gate_backend()}")
    if args.hog:
        print("== without the hog ==")
    run(args)
    if args.hog:
        with cpu_hog():
            HOG["on"] = True
            print("== beside a CPU hog (another process spinning a core) ==")
            run(args)


def run(args) -> None:
    devices = [torch.device(args.device)] if args.device else [torch.device("cpu")] + (
        [torch.device("cuda")] if torch.cuda.is_available() else [])
    mnist = datasets.mnist1d(num_samples=4000)
    g = torch.Generator().manual_seed(0)
    cifar_like = datasets.from_arrays(torch.randn(512, 3, 32, 32, generator=g), torch.arange(512) % 10,
                                      name="random32x32")
    mlp = lambda: models.MLP(40, 10, width=256, depth=4)
    resnet = lambda: models.resnet20((3, 32, 32), 10)
    for device in devices:
        if args.only != "models":
            for kind, build in ACTIVATIONS:
                bench_activation(kind, build, args.steps, device, mnist, args.compile)
        if args.only == "activations":
            continue
        big = device.type == "cuda"
        prelu_mlp = lambda: models.MLP(40, 10, width=256, depth=4, activation=lambda: torch.nn.PReLU(256, init=0.0))
        bench("MLP 4x256 on MNIST-1D", mnist, mlp, args.steps, 512 if big else 128, device, prelu_mlp)
        bench("ResNet-20 on 32x32", cifar_like, resnet, args.steps if big else max(20, args.steps // 2),
              128 if big else 32, device)


if __name__ == "__main__":
    main()
