"""``long_name`` and ``units`` for every variable and coordinate of the result sets the package writes.

One table (:data:`LABELS`) names each quantity once, so a training run, a sweep and a recording describe ``test_acc``
or ``step`` alike; :func:`label` fills in what a builder left out. ``units`` follow CF: ``"1"`` for a dimensionless
number (a count, a fraction, a loss, a label), otherwise the unit (``"steps"``, ``"epochs"``, ``"s"``, ``"degrees"``).
A quantity this package does not define (a user's metric function, a user's swept setting) gets ``"unspecified"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import xarray as xr

#: What an unknown quantity's ``units`` say: the package cannot know the unit of a user's function.
UNSPECIFIED = "unspecified"

#: ``name: (long_name, units)`` for every quantity a result set of this package may hold.
LABELS: dict[str, tuple[str, str]] = {
    # training runs and recordings
    "step": ("training step (optimizer updates so far) of each evaluation", "steps"),
    "epoch": ("epochs trained at each evaluation", "epochs"),
    "layer": ("gate layer (module name of its gated ReLU)", "1"),
    "unit": ("unit index within its gate layer", "1"),
    "slope_step": ("training step of each kept slope snapshot", "steps"),
    "train_loss": ("mean cross-entropy over the training steps since the previous evaluation", "1"),
    "train_acc": ("accuracy over the training steps since the previous evaluation", "1"),
    "test_loss": ("cross-entropy on the test set", "1"),
    "test_acc": ("accuracy on the test set", "1"),
    "sparsity": ("lambda of the prior lambda * sum(1 - alpha)", "1"),
    "lr": ("learning rate of the weights", "1"),
    "prior_on": ("1 when the sparsity prior is on", "1"),
    "nonlinear": ("units with 1 - alpha > tol, per gate layer", "1"),
    "nonlinear_total": ("nonlinear units in the whole model", "1"),
    "units": ("units per gate layer", "1"),
    "slope": ("alpha per unit (NaN beyond a layer's unit count)", "1"),
    "apl_normalized": ("average path length through nonlinear units, normalized (even split at merges)", "1"),
    "apl_unnormalized": ("average path length through nonlinear units, every path weighted the same", "1"),
    "nonlinear_layers": ("gate layers with at least one nonlinear unit", "1"),
    "eval_time": ("wall-clock time of each evaluation (seconds since 1970-01-01 UTC)", "s"),
    "batch_step": ("training step of each batch loss", "steps"),
    "batch_loss": ("cross-entropy of each training batch", "1"),
    # schedule comparisons (nonlinear advantage)
    "schedule": ("when the prior switches on: early (from the first step) or late (at switch_epoch)", "1"),
    "seed": ("random seed of the run (weights, data order; the target in compression)", "1"),
    "nonlinear_fraction": ("nonlinear units / all gated units", "1"),
    "nonlinear_layer": ("nonlinear units per gate layer at the end", "1"),
    "dense_test_acc": ("test accuracy of the plain ReLU network when the prior switched on (late only)", "1"),
    "steps": ("optimizer steps taken", "steps"),
    # the core-depth grid (results/core_depth.nc: nonlin_explorer.core_depth)
    "converged": ("1 when the prior converged (no unit changed state in `patience` per-epoch evaluations in a "
                  "row), 0 when the run hit max_epochs", "1"),
    "prior_evaluations": ("per-epoch checks of the unit states after the prior switched on", "1"),
    "last_change_epoch": ("last epoch at which a unit changed state (switch_epoch when none did)", "epochs"),
    "dataset": ("dataset (task) the model is trained on", "1"),
    "gate_layer": ("gate layer counted from the input (1: first hidden layer)", "1"),
    "nonlinear_per_layer": ("nonlinear units per gate layer at the end (NaN past the network's depth)", "1"),
    "status": ("what became of the run or point (finished, diverged, skipped, failed, stopped or pending)", "1"),
    "time": ("wall-clock seconds of the run", "s"),
    # sweeps
    "units_total": ("gated ReLU units in the model", "1"),
    "final_step": ("optimizer steps taken", "steps"),
    "final_epoch": ("epochs trained", "epochs"),
    "error": ("why the point failed, diverged or was skipped (empty when finished)", "1"),
    "key": ("identity of the point (hash of its parameters and seed)", "1"),
    "provenance": ("per-point provenance (JSON): versions, host, config, times", "1"),
    "series_length": ("entries along the series dimension (the rest is padding)", "1"),
    "sample": ("index of a random draw of the randomized parameters", "1"),
    "epochs": ("training epochs", "epochs"),
    "switch_epoch": ("epoch at which the late schedule switches the prior on", "epochs"),
    "batch_size": ("examples per training batch", "1"),
    "width": ("hidden units per layer", "1"),
    "depth": ("hidden layers", "1"),
    "tol": ("slope tolerance: a unit with 1 - alpha > tol counts as nonlinear", "1"),
    # compression
    "N": ("width of the target network (hidden units of f*)", "1"),
    "M": ("width of the compressed network", "1"),
    "d": ("input dimension", "1"),
    "method": ("compression method (or baseline)", "1"),
    "loss": ("exact population loss E (f*(x) - g(x))^2 of the compressed network", "1"),
    "relative_loss": ("loss / E f*(x)^2", "1"),
    "etf_distance": ("largest deviation of a cosine between compressed units from the simplex ETF's -1/(M-1)", "1"),
    "mean_cosine": ("mean cosine between distinct compressed units", "1"),
    "meanfield_loss": ("mean-field prediction of the optimal loss (method meanfield only)", "1"),
    "shape": ("name of the units' shape by frame_shape (vacuous, simplex ETF, tilted simplex, distorted tilted "
              "simplex, distorted simplex, general ETF, none); empty where not computed", "1"),
    "shape_distance": ("largest cosine deviation from the named shape (from the nearest one for none)", "1"),
    "tilt_degrees": ("angle of each unit out of the hyperplane orthogonal to the units' mean direction", "degrees"),
    "energy": ("E f*(x)^2 of the target", "1"),
    "iterations": ("optimizer iterations", "1"),
    "b": ("output weight of each compressed unit", "1"),
    "V": ("input direction of each compressed unit (unit norm)", "1"),
    "gram": ("cosines between compressed units (Gram matrix of V)", "1"),
    "etf_gram": ("Gram matrix of the simplex ETF with as many units", "1"),
    "history": ("relative loss at each optimizer iteration", "1"),
    "unit2": ("compressed unit index (second axis of a Gram matrix)", "1"),
    "dim": ("input coordinate", "1"),
    "iteration": ("optimizer iteration", "1"),
    "wall_time": ("wall-clock seconds of the computation in the explorer", "s"),
    # compression studies (results/make_compression.py)
    "shape_index": ("index of the units' shape name in the set's shape_names attribute (frame_shape)", "1"),
    "tilt_threshold": ("smallest tilt frame_shape names a tilted simplex at the target's N and d", "degrees"),
    "cosine_spread": ("largest deviation of a cosine between compressed units from their mean", "1"),
    "scale_spread": ("(max - min) / mean of the compressed units' output scales", "1"),
    "cosine_min": ("smallest cosine between two compressed units", "1"),
    "cosine_max": ("largest cosine between two compressed units", "1"),
    "plain_ratio": ("relative loss of the mean-field units over the exact optimum's", "1"),
    "oracle_ratio": ("relative loss of the mean-field units at their best rotation for the target over the exact "
                     "optimum's", "1"),
    "relative_loss_oracle": ("relative loss of the mean-field units at their best rotation for the target", "1"),
    "case": ("named configuration of nonlin_explorer.compression.studies.CASES", "1"),
    "law": ("law of the target's weights (nonlin_explorer.compression.studies.LAWS)", "1"),
    "w_mean": ("mean of the target's input weights along e1", "1"),
    "a_mean": ("mean of the target's output weights times N", "1"),
    "restarts": ("independent optimizer starts of the exact compression", "1"),
    "cross_term_rms": ("RMS over random directions u of the mean-field cross-term error (h(u) - A c_d) / (A c_d)", "1"),
    "cross_term_sup": ("largest |h(u) - A c_d| / (A c_d) found over the sphere (a lower bound on the sup)", "1"),
    "directions": ("random directions drawn per target", "1"),
}
for _name in ("shape_index", "tilt_degrees", "tilt_threshold", "cosine_spread", "scale_spread", "cosine_min",
              "cosine_max", "relative_loss"):
    for _method, _of in (("exact", "the exact optimum"), ("meanfield", "the mean-field solution")):
        LABELS[f"{_name}_{_method}"] = (f"{LABELS[_name][0]}, of {_of}", LABELS[_name][1])


def label(ds: xr.Dataset, names: Mapping[str, tuple[str, str]] | None = None) -> xr.Dataset:
    """``ds`` with ``long_name`` and ``units`` on every variable and coordinate (in place, and returned).

    A ``long_name`` the builder set is kept; otherwise ``names`` (this result set's own), then :data:`LABELS`;
    ``units`` likewise. A quantity found in neither gets its name as ``long_name`` and ``"unspecified"`` units.
    """
    table = {**LABELS, **(names or {})}
    for name in list(ds.variables):
        long_name, units = table.get(str(name), (str(name), UNSPECIFIED))
        attrs = ds.variables[name].attrs
        attrs.setdefault("long_name", long_name)
        attrs.setdefault("units", units)
    return ds


def unlabelled(ds: xr.Dataset) -> list[str]:
    """Names of the variables and coordinates of ``ds`` that lack a ``long_name`` or ``units`` (should be none)."""
    return [str(n) for n, v in ds.variables.items() if not v.attrs.get("long_name") or not v.attrs.get("units")]
