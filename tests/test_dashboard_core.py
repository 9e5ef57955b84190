"""The dashboard's building blocks: buffering and coalescing, input parsing, columns, code, the serve CLI, the widget
in a real kernel."""

from __future__ import annotations

import math

import pytest

from nonlin_explorer.ui.dashboard_core import (
    SPARSITY_MAX,
    SPARSITY_OPTIONS,
    LiveBuffer,
    eval_columns,
    parse_number,
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
    assert SPARSITY_OPTIONS[-1] <= SPARSITY_MAX


@pytest.mark.parametrize("text, message", [("abc", "not a number"), ("", "enter a number"), ("nan", "finite"),
                                           ("-0.1", ">= 0"), ("2", "<= 1"), (None, "not a number")])
def test_parse_number_rejects_bad_input(text, message):
    with pytest.raises(ValueError, match=message):
        parse_number(text, "sparsity", low=0.0, high=SPARSITY_MAX)


def test_parse_number():
    assert parse_number(" 1e-3 ", "sparsity", low=0.0) == 1e-3
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
    thin = step_columns([(i, float(i)) for i in range(1000)], max_points=100)
    assert len(thin["step"]) <= 100 and thin["step"][-1] == 999.0


def test_reproduce_code_runs_the_same_config():
    from nonlin_explorer.training import TrainConfig

    cfg = TrainConfig(**TINY, sparsity=0.003, seed=5)
    code = reproduce_code(cfg)
    ns: dict = {}
    exec(code.replace("session.run()", "").replace("ds = session.to_xarray()", ""), ns)
    assert ns["config"] == cfg


def test_serve_parser_defaults_to_localhost_and_the_spirals_demo():
    import argparse

    from nonlin_explorer.demos import DEMOS, demo_config
    from nonlin_explorer.ui.serve import add_serve_parser

    p = argparse.ArgumentParser()
    add_serve_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["serve"])
    assert (args.host, args.demo, args.theme, args.show) == ("127.0.0.1", "spirals", "light", False)
    args = p.parse_args(["serve", "--port", "0", "--theme", "dark", "--show", "--config", '{"epochs": 3}'])
    assert args.show and args.config == {"epochs": 3}
    assert demo_config("spirals", args.config).epochs == 3
    with pytest.raises(ValueError, match="unknown demo"):
        demo_config("nope")
    with pytest.raises(ValueError, match="bad --config"):
        demo_config("spirals", {"colour": 1})
    for name in DEMOS:  # every demo shows the idea: the prior is on within seconds, with lambda > 0
        cfg = demo_config(name)
        assert cfg.sparsity > 0 and cfg.prior_switch_epoch() <= 15 and math.isfinite(cfg.lr)


@pytest.mark.slow
def test_in_a_kernel_other_cells_run_while_training_and_close_stops_the_thread():
    """The dashboard widget in a real ipykernel (no browser): its flush loop sends, and while training runs the next
    cell starts within 1 s of the last one ending (reply, request and scheduling included)."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [
        "import asyncio, sys, time\n"
        "from nonlin_explorer.ui.dashboard import TrainingDashboard\n"
        "dash = TrainingDashboard(dataset='spirals', dataset_kwargs={'num_samples': 300},\n"
        # epochs=10**6: still training when checked (close() stops it)
        "                         model_kwargs={'width': 8, 'depth': 2}, epochs=10**6, eval_every=5)\ndash",
        "dash.start()\nawait asyncio.sleep(2)\n_t = time.time()",
        "print('CELL', time.time() - _t)  # from the end of the last cell to the start of this one",
        "print('STATE', dash.session.status, dash.flushes, dash.controller.flushes, 'panel' in sys.modules)",
        "dash.close(); print('ALIVE', dash.session.is_alive)",
    ]]
    nbclient.NotebookClient(nb, timeout=120).execute()
    out = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells]
    assert float(out[2].split()[1]) < 1.0
    _, status, flushes, series, panel = out[3].split()
    assert status == "running" and int(flushes) > 0 and int(series) > 0
    assert panel == "False"  # the widget needs neither Panel nor Bokeh
    assert out[4].strip() == "ALIVE False"


def test_ui_package_exports_the_apps_without_importing_panel_eagerly():
    import subprocess
    import sys

    code = ("import sys, nonlin_explorer.ui as ui; eager = 'panel' in sys.modules; "
            "name = ui.TrainingDashboard.__name__; after_dash = 'panel' in sys.modules; "
            "print(eager, name, after_dash, ui.CompressionExplorer.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "TrainingDashboard", "False", "CompressionExplorer"], out.stderr
