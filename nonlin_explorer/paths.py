"""Average path length (APL): how many *nonlinear* units an input-to-output path meets, on average.

Two weightings of the paths of a :class:`~nonlin_explorer.graph.UnitGraph` (Ali Mehmeti-Göpel & Disselhoff,
"Nonlinear Advantage", ICML 2023, Figure 1):

* **unnormalized**: every input-to-output path weighs the same;
* **normalized**: walk backwards from a uniformly chosen output unit, at each unit picking one of its
  incoming edges uniformly: a residual addition gives skip and branch 1/2 each, a dense layer gives every
  unit of the layer before an equal share.

Both are dynamic programs over the graph in O(units + edge blocks) (never enumerating paths). With
``n(v) = 1`` for a nonlinear unit, else 0:

* unnormalized: ``P(v) = sum_{u -> v} P(u)`` (``P = 1`` at inputs), ``S(v) = sum_{u -> v} S(u) + n(v) P(v)``,
  ``APL = sum_out S / sum_out P``;
* normalized: ``E(v) = n(v) + mean_{u -> v} E(u)``, ``APL = mean_out E``.

Both are linear in ``n``: ``APL = sum_v n(v) w(v)`` with ``w(v)`` the share of paths through ``v``
(unnormalized) or the probability that the backward walk visits ``v`` (normalized). :func:`path_lengths`
computes the weights once per graph (one forward and one backward pass) and then evaluates any gate
masks with one dot product per gate layer; that also gives each gate layer's contribution.
Path counts grow like ``width ** depth``; every layer keeps a log scale so they never overflow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from torch import nn

from nonlin_explorer.gates import DEFAULT_TOL
from nonlin_explorer.graph import UnitGraph, cached_unit_graph

__all__ = [
    "PathLengths",
    "average_path_length",
    "brute_force_path_lengths",
    "count_paths",
    "dp_path_lengths",
    "layer_contributions",
    "path_lengths",
    "path_metrics",
]

Masks = Mapping[str, "np.ndarray | list | object"]


@dataclass(frozen=True)
class PathLengths:
    """Both APLs, each gate layer's contribution to them (they sum to the APL), and the path count."""

    normalized: float
    unnormalized: float
    per_layer_normalized: dict[str, float]
    per_layer_unnormalized: dict[str, float]
    num_paths: float
    log_num_paths: float

    def get(self, normalized: bool = True) -> float:
        return self.normalized if normalized else self.unnormalized


# -- masks -------------------------------------------------------------------------------------------------

def _mask_vectors(graph: UnitGraph, masks: Masks) -> dict[int, np.ndarray]:
    """{layer index: float 0/1 vector} for every gate layer; fixed activations default to all nonlinear."""
    out: dict[int, np.ndarray] = {}
    for layer in graph.gate_layers:
        m = masks.get(layer.name)
        if m is None:
            if layer.kind == "gate":
                raise KeyError(f"no mask for gate layer {layer.name!r}; masks cover {sorted(masks)}")
            out[layer.index] = np.ones(layer.size)
            continue
        if hasattr(m, "detach"):
            m = m.detach().cpu().numpy()
        v = np.asarray(m, dtype=np.float64).reshape(-1)
        if v.size != layer.size:
            raise ValueError(f"mask for {layer.name!r} has {v.size} entries, the layer has {layer.size} units")
        out[layer.index] = (v != 0).astype(np.float64)
    return out


# -- the forward dynamic program ---------------------------------------------------------------------------

def _forward(graph: UnitGraph, nl: dict[int, np.ndarray] | None):
    """Per layer: rows (P, S, E, live) scaled so P's max is 1, and the log scale of P and S.

    ``live`` marks units reachable from an input; the normalized walk only splits over live predecessors.
    """
    rows: list[np.ndarray] = []
    scale = np.zeros(len(graph.layers))
    inputs = set(graph.inputs)
    for layer in graph.layers:
        i, n = layer.index, layer.size
        if i in inputs:
            x = np.zeros((4, n))
            x[0] = 1.0
            x[3] = 1.0
        else:
            ins = graph.in_edges(i)
            x = np.zeros((4, n))
            if ins:
                m = max(scale[e.src] for e in ins)
                for e in ins:
                    y = graph.push(e, rows[e.src])
                    f = math.exp(scale[e.src] - m)
                    x[:2] += y[:2] * f if f != 1.0 else y[:2]
                    x[2:] += y[2:]
                live = x[3] > 0
                x[2] = np.divide(x[2], x[3], out=np.zeros(n), where=live)
                x[3] = live
                scale[i] = m
            if nl is not None and i in nl:
                x[1] += nl[i] * x[0]
                x[2] += nl[i] * x[3]
            c = x[0].max()
            if c > 0:
                x[:2] /= c
                scale[i] += math.log(c)
        rows.append(_live_weighted(x))
    return rows, scale


def _live_weighted(x: np.ndarray) -> np.ndarray:
    """Store E only on live units (dead ones carry no walk); P, S are zero there already."""
    x[2] *= x[3]
    return x


def _outputs(graph: UnitGraph, rows, scale):
    outs = list(graph.outputs)
    if not outs:
        raise ValueError("the graph has no output layers")
    live = sum(int(rows[i][3].sum()) for i in outs)
    if live == 0:
        raise ValueError("no path joins an input to an output")
    return outs, live


def dp_path_lengths(graph: UnitGraph, masks: Masks) -> tuple[float, float]:
    """``(normalized, unnormalized)`` APL by one forward dynamic program over the graph, O(edges)."""
    rows, scale = _forward(graph, _mask_vectors(graph, masks))
    outs, live = _outputs(graph, rows, scale)
    normalized = sum(float(rows[i][2].sum()) for i in outs) / live
    m = max(scale[i] for i in outs)
    p = sum(float(rows[i][0].sum()) * math.exp(scale[i] - m) for i in outs)
    s = sum(float(rows[i][1].sum()) * math.exp(scale[i] - m) for i in outs)
    return normalized, s / p


# -- weights: forward + backward pass, once per graph ------------------------------------------------------

@dataclass(frozen=True)
class _Weights:
    normalized: dict[int, np.ndarray]
    unnormalized: dict[int, np.ndarray]
    log_num_paths: float


def _weights(graph: UnitGraph) -> _Weights:
    cached = graph.cache.get("weights")
    if cached is not None:
        return cached
    rows, scale = _forward(graph, None)
    outs, live_out = _outputs(graph, rows, scale)
    out_set = set(outs)
    m = max(scale[i] for i in outs)
    log_total = m + math.log(sum(float(rows[i][0].sum()) * math.exp(scale[i] - m) for i in outs))
    # backward: Q(v) = paths from v to an output, w(v) = probability the normalized walk visits v
    back: list[np.ndarray | None] = [None] * len(graph.layers)
    qscale = np.zeros(len(graph.layers))
    wn: dict[int, np.ndarray] = {}
    wu: dict[int, np.ndarray] = {}
    gate_set = {layer.index for layer in graph.gate_layers}
    for layer in reversed(graph.layers):
        i, n = layer.index, layer.size
        live = rows[i][3]
        outs_i = graph.out_edges(i)
        y = np.zeros((2, n))
        cands = [qscale[e.dst] for e in outs_i] + ([0.0] if i in out_set else [])
        s = max(cands) if cands else 0.0
        if i in out_set:
            y[0] += math.exp(-s)
            y[1] += live / live_out
        for e in outs_i:
            b = back[e.dst]
            z = graph.pull(e, b)
            f = math.exp(qscale[e.dst] - s)
            y[0] += z[0] * f
            y[1] += z[1]
        y[1] *= live
        c = y[0].max()
        if c > 0:
            y[0] /= c
            s += math.log(c)
        qscale[i] = s
        if i in gate_set:
            wn[i] = y[1].copy()
            wu[i] = rows[i][0] * y[0] * math.exp(scale[i] + s - log_total)
        deg = np.zeros(n)  # live in-degree: the normalized walk splits over live predecessors
        for e in graph.in_edges(i):
            deg += graph.push(e, rows[e.src][3:4])[0]
        pulled = np.empty((2, n))
        pulled[0] = y[0]
        pulled[1] = np.divide(y[1], deg, out=np.zeros(n), where=deg > 0)
        back[i] = pulled
    weights = _Weights(wn, wu, log_total)
    graph.cache["weights"] = weights
    return weights


def path_lengths(graph: UnitGraph, masks: Masks) -> PathLengths:
    """Both APLs and every gate layer's contribution for the given nonlinear-unit masks.

    The first call on a graph runs one forward and one backward pass (O(edges)) and caches per-unit
    weights; later calls cost one dot product per gate layer.
    """
    w = _weights(graph)
    nl = _mask_vectors(graph, masks)
    per_n: dict[str, float] = {}
    per_u: dict[str, float] = {}
    for layer in graph.gate_layers:
        v = nl[layer.index]
        per_n[layer.name] = float(w.normalized[layer.index] @ v)
        per_u[layer.name] = float(w.unnormalized[layer.index] @ v)
    return PathLengths(
        normalized=float(sum(per_n.values())),
        unnormalized=float(sum(per_u.values())),
        per_layer_normalized=per_n,
        per_layer_unnormalized=per_u,
        num_paths=_from_log(w.log_num_paths),
        log_num_paths=float(w.log_num_paths),
    )


def count_paths(graph: UnitGraph) -> float:
    """The number of input-to-output paths (``inf`` beyond the float range; see ``log_num_paths``)."""
    return _from_log(_weights(graph).log_num_paths)


def _from_log(lg: float) -> float:
    """exp(lg), rounded to the integer it is when that is exactly representable."""
    if lg < 36:  # below 2**52: path counts are integers
        return float(round(math.exp(lg)))
    return math.exp(lg) if lg < 709 else math.inf


# -- model-level entry points ------------------------------------------------------------------------------

def average_path_length(model: nn.Module, example_input, normalized: bool = True, tol: float = DEFAULT_TOL,
                        graph: UnitGraph | None = None) -> float:
    """The mean number of nonlinear units (gates with ``1 - alpha > tol``) on an input-to-output path.

    ``normalized=True`` splits the walk evenly over each unit's incoming edges; ``False`` weighs every
    path the same. The unit graph is traced once per model structure and input shape
    (:func:`~nonlin_explorer.graph.cached_unit_graph`) and the slopes are read on every call, so a call after a
    toggle costs a dot product per gate layer; or pass a prebuilt ``graph``.
    """
    graph = graph if graph is not None else cached_unit_graph(model, example_input)
    return path_lengths(graph, graph.masks_from_model(model, tol)).get(normalized)


def layer_contributions(model: nn.Module, example_input, normalized: bool = True, tol: float = DEFAULT_TOL,
                        graph: UnitGraph | None = None) -> dict[str, float]:
    """Each gate layer's expected count of nonlinear units on a path (they sum to the APL)."""
    graph = graph if graph is not None else cached_unit_graph(model, example_input)
    res = path_lengths(graph, graph.masks_from_model(model, tol))
    return dict(res.per_layer_normalized if normalized else res.per_layer_unnormalized)


def path_metrics(model: nn.Module, example_input, tol: float = DEFAULT_TOL,
                 graph: UnitGraph | None = None) -> dict[str, Callable[[nn.Module], float]]:
    """Metrics for ``TrainingSession.metrics``, built on one graph traced now:
    ``apl_normalized``, ``apl_unnormalized`` and ``nonlinear_layers`` (gate layers with a nonlinear unit).

    Each call reads the gates of the model it is given (by module path) and costs a dot product per gate
    layer; calls for the same gate state share one evaluation.
    """
    graph = graph if graph is not None else cached_unit_graph(model, example_input)
    _weights(graph)  # pay the O(edges) passes now, not during training
    gate_layers = [layer for layer in graph.gate_layers if layer.kind == "gate"]
    last: dict[str, object] = {}

    def evaluate(m: nn.Module) -> tuple[PathLengths, dict[str, np.ndarray]]:
        key = (id(m),) + tuple(_gate_version(m, layer.module) for layer in gate_layers)
        if last.get("key") != key:
            masks = graph.masks_from_model(m, tol)
            last["key"], last["value"] = key, (path_lengths(graph, masks), masks)
        return last["value"]

    def apl_normalized(m: nn.Module) -> float:
        return evaluate(m)[0].normalized

    def apl_unnormalized(m: nn.Module) -> float:
        return evaluate(m)[0].unnormalized

    def nonlinear_layers(m: nn.Module) -> float:
        return float(sum(1 for v in evaluate(m)[1].values() if v.any()))

    return {"apl_normalized": apl_normalized, "apl_unnormalized": apl_unnormalized,
            "nonlinear_layers": nonlinear_layers}


def _gate_version(model: nn.Module, path: str) -> tuple:
    g = model.get_submodule(path) if path else model
    return (g.alpha._version, g.state._version, g.alpha.data_ptr())


# -- brute force (tests and benchmarks) --------------------------------------------------------------------

def brute_force_path_lengths(graph: UnitGraph, masks: Masks, max_paths: int = 10_000_000,
                             time_limit: float | None = None, per_layer: bool = True) -> PathLengths:
    """Both APLs by enumerating every input-to-output path (exponential: tests and benchmarks only).

    Raises ``RuntimeError`` past ``max_paths`` paths or ``time_limit`` seconds. ``per_layer=True`` also
    counts each gate layer's contribution (keeping every path; slower), else those dicts are empty.
    """
    start = time.perf_counter()
    nl = _mask_vectors(graph, masks)
    offsets = np.cumsum([0] + [layer.size for layer in graph.layers])
    total = int(offsets[-1])
    layer_of = np.repeat(np.arange(len(graph.layers)), [layer.size for layer in graph.layers])
    preds: list[list[int]] = [[] for _ in range(total)]
    for e in graph.edges:
        src, dst = graph.unit_edges(e)
        for s, d in zip((src + offsets[e.src]).tolist(), (dst + offsets[e.dst]).tolist()):
            preds[d].append(s)
    nonlin = np.zeros(total, dtype=np.int64)
    for i, v in nl.items():
        nonlin[offsets[i]:offsets[i + 1]] = v.astype(np.int64)
    is_input = np.zeros(total, dtype=bool)
    for i in graph.inputs:
        is_input[offsets[i]:offsets[i + 1]] = True
    live = is_input.copy()
    for v in range(total):  # units are in topological order
        if not live[v] and any(live[u] for u in preds[v]):
            live[v] = True
    live_preds = [[u for u in preds[v] if live[u]] for v in range(total)]
    outs = [v for i in graph.outputs for v in range(offsets[i], offsets[i + 1]) if live[v]]
    if not outs:
        raise ValueError("no path joins an input to an output")
    gate_index = {layer.index: layer.name for layer in graph.gate_layers}
    nonlin_list = nonlin.tolist()
    layer_list = layer_of.tolist()
    is_input_list = is_input.tolist()
    count, length_sum, norm_sum = 0, 0, 0.0
    per_u = np.zeros(len(graph.layers))
    per_n = np.zeros(len(graph.layers))
    k = 1.0 / len(outs)
    if not per_layer:
        return _enumerate_counts(outs, k, live_preds, nonlin_list, is_input_list, max_paths, time_limit, start)
    for o in outs:
        stack = [(o, k, (o,))]
        while stack:
            v, p, path = stack.pop()
            if is_input_list[v]:
                hits = [u for u in path if nonlin_list[u]]
                count += 1
                length_sum += len(hits)
                norm_sum += p * len(hits)
                for u in hits:
                    per_u[layer_list[u]] += 1
                    per_n[layer_list[u]] += p
                if count % 4096 == 0:
                    _check_budget(count, max_paths, time_limit, start)
                continue
            lp = live_preds[v]
            q = p / len(lp)
            for u in lp:
                stack.append((u, q, path + (u,)))
    return PathLengths(
        normalized=norm_sum,
        unnormalized=length_sum / count,
        per_layer_normalized={name: float(per_n[i]) for i, name in gate_index.items()},
        per_layer_unnormalized={name: float(per_u[i] / count) for i, name in gate_index.items()},
        num_paths=float(count),
        log_num_paths=math.log(count),
    )


def _check_budget(count: int, max_paths, time_limit, start: float) -> None:
    """Stop an enumeration that has gone past its path or time budget."""
    if count > max_paths:
        raise RuntimeError(f"more than max_paths={max_paths} paths")
    if time_limit is not None and time.perf_counter() - start > time_limit:
        raise RuntimeError(f"path enumeration exceeded time_limit={time_limit} s")


def _enumerate_counts(outs, k, live_preds, nonlin, is_input, max_paths, time_limit, start) -> PathLengths:
    """The lean enumeration: per path only its probability and its nonlinear count."""
    count, length_sum, norm_sum = 0, 0, 0.0
    for o in outs:
        stack = [(o, k, nonlin[o])]
        while stack:
            v, p, c = stack.pop()
            if is_input[v]:
                count += 1
                length_sum += c
                norm_sum += p * c
                if count % 65536 == 0:
                    _check_budget(count, max_paths, time_limit, start)
                continue
            lp = live_preds[v]
            q = p / len(lp)
            for u in lp:
                stack.append((u, q, c + nonlin[u]))
    return PathLengths(normalized=norm_sum, unnormalized=length_sum / count, per_layer_normalized={},
                       per_layer_unnormalized={}, num_paths=float(count), log_num_paths=math.log(count))
