"""Training until the prior converges: the criterion (no unit changed state for K evaluations), the cap (a run
that hits it is "not converged", never mixed in), and the stored grid's finalization."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nonlin_explorer import sweep
from nonlin_explorer.core_depth import PATIENCE, prior_converged, train_to_convergence

RESULTS = Path(__file__).resolve().parent.parent / "results"
SMALL = {"dataset": "digits", "model": "mlp", "model_kwargs": {"depth": 2, "width": 32}, "lr": 1e-2,
         "slope_lr": 0.03, "sparsity": 1e-2}


def _make_core_depth():
    sys.path.insert(0, str(RESULTS))
    try:
        import make_core_depth
    finally:
        sys.path.remove(str(RESULTS))
    return make_core_depth


def test_converged_only_after_k_evaluations_without_a_state_change():
    assert prior_converged([4, 2, 0, 0, 0, 0, 0], patience=5)
    assert not prior_converged([4, 0, 0, 0, 1, 0, 0, 0, 0], patience=5)  # a change 5 evaluations before the end
    assert not prior_converged([0, 0, 0, 0], patience=5)  # fewer evaluations than K
    assert prior_converged([0] * PATIENCE) and not prior_converged([])
    with pytest.raises(ValueError, match="patience"):
        prior_converged([0, 0], patience=0)


def test_a_run_stops_when_no_unit_changed_for_k_evaluations_and_not_before_the_least_prior_time():
    r = train_to_convergence(0, switch_epoch=5, max_epochs=120, half_life=5, patience=3, min_prior_epochs=10,
                             **SMALL)
    assert r["converged"] == 1.0
    assert r["epochs"] < 120
    assert r["epochs"] - 5 >= 10  # the prior was on for min_prior_epochs at least
    assert r["prior_evaluations"] == r["epochs"] - 5  # one check per epoch under the prior
    assert r["epochs"] - r["last_change_epoch"] >= 3  # the last 3 checks saw no change
    assert r["nonlinear_total"] < r["units_total"] and 0 <= r["apl_normalized"] <= 2
    assert np.isnan(r["nonlinear_layer3"]) and r["nonlinear_layer1"] + r["nonlinear_layer2"] == r["nonlinear_total"]


def test_a_run_that_hits_the_cap_is_not_converged():
    r = train_to_convergence(0, switch_epoch=5, max_epochs=8, patience=5, **SMALL)  # 3 checks < K = 5
    assert r["converged"] == 0.0 and r["epochs"] == 8 and r["prior_evaluations"] == 3


def test_bad_settings_are_refused_with_one_line():
    with pytest.raises(ValueError, match="switch_epoch < max_epochs"):
        train_to_convergence(0, switch_epoch=10, max_epochs=10, **SMALL)
    with pytest.raises(ValueError, match="sets epochs itself"):
        train_to_convergence(0, epochs=5, **SMALL)
    with pytest.raises(ValueError, match="half_life"):
        train_to_convergence(0, half_life=0, **SMALL)


def test_the_stored_grid_marks_capped_runs_not_converged():
    mk = _make_core_depth()
    spec = mk.spec(1, {"dataset": ["digits"], "model_kwargs.depth": [2], "model_kwargs.width": [32],
                       "sparsity": [1e-2]})
    spec["base"].update(switch_epoch=2, max_epochs=4, min_prior_epochs=0)  # 2 checks < K: capped
    ds = mk.finalize(sweep.run(spec, workers=0, progress=False))
    assert ds.status.values.ravel().tolist() == ["not converged"]
    assert ds.converged.values.ravel().tolist() == [0.0]
    assert ds.nonlinear_per_layer.sizes["gate_layer"] == 8
    from nonlin_explorer.labels import unlabelled

    assert unlabelled(ds) == []
