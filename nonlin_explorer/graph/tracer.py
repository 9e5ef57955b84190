"""Tracing a model with torch.fx while running it on real values (so shape-dependent control flow follows the
example input); every node carries its value (``meta['val']``) and the module path it was called from."""

from __future__ import annotations

import contextlib
import inspect
import operator
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nonlin_explorer.gates import LinearizableActivation
from nonlin_explorer.graph.ops import STRUCTURED_LEAVES, is_registered_leaf
from nonlin_explorer.graph.unit_graph import UnsupportedOperationError
from nonlin_explorer.plumbing import eval_mode
from nonlin_explorer.trace_guard import fx_tracing

#: torch.nn modules that fx would keep as leaves, traced inside instead (made of attention, norms, Linear, gates).
_TRACED_THROUGH = (nn.Transformer, nn.TransformerDecoder, nn.TransformerDecoderLayer)


#: Tensor attributes read off the example's value during an analysis trace (they never depend on the input's size).
_CONCRETE_ATTRIBUTES = ("dtype", "device", "layout")


class _ValueProxy(fx.Proxy):
    """An fx proxy that records item assignment (``ids[:, 1:] = ...``: Hugging Face's BART shifts its decoder ids so)
    and, in an analysis trace, answers ``dtype``/``device`` with the example's."""

    def __setitem__(self, key, value) -> None:
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})

    def __getattr__(self, k: str):
        if k in _CONCRETE_ATTRIBUTES and self.tracer._concrete_shapes:
            value = self.node.meta.get("val")
            if isinstance(value, torch.Tensor):
                return getattr(value, k)
        return super().__getattr__(k)


class _ValueTracer(fx.Tracer):
    """An fx tracer that also runs every recorded op on real values (``node.meta['val']``), so control flow
    on shapes follows the example input, and records the module path of every node (``meta['path']``)."""

    def __init__(self, inputs: Sequence[Any], concrete_shapes: bool = False):
        super().__init__()
        self._inputs = list(inputs)
        self._concrete_shapes = concrete_shapes
        self._placeholder_values: dict[str, Any] = {}
        self._evaluating = False

    def create_args_for_root(self, root_fn, is_module, concrete_args=None):
        """A placeholder per example tensor, passed by position; other example values (``None``) pass as they are,
        and the forward's remaining parameters keep their defaults (a Hugging Face forward takes a dozen optional
        ones and ``**kwargs``, which fx would otherwise turn into placeholders)."""
        names = _parameter_names(root_fn, len(self._inputs), skip_self=is_module)
        args = []
        for name, value in zip(names, self._inputs):
            if isinstance(value, torch.Tensor):
                self._placeholder_values[name] = value
                args.append(self.create_proxy("placeholder", name, (), {}))
            else:
                if value is None:  # kept in the traced module's signature, so it takes the same call
                    self._placeholder_values[name] = None
                    self.create_proxy("placeholder", name, (), {})
                args.append(value)
        if is_module:
            return (lambda root, *xs: root_fn(root, *xs)), [self.root, *args]
        return (lambda *xs: root_fn(*xs)), args

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (LinearizableActivation, *STRUCTURED_LEAVES)) or is_registered_leaf(m):
            return True
        if isinstance(m, _TRACED_THROUGH):
            return False  # torch.nn modules built of traceable parts: follow them inside
        return super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        if self._evaluating:  # a leaf running on real values: no recording inside it
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if self._evaluating:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.meta["path"] = self.scope.module_path
        if kind != "output":
            node.meta["val"] = self._evaluate(node)
        return node

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if self._concrete_shapes and kind in ("call_function", "call_method") and target is not getattr:
            value = proxy.node.meta.get("val")
            if _is_shape_value(value):
                return value  # sizes, lengths, flags: the example input's, so Python code can slice and loop on them
        return proxy

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ValueProxy(node, self)

    def to_bool(self, obj) -> bool:
        return bool(obj.node.meta["val"])

    def iter(self, obj) -> Iterator:
        return iter([obj[i] for i in range(len(obj.node.meta["val"]))])

    @contextlib.contextmanager
    def _eval_mode(self):
        self._evaluating = True
        try:
            yield
        finally:
            self._evaluating = False

    def _evaluate(self, node: fx.Node) -> Any:
        if node.op == "placeholder":
            return self._placeholder_values.get(str(node.target))
        if node.op == "get_attr":
            obj = self.root
            with self._eval_mode():
                for part in str(node.target).split("."):
                    obj = getattr(obj, part)
            return obj
        args = fx.node.map_arg(node.args, lambda n: n.meta["val"])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: n.meta["val"])
        with self._eval_mode():
            if node.op == "call_function":
                return node.target(*args, **kwargs)
            if node.op == "call_method":
                return getattr(args[0], node.target)(*args[1:], **kwargs)
            if node.op == "call_module":
                return self.root.get_submodule(node.target)(*args, **kwargs)
        raise AssertionError(f"unexpected fx node kind {node.op}")


def _is_shape_value(value: Any) -> bool:
    """An int, bool or torch.Size (or a tuple of them): shape arithmetic, not a tensor."""
    if isinstance(value, (bool, int, torch.Size)):
        return True
    return isinstance(value, tuple) and len(value) > 0 and all(isinstance(v, (bool, int)) for v in value)


def _parameter_names(fn, n: int, skip_self: bool) -> list[str]:
    """Names for ``n`` positional arguments of ``fn``: its own positional parameters, then ``input<i>``."""
    try:
        params = list(inspect.signature(inspect.unwrap(fn)).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    positional = positional[1:] if skip_self else positional
    return [positional[i] if i < len(positional) else f"input{i}" for i in range(n)]


@contextlib.contextmanager
def trace_settings(model: nn.Module) -> Iterator[None]:
    """For the trace only: Hugging Face models with ``config.use_cache`` (their default) build a key/value cache
    object that fx cannot record; the trace runs them with the cache off, and the config is put back afterwards."""
    configs = {id(c): c for m in model.modules() if getattr(c := getattr(m, "config", None), "use_cache", None) is True}
    for c in configs.values():
        c.use_cache = False
    try:
        yield
    finally:
        for c in configs.values():
            c.use_cache = True


def _first_line(exc: Exception, limit: int = 200) -> str:
    """An error's first line, cut at ``limit`` characters (fx's own messages run to kilobytes)."""
    line = (str(exc).strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit] + "..."


def _hint(exc: Exception) -> str:
    """The setting that would make the trace work, where the failure names one."""
    if "Cache" in str(exc):
        return "; pass use_cache=False (and no past_key_values) to the model for the analysis"
    return ""


def as_tuple(example_input) -> tuple:
    return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)


def inference(model: nn.Module):
    """Eval mode, no grad, the mode put back afterwards."""
    return eval_mode(model)


def trace_model(model: nn.Module, example_input, concrete_shapes: bool = False) -> fx.GraphModule:
    """Trace ``model`` with torch.fx, running it on ``example_input`` (eval mode, no grad) as it goes.

    Gates and :data:`STRUCTURED_LEAVES` stay leaves. Every node carries its real value in ``meta['val']``
    and the module path it was called from in ``meta['path']``.
    """
    inputs = as_tuple(example_input)
    tracer = _ValueTracer(inputs, concrete_shapes)
    with inference(model), trace_settings(model):
        try:
            with fx_tracing():  # fx patches torch process-wide while it traces: alone, between forward passes
                graph = tracer.trace(model)
        except (UnsupportedOperationError, ValueError):
            raise
        except Exception as exc:  # fx raises many kinds of errors on untraceable code (a proxy used as a slice
            # index is a TypeError: Hugging Face's BERT); name the model and where in its code it failed
            frames = traceback.extract_tb(exc.__traceback__)
            outside = [f for f in frames if "/torch/" not in f.filename and "/nonlin_explorer/" not in f.filename]
            frame = (outside or frames)[-1]  # the model's own line, not torch.fx's
            raise UnsupportedOperationError(
                f"torch.fx could not trace {type(model).__name__} (at {frame.filename.rsplit('/', 1)[-1]}:"
                f"{frame.lineno} {frame.line or ''}): {type(exc).__name__}: {_first_line(exc)}{_hint(exc)}") from exc
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    for n_new, n_old in zip(gm.graph.nodes, graph.nodes):
        n_new.meta.update(n_old.meta)
    return gm
