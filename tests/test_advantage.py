"""compare_schedules (early vs late at equal budget) and the gap at matched nonlinear count / APL."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
import xarray as xr

from nonlin_explorer.advantage import (
    RUN_VARIABLES,
    compare_schedules,
    gap_at_matched_apl,
    gap_at_matched_count,
    schedule_gap,
)
from nonlin_explorer.training import TrainConfig

TINY = TrainConfig(dataset="spirals", dataset_kwargs={"num_samples": 300}, model="mlp",
                   model_kwargs={"width": 8, "depth": 2}, epochs=4, batch_size=32, lr=1e-2, slope_lr=0.2,
                   eval_every=1000)


def test_dataset_has_the_grid_as_dims_and_every_run_finished():
    ds = compare_schedules(TINY, sparsities=[0.0, 0.05], seeds=[0, 3])
    assert dict(ds.sizes) == {"schedule": 2, "sparsity": 2, "seed": 2, "layer": 2}
    assert ds.schedule.values.tolist() == ["early", "late"]
    assert ds.sparsity.values.tolist() == [0.0, 0.05]
    assert ds.seed.values.tolist() == [0, 3]
    for name in RUN_VARIABLES:
        assert ds[name].dims == ("schedule", "sparsity", "seed"), name
    assert (ds.status == "finished").all()
    assert np.isfinite(ds.test_acc).all() and ((ds.test_acc >= 0) & (ds.test_acc <= 1)).all()
    assert int(ds.attrs["completed_runs"]) == 8 and int(ds.attrs["cancelled"]) == 0
    units = int(ds.units.sum())
    assert units == 16 and int(ds.attrs["units_total"]) == 16
    # counts are consistent: totals = sum over layers; fraction = count / units; APL within [0, depth]
    np.testing.assert_array_equal(ds.nonlinear.values, ds.nonlinear_layer.sum("layer").values)
    np.testing.assert_allclose(ds.nonlinear_fraction.values, ds.nonlinear.values / units)
    assert ((ds.apl_normalized >= 0) & (ds.apl_normalized <= 2 + 1e-9)).all()
    # late has a dense accuracy (before its prior switched on), early has none
    assert np.isfinite(ds.dense_test_acc.sel(schedule="late")).all()
    assert np.isnan(ds.dense_test_acc.sel(schedule="early")).all()
    assert (ds.steps == ds.steps.max()).all()  # equal budget for both schedules
    assert '"epochs": 4' in ds.attrs["config"] and "torch_version" in ds.attrs


def test_every_variable_and_coordinate_has_long_name_and_units_and_numbers_stay_numbers(tmp_path):
    from nonlin_explorer.labels import unlabelled
    from nonlin_explorer.results import read_netcdf, write_netcdf

    ds = read_netcdf(write_netcdf(compare_schedules(TINY, sparsities=[0.01], seeds=np.arange(1)), tmp_path / "a.nc"))
    assert {"apl_normalized", "apl_unnormalized", "nonlinear_layer", "units", "status"} <= set(ds.data_vars)
    assert unlabelled(ds) == []
    assert ds.steps.attrs["units"] == "steps" and ds.time.attrs["units"] == "s" and ds.sparsity.attrs["units"] == "1"
    from doc_tables import undocumented

    assert undocumented(ds) == []
    assert json.loads(ds.attrs["seeds"]) == [0]  # numpy seeds are numbers in the JSON too, never "0"
    assert not isinstance(ds.attrs["tol"], str) and not isinstance(ds.attrs["epochs"], str)


def test_a_strong_prior_linearizes_more_than_none():
    ds = compare_schedules(TINY, sparsities=[0.0, 0.5], seeds=[0])
    assert (ds.nonlinear.sel(sparsity=0.5) < ds.nonlinear.sel(sparsity=0.0)).all()


def test_same_seed_same_numbers_different_seed_different_numbers():
    a = compare_schedules(TINY, sparsities=[0.05], seeds=[1])
    b = compare_schedules(TINY, sparsities=[0.05], seeds=[1])
    for name in ("test_acc", "train_loss", "nonlinear", "apl_normalized", "apl_unnormalized"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    c = compare_schedules(TINY, sparsities=[0.05], seeds=[2])
    assert not np.array_equal(a.train_loss.values, c.train_loss.values)


#: The documented MLP configuration (docs/nonlinear_advantage.md), one epoch.
DOC_MLP = dict(dataset="mnist1d", dataset_kwargs={"num_samples": 4000}, model="mlp",
               model_kwargs={"width": 64, "depth": 4}, epochs=1, lr=1e-2, slope_lr=0.03, eval_every=10_000)
_DOC_RUN = """
import json, sys
from nonlin_explorer.advantage import compare_schedules
ds = compare_schedules(json.loads(sys.argv[1]), [4e-3], [0], schedules=["early"])
print(json.dumps([float(ds[n].values.ravel()[0]) for n in ("test_loss", "train_loss", "nonlinear")]))
"""


def test_a_seed_gives_the_same_numbers_bit_for_bit_in_a_thread_and_in_another_process_with_other_threads():
    """Runs are pinned to one torch thread: the caller's thread count, a background thread or OMP_NUM_THREADS=2
    in a fresh process change nothing (with two threads the reductions round differently)."""
    def numbers(ds):
        return [float(ds[n].values.ravel()[0]) for n in ("test_loss", "train_loss", "nonlinear")]

    here = numbers(compare_schedules(DOC_MLP, [4e-3], [0], schedules=["early"]))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = []
        t = threading.Thread(target=lambda: out.append(numbers(compare_schedules(DOC_MLP, [4e-3], [0],
                                                                                  schedules=["early"]))))
        t.start()
        t.join()
    finally:
        torch.set_num_threads(before)
    assert out == [here]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", _DOC_RUN, json.dumps(DOC_MLP)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


def test_callback_once_per_run_with_the_runs_numbers():
    seen = []
    ds = compare_schedules(TINY, sparsities=[0.0, 0.05], seeds=[0], callback=lambda k, p: seen.append((k, p)))
    runs = [p for k, p in seen if k == "run"]
    assert len(runs) == 4 and [k for k, _ in seen][-1] == "done"
    assert [p["index"] for p in runs] == [1, 2, 3, 4] and all(p["total"] == 4 for p in runs)
    assert {(p["schedule"], p["sparsity"]) for p in runs} == {(s, x) for s in ("early", "late") for x in (0.0, 0.05)}
    for p in runs:
        assert p["test_acc"] == float(ds.test_acc.sel(schedule=p["schedule"], sparsity=p["sparsity"], seed=0))
        assert p["nonlinear"] == float(ds.nonlinear.sel(schedule=p["schedule"], sparsity=p["sparsity"], seed=0))


def test_should_stop_between_runs_returns_what_finished():
    done = []
    ds = compare_schedules(TINY, sparsities=[0.0, 0.05], seeds=[0],
                           callback=lambda k, p: done.append(k), should_stop=lambda: done.count("run") >= 2)
    assert done.count("run") == 2
    assert int(ds.attrs["cancelled"]) == 1 and int(ds.attrs["completed_runs"]) == 2
    assert (ds.status.sel(sparsity=0.0) == "finished").all()
    assert (ds.status.sel(sparsity=0.05) == "pending").all()
    assert np.isnan(ds.test_acc.sel(sparsity=0.05)).all()


def test_should_stop_interrupts_a_run_between_steps():
    long = TrainConfig(**{**TINY.to_dict(), "epochs": 10_000})
    flag = threading.Event()
    timer = threading.Timer(0.5, flag.set)
    timer.start()
    result = {}
    worker = threading.Thread(target=lambda: result.update(ds=compare_schedules(long, [0.01], [0],
                                                                                should_stop=flag.is_set)))
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the run did not stop"
    ds = result["ds"]
    assert int(ds.attrs["cancelled"]) == 1 and int(ds.attrs["completed_runs"]) == 0
    assert ds.status.sel(schedule="early").item() == "stopped"
    assert ds.status.sel(schedule="late").item() == "pending"


@pytest.mark.parametrize("kwargs, message", [
    (dict(sparsities=[]), "sparsities is empty"),
    (dict(sparsities=[0.1, -0.01]), "sparsity must be finite and >= 0"),
    (dict(sparsities=[float("nan")]), "sparsity must be finite"),
    (dict(sparsities=["x"]), "sparsity must be a number"),
    (dict(sparsities=[0.1], schedules=("early", "sometimes")), "unknown schedule 'sometimes'"),
    (dict(sparsities=[0.1], schedules=()), "schedules is empty"),
    (dict(sparsities=[0.1], seeds=[]), "seeds is empty"),
    (dict(sparsities=[0.1], seeds=[-1]), "non-negative integers"),
    (dict(sparsities=[0.1, 0.1]), "duplicates"),
    (dict(sparsities=[0.1], config={"epochs": -1}), "epochs must be > 0"),
    (dict(sparsities=[0.1], config={"epoch": 3}), "unknown config fields"),
    (dict(sparsities=[0.1], config={"epochs": 4, "switch_epoch": 4}), "switch_epoch must lie strictly between"),
])
def test_bad_input_is_a_clear_value_error_before_any_training(kwargs, message):
    calls = []
    kwargs = {"config": TINY, **kwargs}
    with pytest.raises(ValueError, match=message):
        compare_schedules(callback=lambda k, p: calls.append(k), **kwargs)
    assert calls == []


def _hand_made(early_counts, early_acc, late_counts, late_acc, seeds=(0,)):
    """A result set with given per-sparsity counts and accuracies (the same for every seed)."""
    n = len(early_counts)
    shape = (2, n, len(seeds))
    counts = np.stack([np.array(early_counts, float), np.array(late_counts, float)])[:, :, None].repeat(len(seeds), 2)
    acc = np.stack([np.array(early_acc, float), np.array(late_acc, float)])[:, :, None].repeat(len(seeds), 2)
    dims = ("schedule", "sparsity", "seed")
    return xr.Dataset({"nonlinear": (dims, counts), "test_acc": (dims, acc),
                       "apl_normalized": (dims, counts / 10), "apl_unnormalized": (dims, np.zeros(shape))},
                      coords={"schedule": ["early", "late"], "sparsity": np.arange(n) * 0.1, "seed": list(seeds)})


def test_gap_is_exact_on_a_hand_made_result_set():
    # early: acc = 0.5 + count / 200 on counts 0..100; late: acc = 0.8 on counts 20..60
    ds = _hand_made([100, 50, 0], [1.0, 0.75, 0.5], [60, 40, 20], [0.8, 0.8, 0.8], seeds=(0, 1))
    gap = gap_at_matched_count(ds)
    assert gap.dims == ("seed", "nonlinear")
    assert gap.nonlinear.values.tolist() == [20.0, 40.0, 50.0, 60.0]  # seen counts inside both ranges
    np.testing.assert_allclose(gap.values, [[0.2, 0.1, 0.05, 0.0]] * 2)
    # explicit points; outside a curve's range: NaN (never extrapolated)
    gap = gap_at_matched_count(ds, points=[10, 30, 70])
    np.testing.assert_allclose(gap.sel(seed=0).values, [np.nan, 0.15, np.nan])
    # matched APL uses apl_normalized = count / 10
    np.testing.assert_allclose(gap_at_matched_apl(ds, points=[3.0]).values, [[0.15], [0.15]])
    # the other way round is the negative
    np.testing.assert_allclose(schedule_gap(ds, points=[30], first="early", second="late").values, [[-0.15]] * 2)


def test_gap_averages_runs_that_reach_the_same_count():
    # two sparsities both fully linear (count 0) with accuracies 0.3 and 0.5: the curve uses their mean 0.4
    ds = _hand_made([0, 0, 10], [0.3, 0.5, 0.6], [0, 10, 20], [0.6, 0.7, 0.9])
    np.testing.assert_allclose(gap_at_matched_count(ds, points=[0, 5, 10]).values, [[0.2, 0.15, 0.1]])


def test_gap_rejects_unknown_variables_and_schedules():
    ds = _hand_made([1, 0], [0.5, 0.4], [1, 0], [0.6, 0.5])
    with pytest.raises(ValueError, match="no variable 'depth'"):
        schedule_gap(ds, by="depth")
    with pytest.raises(ValueError, match="no schedule 'custom'"):
        schedule_gap(ds, first="custom")


def test_unit_state_changes_counts_units_that_changed_state_since_the_previous_call():
    from torch import nn

    from nonlin_explorer import linearize
    from nonlin_explorer.advantage import unit_state_changes
    from nonlin_explorer.gates import gates

    x = torch.randn(3, 2)
    model = linearize(nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1)), x)
    changed = unit_state_changes(model, x)["units_changed"]
    assert changed(model) == 0.0                      # nothing moved since construction
    gate = gates(model)[0]
    with torch.no_grad():
        gate.alpha[:2] = 1.0                          # two units turn linear
    assert changed(model) == 2.0
    assert changed(model) == 0.0                      # compared with the previous call, not with the start
    with torch.no_grad():
        gate.alpha[0] = 0.0                           # one back to nonlinear, one more linear
        gate.alpha[5] = 1.0
    assert changed(model) == 2.0
