"""Baselines users would otherwise reach for: magnitude pruning, k-means merging, SGD distillation.

Each returns a :class:`~.optimize.CompressionResult` (exact loss, time) so it compares directly with
:func:`~.optimize.compress`. Pruning and merging refit the output weights exactly: for fixed V the loss is
a least-squares problem in b, solved in closed form with the kernel Gram matrix.
"""

from __future__ import annotations

import math
import time

import torch

from nonlin_explorer.compression._checks import check_int, check_real
from nonlin_explorer.compression.kernels import get_activation
from nonlin_explorer.compression.optimize import CompressionResult, finish
from nonlin_explorer.compression.targets import Target, as_target
from nonlin_explorer.validation import check_seed


def _target_and_M(a, W, M, activation) -> tuple[Target, int]:
    if isinstance(a, Target) and M is None and W is not None and not hasattr(W, "shape"):
        M, W = W, None
    target = as_target(a, W, activation)
    if M is None:
        raise ValueError("M (the number of units to keep) is required")
    M = check_int("M", M, minimum=1)
    if M >= target.N:
        raise ValueError(f"M must be smaller than the target's N = {target.N} units, got M = {M}")
    return target, M


def magnitude_prune(a, W=None, M: int | None = None, *, activation: str = "relu") -> CompressionResult:
    """Keep the M units with the largest ``|a_i| |w_i|``, then refit b exactly (least squares)."""
    t0 = time.perf_counter()
    target, M = _target_and_M(a, W, M, activation)
    score = target.a.abs() * target.W.norm(dim=1)
    keep = torch.topk(score, M).indices
    V = target.W[keep]
    with torch.no_grad():
        b = target.loss_fn().optimal_b(V)
    return finish(target, b, V, "magnitude", t0, info={"kept": keep.tolist()})


def kmeans_merge(a, W=None, M: int | None = None, *, seed: int = 0, n_iter: int = 100,
                 activation: str = "relu") -> CompressionResult:
    """Merge the target's units into M clusters (k-means, weights ``|a_i| |w_i|``), then refit b exactly.

    For positively homogeneous activations (relu) units are clustered by direction (on the sphere);
    otherwise by their weight vectors. Centroids use k-means++ seeding from ``seed``.
    """
    t0 = time.perf_counter()
    target, M = _target_and_M(a, W, M, activation)
    n_iter = check_int("n_iter", n_iter, minimum=1)
    gen = torch.Generator().manual_seed(check_seed(seed))
    homogeneous = get_activation(target.activation).homogeneous
    norms = target.W.norm(dim=1)
    X = target.W / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None] if homogeneous else target.W
    weight = (target.a.abs() * norms).cpu()
    if float(weight.sum()) <= 0:
        weight = torch.ones_like(weight)
    Xc = X.detach().cpu()
    # k-means++ seeding, weighted.
    first = int(torch.multinomial(weight, 1, generator=gen))
    centers = [Xc[first]]
    for _ in range(1, M):
        d2 = torch.cdist(Xc, torch.stack(centers)).min(1).values ** 2
        p = weight * d2
        idx = int(torch.multinomial(p if float(p.sum()) > 0 else weight, 1, generator=gen))
        centers.append(Xc[idx])
    C = torch.stack(centers)
    it = 0
    while it < n_iter:
        it += 1
        assign = torch.cdist(Xc, C).argmin(1)
        new = torch.zeros_like(C).index_add_(0, assign, weight[:, None] * Xc)
        mass = torch.zeros(M, dtype=Xc.dtype).index_add_(0, assign, weight)
        empty = mass <= 0
        new = torch.where(empty[:, None], C, new / torch.where(empty, torch.ones_like(mass), mass)[:, None])
        if homogeneous:
            new = new / new.norm(dim=1, keepdim=True).clamp_min(1e-300)
        if torch.allclose(new, C, atol=1e-12, rtol=0):
            C = new
            break
        C = new
    if homogeneous:  # keep the typical length so that the refit b stays on the target's scale
        C = C * float(norms.median())
    V = C.to(target.device, target.dtype)
    with torch.no_grad():
        b = target.loss_fn().optimal_b(V)
    return finish(target, b, V, "kmeans", t0, iterations=it)


def sgd_distill(a, W=None, M: int | None = None, *, steps: int = 20_000, batch_size: int = 256, lr: float = 1e-2,
                seed: int = 0, target_loss: float | None = None, eval_every: int = 50,
                time_limit: float | None = None, activation: str = "relu",
                dtype: torch.dtype = torch.float32) -> CompressionResult:
    """Distil the target into M units by Adam on fresh Gaussian inputs (the usual approach, no closed form).

    Trains in ``dtype`` (float32 by default, as one would). Stops after ``steps``, after ``time_limit``
    seconds of training, or as soon as the exact loss (in the target's precision, checked every
    ``eval_every`` steps; checks are not timed) is at most ``target_loss``. ``info["reached"]`` says
    whether it got there; ``time`` counts training only.
    """
    target, M = _target_and_M(a, W, M, activation)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    eval_every = check_int("eval_every", eval_every, minimum=1)
    lr = check_real("lr", lr, positive=True)
    if target_loss is not None:
        target_loss = check_real("target_loss", target_loss)
    if time_limit is not None:
        time_limit = check_real("time_limit", time_limit, positive=True)
    act = get_activation(target.activation)
    loss_fn = target.loss_fn()
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    dev, dt = target.device, dtype
    Wt, at = target.W.to(dt), target.a.to(dt)
    gen = torch.Generator().manual_seed(check_seed(seed))
    scale = float(target.W.norm(dim=1).median())
    V = (torch.randn(M, target.d, generator=gen, dtype=torch.float64) * scale / math.sqrt(target.d)).to(dev, dt)
    b = (torch.randn(M, generator=gen, dtype=torch.float64) * abs(target.scale()) / M).to(dev, dt)
    V.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.Adam([b, V], lr=lr)
    xgen = torch.Generator(device=dev).manual_seed(int(seed) + 1)
    train_time, history, reached, step = 0.0, [], False, 0
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        x = torch.randn(batch_size, target.d, generator=xgen, dtype=dt, device=dev)
        with torch.no_grad():
            y = act(x @ Wt.T) @ at
        loss = ((act(x @ V.T) @ b - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_time += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                exact = float(loss_fn.evaluate(b.to(target.dtype), V.to(target.dtype)))
            history.append(exact)
            if target_loss is not None and exact <= target_loss:
                reached = True
                break
        if time_limit is not None and train_time >= time_limit:
            break
    res = finish(target, b.detach().to(target.dtype), V.detach().to(target.dtype), "sgd", time.perf_counter(),
                 history=history,
                 iterations=step, evaluations=step,
                 info={"reached": reached, "samples": step * batch_size, "lr": lr, "batch_size": batch_size,
                       "dtype": str(dt).replace("torch.", "")})
    res.time = train_time
    return res
