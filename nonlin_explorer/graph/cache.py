"""The unit graph of a model, built once per structure: analyses called again after a toggle reuse it.

A graph depends on the model's structure (its modules), the example input's shapes and dtypes,
the unit axis, the nonlinear policy and the registered leaves; gate slopes are not part of it (analyses read them
fresh on every call). :func:`cached_unit_graph` keys the graph on all of these and rebuilds it when any changes. The
cache holds models by weak reference, so it never keeps one alive.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from nonlin_explorer.graph.builder import unit_graph
from nonlin_explorer.graph.ops import leaf_registry_key, nonlinear_policy
from nonlin_explorer.graph.tracer import as_tuple
from nonlin_explorer.graph.unit_graph import UnitGraph

__all__ = ["cached_unit_graph", "clear_graph_cache", "graph_key"]

#: Graphs kept per model (a policy toggled back and forth, two input sizes).
PER_MODEL = 4

_graphs: weakref.WeakKeyDictionary[nn.Module, OrderedDict[tuple, UnitGraph]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def graph_key(model: nn.Module, example_input, input_axis: int | None = None) -> tuple:
    """What the unit graph of ``model`` depends on: its modules (path, identity, class), the inputs' shapes and
    dtypes, the unit axis, the nonlinear policy and the registered leaves (not the slopes). A module replaced by
    another is a new identity; a parameter swapped for one of another shape inside the same module is not seen
    (:func:`clear_graph_cache` after such surgery)."""
    modules = tuple((name, id(m), type(m)) for name, m in model.named_modules())
    inputs = tuple(_input_key(x) for x in as_tuple(example_input))
    return modules, inputs, input_axis, nonlinear_policy(), leaf_registry_key()


def _input_key(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return tuple(x.shape), x.dtype, x.device.type
    return type(x).__name__ if x is None or not isinstance(x, (bool, int, float, str)) else x


def cached_unit_graph(model: nn.Module, example_input, input_axis: int | None = None) -> UnitGraph:
    """:func:`~nonlin_explorer.graph.unit_graph`, built once per :func:`graph_key` and reused afterwards (treat the
    graph as read-only: other calls share it, with its cached path weights)."""
    key = graph_key(model, example_input, input_axis)
    with _lock:
        graphs = _graphs.get(model)
        graph = graphs.get(key) if graphs is not None else None
        if graph is not None:
            graphs.move_to_end(key)
            return graph
    graph = unit_graph(model, example_input, input_axis)
    with _lock:
        graphs = _graphs.setdefault(model, OrderedDict())
        graphs[key] = graph
        while len(graphs) > PER_MODEL:
            graphs.popitem(last=False)
    return graph


def clear_graph_cache() -> None:
    """Forget every cached graph."""
    with _lock:
        _graphs.clear()


def cached_models() -> int:
    """How many models have cached graphs (for tests: the cache holds models weakly)."""
    with _lock:
        return len(_graphs)
