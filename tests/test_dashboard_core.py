"""The dashboard without a browser: buffering and coalescing, input parsing, bad input, export, the serve CLI."""

from __future__ import annotations

import math
import os

import pytest

from nonlin_explorer.ui.dashboard_core import (
    SPARSITY_OPTIONS,
    LiveBuffer,
    core_summary,
    eval_columns,
    heatmap_columns,
    nearest_option,
    parse_number,
    parse_sparsity,
    reproduce_code,
    step_columns,
)

TINY = dict(dataset="spirals", dataset_kwargs={"num_samples": 300}, model_kwargs={"width": 8, "depth": 2},
            epochs=2, eval_every=4, batch_size=64)


def _eval(step, nonlinear=(3, 1)):
    return {"step": step, "epoch": step / 10, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.1, "test_acc": 0.4,
            "sparsity": 0.01, "prior_on": True, "lr": 1e-3, "nonlinear": list(nonlinear), "slopes": ["big tensor"],
            "apl_normalized": 1.5, "apl_unnormalized": 2.5, "nonlinear_layers": 2}


def test_sparsity_options_have_an_exact_zero_and_a_log_scale():
    assert SPARSITY_OPTIONS[0] == 0.0
    ratios = [b / a for a, b in zip(SPARSITY_OPTIONS[1:], SPARSITY_OPTIONS[2:])]
    assert all(2 < r < 4 for r in ratios)
    assert nearest_option(0.0) == 0.0
    assert nearest_option(1e-9) == 1e-5
    assert nearest_option(2.5e-3) == 3e-3
    assert nearest_option(50.0) == 1e-1


@pytest.mark.parametrize("text, message", [("abc", "not a number"), ("", "enter a number"), ("nan", "finite"),
                                           ("-0.1", ">= 0"), ("2", "<= 1"), (None, "not a number")])
def test_parse_sparsity_rejects_bad_input(text, message):
    with pytest.raises(ValueError, match=message):
        parse_sparsity(text)


def test_parse_number():
    assert parse_sparsity(" 1e-3 ") == 1e-3
    assert parse_number("7", "seed", low=0, integer=True) == 7
    with pytest.raises(ValueError, match="whole number"):
        parse_number("7.5", "seed", integer=True)


def test_buffer_coalesces_events_and_drops_slope_tensors():
    buf = LiveBuffer(max_steps=5)
    for i in range(1, 9):
        buf("step", {"step": i, "loss": 1.0 / i})
    buf("eval", _eval(8))
    buf("status", {"status": "running", "step": 8})
    buf("status", {"status": "paused", "step": 8})
    out = buf.drain()
    assert [s for s, _ in out.steps] == [4, 5, 6, 7, 8]  # bounded: the oldest dropped, and counted
    assert out.dropped_steps == 3
    assert out.status["status"] == "paused"  # only the latest status matters
    assert len(out.evals) == 1 and "slopes" not in out.evals[0] and out.evals[0]["nonlinear"] == [3, 1]
    assert not buf.drain()  # nothing new: the UI does nothing


def test_columns():
    evals = [_eval(4, (3, 1)), _eval(8, (2, 0))]
    cols = eval_columns(evals)
    assert cols["step"] == [4.0, 8.0] and cols["nonlinear_total"] == [4.0, 2.0]
    heat = heatmap_columns(evals, units=[4, 2], eval_every=4)
    assert heat["layer"] == [0, 1, 0, 1]
    assert heat["fraction"] == [0.75, 0.5, 0.5, 0.0]
    assert heat["step"] == [2.0, 2.0, 6.0, 6.0]
    thin = step_columns([(i, float(i)) for i in range(1000)], max_points=100)
    assert len(thin["step"]) <= 100 and thin["step"][-1] == 999.0
    text = core_summary(evals[-1], [4, 2])
    assert "2/6" in text and "1/2" in text and "1.50" in text


def test_reproduce_code_runs_the_same_config():
    from nonlin_explorer.training import TrainConfig

    cfg = TrainConfig(**TINY, sparsity=0.003, seed=5)
    code = reproduce_code(cfg)
    ns: dict = {}
    exec(code.replace("session.run()", "").replace("ds = session.to_xarray()", ""), ns)
    assert ns["config"] == cfg


@pytest.fixture
def dashboard():
    pytest.importorskip("panel")
    from nonlin_explorer.ui.dashboard import TrainingDashboard

    d = TrainingDashboard(**TINY)
    yield d
    d.close()


def test_bad_sparsity_keeps_the_last_valid_value(dashboard):
    assert dashboard.set_sparsity("0.01")
    assert dashboard.session.sparsity == 0.01 and not dashboard.message.visible
    assert dashboard.sparsity_slider.value == 1e-2
    assert not dashboard.set_sparsity("many")
    assert dashboard.message.visible and "not a number" in dashboard.message.object
    assert dashboard.session.sparsity == 0.01
    assert dashboard.sparsity_input.value == "0.01"
    dashboard.sparsity_slider.value = 1e-1  # what the browser's slider does
    assert dashboard.session.sparsity == 0.1 and dashboard.sparsity_input.value == "0.1"


def test_model_that_does_not_fit_keeps_the_session(dashboard):
    old = dashboard.session
    dashboard.dataset.value, dashboard.model.value = "reverse", "cnn"
    assert not dashboard.reset()
    assert dashboard.session is old
    assert "current run is kept" in dashboard.message.object
    assert (dashboard.dataset.value, dashboard.model.value) == ("spirals", "mlp")
    dashboard.width_input.value = "4"
    assert dashboard.reset()
    assert dashboard.session is not old and dashboard.session.config.model_kwargs["width"] == 4
    assert dashboard.core_source.data["units"] == [4, 4]


def test_training_streams_through_flush(dashboard):
    s = dashboard.session
    s.run(progress=False)  # events land in the buffer; nothing is drawn until flush
    assert dashboard.evals_source.data["step"] == []
    assert dashboard.flush()
    assert dashboard.evals_source.data["step"] == [float(h["step"]) for h in s.history]
    assert len(dashboard.heat_source.data["layer"]) == 2 * len(s.history)
    assert dashboard.core_source.data["nonlinear"] == s.history[-1]["nonlinear"]
    assert "finished" in dashboard.status.object
    assert not dashboard.flush()


def test_network_view_pane_follows_the_session_and_clicks_toggle(dashboard):
    import numpy as np

    from nonlin_explorer.ui.codecs import binary_to_array

    pane, s = dashboard.network, dashboard.session
    assert [layer["name"] for layer in pane.layers] == s.gate_names
    assert [layer["units"] for layer in pane.layers] == [8, 8]
    assert isinstance(pane.slopes["view"], bytes) and len(binary_to_array(pane.states)) == 16
    # What the browser does on a click: the synced request property, numbered.
    pane.request = {"type": "set_state", "targets": [{"layer": 1, "units": [5]}], "state": 1, "seq": 1}
    assert int(s._gates[1].state[5]) == 1  # idle session: applied at once
    assert pane.view.wait_idle(10)
    dashboard.flush()  # the document thread copies the view's new state into the pane
    states = binary_to_array(pane.states)
    assert states[8 + 5] == 1 and states.sum() == 1
    assert binary_to_array(pane.slopes)[8 + 5] == 1.0
    # A bad request: an error reply, the session unchanged.
    pane.request = {"type": "set_state", "targets": [{"layer": 7, "units": [0]}], "state": 1, "seq": 2}
    assert pane.errors and "IndexError" in pane.errors[-1]
    assert int(np.count_nonzero(s._gates[1].state.numpy())) == 1
    # Training moves the slopes; the pane follows after a flush.
    before = binary_to_array(pane.slopes).copy()
    s.run(progress=False)
    assert pane.view.wait_idle(10)
    dashboard.flush()
    assert pane.step == s.step and not np.array_equal(binary_to_array(pane.slopes), before)


def test_export(dashboard, tmp_path):
    from nonlin_explorer.results import read_netcdf

    dashboard.session.run(progress=False)
    steps = len(dashboard.session.history)
    path = dashboard.export(str(tmp_path / "run.nc"))
    assert path and os.path.exists(path)
    assert dashboard.message.alert_type == "success"
    ds = read_netcdf(path)
    assert ds.sizes["step"] == steps
    assert "TrainingSession(config)" in dashboard.code.object
    bad = dashboard.export(str(tmp_path / "missing" / "run.nc"))
    assert bad is None and "does not exist" in dashboard.message.object
    assert dashboard.message.alert_type == "danger"
    assert len(dashboard.session.history) == steps  # nothing lost


def test_serve_parser_defaults_to_localhost():
    import argparse

    from nonlin_explorer.ui.serve import add_serve_parser, demo_config

    p = argparse.ArgumentParser()
    add_serve_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["serve"])
    assert (args.host, args.demo, args.theme, args.show) == ("127.0.0.1", "training", "light", False)
    args = p.parse_args(["serve", "--port", "0", "--theme", "dark", "--show", "--config", '{"epochs": 3}'])
    assert args.show and args.config == {"epochs": 3}
    assert demo_config("training", args.config).epochs == 3
    with pytest.raises(ValueError, match="unknown demo"):
        demo_config("nope")
    with pytest.raises(ValueError, match="bad --config"):
        demo_config("training", {"colour": 1})
    assert math.isfinite(demo_config("training").lr)


@pytest.mark.slow
def test_in_a_kernel_other_cells_run_while_training_and_close_stops_the_thread():
    """The dashboard in a real ipykernel (no browser): its refresh loop runs, and while training runs the next
    cell starts within 1 s of the last one ending (reply, request and scheduling included)."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [
        "import asyncio, time\nimport panel as pn\npn.extension()\n"
        "from nonlin_explorer.ui.dashboard import TrainingDashboard\n"
        "dash = TrainingDashboard(dataset='spirals', dataset_kwargs={'num_samples': 300},\n"
        # epochs=10**6: still training when checked (close() stops it)
        "                         model_kwargs={'width': 8, 'depth': 2}, epochs=10**6, eval_every=5)\ndash",
        "dash.start()\nawait asyncio.sleep(2)\n_t = time.time()",
        "print('CELL', time.time() - _t)  # from the end of the last cell to the start of this one",
        "print('STATE', dash.session.status, dash.flushes, len(dash.evals_source.data['step']))",
        "dash.close(); print('ALIVE', dash.session.is_alive)",
    ]]
    nbclient.NotebookClient(nb, timeout=120).execute()
    out = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells]
    assert float(out[2].split()[1]) < 1.0
    _, status, flushes, streamed = out[3].split()
    assert status == "running" and int(flushes) > 0 and int(streamed) > 0
    assert out[4].strip() == "ALIVE False"


def test_ui_package_exports_the_apps_without_importing_panel_eagerly():
    import subprocess
    import sys

    code = ("import sys, nonlin_explorer.ui as ui; eager = 'panel' in sys.modules; "
            "print(eager, ui.TrainingDashboard.__name__, ui.CompressionExplorer.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "TrainingDashboard", "CompressionExplorer"], out.stderr


def test_early_vs_late_tab_compares_this_run_and_closes_with_the_dashboard(dashboard):
    assert [name for name in dashboard.tabs._names] == ["Training", "Early vs late"]
    view, cfg = dashboard.advantage, dashboard.session.config
    assert (view.config.dataset, view.config.model, view.config.model_kwargs) == (cfg.dataset, cfg.model,
                                                                                  cfg.model_kwargs)
    assert view.config.epochs == min(cfg.epochs, 40.0)
    dashboard.width_input.value = "4"
    assert dashboard.reset()
    assert dashboard.advantage is not view and dashboard.advantage.config.model_kwargs["width"] == 4
    assert dashboard.tabs[1] is dashboard.advantage.__panel__()  # the tab shows the new view
    view = dashboard.advantage
    assert view.run(sparsities=[1e-2], seeds=[0], epochs=1)
    dashboard.close()
    assert not view.running  # its worker ended with the dashboard


# -- record and replay ------------------------------------------------------------------------------
REPLAY_RUN = dict(TINY, epochs=8, eval_every=3, sparsity=1e-2, slope_lr=0.2)  # 40 steps, 14 evaluations


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A live dashboard's run, drawn, then saved with dashboard.record(); yields (live sources, recording path)."""
    pytest.importorskip("panel")
    from nonlin_explorer.ui.dashboard import TrainingDashboard

    live = TrainingDashboard(**REPLAY_RUN)
    live.session.run(progress=False)
    live.flush()
    path = tmp_path_factory.mktemp("rec") / "run.rec"
    assert live.record(str(path)) == str(path) and live.message.alert_type == "success"
    sources = {k: dict(getattr(live, k).data) for k in ("evals_source", "steps_source", "heat_source", "core_source")}
    history, model = live.session.history, {k: v.clone() for k, v in live.session.model.state_dict().items()}
    bad = live.record(str(path.parent / "missing" / "x.rec"))
    assert bad is None and "does not exist" in live.message.object and live.message.alert_type == "danger"
    assert len(live.session.history) == len(history)  # nothing lost
    live.close()
    return sources, path, history, model


def _same_columns(a, b):
    import numpy as np

    assert set(a) == set(b)
    for k in a:
        if a[k] and isinstance(a[k][0], str):
            assert list(a[k]) == list(b[k]), k
            continue
        assert np.allclose(np.asarray(a[k], dtype=float), np.asarray(b[k], dtype=float), equal_nan=True, rtol=0,
                           atol=0), k


def test_replay_clock_feeds_in_step_order_at_the_given_speed():
    from nonlin_explorer.ui.dashboard_core import ReplayClock

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
    assert clock.eval_index == 0 and not clock.finished
    clock.feed(buf, 100.0)
    out = buf.drain()
    assert [s for s, _ in out.steps] == [3, 4, 5, 6] and [e["step"] for e in out.evals] == [4, 6]
    assert clock.finished and not clock.playing
    steps_before, evals_before = clock.seek(1)
    assert [s for s, _ in steps_before] == [1, 2, 3, 4] and [e["step"] for e in evals_before] == [2, 4]
    assert clock.eval_index == 1 and clock.position == 4.0
    with pytest.raises(ValueError, match="evaluation"):
        clock.seek(3)
    untimed = ReplayClock([dict(e, time=float("nan")) for e in evals], steps)
    assert not untimed.timed and untimed.duration == 3.0  # one evaluation a second


def test_replay_ends_with_the_live_runs_sources(recorded):
    from nonlin_explorer.ui.dashboard import TrainingDashboard

    sources, path, history, _ = recorded
    dash = TrainingDashboard.from_recording(str(path), speed=1e4)
    try:
        assert dash.evals_source.data["step"] == [] and dash.steps_source.data["step"] == []
        assert "Replay of **run.rec**" in dash.status.object and "paused" in dash.status.object
        assert not dash.start_button.visible or not dash._layout.objects[0].objects[2].visible
        dash.start()
        assert "does not train" in dash.message.object and not dash.session.is_alive
        dash.play()
        seen, clock = [], dash.replay_clock
        for _ in range(10_000):
            clock.feed(dash.buffer, clock.duration / 300 / clock.speed)  # slices: many flushes, as in the browser
            dash._last_feed = __import__("time").monotonic()
            dash.flush()
            seen.append(len(dash.evals_source.data["step"]))
            if dash.replay_clock.finished:
                break
        assert dash.replay_clock.finished and seen == sorted(seen) and len(set(seen)) > 1
        for k, want in sources.items():
            _same_columns(getattr(dash, k).data, want)
        assert "finished" in dash.status.object
        assert dash.scrubber.value == len(history) - 1
    finally:
        dash.close()


def test_replay_scrub_shows_the_recorded_slopes_and_close_leaves_no_thread(recorded):
    import threading

    import numpy as np
    import torch

    from nonlin_explorer.ui.codecs import binary_to_array
    from nonlin_explorer.ui.dashboard import TrainingDashboard

    _, path, history, model = recorded
    threads = set(threading.enumerate())
    dash = TrainingDashboard.from_recording(str(path))
    assert all(torch.equal(v, model[k]) for k, v in dash.session.model.state_dict().items() if "alpha" not in k
               and "state" not in k)  # the final weights from the checkpoint
    dash.scrubber.value = 5  # what the browser's slider does
    assert dash.evals_source.data["step"] == [float(h["step"]) for h in history[:6]]
    assert dash.core_source.data["nonlinear"] == history[5]["nonlinear"]
    assert dash.steps_source.data["step"] == [float(s) for s in range(1, history[5]["step"] + 1)]
    want = torch.cat([s.float() for s in history[5]["slopes"]]).numpy()
    assert dash.network.view.wait_idle(10)
    dash.flush()
    assert np.array_equal(binary_to_array(dash.network.slopes), want)
    assert dash.network.step == history[5]["step"]
    dash.seek(2)  # backwards
    assert len(dash.evals_source.data["step"]) == 3 and dash.scrubber.value == 2
    assert not np.array_equal(torch.cat([s.float() for s in history[2]["slopes"]]).numpy(), want)
    assert dash.status_dict()["replay"]["eval_index"] == 2
    dash.close()
    assert not dash.reset()
    deadline = __import__("time").monotonic() + 10
    while set(threading.enumerate()) - threads and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.05)
    assert not [t for t in set(threading.enumerate()) - threads if t.is_alive()]
