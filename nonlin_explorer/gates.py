"""Linearizable units: any elementwise activation with a per-unit ``alpha`` in [0, 1] (0: the activation, 1: linear).

``f(x) = lerp(act(x), x, alpha) = act(x) + alpha (x - act(x))``, per unit: exact at alpha = 0 (the original
activation) and at alpha = 1 (a linear unit). For ReLU this is ``max(x, 0) + alpha * min(x, 0)``, a channel-wise
PReLU whose slope is kept in [0, 1], run on torch's fused ``prelu`` kernel (:class:`LinearizableReLU`); any other
activation (GELU, SiLU, ReLU6, Hardswish, ELU, Mish, Hugging Face's GELU variants...) is
:class:`LinearizableActivation` around the original activation module. Each unit is *free* (alpha trained),
*forced linear* (alpha = 1, frozen) or *forced nonlinear* (alpha = 0, frozen).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nonlin_explorer import fused
from nonlin_explorer.activations import GATED_FUNCTIONS, GATED_MODULES, OUT_OF_PLACE
from nonlin_explorer.gate_kernels import compiled_gate, derivative, fused_gate, lerp_gate
from nonlin_explorer.validation import check_int, check_name

#: The attribute ``linearize`` (and ``collapse``) set on a model: its gates' qualified names in forward order
#: (:func:`nonlin_explorer.plumbing.set_gate_index`).
GATE_INDEX = "nonlin_gate_index"

#: A default tolerance: a unit counts as linear when ``1 - alpha <= tol``.
DEFAULT_TOL = 1e-3

Units = None | int | slice | Sequence[int] | torch.Tensor


class UnitState(enum.IntEnum):
    """The three states of a unit; the values are what the ``state`` buffer (uint8) holds."""

    FREE = 0
    LINEAR = 1
    NONLINEAR = 2


def unit_state(value) -> UnitState:
    """``value`` as a :class:`UnitState`: one, or its number 0 (free), 1 (linear), 2 (nonlinear); ``ValueError``
    otherwise (``True`` is not a state)."""
    if isinstance(value, UnitState):
        return value
    try:
        return UnitState(check_int("state", value, low=0, high=2))
    except ValueError:
        raise ValueError(f"state must be 0 (free), 1 (linear), 2 (nonlinear) or a UnitState, got {value!r}") from None


class _GateFunction(torch.autograd.Function):
    """``prelu`` with a backward built from fast elementwise ops and one reduction.

    torch's own prelu backward materializes a full-size slope gradient before reducing it, and boolean
    masks (``where``) are slow on CPU; this backward is several times faster on conv feature maps.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, slope)
        return F.prelu(x, slope)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, slope = ctx.saved_tensors
        shape = [1] * x.dim()
        if x.dim() > 1:
            shape[1] = -1
        grad_x = grad_slope = None
        # two full-size allocations (pos, neg); everything else in place on them
        pos = torch.ops.aten.threshold_backward(grad, x, 0)  # grad where x > 0, else 0
        neg = torch.sub(grad, pos)  # grad where x <= 0, else 0
        if ctx.needs_input_grad[0]:
            grad_x = pos.addcmul_(slope.view(shape), neg)  # + slope * grad where x <= 0
        if ctx.needs_input_grad[1]:
            reduce = [d for d in range(x.dim()) if d != 1] if x.dim() > 1 else [0]
            grad_slope = neg.mul_(x).sum(reduce)  # sum of grad * min(x, 0)
            if x.dim() <= 1:
                grad_slope = grad_slope.reshape(slope.shape)
        return grad_x, grad_slope


_RELU = nn.ReLU()
_FUSED_RELU = (fused.RELU, 0.0, 0.0)

#: From this many elements on, the custom backward beats torch's prelu (measured: benchmarks/bench_gates.py).
_CUSTOM_BACKWARD_MIN_NUMEL = 65536


def _gate(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """f(x) = max(x, 0) + slope * min(x, 0), slope per channel (dim 1)."""
    if not (x.requires_grad or slope.requires_grad):
        return F.prelu(x, slope)  # inference: one native kernel
    small = x.numel() < _CUSTOM_BACKWARD_MIN_NUMEL
    y = fused_gate(x, slope, _FUSED_RELU, fused.AUTOGRAD if small else fused.PRELU)  # the same numbers, fewer passes
    if y is not None:
        return y
    if small:
        # Small inputs: relu(x) + slope * (x - relu(x)) as torch.lerp, two native ops whose backward is cheaper
        # than prelu's on CPU (bench_gates: the MLP's gate cost roughly halves); exact at slope 0 and 1.
        view = slope.view([-1 if d == 1 else 1 for d in range(x.dim())]) if x.dim() > 1 else slope
        return torch.lerp(F.relu(x), x, view)
    if x.dim() == 1:
        return _GateFunction.apply(x.unsqueeze(0), slope).squeeze(0) if slope.numel() > 1 else \
            _GateFunction.apply(x, slope)
    return _GateFunction.apply(x, slope)


class LinearizableActivation(nn.Module):
    """An elementwise activation with a per-unit ``alpha`` in [0, 1]: ``lerp(act(x), x, alpha)``.

    ``activation`` is the original activation (a module, run out of place; :func:`make_gate` builds it for
    functional calls too); ``kind`` names it (``"gelu"``, ``"silu"``...). ``axis`` is the unit axis of the input:
    ``1`` (channels of conv maps; features of 2-D inputs) or ``-1`` (the last dimension, e.g. transformer
    features). ``name`` is the gate's qualified module name, set by :func:`nonlin_explorer.linearize`.
    """

    kind = "activation"

    def __init__(self, num_units: int, axis: int = 1, alpha: float = 0.0, name: str = "",
                 activation: nn.Module | None = None, kind: str | None = None):
        super().__init__()
        if num_units < 1:
            raise ValueError(f"num_units must be >= 1, got {num_units}")
        if isinstance(axis, bool) or axis not in (1, -1):
            raise ValueError(f"axis must be 1 (channels) or -1 (last dimension), got {axis!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if activation is None and type(self) is LinearizableActivation:
            raise ValueError("LinearizableActivation needs the activation module it gates")
        self.num_units = int(num_units)
        self.axis = axis
        self.name = check_name(name, "gate name", max_chars=1024) if name else name
        if activation is not None:
            self.act = activation
        if kind is not None:
            self.kind = kind
        self.alpha = nn.Parameter(torch.full((num_units,), float(alpha)))
        self.register_buffer("state", torch.zeros(num_units, dtype=torch.uint8))

    def like(self, num_units: int) -> LinearizableActivation:
        """A fresh gate of the same kind (same activation, axis and name) with ``num_units`` units."""
        if type(self) is LinearizableActivation:
            import copy

            return LinearizableActivation(num_units, self.axis, name=self.name, activation=copy.deepcopy(self.act),
                                          kind=self.kind)
        return type(self)(num_units, self.axis, name=self.name)

    def _gated(self, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        """``lerp(act(x), x, slope)`` with the slope on dim 1 (the caller puts the unit axis there); a hand-written
        backward (:mod:`nonlin_explorer.gate_kernels`) where the activation's derivative kernel is known."""
        return lerp_gate(x, slope, self.act, derivative(self.act))

    # -- forward -------------------------------------------------------------------------------
    def effective_slope(self) -> torch.Tensor:
        """The slopes the forward pass uses: alpha for free units, 1 or 0 for forced ones.

        Alpha is kept in [0, 1] by projection after every optimizer step (:meth:`clamp_`, which the
        training engine calls), not by a clamp in the forward pass: that keeps the gate cheap. Call
        :func:`clamp_slopes_` after ``optimizer.step()`` in a training loop of your own.
        """
        free, fixed = self._masks()
        alpha = self._parameters["alpha"]
        if free is None:
            return alpha
        # every unit forced: the slopes are constants, so autograd skips the d alpha work (a reduction per call)
        return fixed if self._all_forced else torch.addcmul(fixed, alpha, free)

    def _masks(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(free as 0/1 floats, forced value) recomputed only when the state buffer changes;
        ``(None, None)`` while every unit is free. Reads its parameter and buffer from their dicts: this runs at
        every forward pass, and a module attribute lookup costs about a microsecond."""
        state, alpha = self._buffers["state"], self._parameters["alpha"]
        key = (state._version, state.data_ptr(), alpha.dtype, alpha.device)
        if self.__dict__.get("_mask_key") != key:
            self._all_forced = not bool((state == UnitState.FREE).any())
            if bool((state == UnitState.FREE).all()):
                self._mask_cache = (None, None)
            else:
                self._mask_cache = ((state == UnitState.FREE).to(alpha.dtype),
                                    (state == UnitState.LINEAR).to(alpha.dtype))
            self._mask_key = key
        return self._mask_cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = x.dim()
        n = x.shape[self.axis] if dim > 1 else x.shape[0]
        if n != self.num_units:
            raise ValueError(
                f"gate {self.name or '<unnamed>'} has {self.num_units} units on axis {self.axis}, "
                f"but its input has shape {tuple(x.shape)}"
            )
        slope = self.effective_slope()
        if slope.dtype != x.dtype:
            slope = slope.to(x.dtype)
        if dim <= 2 or self.axis == 1:
            return self._gated(x, slope)
        # Unit axis last: view as (rows, units) so the channel axis is the unit axis (no copy).
        return self._gated(x.reshape(-1, self.num_units), slope).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{self.num_units}, axis={self.axis}, name={self.name!r}, kind={self.kind!r}"

    # -- inspection ----------------------------------------------------------------------------
    @property
    def slope(self) -> torch.Tensor:
        """The effective slopes (detached), one per unit."""
        with torch.no_grad():
            return self.effective_slope().detach().clone()

    def nonlinear_mask(self, tol: float = DEFAULT_TOL) -> torch.Tensor:
        """Boolean mask of units still nonlinear (``1 - alpha > tol``)."""
        return (1.0 - self.slope) > tol

    def nonlinear_count(self, tol: float = DEFAULT_TOL) -> int:
        return int(self.nonlinear_mask(tol).sum())

    # -- state changes -------------------------------------------------------------------------
    def _index(self, units: Units) -> torch.Tensor:
        """Normalize a unit selection to a long index tensor, with a clear error when out of range."""
        idx = torch.arange(self.num_units)
        if units is None:
            return idx
        if isinstance(units, slice):
            return idx[units]
        if isinstance(units, bool) or (isinstance(units, Sequence) and any(isinstance(u, bool) for u in units)):
            raise TypeError(f"unit indices must be integers, got {units!r} (use a boolean mask tensor to select)")
        t = torch.as_tensor(units)
        if t.numel() == 0:
            return torch.zeros(0, dtype=torch.long)  # nothing selected (an empty list is a float tensor)
        if t.is_floating_point() or t.is_complex():
            raise TypeError(f"unit indices must be integers, got {units!r}")
        if t.dtype == torch.bool:
            if t.shape != (self.num_units,):
                raise ValueError(f"a boolean unit mask must have shape ({self.num_units},), got {tuple(t.shape)}")
            return idx[t.cpu()]
        t = t.reshape(-1).long().cpu()
        bad = (t < -self.num_units) | (t >= self.num_units)
        if bad.any():
            raise IndexError(
                f"gate {self.name or '<unnamed>'} has units 0..{self.num_units - 1}; got {t[bad].tolist()}"
            )
        return t % self.num_units

    @torch.no_grad()
    def _set(self, units: Units, state: UnitState, value: float | None) -> None:
        i = self._index(units).to(self.state.device)
        self.state[i] = int(state)
        if value is not None:
            self.alpha[i] = value

    def set_linear(self, units: Units = None) -> None:
        """Force units linear (alpha = 1, frozen)."""
        self._set(units, UnitState.LINEAR, 1.0)

    def set_nonlinear(self, units: Units = None) -> None:
        """Force units nonlinear (alpha = 0, frozen): the original activation."""
        self._set(units, UnitState.NONLINEAR, 0.0)

    def release(self, units: Units = None) -> None:
        """Make units free again; their alpha continues from its current value."""
        self._set(units, UnitState.FREE, None)

    def set_state(self, units: Units, state: int | UnitState) -> None:
        """Set units to a given :class:`UnitState` (what a UI click sends)."""
        state = unit_state(state)
        {UnitState.FREE: self.release, UnitState.LINEAR: self.set_linear,
         UnitState.NONLINEAR: self.set_nonlinear}[state](units)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project alpha back to [0, 1] and hold forced units exactly at 1 (linear) or 0 (nonlinear): an optimizer's
        momentum must not move them (the training engine calls this after every step)."""
        self.alpha.clamp_(0.0, 1.0)
        self._hold_forced()

    def _hold_forced(self) -> None:
        free, fixed = self._masks()
        if free is not None:
            self.alpha.mul_(free).add_(fixed)


class LinearizableReLU(LinearizableActivation):
    """ReLU with a per-unit slope ``alpha`` in [0, 1] on its negative side: ``max(x, 0) + alpha min(x, 0)``, on
    torch's fused prelu kernel (the paper's unit; its gradient is hand-written for large inputs)."""

    kind = "relu"

    def __init__(self, num_units: int, axis: int = 1, alpha: float = 0.0, name: str = ""):
        super().__init__(num_units, axis, alpha, name)

    def _gated(self, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        y = compiled_gate(x, slope, _RELU) if x.dtype == slope.dtype else None  # only when opted in
        return _gate(x, slope) if y is None else y


class _Call(nn.Module):
    """A functional activation call (``F.gelu(x, approximate="tanh")``) as a module: ``fn(x, *args, **kwargs)``."""

    def __init__(self, fn, args: tuple = (), kwargs: dict | None = None):
        super().__init__()
        self.fn, self.args, self.kwargs = fn, tuple(args), dict(kwargs or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *self.args, **self.kwargs)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


#: Activation modules gated by default and their kinds (the table lives in :mod:`nonlin_explorer.activations`).
MODULE_KINDS = GATED_MODULES
#: Functional activations gated by default and their kinds (:data:`nonlin_explorer.activations.GATED_FUNCTIONS`).
FUNCTIONAL_KINDS = GATED_FUNCTIONS
#: Hugging Face's activation classes that are not elementwise nonlinearities.
_HF_SKIP = {"LinearActivation", "ClassInstantier", "GLUActivation"}


def activation_kind(module: nn.Module) -> str | None:
    """The kind of an activation module linearize gates by default (None: not one): torch's (MODULE_KINDS) and
    Hugging Face's ``transformers.activations`` classes (kind: the class name, lower case)."""
    for cls in type(module).__mro__:
        if cls in MODULE_KINDS:
            return MODULE_KINDS[cls]
    cls = type(module)
    if cls.__module__.startswith("transformers.activations") and cls.__name__ not in _HF_SKIP:
        return cls.__name__.lower()
    return None


def make_gate(activation, num_units: int, axis: int = 1, name: str = "", args: tuple = (),
              kwargs: dict | None = None) -> LinearizableActivation:
    """The gate for an activation module or a functional call (``fn`` with its other ``args``/``kwargs``): a
    :class:`LinearizableReLU` for plain ReLU, else a :class:`LinearizableActivation` around an out-of-place copy."""
    import copy

    if isinstance(activation, nn.Module):
        kind = activation_kind(activation) or type(activation).__name__.lower()
        if type(activation) is nn.ReLU:
            return LinearizableReLU(num_units, axis, name=name)
        act = copy.deepcopy(activation)
        if getattr(act, "inplace", False):
            act.inplace = False
        return LinearizableActivation(num_units, axis, name=name, activation=act, kind=kind)
    kind = FUNCTIONAL_KINDS.get(activation)
    if kind is None:
        raise ValueError(f"no gate for {activation!r}: not a supported activation")
    kwargs = {k: v for k, v in (kwargs or {}).items() if k != "inplace"}
    fn = OUT_OF_PLACE.get(activation, activation)
    if kind == "relu" and not args and not kwargs:
        return LinearizableReLU(num_units, axis, name=name)
    return LinearizableActivation(num_units, axis, name=name, activation=_Call(fn, args, kwargs), kind=kind)


# -- model-level helpers ---------------------------------------------------------------------------

def gates(model: nn.Module) -> list[LinearizableActivation]:
    """The model's gates in forward order (the index ``linearize`` set), else in module order. Reads only: names
    are written once, when the index is set (:func:`nonlin_explorer.plumbing.set_gate_index`)."""
    found = {name: m for name, m in model.named_modules() if isinstance(m, LinearizableActivation)}
    order = getattr(model, GATE_INDEX, None)
    if order and set(order) == set(found):
        return [found[n] for n in order]
    return list(found.values())


def gate_dict(model: nn.Module) -> dict[str, LinearizableActivation]:
    """Gates by qualified module name, in forward order."""
    return {g.name: g for g in gates(model)}


def sparsity_penalty(model: nn.Module) -> torch.Tensor:
    """``sum(1 - alpha)`` over free units: the sparsity prior (multiply by lambda)."""
    terms = []
    for g in gates(model):
        free = g.state == UnitState.FREE
        terms.append(((1.0 - g.alpha.clamp(0.0, 1.0)) * free).sum())
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def nonlinear_count(model: nn.Module, tol: float = DEFAULT_TOL) -> int:
    """How many units are still nonlinear (``1 - alpha > tol``)."""
    return sum(g.nonlinear_count(tol) for g in gates(model))


def unit_count(model: nn.Module) -> int:
    """How many gated units the model has."""
    return sum(g.num_units for g in gates(model))


@torch.no_grad()
def clamp_slopes_(model: nn.Module, gate_list: Sequence[LinearizableActivation] | None = None) -> None:
    """Project every gate's alpha back to [0, 1] (one fused update; pass ``gate_list`` to skip the lookup) and hold
    forced units exactly at their value (1 linear, 0 nonlinear), whatever the optimizer's momentum did."""
    gate_list = gates(model) if gate_list is None else gate_list
    alphas = [g.alpha for g in gate_list]
    if alphas:
        torch._foreach_clamp_min_(alphas, 0.0)
        torch._foreach_clamp_max_(alphas, 1.0)
    for g in gate_list:
        g._hold_forced()


def gate_snapshot(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Copies of every gate's (alpha, state), to restore later."""
    return {g.name: (g.alpha.detach().clone(), g.state.clone()) for g in gates(model)}


@torch.no_grad()
def restore_gates(model: nn.Module, snapshot: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Put back what :func:`gate_snapshot` saved."""
    for g in gates(model):
        alpha, state = snapshot[g.name]
        g.alpha.copy_(alpha)
        g.state.copy_(state)


@contextlib.contextmanager
def temporary_gates(model: nn.Module) -> Iterator[dict[str, LinearizableActivation]]:
    """Toggle gates freely inside the block; every alpha and state is restored on exit, error or not."""
    snap = gate_snapshot(model)
    try:
        yield gate_dict(model)
    finally:
        restore_gates(model, snap)
