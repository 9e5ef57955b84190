"""AdvantageView without a browser: a run streams one point per run, cancel, bad input, close."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("panel")

from nonlin_explorer.training import TrainConfig  # noqa: E402
from nonlin_explorer.ui.advantage_view import AdvantageView, parse_list  # noqa: E402

TINY = TrainConfig(dataset="spirals", dataset_kwargs={"num_samples": 300}, model="mlp",
                   model_kwargs={"width": 8, "depth": 2}, epochs=3, batch_size=32, lr=1e-2, slope_lr=0.2,
                   eval_every=1000)


def _advantage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nonlin-explorer-advantage" and t.is_alive()]


@pytest.fixture
def view():
    v = AdvantageView(TINY, sparsities=[0.0, 0.1], seeds=[0])
    yield v
    v.close()


def _finish(v: AdvantageView, timeout: float = 60.0) -> None:
    assert v.wait(timeout), "the comparison did not finish"
    v.flush()


def test_a_run_streams_one_point_per_run_into_both_plots(view):
    assert view.run()
    assert view.state == "running" and view.cancel_button.disabled is False
    _finish(view)
    assert view.state == "finished"
    assert view.status_dict()["points"] == {"early": 2, "late": 2}
    for src in view.sources.values():
        assert len(src.data["nonlinear"]) == len(src.data["apl"]) == len(src.data["test_acc"]) == 2
        assert sorted(src.data["sparsity"]) == [0.0, 0.1]
    # the plots have both schedules in their legends, in two colours
    for fig in (view.count_figure, view.apl_figure):
        labels = [item.label["value"] for item in fig.legend[0].items]
        assert labels == ["early linearization", "late linearization"]
        colors = {r.glyph.fill_color for r in fig.renderers}
        assert len(colors) == 2
    assert view.result is not None and int(view.result.attrs["completed_runs"]) == 4
    assert "4/4 runs" in view.status.object
    assert "Gap (late minus early" in view.gap_text.object
    assert view.run_button.disabled is False and view.cancel_button.disabled is True


def test_points_match_the_result_set(view):
    view.run(sparsities=[0.05], seeds=[2])
    _finish(view)
    ds = view.result
    for sch, src in view.sources.items():
        assert src.data["test_acc"] == [float(ds.test_acc.sel(schedule=sch, sparsity=0.05, seed=2))]
        assert src.data["nonlinear"] == [float(ds.nonlinear.sel(schedule=sch, sparsity=0.05, seed=2))]


def test_cancel_stops_the_worker_and_keeps_what_finished():
    v = AdvantageView({**TINY.to_dict(), "epochs": 10_000}, sparsities=[0.01, 0.1], seeds=[0])
    try:
        assert v.run()
        time.sleep(0.5)
        assert v.running
        v.cancel()
        _finish(v, timeout=30)
        assert v.state == "cancelled"
        assert v.status_dict()["points"] == {"early": 0, "late": 0}
        assert int(v.result.attrs["cancelled"]) == 1
        assert v.run_button.disabled is False
    finally:
        v.close()


@pytest.mark.parametrize("field, text", [("sparsity_input", "0.1, -1"), ("sparsity_input", ""),
                                         ("sparsity_input", "0.1, abc"), ("seed_input", "1.5"),
                                         ("epochs_input", "0")])
def test_bad_input_shows_a_message_and_keeps_the_last_valid_settings(view, field, text):
    getattr(view, field).value = text
    assert view.run() is False
    assert view.message.visible and view.message.alert_type == "danger"
    assert "keeping the last valid settings" in view.message.object
    assert view.sparsity_input.value == "0, 0.1" and view.seed_input.value == "0" and view.epochs_input.value == "3"
    assert view.sparsities == [0.0, 0.1] and view.state == "idle" and not view.running
    assert view.run()  # the restored inputs are valid
    assert not view.message.visible
    _finish(view)


def test_close_leaves_no_thread_alive():
    before = len(_advantage_threads())
    v = AdvantageView({**TINY.to_dict(), "epochs": 10_000}, sparsities=[0.01], seeds=[0])
    v.run()
    time.sleep(0.3)
    assert len(_advantage_threads()) == before + 1
    v.close(timeout=30)
    assert not v.running and len(_advantage_threads()) == before


def test_parse_list():
    assert parse_list("1e-3, 0.01 0.1", "sparsities") == [1e-3, 0.01, 0.1]
    assert parse_list("0,1", "seeds", integer=True) == [0, 1]
    with pytest.raises(ValueError, match="enter at least one number"):
        parse_list(" , ", "sparsities")
    with pytest.raises(ValueError, match="must be >= 0"):
        parse_list("-1", "seeds", integer=True)
