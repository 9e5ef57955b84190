"""nonlin_explorer: how much nonlinearity does a trained network really use?

The compute core (gates, linearize, models, datasets, training, results, path length, compression) imports
no UI; the widgets live in ``nonlin_explorer.ui``.
"""

from __future__ import annotations

import importlib
from typing import Any

from nonlin_explorer._version import __version__
from nonlin_explorer.collapse import CollapseResult, collapse
from nonlin_explorer.core_network import CoreNetwork, core_network
from nonlin_explorer.devices import pick_device
from nonlin_explorer.gates import (
    DEFAULT_TOL,
    LinearizableActivation,
    LinearizableReLU,
    UnitState,
    clamp_slopes_,
    gate_dict,
    gate_snapshot,
    gates,
    make_gate,
    nonlinear_count,
    restore_gates,
    sparsity_penalty,
    temporary_gates,
    unit_count,
)
from nonlin_explorer.graph import UnitGraph, UnsupportedOperationError, unit_graph
from nonlin_explorer.linearize import linearize
from nonlin_explorer.paths import PathLengths, average_path_length, layer_contributions, path_lengths, path_metrics

#: Public names imported on first use (they pull in xarray, scipy.stats, the compression package, the training
#: loop): ``import nonlin_explorer`` costs little more than ``import torch``.
_LAZY = {
    "advantage": "nonlin_explorer.advantage",
    "compression": "nonlin_explorer.compression",
    "datasets": "nonlin_explorer.datasets",
    "models": "nonlin_explorer.models",
    "read_netcdf": "nonlin_explorer.results",
    "write_netcdf": "nonlin_explorer.results",
    "TrainConfig": "nonlin_explorer.training",
    "TrainingSession": "nonlin_explorer.training",
    "load_checkpoint": "nonlin_explorer.training",
    "train": "nonlin_explorer.training",
}


def __getattr__(name: str) -> Any:
    """Import a lazy public name (a submodule, or a name of one) on first use."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nonlin_explorer' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.rsplit(".", 1)[1] == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CollapseResult",
    "CoreNetwork",
    "DEFAULT_TOL",
    "LinearizableActivation",
    "LinearizableReLU",
    "PathLengths",
    "TrainConfig",
    "TrainingSession",
    "UnitGraph",
    "UnitState",
    "UnsupportedOperationError",
    "__version__",
    "advantage",
    "average_path_length",
    "clamp_slopes_",
    "collapse",
    "compression",
    "core_network",
    "datasets",
    "gate_dict",
    "gate_snapshot",
    "gates",
    "make_gate",
    "layer_contributions",
    "linearize",
    "load_checkpoint",
    "models",
    "nonlinear_count",
    "path_lengths",
    "path_metrics",
    "pick_device",
    "read_netcdf",
    "restore_gates",
    "sparsity_penalty",
    "temporary_gates",
    "train",
    "unit_count",
    "unit_graph",
    "write_netcdf",
]
