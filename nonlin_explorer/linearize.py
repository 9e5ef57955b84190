"""``linearize``: put a gate (:mod:`nonlin_explorer.gates`) in place of every activation of a model.

Every common elementwise activation is gated by default: torch's ReLU, LeakyReLU, ReLU6, GELU, SiLU, Hardswish,
ELU, SELU, CELU, Mish, Softplus, Tanh, Hardtanh modules, Hugging Face's activation classes, and the functional
calls ``F.relu``, ``F.gelu``, ``F.silu``... (:data:`~nonlin_explorer.gates.FUNCTIONAL_KINDS`); ``activations=``
narrows it (module classes or kind names: ``activations=("relu",)`` gates ReLUs only). Two routes, picked from
one probing forward pass on an example input:

* every activation is a module called exactly once: swap the modules in place (the model keeps its class);
* an activation module is reused, or an activation function is called directly: trace the model with
  ``torch.fx`` and give every call site a gate of its own (returns an ``fx.GraphModule``).

Each gate gets its unit count and unit axis from the shape seen in the probe: channels (dim 1) for
conv feature maps, the last dimension for linear/transformer features.

The model runs twice on the example input, both times in eval mode with grad on (so torch's fused inference paths
cannot skip an activation, and the two runs take the same code paths): the probe, whose output is the reference (one
more run gives it when the probe wrote into a parameter or buffer), and the check of the gated model against it
(rtol 1e-5, atol 1e-6), which refuses a model whose function changed. The fx route takes each gate's input shape
from the probe's calls; only where the trace sees those calls differently (an activation class of the user's own,
which fx traces into) does one shape-propagating run of the trace give them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nonlin_explorer.gates import (
    FUNCTIONAL_KINDS,
    MODULE_KINDS,
    LinearizableActivation,
    activation_kind,
    gates,
    make_gate,
)
from nonlin_explorer.plumbing import (
    eval_mode,
    forward_hooks,
    keep_residual_markers,
    run_model,
    set_gate_index,
)
from nonlin_explorer.trace_guard import forward_pass, fx_tracing
from nonlin_explorer.validation import check_name

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
         nn.MaxPool1d, nn.AvgPool1d, nn.ConvTranspose1d)
_FEATURE_LAST = (nn.Linear, nn.LayerNorm, nn.Embedding, nn.MultiheadAttention)

Axis = int | Mapping[str, int] | None


class _Selection:
    """Which activations to gate: module classes and/or kind names (None: every supported one)."""

    def __init__(self, activations):
        if activations is None:
            self.types, self.kinds = (), None
        else:
            items = (activations,) if isinstance(activations, (str, type)) else tuple(activations)
            bad = [a for a in items if not (isinstance(a, str) or (isinstance(a, type) and issubclass(a, nn.Module)))]
            if bad or not items:
                raise ValueError("activations must be module classes or kind names such as 'relu', got "
                                 f"{bad or items}")
            self.types = tuple(a for a in items if isinstance(a, type))
            self.named = {a.lower() for a in items if isinstance(a, str)}
            self.kinds = self.named | {k for t in self.types for c, k in MODULE_KINDS.items() if issubclass(t, c)}

    def check_kinds(self, model: nn.Module) -> None:
        """Every kind named is one linearize knows (torch's, or a Hugging Face activation class in ``model``):
        a misspelled kind would otherwise gate nothing, silently."""
        if self.kinds is None:
            return
        known = set(MODULE_KINDS.values()) | set(FUNCTIONAL_KINDS.values())
        unknown = sorted(self.named - known - {activation_kind(m) for m in model.modules()})
        if unknown:
            raise ValueError(f"activations: unknown kind {', '.join(map(repr, unknown))}; known kinds: "
                             f"{', '.join(sorted(known))} (or a Hugging Face activation's class name in lower case)")

    def module(self, m: nn.Module) -> bool:
        if isinstance(m, LinearizableActivation):
            return False
        if self.types and isinstance(m, self.types):
            return True
        kind = activation_kind(m)
        return kind is not None and (self.kinds is None or kind in self.kinds)

    def function(self, fn) -> bool:
        kind = FUNCTIONAL_KINDS.get(fn)
        return kind is not None and (self.kinds is None or kind in self.kinds)


class _ProbeFunctionals(TorchFunctionMode):
    """Records functional activation calls made outside activation modules during the probe, in call order."""

    def __init__(self, selection: _Selection, calls: list):
        super().__init__()
        self.selection = selection
        self.depth = 0  # > 0 while inside an activation module's forward
        self.calls = calls  # (the function, its input's shape), shared with the module hooks

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.depth == 0 and self.selection.function(func):
            x = args[0] if args else None
            self.calls.append((func, x.shape if isinstance(x, torch.Tensor) else None))
        return func(*args, **(kwargs or {}))


def _fix_functional_activation_attrs(model: nn.Module) -> None:
    """Layers that store ``F.relu``/``F.gelu`` as an attribute (torch's transformer layers) get a module instead."""
    for m in model.modules():
        act = getattr(m, "activation", None)
        if act in (F.relu, torch.relu):
            m.activation = nn.ReLU()
        elif act is F.gelu:
            m.activation = nn.GELU()


def _disable_fused_fast_paths(model: nn.Module) -> None:
    """torch's transformer layers have a fused inference path that hard-codes ReLU/GELU; gates must win."""
    for m in model.modules():
        if hasattr(m, "activation_relu_or_gelu") and isinstance(getattr(m, "activation", None),
                                                                  LinearizableActivation):
            m.activation_relu_or_gelu = 0


def _has_conv1d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv1d) for m in model.modules())


def _infer_axis(shape: torch.Size, producer: type | None, model: nn.Module) -> int:
    """Channels (1) for conv maps, last (-1) for linear/transformer features: what produced the input decides
    (a Linear on a channels-last map, as in ConvNeXt and Swin, gates the last dim), else the input's rank."""
    if len(shape) <= 2:
        return 1
    if producer is not None:
        if issubclass(producer, _CONV):
            return 1
        if issubclass(producer, _FEATURE_LAST):
            return -1
    if len(shape) >= 4:
        return 1
    return 1 if _has_conv1d(model) else -1


def _check_axis(axis: Axis) -> None:
    """``axis`` is None, 1 (channels), -1 (last dimension), or a mapping of gate names to those."""
    if axis is None:
        return
    items = axis.items() if isinstance(axis, Mapping) else [(None, axis)]
    for name, value in items:
        where = "axis" if name is None else f"axis[{check_name(name, 'a gate name in axis')!r}]"
        if isinstance(value, bool) or value not in (1, -1):
            raise ValueError(f"{where} must be 1 (channels) or -1 (last dimension), got {value!r}")


def _axis_for(name: str, axis: Axis, inferred: int) -> int:
    if axis is None:
        return inferred
    if isinstance(axis, Mapping):
        return axis.get(name, inferred)
    return axis


def _units(shape: torch.Size, axis: int) -> int:
    return int(shape[axis]) if len(shape) > 1 else int(shape[0])


def _eval_with_grad(model: nn.Module):
    """Probe in eval mode (no BatchNorm stat updates) but with grad on (no fused fast paths)."""
    return eval_mode(model, grad=True)


def linearize(model: nn.Module, example_input, activations=None, axis: Axis = None) -> nn.Module:
    """Put a gate at alpha = 0 (the same function) in place of every activation of ``model``.

    ``activations``: None (every supported activation, see the module docstring), or module classes and/or kind
    names to gate only those (``(nn.ReLU,)`` or ``("relu",)``: ReLUs only, as the paper does). ``axis`` forces the
    unit axis: one int for all gates, or ``{gate name: axis}``. Returns the model (the same object when modules
    could be swapped in place, else an ``fx.GraphModule``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"linearize needs a torch nn.Module, got {type(model).__name__}")
    if gates(model):
        raise ValueError("model is already linearized (it has gates)")
    _check_axis(axis)
    selection = _Selection(activations)
    selection.check_kinds(model)
    _fix_functional_activation_attrs(model)
    act_names = {m: n for n, m in model.named_modules() if selection.module(m)}

    calls: list[tuple[object, torch.Size | None]] = []  # every activation call, in order: (module or function, shape)
    producer_of: dict[int, type] = {}
    producer_of_act: dict[nn.Module, type | None] = {}
    keep_alive: list[torch.Tensor] = []
    probe = _ProbeFunctionals(selection, calls)

    def leaf_hook(module, inputs, output):
        for t in output if isinstance(output, tuple) else (output,):
            if isinstance(t, torch.Tensor):
                producer_of[id(t)] = type(module)
                keep_alive.append(t)

    def act_pre(module, inputs):
        probe.depth += 1
        calls.append((module, inputs[0].shape))
        producer_of_act.setdefault(module, producer_of.get(id(inputs[0])))

    def act_post(module, inputs, output):
        probe.depth -= 1

    acts = [m for m in model.modules() if m in act_names]
    leaves = [m for m in model.modules() if m not in act_names and not any(True for _ in m.children())]
    versions = _state_versions(model)
    with forward_hooks([(m, act_pre) for m in acts], pre=True), \
            forward_hooks([(m, act_post) for m in acts] + [(m, leaf_hook) for m in leaves]), \
            _eval_with_grad(model), probe:
        output = run_model(model, example_input)
    keep_alive.clear()  # the probe's intermediate tensors
    producer_of.clear()

    # The probe's output is the reference when the probe left every parameter and buffer as it was (else the model
    # keeps state across calls, and the reference is the next call's output, as the check will be).
    reference = _detach(output) if _state_versions(model) == versions else _outputs(model, example_input)
    del output
    seen: dict[nn.Module, list[torch.Size]] = {m: [] for m in act_names}
    for key, shape in calls:
        if isinstance(key, nn.Module):
            seen[key].append(shape)
    reused = [act_names[m] for m, shapes in seen.items() if len(shapes) > 1]
    if reused or len(calls) > sum(map(len, seen.values())):
        model = _linearize_fx(model, example_input, selection, axis, calls)
        _disable_fused_fast_paths(model)
        _check_same_function(model, example_input, reference)
    else:
        swapped: list[tuple[str, nn.Module]] = []
        for m, shapes in seen.items():
            if not shapes:
                continue  # never called on this input: leave it as it is
            name = act_names[m]
            ax = _axis_for(name, axis, _infer_axis(shapes[0], producer_of_act.get(m), model))
            gate = make_gate(m, _units(shapes[0], ax), axis=ax, name=name)
            _set_submodule(model, name, gate)
            swapped.append((name, m))
        _disable_fused_fast_paths(model)
        output, order = _outputs_in_order(model, example_input)
        if _same(output, reference):
            set_gate_index(model, order)
        else:
            # An in-place ReLU whose input is used afterwards (``self.relu(h); return fc(h)``): a swapped module
            # cannot write into h. Put the ReLUs back and let fx follow the data instead.
            for name, m in swapped:
                _set_submodule(model, name, m)
            model = _linearize_fx(model, example_input, selection, axis, calls)
            _disable_fused_fast_paths(model)
            _check_same_function(model, example_input, reference)
    dev = next((p.device for p in model.parameters()), None)
    if dev is not None:
        model.to(dev)
    return model


def _state_versions(model: nn.Module) -> list[int]:
    """The version counter of every parameter and buffer (torch bumps it on each in-place write)."""
    return [t._version for t in (*model.parameters(), *model.buffers())]


def _outputs(model: nn.Module, example_input):
    """The model's output on the example input, run as the probe runs it (eval mode, grad on: the same code paths,
    no fused inference fast paths), as detached copies."""
    with _eval_with_grad(model):
        return _detach(run_model(model, example_input))


def _outputs_in_order(model: nn.Module, example_input):
    """:func:`_outputs`, and the names of the model's gates in the order that pass called them."""
    order: list[str] = []
    hooks = [(g, lambda m, i, n=n: order.append(n) if n not in order else None)
             for n, g in model.named_modules() if isinstance(g, LinearizableActivation)]
    with forward_hooks(hooks, pre=True):
        return _outputs(model, example_input), order


def _detach(out):
    if isinstance(out, torch.Tensor):
        return out.detach().clone()
    if isinstance(out, (tuple, list)):
        return type(out)(_detach(o) for o in out)
    if isinstance(out, Mapping):
        return {k: _detach(v) for k, v in out.items()}
    return out


def _same(a, b) -> bool:
    """Equal outputs (tensors up to float rounding; nested tuples, lists and dicts; other objects by type)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6,
                                                           equal_nan=True))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (bool, int, float, complex, str, bytes, type(None))):
        return a == b
    return type(a) is type(b)  # another object (a transformer's key/value cache): compared by kind, not identity


def _check_same_function(model: nn.Module, example_input, reference) -> None:
    """Every gate at alpha = 0 must compute what the model computed before: else refuse, with a clear error."""
    if not _same(_outputs(model, example_input), reference):
        raise ValueError(
            f"linearize could not keep the function of {type(model).__name__}: with every gate at alpha = 0 its "
            "output differs from the original's. An activation applied in place whose input is used afterwards "
            "through another path is the usual cause; use nn.ReLU() (not inplace) and assign its result.")


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, module)


def index_gates(model: nn.Module, example_input) -> nn.Module:
    """Name a model's gates and record their forward order (what ``linearize`` does for the gates it makes; for a
    model whose gates were put in by hand). Returns the model."""
    set_gate_index(model, _forward_order(model, example_input))
    return model


def _forward_order(model: nn.Module, example_input) -> list[str]:
    """Gate names in the order the forward pass calls them."""
    return _outputs_in_order(model, example_input)[1]


def _call_arguments(fn, args: tuple, kwargs: dict) -> tuple[tuple, dict, bool]:
    """(the other args, kwargs, in place?) of a functional activation call ``fn(x, *args, **kwargs)``."""
    inplace = getattr(fn, "__name__", "").endswith("_")
    try:
        bound = inspect.signature(fn).bind(None, *args, **kwargs)
    except (TypeError, ValueError):  # builtins without a signature take the input only
        return tuple(args), dict(kwargs), inplace or bool(kwargs.get("inplace", False))
    arguments = dict(bound.arguments)
    arguments.pop(next(iter(arguments)))  # the input
    inplace = inplace or bool(arguments.pop("inplace", False))
    return (), arguments, inplace


def _has_submodule(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
    except AttributeError:
        return False
    return True


def _linearize_fx(model: nn.Module, example_input, selection: _Selection, axis: Axis,
                  calls: list[tuple[object, torch.Size | None]]) -> torch.fx.GraphModule:
    """Give every activation call site (module or functional) its own gate in a traced copy of the model.

    ``calls``: the probe's activation calls in order, (module or function, input shape). When the trace's call sites
    are those calls, one for one and in the same order, the gates take their shapes from them; else (a call fx sees
    differently, such as one inside a module it traces through) a shape-propagating pass of the trace gives them."""
    try:
        with fx_tracing():  # fx patches torch process-wide while it traces: alone, between forward passes
            gm = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many kinds of errors on untraceable code
        raise ValueError(
            f"linearize needs torch.fx to give each activation call its own gate in {type(model).__name__} "
            f"(it reuses an activation module or calls an activation function such as F.relu), but tracing "
            f"failed: {exc}. Use a separate activation module per call site instead."
        ) from exc

    def is_activation(node: torch.fx.Node) -> bool:
        if node.op == "call_module":
            return selection.module(gm.get_submodule(node.target))
        if node.op == "call_function":
            return selection.function(node.target)
        return node.op == "call_method" and node.target in ("relu", "relu_") and selection.function(F.relu)

    def gate_for(node: torch.fx.Node, units: int, ax: int, name: str) -> tuple[LinearizableActivation, bool]:
        """The gate for this call site, and whether the call wrote its result into its input."""
        if node.op == "call_module":
            m = originals[node]  # not gm's: a reused module's name may already hold the first site's gate
            return make_gate(m, units, ax, name), bool(getattr(m, "inplace", False))
        if node.op == "call_method":
            return make_gate(F.relu, units, ax, name), node.target == "relu_"
        args, kwargs, inplace = _call_arguments(node.target, tuple(node.args[1:]), dict(node.kwargs))
        return make_gate(node.target, units, ax, name, args=args, kwargs=kwargs), inplace

    def producer(node: torch.fx.Node) -> type | None:
        src = node.args[0] if node.args else None
        if isinstance(src, torch.fx.Node) and src.op == "call_module":
            return type(gm.get_submodule(src.target))
        return None

    used: set[str] = set()
    order: list[str] = []
    position = {n: i for i, n in enumerate(gm.graph.nodes)}
    sites = [n for n in gm.graph.nodes if is_activation(n)]  # decide before any module is swapped
    originals = {n: gm.get_submodule(n.target) for n in sites if n.op == "call_module"}
    shapes = _site_shapes(sites, originals, calls)
    if shapes is None:
        shapes = _propagated_shapes(gm, sites, example_input)

    def site_name(node: torch.fx.Node) -> str:
        """A gate name in the model's hierarchy: a module's own name (its k-th reuse: ``name_k``, beside it); a
        function call: ``<module path>.<function>`` of the module that made the call (``layer1.0.relu_1``)."""
        if node.op == "call_module":
            base = node.target
            if base not in used:
                return base  # the gate takes the activation module's place
        else:
            stack = node.meta.get("nn_module_stack") or {}
            path = next(reversed(stack.values()))[0] if stack else ""
            function = re.sub(r"_\d+$", "", node.name)
            base = f"{path}.{function}" if path else function
        name, k = base, 0
        while name in used or (name != base or node.op != "call_module") and _has_submodule(gm, name):
            k += 1
            name = f"{base}_{k}"
        return name

    for node, shape in zip(sites, shapes):
        src = node.args[0]
        name = site_name(node)
        used.add(name)
        ax = _axis_for(name, axis, _infer_axis(shape, producer(node), gm))
        gate, writes_input = gate_for(node, _units(shape, ax), ax, name)  # before the gate takes the module's name
        gm.add_submodule(name, gate)
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, (src,))
        new.meta = dict(node.meta)
        if writes_input:
            # The input holds the activation from here on: every later reader of it reads the gate's output.
            for user in list(src.users):
                if user is not node and user is not new and position.get(user, -1) > position[node]:
                    user.replace_input_with(src, new)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        order.append(name)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    keep_residual_markers(model, gm)
    set_gate_index(gm, order)
    return gm


def _site_key(node: torch.fx.Node, originals: Mapping[torch.fx.Node, nn.Module]):
    """What the probe records for the call at this site: the module called, or the function (a method: its
    ``torch.Tensor`` attribute)."""
    if node.op == "call_module":
        return originals[node]
    if node.op == "call_method":
        return getattr(torch.Tensor, node.target)
    return node.target


def _site_shapes(sites: list[torch.fx.Node], originals: Mapping[torch.fx.Node, nn.Module],
                 calls: list[tuple[object, torch.Size | None]]) -> list[torch.Size] | None:
    """The input shape of each call site from the probe's calls, or None unless the two match one for one."""
    if len(sites) != len(calls):
        return None
    for node, (key, shape) in zip(sites, calls):
        if _site_key(node, originals) is not key or shape is None:
            return None
    return [shape for _, shape in calls]


def _propagated_shapes(gm: torch.fx.GraphModule, sites: list[torch.fx.Node], example_input) -> list[torch.Size]:
    """The input shape of each call site, from one shape-propagating pass of the trace."""
    from torch.fx.passes.shape_prop import ShapeProp

    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    with _eval_with_grad(gm), forward_pass():
        ShapeProp(gm).propagate(*inputs)
    return [n.args[0].meta["tensor_meta"].shape for n in sites]
