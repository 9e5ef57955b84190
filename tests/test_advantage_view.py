"""The early-vs-late view without a browser (its controller and its Jupyter host): it opens on the stored result set
(lines, bands, the gap with its interval), new runs stream on top, cancel, bad input, export, close."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest
import xarray as xr

from nonlin_explorer.findings import load_advantage, matched_gap, t_interval
from nonlin_explorer.training import TrainConfig
from nonlin_explorer.ui.advantage_controller import AdvantageController
from nonlin_explorer.ui.advantage_core import RESULTS, find_stored
from nonlin_explorer.ui.advantage_view import AdvantageView, parse_list

TINY = TrainConfig(dataset="spirals", dataset_kwargs={"num_samples": 300}, model="mlp",
                   model_kwargs={"width": 8, "depth": 2}, epochs=3, batch_size=32, lr=1e-2, slope_lr=0.2,
                   eval_every=1000)
pytestmark = pytest.mark.skipif(not (RESULTS / "advantage_mlp.nc").is_file(), reason="needs results/ of the repo")


def _advantage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nonlin-explorer-advantage" and t.is_alive()]


@pytest.fixture
def ctl(tmp_path):
    c = AdvantageController(TINY, sparsities=[0.0, 0.1], seeds=[0], files_root=tmp_path)
    yield c
    c.close()


def test_it_opens_on_the_stored_set_with_one_line_and_band_per_schedule(ctl):
    stored = ctl.state["stored"]
    assert stored["ok"] and stored["name"] == "mlp" and stored["seeds"] == 5
    assert "mlp (depth 4, width 64) on mnist1d" in stored["label"] and "5 seeds" in stored["label"]
    ds, _ = load_advantage(RESULTS, "mlp")
    for sch in ("early", "late"):
        line = stored["lines"][sch]
        assert len(line["x"]) == len(ds.sparsity) == 7
        assert line["x"] == sorted(line["x"])  # joined along the count
        d = ds.sel(schedule=sch)
        for x, y, lam in zip(line["x"], line["y"], line["sparsity"]):
            one = d.sel(sparsity=lam)
            assert x == pytest.approx(float(one.nonlinear_total.mean()))
            assert y == pytest.approx(float(one.test_acc.mean()))
        sd = [float(d.sel(sparsity=lam).test_acc.std(ddof=1)) for lam in line["sparsity"]]
        assert np.allclose(np.subtract(line["hi"], line["y"]), sd)
        assert np.allclose(np.subtract(line["y"], line["lo"]), sd)
        assert len(line["run_x"]) == 35  # every run a dot


def test_the_stored_gap_is_the_docs_gap_with_its_interval(ctl):
    stored = ctl.state["stored"]
    ds, _ = load_advantage(RESULTS, "mlp")
    cmp = ds.rename({"nonlinear_total": "nonlinear"}).transpose("schedule", "sparsity", "seed", ...)
    per_seed, _ = matched_gap(cmp, "nonlinear", -math.inf, 256 / 6)
    m, h, n = t_interval(per_seed)
    few = stored["gap_few"]
    assert few["mean"] == pytest.approx(100 * m) and few["half"] == pytest.approx(100 * h) and few["seeds"] == n == 5
    assert few["verdict"] == ("above 0" if m - h > 0 else "below 0" if m + h < 0 else "includes 0")
    gap = stored["gap"]
    assert gap["x"] and all(lo <= y <= hi for y, lo, hi in zip(gap["y"], gap["lo"], gap["hi"]))


def test_another_stored_set_and_a_missing_one(ctl):
    ctl.choose("cnn")
    assert ctl.state["stored"]["name"] == "cnn" and "cnn" in ctl.state["stored"]["label"]
    with pytest.raises(ValueError, match="no stored result set 'nope'"):
        ctl.choose("nope")
    assert ctl.state["stored"]["name"] == "cnn" and ctl.state["stored"]["ok"]  # the set shown stays
    ctl.receive({"type": "choose", "set": "mlp", "id": "a"})
    assert ctl.state["stored"]["name"] == "mlp" and {"type": "ack", "id": "a"} in ctl.state.take_messages()


def test_without_the_stored_file_it_says_why_instead_of_empty_axes(tmp_path):
    c = AdvantageController(TINY, stored=str(tmp_path / "advantage_mlp.nc"))
    stored = c.state["stored"]
    assert stored["ok"] is False and "no stored result set at" in stored["message"]
    with pytest.raises(FileNotFoundError, match="ship with the repository"):
        find_stored("mlp", folder=tmp_path)
    c.close()


def test_new_runs_stream_on_top_one_point_per_run(ctl):
    assert ctl.state["stored"]["ok"]
    assert ctl.run()
    assert ctl.status == "running" and ctl.state["progress"]["total"] == 4
    assert ctl.wait(60)
    assert ctl.status == "finished" and ctl.state["progress"]["done"] == 4
    live = ctl.state["live"]
    assert sorted((p["schedule"], p["sparsity"]) for p in live["points"]) == [
        ("early", 0.0), ("early", 0.1), ("late", 0.0), ("late", 0.1)]
    ds = ctl.result
    for p in live["points"]:
        assert p["test_acc"] == float(ds.test_acc.sel(schedule=p["schedule"], sparsity=p["sparsity"], seed=0))
    assert set(live["gap"]) == {"count", "apl", "count_points", "apl_points"}
    assert ctl.state["stored"]["name"] == "mlp"  # drawn under the new points


def test_cancel_stops_the_worker_and_keeps_what_finished():
    c = AdvantageController({**TINY.to_dict(), "epochs": 10_000}, sparsities=[0.01, 0.1], seeds=[0])
    try:
        assert c.run()
        time.sleep(0.5)
        assert c.running
        c.receive({"type": "cancel", "id": "x"})
        assert c.wait(30)
        assert c.status == "cancelled" and c.status_dict()["points"] == {"early": 0, "late": 0}
        assert int(c.result.attrs["cancelled"]) == 1
    finally:
        c.close()


@pytest.mark.parametrize("changes", [{"sparsities": "0.1, -1"}, {"sparsities": ""}, {"sparsities": "0.1, abc"},
                                     {"seeds": "1.5"}, {"epochs": "0"}, {"sparsities": "0.1, 0.1"}])
def test_bad_input_is_one_line_and_keeps_the_last_valid_settings(ctl, changes):
    ctl.receive({"type": "run", "id": "r", **changes})
    (answer,) = ctl.state.take_messages()
    assert answer["type"] == "error" and answer["id"] == "r" and "\n" not in answer["message"]
    assert ctl.state["settings"]["sparsities"] == "0, 0.1" and ctl.state["settings"]["seeds"] == "0"
    assert ctl.status == "idle" and not ctl.running
    assert ctl.run(**changes) is False and "keeping the last valid settings" in ctl.state["notice"]["text"]
    assert ctl.run()  # the last valid settings still run
    assert ctl.wait(60)


def test_a_second_run_while_one_runs_is_refused(ctl):
    ctl.start(epochs=10_000)
    with pytest.raises(ValueError, match="cancel it first"):
        ctl.start()
    ctl.cancel()
    assert ctl.wait(30)


def test_export_writes_the_runs_inside_files_root_and_never_replaces(ctl, tmp_path):
    ctl.receive({"type": "export", "id": "e0"})
    assert ctl.state.take_messages()[0]["message"].startswith("no runs to export yet")
    assert ctl.run() and ctl.wait(60)
    first = ctl.export("runs.nc")
    second = ctl.export("runs.nc")
    assert first == str(tmp_path / "runs.nc") and second == str(tmp_path / "runs-1.nc")
    assert "runs.nc exists" in ctl.state["notice"]["text"]
    with xr.open_dataset(first) as back:
        assert sorted(back.sparsity.values.tolist()) == [0.0, 0.1]
        assert np.allclose(back.test_acc.values, ctl.result.test_acc.values)
    ctl.receive({"type": "export", "path": "../outside.nc", "id": "e1"})
    (answer,) = [m for m in ctl.state.take_messages() if m.get("id") == "e1"]
    assert answer["type"] == "error" and "outside the folder" in answer["message"]
    assert not (tmp_path.parent / "outside.nc").exists()


def test_unknown_requests_and_settings_are_refused(ctl):
    ctl.receive({"type": "explode", "id": "u"})
    assert ctl.state.take_messages()[0]["type"] == "error"
    with pytest.raises(TypeError, match="unknown settings"):
        ctl.run(colour="red")


def test_close_leaves_no_thread_alive():
    before = len(_advantage_threads())
    c = AdvantageController({**TINY.to_dict(), "epochs": 10_000}, sparsities=[0.01], seeds=[0])
    c.run()
    time.sleep(0.3)
    assert len(_advantage_threads()) == before + 1
    c.close(timeout=30)
    assert not c.running and len(_advantage_threads()) == before and c.closed


def test_the_widget_keeps_the_notebook_api(tmp_path):
    v = AdvantageView(TINY, sparsities=[0.05], seeds=[2], files_root=tmp_path)
    try:
        assert v.stored["ok"] and v.stored["name"] == "mlp"  # synced at once
        assert v.run() and v.wait(60)
        assert v.wait_flushed()
        assert len(v.live["points"]) == 2 and v.progress["state"] == "finished"
        ds = v.points_dataset()
        assert ds.test_acc.sel(sparsity=0.05, seed=2).size == 2
        assert set(v.gaps()) == {"count", "apl", "count_points", "apl_points"}
    finally:
        v.close()
    assert v.controller.closed


def test_no_panel_or_bokeh_on_the_notebook_path():
    import subprocess
    import sys

    code = ("import sys; from nonlin_explorer.ui import AdvantageView; AdvantageView; "
            "print(any(m.split('.')[0] in ('panel', 'bokeh') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parse_list():
    assert parse_list("1e-3, 0.01 0.1", "sparsities") == [1e-3, 0.01, 0.1]
    assert parse_list("0,1", "seeds", integer=True) == [0, 1]
    with pytest.raises(ValueError, match="enter at least one number"):
        parse_list(" , ", "sparsities")


def test_new_runs_follow_the_stored_set_unless_given():
    c = AdvantageController()
    try:
        assert c.config.model == "mlp" and c.config.epochs == 40 and c.state["settings"]["seeds"] == "5"
        c.choose("cnn")
        ds, _ = load_advantage(RESULTS, "cnn")
        assert c.config.model == "cnn" and c.config.epochs == json.loads(ds.attrs["fixed"])["epochs"]
        assert c.sparsities == [float(v) for v in ds.sparsity.values]
    finally:
        c.close()
    mine = AdvantageController(TINY, sparsities=[0.5], stored="cnn")
    assert mine.config.dataset == "spirals" and mine.sparsities == [0.5]
    mine.close()
