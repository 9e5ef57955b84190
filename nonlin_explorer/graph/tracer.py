"""Tracing a model with torch.fx while running it on real values (so shape-dependent control flow follows the
example input); every node carries its value (``meta['val']``) and the module path it was called from."""

from __future__ import annotations

import contextlib
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

#: torch.nn modules that fx would keep as leaves, traced inside instead (made of attention, norms, Linear, gates).
_TRACED_THROUGH = (nn.Transformer, nn.TransformerDecoder, nn.TransformerDecoderLayer)


class _ValueTracer(fx.Tracer):
    """An fx tracer that also runs every recorded op on real values (``node.meta['val']``), so control flow
    on shapes follows the example input, and records the module path of every node (``meta['path']``)."""

    def __init__(self, inputs: Sequence[Any], concrete_shapes: bool = False):
        super().__init__()
        self._inputs = list(inputs)
        self._concrete_shapes = concrete_shapes
        self._placeholders = 0
        self._evaluating = False

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
            i = self._placeholders
            self._placeholders += 1
            if i < len(self._inputs):
                return self._inputs[i]
            return node.args[0] if node.args else None
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
    with inference(model):
        try:
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
                f"{frame.lineno} {frame.line or ''}): {type(exc).__name__}: {exc}") from exc
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    for n_new, n_old in zip(gm.graph.nodes, graph.nodes):
        n_new.meta.update(n_old.meta)
    return gm
