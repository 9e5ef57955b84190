"""The core network: the units still nonlinear and the layers that connect them.

Under a sparsity prior most units of a trained network become linear; what stays nonlinear forms a *core
network* of near-constant effective depth and width that depends on the task's difficulty (Ali
Mehmeti-Göpel & Disselhoff, ICML 2023). :func:`core_network` measures it: nonlinear width per gate layer,
effective depth (average path length, both normalizations, with each layer's contribution) and the
number of layers still holding nonlinear units.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from nonlin_explorer.gates import DEFAULT_TOL
from nonlin_explorer.graph import UnitGraph, cached_unit_graph
from nonlin_explorer.paths import path_lengths

__all__ = ["CoreNetwork", "core_network"]


@dataclass(frozen=True)
class CoreNetwork:
    """Widths and effective depth of the nonlinear part of a network (arrays are over ``layers``)."""

    layers: list[str]
    units: np.ndarray
    widths: np.ndarray
    apl_normalized: float
    apl_unnormalized: float
    contributions_normalized: np.ndarray
    contributions_unnormalized: np.ndarray
    tol: float
    masks: dict[str, np.ndarray] = field(repr=False)
    graph: UnitGraph = field(repr=False)

    @property
    def nonlinear_layers(self) -> int:
        """How many gate layers still hold a nonlinear unit."""
        return int((self.widths > 0).sum())

    @property
    def nonlinear_units(self) -> int:
        return int(self.widths.sum())

    @property
    def width(self) -> dict[str, int]:
        """Nonlinear units per gate layer, by name."""
        return {name: int(w) for name, w in zip(self.layers, self.widths)}

    def apl(self, normalized: bool = True) -> float:
        return self.apl_normalized if normalized else self.apl_unnormalized

    def __str__(self) -> str:
        lines = [f"core network: {self.nonlinear_units}/{int(self.units.sum())} nonlinear units in "
                 f"{self.nonlinear_layers}/{len(self.layers)} layers; APL {self.apl_normalized:.3f} (normalized), "
                 f"{self.apl_unnormalized:.3f} (unnormalized)"]
        pad = max((len(n) for n in self.layers), default=5)
        lines.append(f"  {'layer':<{pad}}  width/units  contribution (normalized, unnormalized)")
        for i, name in enumerate(self.layers):
            lines.append(f"  {name:<{pad}}  {int(self.widths[i]):>5}/{int(self.units[i]):<5}  "
                         f"{self.contributions_normalized[i]:.3f}, {self.contributions_unnormalized[i]:.3f}")
        return "\n".join(lines)

    def to_xarray(self):
        """An ``xarray.Dataset`` over the ``layer`` dimension (APLs and counts in ``attrs``)."""
        import xarray as xr

        from nonlin_explorer.labels import label
        from nonlin_explorer.netcdf import netcdf_attrs

        units = self.units.astype(np.int64)
        ds = xr.Dataset(
            {
                "units": ("layer", units, {"long_name": "units in the gate layer"}),
                "width": ("layer", self.widths.astype(np.int64), {"long_name": "nonlinear units (core width)"}),
                "fraction": ("layer", self.widths / np.maximum(units, 1), {"long_name": "nonlinear fraction"}),
                "contribution_normalized": ("layer", self.contributions_normalized,
                                            {"long_name": "expected nonlinear units met on a path (normalized)"}),
                "contribution_unnormalized": ("layer", self.contributions_unnormalized,
                                              {"long_name": "expected nonlinear units met on a path (unnormalized)"}),
            },
            coords={"layer": np.array(self.layers, dtype=object)},
            attrs=netcdf_attrs({"apl_normalized": self.apl_normalized, "apl_unnormalized": self.apl_unnormalized,
                                "nonlinear_layers": self.nonlinear_layers, "nonlinear_units": self.nonlinear_units,
                                "tol": self.tol}),
        )
        return label(ds, {name: (name, "1") for name in ds.data_vars})  # counts, a fraction, expected counts

    def to_networkx(self):
        """The core as a layer-level ``DiGraph``: inputs, gate layers with nonlinear units, and outputs;
        an edge ``a -> b`` when a path leads from ``a`` to ``b`` through layers without nonlinear units.
        Nodes carry ``kind``, ``width`` and ``units``."""
        import networkx as nx

        g = self.graph
        core = {g.layer(name).index for name, w in zip(self.layers, self.widths) if w > 0}
        ends = set(g.outputs)
        out = nx.DiGraph()
        for i in sorted(set(g.inputs) | core | ends):
            layer = g.layers[i]
            width = int(self.masks[layer.name].sum()) if layer.name in self.masks else layer.size
            out.add_node(layer.name, kind=layer.kind, width=width, units=layer.size)
        for i in sorted(set(g.inputs) | core):
            seen, todo = {i}, deque([i])
            while todo:
                j = todo.popleft()
                for e in g._out[j]:
                    k = e.dst
                    if k in seen:
                        continue
                    seen.add(k)
                    if k in core or k in ends:
                        out.add_edge(g.layers[i].name, g.layers[k].name)
                    if k not in core:
                        todo.append(k)
        return out


def core_network(model: nn.Module, example_input=None, tol: float = DEFAULT_TOL,
                 graph: UnitGraph | None = None) -> CoreNetwork:
    """Measure the core network of ``model`` (units with ``1 - alpha > tol``).

    Needs ``example_input`` to trace the model (once per structure and input shape: later calls reuse the graph
    and read the slopes fresh), unless a prebuilt ``graph`` is given.
    """
    if graph is None:
        if example_input is None:
            raise ValueError("core_network needs example_input (or a prebuilt graph) to trace the model")
        graph = cached_unit_graph(model, example_input)
    masks = graph.masks_from_model(model, tol)
    res = path_lengths(graph, masks)
    names = [layer.name for layer in graph.gate_layers]
    return CoreNetwork(
        layers=names,
        units=np.array([layer.size for layer in graph.gate_layers], dtype=np.int64),
        widths=np.array([int(masks[n].sum()) for n in names], dtype=np.int64),
        apl_normalized=res.normalized,
        apl_unnormalized=res.unnormalized,
        contributions_normalized=np.array([res.per_layer_normalized[n] for n in names]),
        contributions_unnormalized=np.array([res.per_layer_unnormalized[n] for n in names]),
        tol=tol,
        masks=masks,
        graph=graph,
    )
