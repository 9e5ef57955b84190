"""The training dashboard's controller without a browser or a host: requests and their answers, bounds, streaming
through tick, the network part, export and record confined to a folder, reset with overlays, reproduce code that
reproduces, replay."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from nonlin_explorer.ui.dashboard_controller import LIMITS, DashboardController, ReplayController
from nonlin_explorer.ui.dashboard_core import LiveBuffer, ReplayClock

TINY = dict(dataset="spirals", dataset_kwargs={"num_samples": 300}, model_kwargs={"width": 8, "depth": 2},
            epochs=2, eval_every=4, batch_size=64)


@pytest.fixture
def dash(tmp_path):
    c = DashboardController(files_root=tmp_path, **TINY)
    yield c
    c.close()


def answers(c: DashboardController) -> list[dict]:
    """The ack/error messages queued for the page (and forget the rest)."""
    return [m for m in c.state.take_messages() if m["type"] in ("ack", "error")]


def ask(c: DashboardController, **request) -> dict:
    """Send one request as the page does; its answer."""
    c.state.take_messages()
    c.receive({"id": "r1", **request})
    (reply,) = answers(c)
    assert reply["id"] == "r1"
    return reply


@pytest.mark.parametrize("value, message", [("many", "not a number"), ("", "enter a number"), (-1, ">= 0"),
                                            (5, "<= 1"), (True, "expected a number"), ("nan", "finite")])
def test_a_bad_sparsity_is_refused_with_the_reason_and_changes_nothing(dash, value, message):
    assert ask(dash, type="set", sparsity=0.01)["type"] == "ack"
    assert dash.session.sparsity == 0.01 and dash.state["settings"]["sparsity"] == 0.01
    reply = ask(dash, type="set", sparsity=value)
    assert reply["type"] == "error" and message in reply["message"]
    assert dash.session.sparsity == 0.01 and dash.state["settings"]["sparsity"] == 0.01


@pytest.mark.parametrize("request_, message", [
    ({"type": "explode"}, "unknown request"),
    ({"type": "set"}, "set needs"),
    ({"type": "set", "slope_lr": 1}, "cannot set slope_lr"),
    ({"type": "set", "lr": 1e9}, "lr: must be <= 1"),
    ({"type": "reset", "settings": {"width": 10**7}}, "width: must be <= 4096"),
    ({"type": "reset", "settings": {"depth": 2.5}}, "whole number"),
    ({"type": "reset", "settings": {"dataset": "imagenet"}}, "not one of"),
    ({"type": "reset", "settings": {"colour": "red"}}, "unknown settings"),
    ({"type": "reset", "settings": "all"}, "settings as an object"),
    ({"type": "export", "path": "../outside.nc"}, "outside the folder"),
    ({"type": "export", "path": "/etc/passwd"}, "outside the folder"),
    ({"type": "export", "path": 5}, "must be text"),
    ({"type": "set_state", "targets": [{"layer": 9, "units": [0]}], "state": 1}, "out of range"),
    ({"type": "set_state", "targets": [{"layer": 0, "units": [0]}], "state": 2.0}, "state must be"),
    ({"type": "replay", "action": "play"}, "unknown request 'replay'"),
])
def test_every_bad_request_gets_one_clear_error(dash, request_, message):
    reply = ask(dash, **request_)
    assert reply["type"] == "error" and message in reply["message"], reply
    assert dash.session.step == 0 and all(int(g.state.sum()) == 0 for g in dash.session.gates)


def test_a_request_without_a_type_is_answered_not_raised(dash):
    dash.receive({"id": "x"})
    dash.receive("garbage")
    msgs = answers(dash)
    assert [m["type"] for m in msgs] == ["error", "error"] and "type" in msgs[0]["message"]


def test_training_streams_through_tick_as_series_messages(dash):
    s = dash.session
    dash.state.take_messages()
    s.run(progress=False)  # events land in the buffer; nothing is sent until tick
    assert not [m for m in dash.state.take_messages() if m["type"] == "series"]
    dash.tick()
    (series,) = [m for m in dash.state.take_messages() if m["type"] == "series"]
    assert series["evals"]["step"] == [float(h["step"]) for h in s.history]
    assert series["evals"]["nonlinear"] == [h["nonlinear"] for h in s.history]
    assert series["steps"]["step"][-1] == float(s.step)
    assert dash.state["run"]["status"] == "finished" and dash.state["run"]["step"] == s.total_steps
    dash.tick()
    assert not [m for m in dash.state.take_messages() if m["type"] == "series"]  # nothing new: nothing sent
    # A page that opens later gets the whole history at once.
    dash.receive({"type": "hello", "id": "h"})
    (snap,) = [m for m in dash.state.take_messages() if m["type"] == "snapshot"]
    assert snap["evals"]["step"] == series["evals"]["step"] and snap["overlays"] == []


def test_the_run_field_says_what_the_session_does(dash):
    run = dash.state["run"]
    assert run["status"] == "idle" and run["total_steps"] == dash.session.total_steps
    assert run["gate_names"] == dash.session.gate_names and run["units"] == [8, 8] and run["tol"] == 1e-3
    assert ask(dash, type="start")["type"] == "ack"
    assert dash.state["run"]["status"] == "running"
    dash.session.wait(30)
    dash.tick()
    assert dash.state["run"]["status"] == "finished"
    reply = ask(dash, type="start")
    assert reply["type"] == "error" and "last step" in reply["message"]


def test_unit_clicks_go_to_the_network_part_and_training_moves_the_slopes(dash):
    s = dash.session
    assert [layer["name"] for layer in dash.state["layers"]] == s.gate_names
    assert ask(dash, type="set_state", targets=[{"layer": 1, "units": [5]}], state=1)["type"] == "ack"
    assert int(s.gates[1].state[5]) == 1  # idle session: applied at once
    assert dash.network.wait_idle(10)
    assert dash.state["states"][8 + 5] == 1 and dash.state["states"].sum() == 1
    assert dash.state["slopes"][8 + 5] == 1.0
    before = dash.state["slopes"].copy()
    dash.set(sparsity=0.05)
    s.run(progress=False)
    assert dash.network.wait_idle(10)
    assert dash.state["step"] == s.step and not np.array_equal(dash.state["slopes"], before)
    assert dash.state["slopes"][8 + 5] == 1.0  # forced: stays exactly linear


def test_export_and_record_write_inside_the_folder_only(dash, tmp_path):
    from nonlin_explorer.recording import load_recording
    from nonlin_explorer.results import read_netcdf

    dash.session.run(progress=False)
    steps = len(dash.session.history)
    assert ask(dash, type="export", path="run.nc")["type"] == "ack"
    assert read_netcdf(tmp_path / "run.nc").sizes["step"] == steps
    assert dash.state["notice"]["kind"] == "success" and "run.nc" in dash.state["notice"]["text"]
    reply = ask(dash, type="export", path="missing/run.nc")
    assert reply["type"] == "error" and "does not exist" in reply["message"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "escape").symlink_to("/tmp")
    reply = ask(dash, type="export", path="sub/escape/x.nc")
    assert reply["type"] == "error" and "outside the folder" in reply["message"]
    assert ask(dash, type="record", path="")["type"] == "ack"  # the default name
    assert len(load_recording(tmp_path / "run.rec").evals) == steps
    assert len(dash.session.history) == steps  # nothing lost on the way


def test_export_and_record_never_replace_or_remove_what_is_there(dash, tmp_path):
    """From the page an existing name is never overwritten: the export or recording takes the first free name, and
    the notice says which."""
    from nonlin_explorer.recording import load_recording
    from nonlin_explorer.results import read_netcdf

    dash.session.run(progress=False)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    (tmp_path / "run.nc").write_text("not a result set")
    assert ask(dash, type="export", path=".git/config")["type"] == "ack"
    assert ask(dash, type="export", path="run.nc")["type"] == "ack"
    assert dash.state["notice"]["text"] == "wrote run-1.nc (run.nc exists)"
    assert ask(dash, type="export", path="run.nc")["type"] == "ack"
    assert dash.state["notice"]["text"] == "wrote run-2.nc (run.nc exists)"
    assert (tmp_path / ".git" / "config").read_text() == "[core]\n" and (tmp_path / "run.nc").read_text() == \
        "not a result set"
    assert read_netcdf(tmp_path / ".git" / "config-1").sizes["step"] == len(dash.session.history)
    # A folder that merely holds a recording.nc, and an unrelated folder at the old fixed temporary name.
    mine = tmp_path / "mine.rec"
    mine.mkdir()
    (mine / "recording.nc").write_text("mine")
    (mine / "notes.txt").write_text("mine")
    (tmp_path / ".mine.rec.tmp").mkdir()
    (tmp_path / ".mine.rec.tmp" / "keep").write_text("mine")
    assert ask(dash, type="record", path="mine.rec")["type"] == "ack"
    assert dash.state["notice"]["text"] == "wrote recording mine-1.rec (mine.rec exists)"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "recording.nc"]
    assert (tmp_path / ".mine.rec.tmp" / "keep").read_text() == "mine"
    assert len(load_recording(tmp_path / "mine-1.rec").evals) == len(dash.session.history)
    assert ask(dash, type="record", path="")["type"] == "ack" and dash.state["notice"]["text"] == \
        "wrote recording run.rec"
    assert ask(dash, type="record", path="")["type"] == "ack" and (tmp_path / "run-1.rec").is_dir()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".lock")) and p.name != ".mine.rec.tmp"]


@pytest.mark.parametrize("path, message", [
    ("\\..\\outside\\x.nc", "backslash"),
    ("x\u202e.nc", "U+202E"),
    ("x\n.nc", "line breaks"),
])
def test_export_names_with_backslash_bidi_or_line_breaks_are_refused(dash, tmp_path, path, message):
    reply = ask(dash, type="export", path=path)
    assert reply["type"] == "error" and message in reply["message"]
    assert not list(tmp_path.iterdir()) and not (tmp_path.parent / "outside" / "x.nc").exists()


def test_a_notice_is_news_once_unless_it_is_lasting(dash):
    """An answer (Export's) is shown by the views open when it came; a problem with how the app was started (a
    lasting notice) by every view that opens later too."""
    dash.notify("settings in the URL ignored: width: not a number", "warning", lasting=True)
    first = dash.state["notice"]
    assert first["lasting"] is True and first["kind"] == "warning"
    assert ask(dash, type="export", path="run.nc")["type"] == "ack"
    answer = dash.state["notice"]
    assert answer["lasting"] is False and answer["seq"] == first["seq"] + 1 and "run.nc" in answer["text"]


def test_a_model_that_does_not_fit_keeps_the_run_and_a_good_reset_keeps_it_as_an_overlay(dash):
    old = dash.session
    old.run(progress=False)
    dash.tick()
    dash.reset({"dataset": "reverse", "model": "cnn"}, wait=True)
    assert dash.session is old and "the current run is kept" in dash.state["notice"]["text"]
    assert dash.state["settings"]["dataset"] == "spirals" and not dash.state["run"]["resetting"]
    dash.state.take_messages()
    dash.reset({"width": 4, "seed": 3}, wait=True)
    assert dash.session is not old and dash.session.config.model_kwargs["width"] == 4 and dash.session.config.seed == 3
    assert not old.is_alive and dash.state["run"]["units"] == [4, 4] and dash.state["settings"]["width"] == 4
    (snap,) = [m for m in dash.state.take_messages() if m["type"] == "snapshot"]
    assert snap["evals"]["step"] == [] and len(snap["overlays"]) == 1
    assert snap["overlays"][0]["evals"]["step"] == [float(h["step"]) for h in old.history]
    assert "seed 0" in snap["overlays"][0]["label"]
    assert [layer["units"] for layer in dash.state["layers"]] == [4, 4]  # the network part follows


def test_the_model_size_is_bounded_before_anything_is_allocated(dash, monkeypatch):
    import nonlin_explorer.ui.dashboard_controller as dc

    monkeypatch.setattr(dc, "MAX_PARAMETERS", 1000)
    dash.reset({"width": 64}, wait=True)  # 64-wide MLP: > 1000 parameters
    assert "parameters" in dash.state["notice"]["text"] and dash.session.config.model_kwargs["width"] == 8
    assert LIMITS["width"][1] <= 4096


def test_reproduce_code_replays_the_live_changes_at_the_same_steps(dash):
    s = dash.session
    s.train_step()
    s.train_step()
    dash.set(sparsity=0.02)
    s.toggle(0, [1, 2], 1)
    for _ in range(3):
        s.train_step()
    s.switch_prior_on()
    s.set(lr=3e-3)
    s.run(progress=False)
    dash.tick()
    code = dash.state["code"]
    assert "session.step == 2" in code and "sparsity=0.02" in code and "UnitState.LINEAR" in code
    ns: dict = {}
    exec(code, ns)
    again = ns["session"]
    assert again.step == s.step and [h["step"] for h in again.history] == [h["step"] for h in s.history]
    for a, b in zip(again.history, s.history):
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-6) and a["nonlinear"] == b["nonlinear"]


def test_close_stops_training_and_every_thread(tmp_path):
    before = set(threading.enumerate())
    c = DashboardController(files_root=tmp_path, **{**TINY, "epochs": 10**5})
    c.start()
    time.sleep(0.3)
    c.close()
    c.close()  # twice is fine
    assert not c.session.is_alive
    deadline = time.monotonic() + 10
    while {t for t in set(threading.enumerate()) - before if t.is_alive()} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not {t for t in set(threading.enumerate()) - before if t.is_alive()}


# -- replay -------------------------------------------------------------------------------------------
REPLAY_RUN = dict(TINY, epochs=8, eval_every=3, sparsity=1e-2, slope_lr=0.2)  # 40 steps, 14 evaluations


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A live run, recorded from the dashboard: (its history, final weights, the recording's path)."""
    root = tmp_path_factory.mktemp("rec")
    live = DashboardController(files_root=root, **REPLAY_RUN)
    live.session.run(progress=False)
    live.tick()
    live.record("run.rec")
    history = live.session.history
    model = {k: v.clone() for k, v in live.session.model.state_dict().items()}
    series = [m for m in live.state.take_messages() if m["type"] == "series"]
    live.close()
    return history, model, root / "run.rec", series


def _eval(step):
    return {"step": step, "epoch": step / 10, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.1, "test_acc": 0.4,
            "sparsity": 0.01, "prior_on": True, "lr": 1e-3, "nonlinear": [3, 1], "apl_normalized": 1.5,
            "apl_unnormalized": 2.5, "nonlinear_layers": 2}


def test_replay_clock_feeds_in_step_order_at_the_given_speed():
    evals = [dict(_eval(s), time=100.0 + s) for s in (2, 4, 6)]  # one step a second
    steps = [(s, 1.0 / s) for s in range(1, 7)]
    clock = ReplayClock(evals, steps, speed=2.0)
    assert clock.timed and clock.duration == 6.0
    buf = LiveBuffer()
    assert clock.feed(buf, 10.0) == 0  # paused: nothing
    clock.playing = True
    assert clock.feed(buf, 1.0) == 3  # 2 recorded seconds: steps 1, 2 and the evaluation at step 2
    out = buf.drain()
    assert [s for s, _ in out.steps] == [1, 2] and [e["step"] for e in out.evals] == [2]
    clock.feed(buf, 100.0)
    out = buf.drain()
    assert [s for s, _ in out.steps] == [3, 4, 5, 6] and [e["step"] for e in out.evals] == [4, 6]
    assert clock.finished and not clock.playing
    steps_before, evals_before = clock.seek(1)
    assert [s for s, _ in steps_before] == [1, 2, 3, 4] and [e["step"] for e in evals_before] == [2, 4]
    with pytest.raises(ValueError, match="evaluation"):
        clock.seek(3)
    untimed = ReplayClock([dict(e, time=float("nan")) for e in evals], steps)
    assert not untimed.timed and untimed.duration == 3.0  # one evaluation a second


def test_replay_starts_at_the_beginning_and_plays_to_the_live_runs_curves(recorded):
    history, _, path, live_series = recorded
    dash = ReplayController(path, speed=1e4)
    try:
        assert dash.state["mode"] == "replay" and dash.state["replay"]["eval_index"] == -1
        assert not dash.state["replay"]["playing"]
        reply = ask(dash, type="start")
        assert reply["type"] == "error" and "does not train" in reply["message"]
        assert ask(dash, type="replay", action="play")["type"] == "ack"
        dash.state.take_messages()
        evals: list[float] = []
        for _ in range(10_000):
            dash.tick()
            for m in dash.state.take_messages():
                if m["type"] == "series":
                    evals += m["evals"]["step"]
            if dash.replay_clock.finished:
                break
            time.sleep(0.001)
        assert dash.replay_clock.finished and evals == [float(h["step"]) for h in history]
        assert evals == live_series[0]["evals"]["step"]
        assert dash.state["replay"]["finished"] and dash.state["replay"]["eval_index"] == len(history) - 1
    finally:
        dash.close()


def test_replay_seek_shows_the_recorded_slopes(recorded):
    history, model, path, _ = recorded
    dash = ReplayController(path)
    try:
        assert all(torch.equal(v, model[k]) for k, v in dash.session.model.state_dict().items()
                   if "alpha" not in k and "state" not in k)  # the final weights from the checkpoint
        dash.receive({"type": "replay", "action": "seek", "index": 5, "id": "s"})
        msgs = dash.state.take_messages()
        assert {"type": "ack", "id": "s"} in msgs
        (snap,) = [m for m in msgs if m["type"] == "snapshot"]
        assert snap["evals"]["step"] == [float(h["step"]) for h in history[:6]]
        assert snap["evals"]["nonlinear"][-1] == history[5]["nonlinear"]
        want = torch.cat([s.float() for s in history[5]["slopes"]]).numpy()
        assert dash.network.wait_idle(10)
        assert np.array_equal(dash.state["slopes"], want) and dash.state["step"] == history[5]["step"]
        reply = ask(dash, type="replay", action="seek", index=len(history))
        assert reply["type"] == "error" and "evaluation" in reply["message"]
        assert ask(dash, type="replay", action="speed", speed=100)["type"] == "ack"
        assert dash.state["replay"]["speed"] == 100
    finally:
        dash.close()


def test_a_size_the_model_does_not_take_is_refused_by_name_before_building():
    """seq2seq takes no width: a URL or the form asking for it with the demo's width gets a ValueError naming the
    model, as every other refused setting does (the served page shows it; nothing is built)."""
    from nonlin_explorer.demos import DEFAULT_DEMO, demo_config
    from nonlin_explorer.ui.dashboard_controller import check_size, config_from_settings

    config = config_from_settings(demo_config(DEFAULT_DEMO, {}), {"model": "seq2seq", "dataset": "translation"})
    with pytest.raises(ValueError, match="model 'seq2seq' has no setting 'width'"):
        check_size(config)
