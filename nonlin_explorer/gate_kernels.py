"""Hand-written autograd for the gates: ``lerp(act(x), x, alpha)`` forward in two passes, and a backward that
computes d/dx and the per-unit d/dalpha together from torch's own derivative kernels of the activation.

Autograd through ``act`` then ``lerp`` runs act's backward, lerp's two input gradients, a full-size alpha
gradient, its reduction and the sum of the two paths into x: about twice the passes over memory that
``act_backward + lerp + (g * (x - act(x))).sum`` needs. Activations without a known derivative kernel keep
autograd (:func:`derivative` returns None for them).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from nonlin_explorer import fused

aten = torch.ops.aten

#: d act / dx applied to an upstream gradient: ``(grad, x, act(x)) -> grad * act'(x)``.
Derivative = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _elu(alpha: float, scale: float = 1.0, input_scale: float = 1.0) -> Derivative:
    return lambda g, x, a: aten.elu_backward(g, alpha, scale, input_scale, False, x)


#: Per exact module type: the derivative kernel built from the module's settings (subclasses may change forward,
#: so only the exact types are listed).
_MODULE_DERIVATIVES: dict[type, Callable[[nn.Module], Derivative]] = {
    nn.ReLU: lambda m: lambda g, x, a: aten.threshold_backward(g, x, 0),
    nn.LeakyReLU: lambda m: lambda g, x, a: aten.leaky_relu_backward(g, x, m.negative_slope, False),
    nn.ReLU6: lambda m: lambda g, x, a: aten.hardtanh_backward(g, x, 0.0, 6.0),
    nn.Hardtanh: lambda m: lambda g, x, a: aten.hardtanh_backward(g, x, m.min_val, m.max_val),
    nn.GELU: lambda m: lambda g, x, a: aten.gelu_backward(g, x, approximate=m.approximate),
    nn.SiLU: lambda m: lambda g, x, a: aten.silu_backward(g, x),
    nn.Hardswish: lambda m: lambda g, x, a: aten.hardswish_backward(g, x),
    nn.ELU: lambda m: _elu(m.alpha),
    nn.CELU: lambda m: _elu(m.alpha, 1.0, 1.0 / m.alpha),
    nn.SELU: lambda m: _elu(_SELU_ALPHA, _SELU_SCALE),
    nn.Mish: lambda m: lambda g, x, a: aten.mish_backward(g, x),
    nn.Softplus: lambda m: lambda g, x, a: aten.softplus_backward(g, x, m.beta, m.threshold),
    nn.Tanh: lambda m: lambda g, x, a: aten.tanh_backward(g, a),
}


def derivative(activation: nn.Module) -> Derivative | None:
    """The derivative kernel of an activation module of a known type, else None (the gate keeps autograd)."""
    make = _MODULE_DERIVATIVES.get(type(activation))
    return None if make is None else make(activation)


def _unit_view(slope: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The per-unit slope shaped to broadcast along dim 1 of x (dim 0 for a 1-D x)."""
    return slope.view([-1 if d == 1 else 1 for d in range(x.dim())]) if x.dim() > 1 else slope


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [d for d in range(x.dim()) if d != 1] if x.dim() > 1 else []


def _fused_kernels(x: torch.Tensor, other: torch.Tensor):
    """The fused kernels when they apply to ``x`` and a tensor that goes with it (a slope, an upstream gradient) of
    the same dtype: built and not turned off, a contiguous CPU float32/float64 input of 2 or more dims. Else None
    (the eager path). They run on torch's threads, with the same numbers on any number of them."""
    if (x.dim() < 2 or not x.is_cpu or x.dtype not in (torch.float32, torch.float64)
            or other.dtype != x.dtype or not x.is_contiguous()):
        return None
    return fused.kernels()


class LerpGate(torch.autograd.Function):
    """``y = act(x) + slope * (x - act(x))`` with slope per unit on dim 1; saves x and act(x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: torch.Tensor, act: nn.Module, deriv: Derivative) -> torch.Tensor:
        a = act(x)
        ctx.deriv = deriv
        ctx.save_for_backward(x, a, slope)
        return torch.lerp(a, x, _unit_view(slope, x))  # lerp: exact at slope 0 and 1

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, a, slope = ctx.saved_tensors
        grad_x = grad_slope = None
        kernels = _fused_kernels(x, grad) if ctx.needs_input_grad[0] else None
        if kernels is not None:  # one pass: d input into ga, d slope summed alongside
            grad_x, grad_slope = kernels.lerp_backward(ctx.deriv(grad, x, a), grad.contiguous(), x, a, slope,
                                                       ctx.needs_input_grad[1])
            return grad_x, (grad_slope if ctx.needs_input_grad[1] else None), None, None
        if ctx.needs_input_grad[0]:
            ga = ctx.deriv(grad, x, a)
            grad_x = ga.lerp_(grad, _unit_view(slope, x))  # act'(x) g + slope (g - act'(x) g), in place
        if ctx.needs_input_grad[1]:
            d = (x - a).mul_(grad)
            grad_slope = d.sum(_reduce_dims(x)) if x.dim() > 1 else d
        return grad_x, grad_slope, None, None



#: Up to this many elements the gate runs on autograd's native ``act`` and ``lerp`` (a Python autograd.Function
#: costs about 20 us a call more on CPU, which the fewer passes over memory pay back only on larger inputs; measured
#: one thread, (128, 256) and (256, 256): autograd ahead for 7 of 8 activations, (256, 1024): the Function ahead).
FUNCTION_MIN_NUMEL = 65536


#: Per exact module type the fused kernels cover (:mod:`nonlin_explorer.fused`): ``(kind, p1, p2)`` from its settings
#: (ELU's p1, p2: alpha and scale; CELU's input scale is not covered).
_FUSED_KINDS: dict[type, Callable[[nn.Module], tuple[int, float, float]]] = {
    nn.ReLU: lambda m: (fused.RELU, 0.0, 0.0),
    nn.LeakyReLU: lambda m: (fused.LEAKY_RELU, float(m.negative_slope), 0.0),
    nn.ReLU6: lambda m: (fused.HARDTANH, 0.0, 6.0),
    nn.Hardtanh: lambda m: (fused.HARDTANH, float(m.min_val), float(m.max_val)),
    nn.GELU: lambda m: (fused.GELU_TANH if m.approximate == "tanh" else fused.GELU, 0.0, 0.0),
    nn.SiLU: lambda m: (fused.SILU, 0.0, 0.0),
    nn.Hardswish: lambda m: (fused.HARDSWISH, 0.0, 0.0),
    nn.ELU: lambda m: (fused.ELU, float(m.alpha), 1.0),
    nn.SELU: lambda m: (fused.ELU, _SELU_ALPHA, _SELU_SCALE),
    nn.Mish: lambda m: (fused.MISH, 0.0, 0.0),
}



def fused_kind(act: nn.Module) -> tuple[int, float, float] | None:
    """The fused kernels' ``(kind, p1, p2)`` for an activation module of a covered type, else None."""
    make = _FUSED_KINDS.get(type(act))
    return None if make is None else make(act)


def fused_gate(x: torch.Tensor, slope: torch.Tensor, kind: tuple[int, float, float], numerics: int
               ) -> torch.Tensor | None:
    """The gate through the fused CPU kernels, with the arithmetic of the eager path named by ``numerics``
    (:data:`fused.AUTOGRAD`, :data:`fused.PRELU`, :data:`fused.FUNCTION`); None where they do not apply
    (:func:`_fused_kernels`)."""
    kernels = _fused_kernels(x, slope)
    if kernels is None:
        return None
    return kernels.gate(x, slope.contiguous(), kind[0], kind[1], kind[2], numerics)


def lerp_gate(x: torch.Tensor, slope: torch.Tensor, act: nn.Module, deriv: Derivative | None) -> torch.Tensor:
    """``lerp(act(x), x, slope)`` (slope per unit on dim 1): compiled when opted in (:func:`compile_requested`),
    else fused (:func:`fused_gate`) for the activations the kernels cover, else through :class:`LerpGate` when a
    derivative kernel is known, a gradient is needed and x has more than :data:`FUNCTION_MIN_NUMEL` elements, else
    plain ops (autograd). The piecewise-linear kernels compute exactly what the eager path they replace computes; the
    smooth ones, the same up to rounding."""
    if not (x.requires_grad or slope.requires_grad) or x.dtype != slope.dtype:
        return torch.lerp(act(x), x, _unit_view(slope, x))
    y = compiled_gate(x, slope, act)
    if y is not None:
        return y
    kind = fused_kind(act)
    if kind is not None:
        eager_function = kind[0] in fused.SMOOTH or (deriv is not None and x.numel() > FUNCTION_MIN_NUMEL)
        y = fused_gate(x, slope, kind, fused.FUNCTION if eager_function else fused.AUTOGRAD)
        if y is not None:
            return y
    if deriv is None or x.numel() <= FUNCTION_MIN_NUMEL:
        return torch.lerp(act(x), x, _unit_view(slope, x))
    return LerpGate.apply(x, slope, act, deriv)


# -- optional torch.compile path -----------------------------------------------------------------

#: Set to ``1`` to run gates through ``torch.compile`` (one fused kernel forward and one backward per activation,
#: input shape and dtype; compile time paid on each one's first forward and first backward; the forward's is reported
#: by :func:`gate_backend`).
COMPILE_ENV = "NONLIN_EXPLORER_COMPILE"

#: What the compile path did: ``fallback`` (why gates run eagerly after a failed compile, chosen once) and the
#: seconds each first forward call (forward compile included) took, by activation and input shape; the backward
#: compiles on the first backward, not counted here.
_BACKEND: dict = {"fallback": None, "first_call_s": {}}
_COMPILED: dict = {}


def compile_requested() -> bool:
    """Whether the user opted in to compiled gates (environment variable ``NONLIN_EXPLORER_COMPILE=1``)."""
    return os.environ.get(COMPILE_ENV, "") == "1"


def gate_backend() -> dict:
    """How gates run: ``{"backend": "compiled" | "fused" | "eager", "fallback": why compiling failed or None,
    "fused": why the fused kernels are not used or None, "first_call_s": {...}}`` ("fused": the gates of the activations
    in :data:`_FUSED_KINDS` run fused on CPU, the others eagerly with a fused backward on large inputs)."""
    compiled = compile_requested() and _BACKEND["fallback"] is None
    state = fused.status()
    backend = "compiled" if compiled else "fused" if state["fused"] else "eager"
    return {"backend": backend, "fallback": _BACKEND["fallback"], "fused": state["reason"],
            "first_call_s": dict(_BACKEND["first_call_s"])}


def _signature(act: nn.Module) -> tuple:
    """What makes two activation modules compute the same function (type, settings, a functional call's args)."""
    kwargs = getattr(act, "kwargs", None)
    return (type(act).__qualname__, repr(act), getattr(act, "fn", None), getattr(act, "args", None),
            tuple(sorted(kwargs.items())) if isinstance(kwargs, dict) else None)


def _lerp_act(act: nn.Module, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    return torch.lerp(act(x), x, _unit_view(slope, x))


def compiled_gate(x: torch.Tensor, slope: torch.Tensor, act: nn.Module) -> torch.Tensor | None:
    """``lerp(act(x), x, slope)`` compiled, when opted in and a gradient is needed; None otherwise, or after a failed
    compile switched every gate to eager for good (warned once)."""
    if not (compile_requested() and _BACKEND["fallback"] is None and (x.requires_grad or slope.requires_grad)):
        return None
    import copy
    import functools

    key = _signature(act)
    fn = _COMPILED.get(key)
    try:
        if fn is None:
            fn = _COMPILED[key] = torch.compile(functools.partial(_lerp_act, copy.deepcopy(act)), dynamic=False)
        shape_key = f"{key[1]} {tuple(x.shape)} {x.dtype} {x.device.type}"
        if shape_key in _BACKEND["first_call_s"]:
            return fn(x, slope)
        start = time.perf_counter()
        y = fn(x, slope)
        _BACKEND["first_call_s"][shape_key] = time.perf_counter() - start
        return y
    except Exception as err:  # any compiler failure: eager from now on, said once
        _BACKEND["fallback"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
        warnings.warn(f"torch.compile failed for the gates ({_BACKEND['fallback']}); gates run eagerly",
                      RuntimeWarning, stacklevel=3)
        return None
