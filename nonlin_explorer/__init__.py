"""nonlin_explorer: how much nonlinearity does a trained network really use?

The compute core (gates, linearize, models, datasets, training, results, path length, compression) imports
no UI; the widgets live in ``nonlin_explorer.ui``.
"""

from nonlin_explorer import datasets, models
from nonlin_explorer._version import __version__
from nonlin_explorer.devices import pick_device
from nonlin_explorer.gates import (
    DEFAULT_TOL,
    LinearizableReLU,
    UnitState,
    clamp_slopes_,
    gate_dict,
    gate_snapshot,
    gates,
    nonlinear_count,
    restore_gates,
    sparsity_penalty,
    temporary_gates,
    unit_count,
)
from nonlin_explorer.linearize import linearize
from nonlin_explorer.results import load_checkpoint, read_netcdf, write_netcdf
from nonlin_explorer.training import TrainConfig, TrainingSession, train

__all__ = [
    "DEFAULT_TOL",
    "LinearizableReLU",
    "TrainConfig",
    "TrainingSession",
    "UnitState",
    "__version__",
    "clamp_slopes_",
    "datasets",
    "gate_dict",
    "gate_snapshot",
    "gates",
    "linearize",
    "load_checkpoint",
    "models",
    "nonlinear_count",
    "pick_device",
    "read_netcdf",
    "restore_gates",
    "sparsity_penalty",
    "temporary_gates",
    "train",
    "unit_count",
    "write_netcdf",
]
