"""Targets to compress: ``f*(x) = sum_i a_i s(w_i.x)``, random (as in the paper), given, or from a torch model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nonlin_explorer.compression._checks import (
    HasFirstLayer,
    as_tensor,
    check_int,
    check_real,
    check_target,
    resolve_device,
)
from nonlin_explorer.compression.kernels import Activation, get_activation
from nonlin_explorer.compression.loss import PopulationLoss

WEIGHT_DISTS = ("gaussian", "rademacher", "sphere")


@dataclass(eq=False)
class Target(HasFirstLayer):
    """A two-layer target ``f*(x) = sum_i a_i s(w_i.x)``: output weights ``a`` (N,), input weights ``W`` (N, d).

    ``info`` records how it was made (a JSON-friendly dict, copied into sweep provenance).
    """

    a: torch.Tensor
    W: torch.Tensor
    activation: str = "relu"
    info: dict[str, Any] = field(default_factory=dict)
    _losses: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.W = as_tensor("W", self.W, ndim=2)
        self.a = as_tensor("a", self.a, ndim=1, device=self.W.device, dtype=self.W.dtype)
        check_target(self.a, self.W)
        self.activation = get_activation(self.activation).name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``f*(x)`` for a batch of inputs ``x`` (..., d)."""
        return get_activation(self.activation)(x @ self.W.T) @ self.a

    def loss_fn(self, quad_points: int | None = None) -> PopulationLoss:
        """The exact loss for this target (cached: its O(N^2 d) energy is computed once)."""
        key = quad_points
        if key not in self._losses:
            self._losses[key] = PopulationLoss(self.a, self.W, self.activation, quad_points=quad_points)
        return self._losses[key]

    @property
    def energy(self) -> float:
        """``E f*(x)^2``: the loss of the empty network, the scale of ``relative_loss``."""
        return float(self.loss_fn().energy)

    def linear_direction(self) -> torch.Tensor:
        """``E[f*(x) x] = sum_i a_i E[s'(|w_i| g)] w_i`` (Stein's lemma): the target's linear part.

        For relu it is ``sum_i a_i w_i / 2``.
        """
        act = get_activation(self.activation)
        return (self.a * act.linear_coefficient(self.W.norm(dim=1))) @ self.W

    def scale(self) -> float:
        """``sum_i a_i |w_i|``: the target's total scaling factor (all the mean-field objective needs)."""
        return float(self.a @ self.W.norm(dim=1))

    def to(self, device=None, dtype=None) -> Target:
        """A copy on another device or in another precision."""
        dev = resolve_device(device, like=self.W)
        dt = dtype or self.dtype
        return Target(self.a.to(dev, dt), self.W.to(dev, dt), self.activation, dict(self.info))


def make_target(a, W, activation: str | Activation = "relu", *, device=None, dtype=None) -> Target:
    """A :class:`Target` from any user ``(a, W)`` (arrays, lists or tensors), checked."""
    W = as_tensor("W", W, ndim=2, device=device, dtype=dtype)
    a = as_tensor("a", a, ndim=1, device=W.device, dtype=W.dtype)
    check_target(a, W)
    return Target(a, W, get_activation(activation).name, {"kind": "user", "N": W.shape[0], "d": W.shape[1]})


def random_target(N: int, d: int, *, weight_dist: str = "gaussian", a_mean: float = 1.0, a_std: float = 1.0,
                  normalize: bool = True, seed: int = 0, activation: str = "relu", device=None,
                  dtype=torch.float64) -> Target:
    """Random target with i.i.d. sub-Gaussian weights, as in Amani et al. (2022).

    ``w_i`` has i.i.d. entries ``N(0, 1/d)`` (``"gaussian"``), ``+-1/sqrt(d)`` (``"rademacher"``), or is
    uniform on the unit sphere (``"sphere"``): ``E|w|^2 = 1`` in all three. ``a_i = a_mean + a_std g_i``,
    ``g_i ~ N(0, 1)``, divided by N when ``normalize`` (the paper's ``f* = (1/N) sum_i``), so
    ``random_target(2000, 20)`` has ``a_i = (1 + g_i)/N``. Drawn on the CPU from ``seed``: the same target
    on every device.
    """
    N = check_int("N", N, minimum=1)
    d = check_int("d", d, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    a_mean = check_real("a_mean", a_mean)
    a_std = check_real("a_std", a_std, nonnegative=True)
    if weight_dist not in WEIGHT_DISTS:
        raise ValueError(f"unknown weight_dist {weight_dist!r}; choose one of {', '.join(WEIGHT_DISTS)}")
    act = get_activation(activation).name
    gen = torch.Generator().manual_seed(seed)
    if weight_dist == "gaussian":
        W = torch.randn(N, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    elif weight_dist == "rademacher":
        W = (torch.randint(0, 2, (N, d), generator=gen).to(torch.float64) * 2.0 - 1.0) / math.sqrt(d)
    else:
        W = torch.randn(N, d, generator=gen, dtype=torch.float64)
        W = W / W.norm(dim=1, keepdim=True)
    a = a_mean + a_std * torch.randn(N, generator=gen, dtype=torch.float64)
    if normalize:
        a = a / N
    dev = resolve_device(device)
    info = {"kind": "random", "N": N, "d": d, "weight_dist": weight_dist, "a_mean": a_mean, "a_std": a_std,
            "normalize": bool(normalize), "seed": seed}
    return Target(a.to(dev, dtype), W.to(dev, dtype), act, info)


_MODULE_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.GELU: "gelu", nn.Softplus: "softplus",
                       nn.Identity: "linear"}


def target_from_module(model: nn.Module, *, device=None, dtype=torch.float64) -> Target:
    """The target computed by a trained ``nn.Sequential(Linear(d, N), act, Linear(N, 1))``.

    ``act`` is ReLU, Tanh, GELU (exact, not tanh-approximated), Softplus (beta 1, default threshold) or
    Identity. Biases must be absent or zero: the engine's networks have none.
    """
    layers = list(model.children()) if isinstance(model, nn.Sequential) else None
    if not layers or len(layers) != 3 or not isinstance(layers[0], nn.Linear) or not isinstance(layers[2], nn.Linear):
        raise ValueError("expected nn.Sequential(nn.Linear(d, N), activation, nn.Linear(N, 1))")
    first, act, last = layers
    name = _MODULE_ACTIVATIONS.get(type(act))
    if name is None:
        raise ValueError(f"unsupported activation module {type(act).__name__}; use one of "
                         f"{', '.join(k.__name__ for k in _MODULE_ACTIVATIONS)}")
    if isinstance(act, nn.GELU) and act.approximate != "none":
        raise ValueError("nn.GELU(approximate='tanh') is not supported: use the exact GELU")
    if isinstance(act, nn.Softplus) and act.beta != 1:
        raise ValueError("only nn.Softplus(beta=1) is supported")
    if last.out_features != 1:
        raise ValueError(f"the last Linear must have one output, got {last.out_features}")
    if last.in_features != first.out_features:
        raise ValueError("the two Linear layers do not chain")
    for layer in (first, last):
        if layer.bias is not None and bool(layer.bias.detach().abs().max() > 0):
            raise ValueError("biases must be absent or zero (build the layers with bias=False)")
    with torch.no_grad():
        W = first.weight.detach().to(dtype=dtype).clone()
        a = last.weight.detach().to(dtype=dtype)[0].clone()
    dev = resolve_device(device, like=W)
    return Target(a.to(dev), W.to(dev), name, {"kind": "module", "N": W.shape[0], "d": W.shape[1]})


def as_target(a, W=None, activation: str | Activation = "relu") -> Target:
    """A :class:`Target` passes through; ``(a, W)`` becomes one."""
    if isinstance(a, Target):
        if W is not None:
            raise ValueError("pass either a Target or (a, W), not both")
        return a
    if W is None:
        raise ValueError("W is required when a is not a Target")
    return make_target(a, W, activation)
