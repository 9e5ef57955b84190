"""Collapse the linear parts of a network into a smaller network that computes the same function.

A gate layer whose units are all linear is the identity, so the affine maps around it compose into one.
:func:`collapse` rewrites the traced model (eval-mode semantics) with a partial evaluator that keeps
affine maps symbolic as long as composing them is exact and no more expensive:

* ``Linear`` after ``Linear`` (through linear gates, BatchNorm1d, dropout, residual additions and scalar
  factors) becomes one affine map; the output of several sources (a skip) becomes an :class:`AffineSum`;
* a *partially* linear gate layer after a ``Linear`` keeps only its nonlinear units: their
  pre-activations are computed alone, and the linear units flow on as an affine bypass into the next map;
* BatchNorm is folded into the conv or linear before it, 1x1 conv chains merge (a 1x1 conv after any
  conv; a 1x1 conv before a conv when no bias crosses a zero padding).

Everything else is kept as it is. What cannot be done exactly raises ``NotImplementedError`` naming the
layer (``strict=True``) or is kept unchanged (``strict=False``): a partially linear gate on conv channels
(dropping channels would need a conv-conv merge that zero padding makes inexact) and gates inside
transformer layers.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from nonlin_explorer.gates import LinearizableActivation, gates
from nonlin_explorer.graph import STRUCTURED_LEAVES, as_tuple, register_leaf, trace_model
from nonlin_explorer.graph.ops import (
    ADD_FUNCTIONS,
    ADD_METHODS,
    DIV_FUNCTIONS,
    DIV_METHODS,
    MUL_FUNCTIONS,
    MUL_METHODS,
    NEG_FUNCTIONS,
    NEG_METHODS,
    SUB_FUNCTIONS,
    SUB_METHODS,
    is_op,
)
from nonlin_explorer.plumbing import eval_mode, forward_hooks, run_model, set_gate_index
from nonlin_explorer.trace_guard import forward_pass

__all__ = ["AffineSum", "CollapseResult", "collapse", "count_flops", "inference_time"]

_CONV_ND = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@register_leaf  # for the unit graph: every input unit feeds every output unit (over the last dim)
class AffineSum(nn.Module):
    """``y = b + sum_j x_j @ W_j^T``: one affine map of several inputs (a collapsed skip connection)."""

    def __init__(self, in_features: Sequence[int], out_features: int, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.in_features = list(in_features)
        self.out_features = out_features
        self.weights = nn.ParameterList([nn.Parameter(torch.zeros(out_features, i, **kw)) for i in in_features])
        self.bias = nn.Parameter(torch.zeros(out_features, **kw))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = F.linear(xs[0], self.weights[0], self.bias)
        for x, w in zip(xs[1:], self.weights[1:]):
            y = torch.addmm(y, x, w.t()) if x.dim() == 2 else y + F.linear(x, w)
        return y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# -- symbolic values -----------------------------------------------------------------------------------------

@dataclass(eq=False)
class _Aff:
    """``sum_j src_j @ M_j^T + bias`` over the last dim, not yet emitted (matrices in float64)."""

    terms: list[tuple[fx.Node, torch.Tensor]]
    bias: torch.Tensor
    origins: tuple[str, ...]
    node: fx.Node | None = None

    @property
    def out_features(self) -> int:
        return int(self.bias.numel())

    @property
    def in_total(self) -> int:
        return sum(int(m.shape[1]) for _, m in self.terms)

    def is_identity(self) -> bool:
        if len(self.terms) != 1 or bool(self.bias.any()):
            return False
        m = self.terms[0][1]
        return m.shape[0] == m.shape[1] and torch.equal(m, torch.eye(m.shape[0], dtype=m.dtype, device=m.device))


@dataclass(eq=False)
class _Conv:
    """A conv (BatchNorm maybe folded in) on ``src``, not yet emitted (weights in float64)."""

    src: fx.Node
    weight: torch.Tensor
    bias: torch.Tensor | None
    stride: tuple
    padding: Any
    dilation: tuple
    groups: int
    dims: int
    origins: tuple[str, ...]
    node: fx.Node | None = None

    @property
    def pointwise(self) -> bool:
        return (all(k == 1 for k in self.weight.shape[2:]) and all(s == 1 for s in self.stride)
                and _zero_padding(self.padding) and self.groups == 1)


def _zero_padding(p) -> bool:
    if isinstance(p, str):
        return p == "valid"
    return all(int(x) == 0 for x in (p if isinstance(p, (tuple, list)) else (p,)))


# -- the rewriter ---------------------------------------------------------------------------------------------

class _Collapser:
    def __init__(self, gm: fx.GraphModule, tol: float, strict: bool):
        self.gm = gm
        self.tol = tol
        self.strict = strict
        self.graph = fx.Graph()
        self.targets: dict[str, Any] = {}
        self.env: dict[fx.Node, Any] = {}
        self.removed: list[str] = []
        self.split: list[str] = []
        self.kept: list[str] = []
        self.merges: list[str] = []
        p = next(gm.parameters(), None)
        self.dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
        self.device = p.device if p is not None else torch.device("cpu")

    # -- emission --------------------------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.targets:
            name, k = f"{base}_{k}", k + 1
        return name

    def emit_module(self, target: str, module: nn.Module, args: tuple) -> fx.Node:
        self.targets[target] = module
        return self.graph.call_module(target, args)

    def materialize(self, v: Any) -> Any:
        if isinstance(v, _Aff):
            if v.node is None:
                v.node = self._emit_affine(v)
            return v.node
        if isinstance(v, _Conv):
            if v.node is None:
                v.node = self._emit_conv(v)
            return v.node
        if isinstance(v, (tuple, list)):
            return type(v)(self.materialize(x) for x in v)
        if isinstance(v, dict):
            return {k: self.materialize(x) for k, x in v.items()}
        if isinstance(v, slice):
            return slice(self.materialize(v.start), self.materialize(v.stop), self.materialize(v.step))
        return v

    def _note_merge(self, origins: tuple[str, ...], target: str, what: str) -> None:
        if len(origins) > 1:
            self.merges.append(f"{' + '.join(dict.fromkeys(origins))} -> {target} ({what})")

    def _emit_affine(self, v: _Aff) -> fx.Node:
        if v.is_identity():
            return v.terms[0][0]
        out = v.out_features
        if len(v.terms) == 1 and len(v.origins) == 1:
            target = self.unique(v.origins[0])  # an unmerged Linear keeps its name
        else:
            target = self.unique("affine_" + (v.origins[-1] if v.origins else "map").replace(".", "_"))
        if len(v.terms) == 1:
            src, m = v.terms[0]
            mod = nn.Linear(m.shape[1], out, device=self.device, dtype=self.dtype)
            with torch.no_grad():
                mod.weight.copy_(m)
                mod.bias.copy_(v.bias)
            self._note_merge(v.origins, target, f"Linear {m.shape[1]}->{out}")
            return self.emit_module(target, mod, (src,))
        mod = AffineSum([int(m.shape[1]) for _, m in v.terms], out, device=self.device, dtype=self.dtype)
        with torch.no_grad():
            for w, (_, m) in zip(mod.weights, v.terms):
                w.copy_(m)
            mod.bias.copy_(v.bias)
        self._note_merge(v.origins, target, f"AffineSum {mod.in_features}->{out}")
        return self.emit_module(target, mod, tuple(src for src, _ in v.terms))

    def _emit_conv(self, v: _Conv) -> fx.Node:
        cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[v.dims]
        out_c, in_per_group = int(v.weight.shape[0]), int(v.weight.shape[1])
        mod = cls(in_per_group * v.groups, out_c, tuple(v.weight.shape[2:]), stride=v.stride, padding=v.padding,
                  dilation=v.dilation, groups=v.groups, bias=v.bias is not None, device=self.device,
                  dtype=self.dtype)
        with torch.no_grad():
            mod.weight.copy_(v.weight)
            if v.bias is not None:
                mod.bias.copy_(v.bias)
        target = self.unique(v.origins[0])  # named after its conv (BatchNorm and 1x1 convs folded in)
        self._note_merge(v.origins, target, f"{cls.__name__} {mod.in_channels}->{out_c}")
        return self.emit_module(target, mod, (v.src,))

    def copy_node(self, n: fx.Node) -> fx.Node:
        if n.op == "call_module":
            self.targets[str(n.target)] = self.gm.get_submodule(str(n.target))
        elif n.op == "get_attr":
            obj = self.gm
            for part in str(n.target).split("."):
                obj = getattr(obj, part)
            self.targets[str(n.target)] = obj
        new = self.graph.node_copy(n, lambda a: self.materialize(self.env[a]))
        return new

    # -- the affine algebra -------------------------------------------------------------------------------
    def as_affine(self, v: Any, features: int) -> _Aff:
        if isinstance(v, _Aff):
            return v
        node = self.materialize(v)
        eye = torch.eye(features, dtype=torch.float64, device=self.device)
        return _Aff([(node, eye)], torch.zeros(features, dtype=torch.float64, device=self.device), ())

    @staticmethod
    def combine(parts: Sequence[tuple[float, _Aff]], extra_bias: float = 0.0) -> _Aff:
        terms: dict[fx.Node, torch.Tensor] = {}
        bias = None
        origins: tuple[str, ...] = ()
        for c, a in parts:
            for src, m in a.terms:
                terms[src] = terms[src] + c * m if src in terms else c * m
            bias = c * a.bias if bias is None else bias + c * a.bias
            origins += a.origins
        return _Aff(list(terms.items()), bias + extra_bias, origins)

    def linear(self, v: Any, weight: torch.Tensor, bias: torch.Tensor | None, origin: str) -> _Aff:
        w = weight.detach().to(torch.float64)
        b = bias.detach().to(torch.float64) if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64,
                                                                                    device=w.device)
        out, inp = w.shape
        if isinstance(v, _Aff) and not v.is_identity():
            compose = out * v.in_total
            keep = inp * v.in_total + out * inp
            if compose <= keep:
                return _Aff([(src, w @ m) for src, m in v.terms], w @ v.bias + b, v.origins + (origin,))
        node = self.materialize(v)
        return _Aff([(node, w)], b, (origin,))

    # -- gates ------------------------------------------------------------------------------------------------
    def gate(self, n: fx.Node, g: LinearizableActivation, v: Any) -> Any:
        name = g.name or str(n.target)
        nonlinear = g.nonlinear_mask(self.tol).cpu()
        if not bool(nonlinear.any()):
            self.removed.append(name)
            return v
        if bool(nonlinear.all()):
            return self.copy_gate(n, v)
        val = n.meta.get("val")
        last_axis = g.axis == -1 or (isinstance(val, torch.Tensor) and val.dim() == 2)
        if isinstance(v, _Aff) and last_axis:
            self.split.append(name)
            return self.split_gate(n, g, v, nonlinear)
        if self.strict:
            raise NotImplementedError(
                f"collapse: gate layer '{name}' is partially linear ({int((~nonlinear).sum())} of {g.num_units} "
                f"units) and does not follow a Linear layer; dropping its linear units exactly would need "
                "merging the layers around it, which collapse does only for Linear layers. Pass strict=False to "
                "keep this layer as it is.")
        self.kept.append(name)
        return self.copy_gate(n, v)

    def copy_gate(self, n: fx.Node, v: Any) -> fx.Node:
        self.targets[str(n.target)] = self.gm.get_submodule(str(n.target))
        return self.graph.call_module(str(n.target), (self.materialize(v),))

    def split_gate(self, n: fx.Node, g: LinearizableActivation, v: _Aff, nonlinear: torch.Tensor) -> _Aff:
        keep = torch.nonzero(nonlinear).reshape(-1).to(v.bias.device)
        rows = _Aff([(src, m[keep]) for src, m in v.terms], v.bias[keep], v.origins)
        pre = self.materialize(rows)
        sub = g.like(int(keep.numel()))
        sub.name = g.name or str(n.target)
        with torch.no_grad():
            sub.alpha.copy_(g.alpha.detach()[keep.to(g.alpha.device)])
            sub.state.copy_(g.state[keep.to(g.state.device)])
        sub.original_units = keep.cpu().tolist()
        sub.to(g.alpha.device)
        h = self.emit_module(self.unique(str(n.target)), sub, (pre,))
        terms = []
        for src, m in v.terms:
            m = m.clone()
            m[keep] = 0
            if bool(m.any()):
                terms.append((src, m))
        scatter = torch.zeros(v.out_features, keep.numel(), dtype=torch.float64, device=v.bias.device)
        scatter[keep, torch.arange(keep.numel(), device=keep.device)] = 1.0
        bias = v.bias.clone()
        bias[keep] = 0
        return _Aff(terms + [(h, scatter)], bias, ())

    # -- convs and batch norm ---------------------------------------------------------------------------------
    def conv(self, n: fx.Node, m: nn.Module, v: Any) -> _Conv | fx.Node:
        dims = _CONV_ND[type(m)]
        w = m.weight.detach().to(torch.float64)
        b = m.bias.detach().to(torch.float64) if m.bias is not None else None
        this = _Conv(None, w, b, tuple(m.stride), m.padding, tuple(m.dilation), m.groups, dims, (str(n.target),))
        if m.padding_mode != "zeros":
            return self.copy_node(n)
        if isinstance(v, _Conv) and v.dims == dims:
            merged = self._compose_convs(v, this)
            if merged is not None:
                return merged
        this.src = self.materialize(v)
        return this

    @staticmethod
    def _compose_convs(first: _Conv, second: _Conv) -> _Conv | None:
        """``second(first(x))`` as one conv when exact and no bigger; else None."""
        c1, c2 = first.weight.shape[0], second.weight.shape[0]
        if second.pointwise:
            w1 = _dense_weight(first.weight, first.groups)  # (c1, cin, k...)
            w2 = second.weight.reshape(c2, c1)
            w = torch.einsum("oc,ci...->oi...", w2, w1)
            b = second.bias.clone() if second.bias is not None else torch.zeros(c2, dtype=w.dtype, device=w.device)
            if first.bias is not None:
                b = b + w2 @ first.bias
            merged = _Conv(first.src, w, b, first.stride, first.padding, first.dilation, 1, first.dims,
                           first.origins + second.origins)
        elif first.pointwise and second.groups == 1 and (first.bias is None or not bool(first.bias.any())
                                                         or _zero_padding(second.padding)):
            w1 = first.weight.reshape(c1, -1)  # (c1, cin)
            w = torch.einsum("oc...,ci->oi...", second.weight, w1)
            b = second.bias.clone() if second.bias is not None else torch.zeros(c2, dtype=w.dtype, device=w.device)
            if first.bias is not None:
                b = b + torch.einsum("oc...,c->o", second.weight, first.bias)
            merged = _Conv(first.src, w, b, second.stride, second.padding, second.dilation, 1, first.dims,
                           first.origins + second.origins)
        else:
            return None
        if merged.weight.numel() > first.weight.numel() + second.weight.numel():
            return None
        return merged

    def batch_norm(self, n: fx.Node, m: nn.Module, v: Any) -> Any:
        if m.running_mean is None or m.running_var is None:
            return self.copy_node(n)  # batch statistics even in eval mode: not affine
        scale = (m.running_var.detach().to(torch.float64) + m.eps).rsqrt()
        if m.weight is not None:
            scale = scale * m.weight.detach().to(torch.float64)
        shift = -m.running_mean.detach().to(torch.float64) * scale
        if m.bias is not None:
            shift = shift + m.bias.detach().to(torch.float64)
        origin = str(n.target)
        if isinstance(v, _Conv):
            shape = (-1,) + (1,) * (v.weight.dim() - 1)
            b = v.bias if v.bias is not None else torch.zeros_like(scale)
            return _Conv(v.src, v.weight * scale.view(shape), b * scale + shift, v.stride, v.padding, v.dilation,
                         v.groups, v.dims, v.origins + (origin,))
        val = n.meta.get("val")
        if isinstance(v, _Aff) and isinstance(val, torch.Tensor) and val.dim() == 2:
            return _Aff([(src, scale[:, None] * mat) for src, mat in v.terms], v.bias * scale + shift,
                        v.origins + (origin,))
        return self.copy_node(n)

    # -- dispatch ----------------------------------------------------------------------------------------------
    def node(self, n: fx.Node) -> Any:
        if n.op in ("placeholder", "get_attr"):
            return self.copy_node(n)
        args = fx.node.map_arg(n.args, lambda a: self.env[a])
        if n.op == "call_module":
            m = self.gm.get_submodule(str(n.target))
            v = args[0] if args else None
            if isinstance(m, LinearizableActivation):
                return self.gate(n, m, v)
            if isinstance(m, _PASS_THROUGH):
                return v
            if isinstance(m, nn.Linear):
                return self.linear(v, m.weight, m.bias, str(n.target))
            if type(m) in _CONV_ND:
                return self.conv(n, m, v)
            if isinstance(m, _BNS):
                return self.batch_norm(n, m, v)
            if isinstance(m, STRUCTURED_LEAVES):
                self.check_leaf(str(n.target), m)
            return self.copy_node(n)
        if n.op in ("call_function", "call_method"):
            affine = self.affine_op(n, args)
            if affine is not None:
                return affine
        return self.copy_node(n)

    def affine_op(self, n: fx.Node, args: tuple) -> _Aff | None:
        """Additions, subtractions, negation and scalar factors of affine values stay affine."""
        if n.kwargs or not any(isinstance(a, _Aff) for a in args):
            return None
        val = n.meta.get("val")
        if not isinstance(val, torch.Tensor):
            return None
        if is_op(n, NEG_FUNCTIONS, NEG_METHODS) and len(args) == 1:
            return self.combine([(-1.0, args[0])])
        if len(args) != 2:
            return None
        a, b = args
        scalar = [isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)]
        subtract = is_op(n, SUB_FUNCTIONS, SUB_METHODS)
        if subtract or is_op(n, ADD_FUNCTIONS, ADD_METHODS):
            sign = -1.0 if subtract else 1.0
            if scalar[1]:
                return self.combine([(1.0, a)], sign * float(b))
            if scalar[0]:
                return self.combine([(sign, b)], float(a))
            shapes = [tuple(x.meta["val"].shape) for x in n.args if isinstance(x, fx.Node)]
            if len(shapes) != 2 or shapes[0] != tuple(val.shape) or shapes[1] != tuple(val.shape):
                return None  # broadcasting: keep the op
            feats = int(val.shape[-1])
            return self.combine([(1.0, self.as_affine(a, feats)), (sign, self.as_affine(b, feats))])
        if is_op(n, MUL_FUNCTIONS, MUL_METHODS) and any(scalar):
            c, x = (float(a), b) if scalar[0] else (float(b), a)
            return self.combine([(c, x)])
        if is_op(n, DIV_FUNCTIONS, DIV_METHODS) and scalar[1] and float(b) != 0.0:
            return self.combine([(1.0 / float(b), a)])
        return None

    def check_leaf(self, path: str, m: nn.Module) -> None:
        _check_leaf(path, m, self.tol, self.strict, self.kept)

    def run(self) -> fx.GraphModule:
        for n in self.gm.graph.nodes:
            if n.op == "output":
                out = fx.node.map_arg(n.args[0], lambda a: self.env[a])
                self.graph.output(self.materialize(out))
                break
            self.env[n] = self.node(n)
        gm = fx.GraphModule(self.targets, self.graph, class_name="Collapsed")
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.delete_all_unused_submodules()
        gm.recompile()
        return gm


def _check_leaf(path: str, m: nn.Module, tol: float, strict: bool, kept: list[str]) -> None:
    """Gates inside a transformer layer stay: raise (strict) or record them if any unit is linear."""
    for g in gates(m):
        linear = ~g.nonlinear_mask(tol)
        if bool(linear.any()):
            where = g.name or path
            if strict:
                raise NotImplementedError(
                    f"collapse: gate layer '{where}' inside {type(m).__name__} '{path}' has {int(linear.sum())} "
                    "linear units; collapse does not rewrite transformer layers. Pass strict=False to keep it "
                    "as it is.")
            kept.append(where)


def _dense_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped conv weight (out, in/groups, k...) as the equivalent dense one (out, in, k...)."""
    if groups == 1:
        return w
    out, per = w.shape[0], w.shape[1]
    dense = w.new_zeros((out, per * groups) + tuple(w.shape[2:]))
    step = out // groups
    for g in range(groups):
        dense[g * step:(g + 1) * step, g * per:(g + 1) * per] = w[g * step:(g + 1) * step]
    return dense


# -- measurement ----------------------------------------------------------------------------------------------

def _batch_size(inputs: tuple) -> int:
    for t in inputs:
        if isinstance(t, torch.Tensor) and t.dim() > 0:
            return int(t.shape[0])
    return 1


def count_flops(model: nn.Module, example_input) -> int:
    """Floating-point operations per example of one forward pass: 2 per multiply-add of Linear, conv,
    :class:`AffineSum` and attention layers; 2 per element for BatchNorm/LayerNorm; 1 per element for gates
    and activation modules. Functional elementwise ops (residual additions, pooling) are not counted."""
    inputs = as_tuple(example_input)
    total = [0]

    def hook(m, args, out):
        o = out[0] if isinstance(out, tuple) else out
        if isinstance(m, nn.Linear):
            total[0] += 2 * m.in_features * o.numel()
        elif isinstance(m, AffineSum):
            total[0] += 2 * sum(m.in_features) * o.numel()
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            k = m.weight[0].numel()  # in/groups * kernel
            total[0] += 2 * k * o.numel()
        elif isinstance(m, nn.MultiheadAttention):
            q, kv = args[0], args[1]
            batch_first = m.batch_first and q.dim() == 3
            lq = q.shape[1] if batch_first else q.shape[0]
            lk = kv.shape[1] if batch_first else kv.shape[0]
            b = q.numel() // (lq * m.embed_dim)
            e = m.embed_dim
            total[0] += 2 * b * (lq * e * e + 2 * lk * e * e + 2 * lq * lk * e + lq * e * e)
        elif isinstance(m, (*_BNS, nn.LayerNorm)):
            total[0] += 2 * o.numel()
        elif isinstance(m, (LinearizableActivation, nn.ReLU, nn.GELU)):
            total[0] += o.numel()

    counted = (nn.Linear, AffineSum, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MultiheadAttention, *_BNS, nn.LayerNorm,
               LinearizableActivation, nn.ReLU, nn.GELU)
    # grad on: keeps torch's fused transformer paths off, so submodules run
    with forward_hooks([(m, hook) for m in model.modules() if isinstance(m, counted)]), eval_mode(model, grad=True):
        run_model(model, inputs)
    return total[0] // max(_batch_size(inputs), 1)


def inference_time(model: nn.Module, example_input, repeats: int = 20, warmup: int = 2) -> float:
    """Median seconds of one forward pass on ``example_input`` (eval mode, no grad)."""
    inputs = as_tuple(example_input)
    cuda = any(isinstance(t, torch.Tensor) and t.is_cuda for t in inputs)
    times = []
    with eval_mode(model), forward_pass():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(*inputs)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class CollapseResult:
    """The collapsed model and what collapsing changed (FLOPs per example, seconds per forward pass)."""

    model: nn.Module
    params_before: int
    params_after: int
    flops_before: int
    flops_after: int
    time_before: float
    time_after: float
    max_abs_error: float
    removed: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)

    @property
    def param_ratio(self) -> float:
        return self.params_after / max(self.params_before, 1)

    @property
    def flop_ratio(self) -> float:
        return self.flops_after / max(self.flops_before, 1)

    @property
    def time_ratio(self) -> float:
        return self.time_after / self.time_before if self.time_before > 0 else float("nan")

    def __str__(self) -> str:
        lines = [
            f"{'':12}{'before':>14}{'after':>14}{'ratio':>8}",
            f"{'parameters':12}{self.params_before:>14,}{self.params_after:>14,}{self.param_ratio:>8.3f}",
            f"{'FLOPs':12}{self.flops_before:>14,}{self.flops_after:>14,}{self.flop_ratio:>8.3f}",
            f"{'time [ms]':12}{self.time_before * 1e3:>14.3f}{self.time_after * 1e3:>14.3f}{self.time_ratio:>8.3f}",
            f"max |difference| on the example input: {self.max_abs_error:.2e}",
            f"removed (all linear): {', '.join(self.removed) or '-'}",
            f"split (nonlinear units kept, affine bypass): {', '.join(self.split) or '-'}",
            f"kept as they are: {', '.join(self.kept) or '-'}",
        ]
        lines += [f"merged: {m}" for m in self.merges]
        return "\n".join(lines)


def _gate_order(model: nn.Module, inputs: tuple) -> list[str]:
    order: list[str] = []
    hooks = [(g, lambda m, i, n=n: order.append(n) if n not in order else None)
             for n, g in model.named_modules() if isinstance(g, LinearizableActivation)]
    with forward_hooks(hooks, pre=True), torch.no_grad():
        run_model(model, inputs)
    return order


def collapse(model: nn.Module, example_input, tol: float = 0.0, strict: bool = True,
             timing_repeats: int = 20) -> CollapseResult:
    """A smaller network computing the same function as ``model`` in eval mode.

    Units count as linear when ``1 - alpha <= tol`` (default 0: exactly linear, so the result is exact to
    floating-point rounding; a larger ``tol`` trades accuracy for size). ``strict=False`` keeps layers
    that cannot be collapsed exactly instead of raising ``NotImplementedError``. ``timing_repeats=0`` skips
    the timing. The original model is not modified.
    """
    inputs = as_tuple(example_input)
    work = copy.deepcopy(model).eval()
    if isinstance(work, (LinearizableActivation, *STRUCTURED_LEAVES)):  # a bare leaf: nothing to rewrite
        collapsed, removed, split, kept, merges = work, [], [], [], []
        _check_leaf(type(work).__name__, work, tol, strict, kept)
    else:
        gm = trace_model(work, inputs)
        rewriter = _Collapser(gm, tol, strict)
        with forward_pass():  # the partial evaluator calls modules: never during a trace elsewhere
            collapsed = rewriter.run().eval()
        set_gate_index(collapsed, _gate_order(collapsed, inputs))
        removed, split, kept, merges = rewriter.removed, rewriter.split, rewriter.kept, rewriter.merges
    with eval_mode(model), forward_pass():
        err = _max_abs_difference(model(*inputs), collapsed(*inputs))
    flops_before, flops_after = count_flops(model, inputs), count_flops(collapsed, inputs)
    t_before = inference_time(model, inputs, timing_repeats) if timing_repeats else float("nan")
    t_after = inference_time(collapsed, inputs, timing_repeats) if timing_repeats else float("nan")
    return CollapseResult(collapsed, _params(model), _params(collapsed), flops_before, flops_after, t_before,
                          t_after, err, list(removed), list(split), list(kept), list(merges))


def _max_abs_difference(a: Any, b: Any) -> float:
    if isinstance(a, torch.Tensor):
        return float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
    if isinstance(a, (tuple, list)):
        return max((_max_abs_difference(x, y) for x, y in zip(a, b)), default=0.0)
    return 0.0
