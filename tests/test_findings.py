"""Findings from stored result sets: intervals over seeds, the convergence criterion, the doc tables regenerated from
the stored sets (a table that differs fails), and CI-sized reruns of stored points (advantage: a configuration's first
seed; compression: one point of each set)."""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from nonlin_explorer import findings, sweep

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
DOC = ROOT / "docs" / "nonlinear_advantage.md"
COMPRESSION_DOC = ROOT / "docs" / "compression.md"


def test_t_interval_is_the_students_t_interval_over_seeds():
    mean, half, n = findings.t_interval([1.0, 2.0, 3.0, math.nan])
    # t(0.975, 2) = 4.302653; s = 1; half-width = 4.302653 / sqrt(3)
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert math.isnan(findings.t_interval([0.5])[1]) and findings.t_interval([])[2] == 0


def test_converged_means_no_unit_changed_state_in_the_last_k_evaluations():
    changed = np.array([[3, 1, 0, 0, 0, 0, 0, np.nan],    # 6 evaluations, last 5 without a change
                        [0, 0, 0, 0, 0, 0, 1, 0],         # a change 2 evaluations before the end
                        [0, 0, 0, 0, np.nan, np.nan, np.nan, np.nan]])  # too short
    ds = xr.Dataset({"series_units_changed": (("run", "eval"), changed),
                     "series_length": ("run", np.array([7, 8, 4]))})
    assert findings.converged(ds, k=5).values.tolist() == [True, False, False]


def test_update_doc_replaces_the_marked_tables_and_refuses_a_marker_without_a_set(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- table:a -->\n| old |\n<!-- end -->\ntext\n")
    assert findings.update_doc(doc, {"a": "| new |"}) == ["a"]
    assert doc.read_text() == "intro\n<!-- table:a -->\n| new |\n<!-- end -->\ntext\n"
    assert findings.update_doc(doc, {"a": "| new |"}) == []
    doc.write_text("<!-- table:b -->\n| x |\n<!-- end -->\n")
    with pytest.raises(ValueError, match="no stored result set gives the table"):
        findings.update_doc(doc, {"a": "| new |"})
    assert doc.read_text() == "<!-- table:b -->\n| x |\n<!-- end -->\n"


def test_every_table_of_the_docs_is_what_its_stored_set_gives():
    """Regenerate with ``python results/make_docs.py``."""
    stored = findings.render_tables(RESULTS)
    in_docs = {doc: findings.doc_tables(doc.read_text()) for doc in (DOC, COMPRESSION_DOC)}
    assert {"mlp-runs", "mlp-gap", "mlp-control"} <= set(in_docs[DOC])
    assert {"compression-tilt", "compression-draw", "compression-tilt-fit", "compression-cases", "compression-gap",
            "compression-gap-fit", "compression-gap-shapes",
            "compression-approximation"} <= set(in_docs[COMPRESSION_DOC])
    shown = set().union(*(set(t) for t in in_docs.values()))
    assert shown == set(stored), "a stored set without its tables, or tables without a set"
    for doc, tables in in_docs.items():
        for name, body in tables.items():
            assert body == stored[name], f"{doc.name}: table {name} differs from its stored set: run make_docs.py"


def test_stored_sets_carry_their_provenance_and_are_small():
    ds, plain = findings.load_advantage(RESULTS, "mlp")
    for d in (ds, plain):
        for key in ("command", "nonlin_explorer_version", "torch_version", "created", "spec"):
            assert d.attrs.get(key), key
        assert (d.status == "finished").all()
        assert len(d.seed) >= 5
    assert sorted(ds.schedule.values.tolist()) == ["early", "late"]
    assert (RESULTS / "advantage_mlp.nc").stat().st_size < 600_000


def test_a_ci_sized_rerun_of_the_first_seed_reproduces_the_stored_epochs():
    """Two epochs of seed 0 at the stored configuration equal the stored per-epoch numbers: on the machine and torch
    build that wrote the set bit for bit; the stated tolerance (test loss 1e-4, accuracy one test sample of 800)
    covers another CPU's rounding."""
    ds, _ = findings.load_advantage(RESULTS, "mlp")
    spec = copy.deepcopy(json.loads(ds.attrs["spec"]))
    epochs = 2
    spec["base"]["epochs"] = epochs
    lam = float(ds.sparsity.values[len(ds.sparsity) // 2])
    spec["grid"] = {"schedule": ["early", "late"], "sparsity": [lam]}
    spec["seeds"] = [int(ds.seed.values[0])]
    rerun = sweep.run(spec, workers=0, progress=False)
    assert rerun.attrs["points_finished"] == 2
    for sch in ("early", "late"):
        stored = ds.sel(schedule=sch, sparsity=lam, seed=spec["seeds"][0])
        again = rerun.sel(schedule=sch, sparsity=lam, seed=spec["seeds"][0])
        assert int(again.series_length) == epochs
        assert float(stored.series_epoch[epochs - 1]) == float(again.series_epoch[epochs - 1]) == epochs
        for name, tol in (("series_test_loss", 1e-4), ("series_test_acc", 1 / 800 + 1e-9),
                          ("series_nonlinear_total", 0)):
            a, b = float(stored[name][epochs - 1]), float(again[name][epochs - 1])
            assert abs(a - b) <= tol, (sch, name, a, b)


def test_make_docs_check_reports_a_stale_table(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(RESULTS))
    try:
        import make_docs
    finally:
        sys.path.remove(str(RESULTS))
    doc = tmp_path / "doc.md"
    doc.write_text(DOC.read_text().replace("| lambda |", "| lambda (stale) |", 1))
    monkeypatch.setattr(make_docs, "DOCS", (doc,))
    assert make_docs.main(["--check"]) == 1
    assert "mlp-runs" in capsys.readouterr().out
    assert make_docs.main([]) == 0 and make_docs.main(["--check"]) == 0
    assert doc.read_text() == DOC.read_text()


def test_verdict_says_where_the_interval_lies_against_zero():
    assert findings.verdict(0.05, 0.02) == "above 0"
    assert findings.verdict(-0.05, 0.02) == "below 0"
    assert findings.verdict(0.01, 0.02) == "includes 0"
    assert findings.verdict(0.01, math.nan) == "n/a"


# -- the core-depth grid -------------------------------------------------------------------------------------

def _core_depth_section() -> str:
    text = DOC.read_text()
    start = text.index("## Core-network depth")
    return text[start:text.index("\n## ", start + 1)]


def test_the_core_depth_tables_of_the_doc_are_what_the_stored_grid_gives():
    in_doc = findings.doc_tables(_core_depth_section())
    stored = findings.core_depth_tables(findings.load_core_depth(RESULTS))
    assert set(in_doc) == {"core_depth", "core_depth-depth", "core_depth-order"} == set(stored)
    for name, body in stored.items():
        assert in_doc[name] == body, f"table {name} differs from the stored grid: run python results/make_docs.py"


def test_the_core_depth_prose_quotes_only_the_tables_and_the_grids_settings():
    ds = findings.load_core_depth(RESULTS)
    spec = json.loads(ds.attrs["spec"])
    settings = [v for v in spec["base"].values() if isinstance(v, (int, float))]
    settings += [v for values in spec["grid"].values() for v in values if isinstance(v, (int, float))]
    settings += [len(ds.seed), 95]  # the seeds, the confidence level in percent
    section = _core_depth_section()
    assert findings.unsupported_numbers(section, findings.core_depth_tables(ds), settings) == []
    assert findings.unsupported_numbers("APL 0.5 here, 7 there", {"t": "| 0.50 | 7 |"}) == ["0.5"]


def test_the_stored_core_depth_grid_carries_its_provenance_and_marks_capped_runs():
    ds = findings.load_core_depth(RESULTS)
    for key in ("command", "nonlin_explorer_version", "torch_version", "created", "spec"):
        assert ds.attrs.get(key), key
    assert len(ds.seed) >= 5
    assert set(np.unique(ds.status.values)) <= {"finished", "not converged"}
    assert ((ds.status == "finished") == (ds.converged == 1)).all()  # a capped run is never "finished"
    capped = ds.epochs.where(ds.status == "not converged")
    assert (capped.isnull() | (capped == json.loads(ds.attrs["spec"])["base"]["max_epochs"])).all()
    assert (RESULTS / "core_depth.nc").stat().st_size < 300_000
    from doc_tables import undocumented

    from nonlin_explorer.labels import unlabelled

    assert unlabelled(ds) == [] and undocumented(ds) == []


def test_a_ci_sized_rerun_of_the_smallest_stored_core_depth_run_reproduces_it():
    """Seed 0 of the smallest configuration (digits, depth 2, width 32), trained again until its prior converges,
    gives the stored run: on the machine and torch build that wrote the set bit for bit; the stated tolerance
    (test loss 1e-4, accuracy one test sample of 359) covers another CPU's rounding, the epochs and the unit counts
    must agree exactly."""
    ds = findings.load_core_depth(RESULTS)
    spec = copy.deepcopy(json.loads(ds.attrs["spec"]))
    lam = float(ds.sparsity.values[0])
    spec["grid"] = {"dataset": ["digits"], "model_kwargs.depth": [2], "model_kwargs.width": [32], "sparsity": [lam]}
    spec["seeds"] = [int(ds.seed.values[0])]
    again = sweep.run(spec, workers=0, progress=False).isel(dataset=0, depth=0, width=0, sparsity=0, seed=0)
    stored = ds.sel(dataset="digits", depth=2, width=32, sparsity=lam, seed=spec["seeds"][0])
    for name, tol in (("test_loss", 1e-4), ("test_acc", 1 / 359 + 1e-9), ("epochs", 0), ("converged", 0),
                      ("nonlinear_total", 0), ("apl_normalized", 1e-9), ("last_change_epoch", 0)):
        a, b = float(stored[name]), float(again[name])
        assert abs(a - b) <= tol, (name, a, b)


def test_welch_interval_is_scipys_interval_for_two_independent_samples():
    from scipy import stats

    a, b = [1.0, 2.0, 3.5, math.nan], [2.0, 4.0, 6.0, 7.0]
    diff, half = findings.welch_interval(a, b)
    ci = stats.ttest_ind(a[:3], b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx((ci.low + ci.high) / 2) and half == pytest.approx((ci.high - ci.low) / 2)
    assert math.isnan(findings.welch_interval([1.0], b)[1]) and math.isnan(findings.welch_interval([], b)[0])


@pytest.mark.parametrize("name", findings.COMPRESSION_SETS)
def test_stored_compression_sets_carry_provenance_labels_and_are_small(name):
    from nonlin_explorer.labels import UNSPECIFIED, unlabelled

    ds = findings.load_compression(RESULTS, name)
    for key in ("command", "nonlin_explorer_version", "torch_version", "created", "spec", "shape_names"):
        assert ds.attrs.get(key), key
    assert (ds.status == "finished").all()
    assert len(ds.seed) >= 5
    assert unlabelled(ds) == []
    assert [v for v in ds.variables if ds[v].attrs["units"] == UNSPECIFIED] == []
    assert all(ds[v].dtype.kind == "f" for v in json.loads(ds.attrs["metrics"]).values())
    assert (RESULTS / f"compression_{name}.nc").stat().st_size < 300_000


#: One stored point per compression set, rerun in CI: (set, coordinates, numbers compared).
COMPRESSION_RERUNS = [
    ("shapes", {"w_mean": 0.0, "M": 4, "d": 6, "N": 500}, ("tilt_degrees", "cosine_spread", "relative_loss")),
    ("cases", {"case": "centred d5 M6 N1000", "method": "exact"}, ("tilt_degrees", "cosine_min", "relative_loss")),
    ("gap", {"law": "anisotropic", "N": 1000, "d": 8}, ("plain_ratio", "oracle_ratio", "relative_loss_exact")),
    ("approximation", {"N": 1000, "d": 10}, ("cross_term_rms", "cross_term_sup")),
]


@pytest.mark.parametrize("name, point, compared", COMPRESSION_RERUNS, ids=[r[0] for r in COMPRESSION_RERUNS])
def test_a_ci_sized_rerun_of_a_stored_compression_point_reproduces_it(name, point, compared):
    """Seed 0 of one point of each set, recomputed from the set's own spec, gives its stored numbers: bit for bit on
    the machine that wrote the set; the stated tolerances cover another CPU's rounding: losses and loss ratios 1e-6
    relative (the optimizers stop when a step gains less than 1e-12 of the energy), angles and cosines 1e-3 absolute
    (the loss is flat to second order around its optimum). The shape name must be the same."""
    ds = findings.load_compression(RESULTS, name)
    spec = copy.deepcopy(json.loads(ds.attrs["spec"]))
    spec["grid"] = {k: [v] for k, v in point.items()}
    spec["seeds"] = [0]
    rerun = sweep.run(spec, workers=0, progress=False)
    assert rerun.attrs["points_finished"] == 1
    stored, again = ds.sel(point).sel(seed=0), rerun.sel(point).sel(seed=0)
    for var in ("shape_index", "shape_index_exact", "shape_index_meanfield"):
        if var in stored:
            assert float(again[var]) == float(stored[var]), var
    for var in compared:
        loss_like = any(part in var for part in ("loss", "ratio", "cross_term"))
        tolerance = {"rel": 1e-6} if loss_like else {"abs": 1e-3}
        assert float(again[var]) == pytest.approx(float(stored[var]), **tolerance), var


@pytest.mark.parametrize("name", ["shapes", "cases", "gap", "gap_erf"])
def test_stored_shape_names_follow_frame_shapes_current_rules(name):
    """Naming the stored runs again from their stored numbers changes nothing: the sets were written (or relabelled,
    ``results/make_compression.py relabel``) by the rules ``frame_shape`` applies now."""
    from nonlin_explorer.compression.diagnostics import SHAPES
    from nonlin_explorer.compression.studies import relabel

    ds = findings.load_compression(RESULTS, name)
    assert json.loads(ds.attrs["shape_names"]) == list(SHAPES)
    again = relabel(ds)
    for var in ds.data_vars:
        if var.startswith(("shape_index", "tilt_threshold")):
            assert again[var].equals(ds[var]), var
