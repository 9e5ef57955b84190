"""nonlin_explorer: how much nonlinearity does a trained network really use?

The compute core (gates, linearize, models, datasets, training, results, path length, compression) imports
no UI; the widgets live in ``nonlin_explorer.ui``.
"""

from nonlin_explorer import advantage, compression, datasets, models
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
from nonlin_explorer.results import read_netcdf, write_netcdf
from nonlin_explorer.training import TrainConfig, TrainingSession, load_checkpoint, train

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
