"""Sweeps: every point one Dask task, gathered into one result set equal to the same runs done serially;
failed points recorded and re-run alone on resume; interrupts lose nothing; bad specs fail clearly."""

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from nonlin_explorer import sweep
from nonlin_explorer.results import read_netcdf
from nonlin_explorer.sweep.gather import Store, journal_path
from nonlin_explorer.training import TrainConfig, TrainingSession

TRAIN_BASE = {"dataset": "spirals", "dataset_kwargs": {"num_samples": 400}, "model": "mlp",
              "model_kwargs": {"width": 16, "depth": 2}, "epochs": 2, "batch_size": 64, "eval_every": 5}


# -- user functions the function-kind sweeps call (imported by name on the workers) ----------------------

def marked_point(x, log, flag, seed):
    """Logs each execution; raises for x == 2 while the flag file exists."""
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    if x == 2 and os.path.exists(flag):
        raise RuntimeError("boom")
    return {"y": x * x + seed}


def interrupted_point(x, log, flag, seed):
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    if x == 2 and os.path.exists(flag):
        raise KeyboardInterrupt
    return {"y": x + 10 * seed}


def _executions(log: Path) -> list[int]:
    return sorted(int(v) for v in log.read_text().split()) if log.exists() else []


def _function_spec(fn, tmp_path, xs=(0, 1, 2, 3), seeds=(0,)):
    return {"kind": "function", "function": f"{__name__}:{fn}", "seeds": list(seeds),
            "base": {"log": str(tmp_path / "log"), "flag": str(tmp_path / "flag")}, "grid": {"x": list(xs)}}


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    cluster = sweep.local_cluster(2)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


# -- acceptance -------------------------------------------------------------------------------------------

def test_local_cluster_gives_the_serial_runs(client, tmp_path):
    spec = {"seeds": [0, 1], "series": True, "base": TRAIN_BASE,
            "grid": {"sparsity": [0.0, 0.05], "schedule": ["early", "late"]}}
    out = tmp_path / "sweep.nc"
    ds = sweep.run(spec, client=client, out=out, progress=False)

    assert ds["test_acc"].dims == ("sparsity", "schedule", "seed")
    assert ds.sizes == {"sparsity": 2, "schedule": 2, "seed": 2, "eval": 2}
    assert list(ds["schedule"].values) == ["early", "late"] and list(ds["seed"].values) == [0, 1]
    assert (ds["status"] == "finished").all()
    torch.set_num_threads(1)  # as on the workers
    for sparsity in (0.0, 0.05):
        for schedule in ("early", "late"):
            for seed in (0, 1):
                s = TrainingSession(TrainConfig(**TRAIN_BASE, sparsity=sparsity, schedule=schedule, seed=seed))
                s.run(progress=False)
                point = ds.sel(sparsity=sparsity, schedule=schedule, seed=seed)
                last = s.history[-1]
                assert float(point["test_acc"]) == last["test_acc"]
                assert float(point["test_loss"]) == last["test_loss"]
                assert float(point["nonlinear_total"]) == sum(last["nonlinear"])
                assert point["series_test_loss"].values.tolist() == [h["test_loss"] for h in s.history]
                prov = json.loads(str(point["provenance"].values))
                assert prov["config"]["seed"] == seed and prov["config"]["schedule"] == schedule
                assert prov["worker"].startswith("tcp://") and prov["torch_threads"] == 1
    on_disk = read_netcdf(out)
    assert on_disk["test_acc"].equals(ds["test_acc"]) and on_disk["series_test_acc"].equals(ds["series_test_acc"])
    assert not journal_path(out).exists()
    assert json.loads(on_disk.attrs["spec"])["grid"]["schedule"] == ["early", "late"]


def test_a_failing_point_is_recorded_and_resume_runs_only_it(client, tmp_path):
    (tmp_path / "flag").touch()
    spec = _function_spec("marked_point", tmp_path, seeds=(0, 5))
    out = tmp_path / "f.nc"
    ds = sweep.run(spec, client=client, out=out, progress=False)
    failed = ds.sel(x=2)
    assert list(failed["status"].values) == ["failed", "failed"]
    assert all(e == "RuntimeError: boom" for e in failed["error"].values)
    assert "Traceback" in json.loads(str(failed["provenance"].values[0]))["traceback"]
    others = ds.sel(x=[0, 1, 3])
    assert (others["status"] == "finished").all()
    assert others["y"].values.tolist() == [[0, 5], [1, 6], [9, 14]]
    assert _executions(tmp_path / "log") == [0, 0, 1, 1, 2, 2, 3, 3]
    run_ids = {str(v): json.loads(str(v))["run_id"] for v in others["provenance"].values.ravel()}

    (tmp_path / "flag").unlink()
    ds = sweep.run(spec, client=client, out=out, resume=True, progress=False)
    assert _executions(tmp_path / "log") == [0, 0, 1, 1, 2, 2, 2, 2, 3, 3]  # only x = 2 ran again
    assert (ds["status"] == "finished").all() and ds["y"].sel(x=2).values.tolist() == [4, 9]
    assert sorted(json.loads(str(v))["run_id"] for v in ds.sel(x=[0, 1, 3])["provenance"].values.ravel()) == \
        sorted(run_ids.values())
    sweep.run(spec, client=client, out=out, resume=True, progress=False)
    assert len(_executions(tmp_path / "log")) == 10  # nothing left to run


def test_a_training_point_that_raises_does_not_stop_the_others(tmp_path):
    spec = {"base": TRAIN_BASE, "grid": {"model_kwargs.depth": [1, 0]}}
    ds = sweep.run(spec, workers=0, out=tmp_path / "t.nc", progress=False)
    assert ds["status"].sel(depth=1, seed=0) == "finished" and float(ds["test_acc"].sel(depth=1, seed=0)) > 0
    assert ds["status"].sel(depth=0, seed=0) == "failed"
    assert "ValueError" in str(ds["error"].sel(depth=0, seed=0).values)
    assert np.isnan(ds["test_acc"].sel(depth=0, seed=0))
    assert ds.attrs["points_failed"] == 1 and ds.attrs["points_finished"] == 1


def test_an_interrupt_keeps_every_finished_point(tmp_path):
    (tmp_path / "flag").touch()
    spec = _function_spec("interrupted_point", tmp_path)
    out = tmp_path / "i.nc"
    with pytest.raises(KeyboardInterrupt):
        sweep.run(spec, workers=0, out=out, progress=False, flush_interval=1e9)
    saved = read_netcdf(out)
    assert saved["status"].values.ravel().tolist() == ["finished", "finished", "pending", "pending"]
    assert not journal_path(out).exists()
    (tmp_path / "flag").unlink()
    ds = sweep.run(spec, workers=0, out=out, resume=True, progress=False)
    assert _executions(tmp_path / "log") == [0, 1, 2, 2, 3]
    assert ds["y"].values.ravel().tolist() == [10 * 0 + x for x in range(4)]


def test_points_in_the_journal_are_not_recomputed(tmp_path):
    spec = sweep.load_spec(_function_spec("marked_point", tmp_path, xs=(0, 1)))
    out = tmp_path / "j.nc"
    store = Store(spec, out, resume=False)  # a run that died after one point, before writing the file
    point = spec.points()[1]
    store.add(sweep.run_point(sweep.task_for(spec, point)))
    store.close()
    assert not out.exists() and journal_path(out).exists()
    with pytest.raises(FileExistsError, match="resume"):
        sweep.run(spec, workers=0, out=out, progress=False)
    ds = sweep.run(spec, workers=0, out=out, resume=True, progress=False)
    assert _executions(tmp_path / "log") == [0, 1]
    assert ds["y"].values.ravel().tolist() == [0, 1] and not journal_path(out).exists()


def test_resume_refuses_output_from_another_spec(tmp_path):
    out = tmp_path / "o.nc"
    sweep.run(_function_spec("marked_point", tmp_path, xs=(0, 1)), workers=0, out=out, progress=False)
    with pytest.raises(sweep.SpecError, match="different spec"):
        sweep.run(_function_spec("marked_point", tmp_path, xs=(5, 6)), workers=0, out=out, resume=True,
                  progress=False)
    grown = sweep.run(_function_spec("marked_point", tmp_path, xs=(0, 1, 2)), workers=0, out=out, resume=True,
                      progress=False)  # a grid that grows keeps its done points
    assert _executions(tmp_path / "log") == [0, 1, 2] and grown["y"].values.ravel().tolist() == [0, 1, 4]


def test_compression_points_match_the_compression_sweep():
    csweep = importlib.import_module("nonlin_explorer.compression.sweep")
    spec = {"kind": "compression", "seeds": [0, 1], "base": {"N": 6, "d": 2, "compress": {"max_iter": 40,
                                                                                           "restarts": 2}},
            "grid": {"M": [2, 4, 6], "method": ["exact", "etf", "magnitude"]}}
    ds = sweep.run(spec, workers=0, progress=False)
    torch.set_num_threads(1)  # tiny float64 problems: extra threads only oversubscribe a busy machine
    ref = csweep.sweep(6, [2, 4, 6], 2, seeds=[0, 1], methods=["exact", "etf", "magnitude"],
                       compress_kwargs={"max_iter": 40, "restarts": 2}, progress=False)
    expected = ref["loss"].sel(N=6, d=2).transpose("M", "method", "seed").values
    np.testing.assert_array_equal(ds["loss"].values, expected)
    assert (ds["status"].sel(M=6) == "skipped").all()
    assert ds["status"].sel({"M": 4, "method": "etf", "seed": 0}) == "skipped"  # an ETF needs M <= d + 1
    assert "M <= d + 1" in str(ds["error"].sel({"M": 4, "method": "etf", "seed": 0}).values)
    assert (ds["status"].sel(M=2) == "finished").all()


def test_a_compression_spec_sweeps_the_targets_mean_and_records_the_tilt():
    spec = {"kind": "compression", "seeds": [0], "base": {"N": 400, "d": 6, "M": 3, "method": "meanfield"},
            "grid": {"target.w_mean": [0.0, 0.3, 0.6]}}
    ds = sweep.run(spec, workers=0, progress=False)
    assert list(ds["w_mean"].values) == [0.0, 0.3, 0.6] and (ds["status"] == "finished").all()
    tilt = ds["tilt_degrees"].sel(seed=0).values
    assert tilt[0] < 5 < tilt[1] < tilt[2]  # the simplex lifts towards the mean as it grows


def parameter_count(model, example_input):
    """A metric factory: name -> callable(model), recorded at each evaluation."""
    return {"parameters": lambda m: float(sum(p.numel() for p in m.parameters()))}


def test_path_length_and_custom_metrics_are_recorded_per_point():
    spec = {"metrics": [f"{__name__}:parameter_count"], "series": True, "base": TRAIN_BASE,
            "grid": {"model_kwargs.width": [4, 8]}}
    ds = sweep.run(spec, workers=0, progress=False)
    apl = ds["apl_normalized"].sel(seed=0).values
    assert ((apl > 0) & (apl <= 2)).all()  # two gate layers: at most two nonlinear units on a path
    assert ds["series_apl_normalized"].sel(seed=0).values[:, -1].tolist() == apl.tolist()
    # width w, 2 inputs, 3 classes, depth 2: (2w + w) + (w*w + w) + (3w + 3) weights, slopes 2w
    assert ds["parameters"].sel(seed=0).values.tolist() == [float(w * w + 9 * w + 3) for w in (4, 8)]
    from nonlin_explorer.labels import unlabelled

    assert unlabelled(ds) == []  # every metric, series and swept setting says what it is and in which units
    assert ds["parameters"].attrs["units"] == "unspecified" and ds["series_step"].attrs["units"] == "steps"
    assert ds["width"].attrs["units"] == "1" and "model_kwargs.width" in ds["width"].attrs["long_name"]
    from doc_tables import undocumented

    series = [n for n in ds.variables if str(n).startswith("series_") and n != "series_length"]  # `series_NAME`
    assert undocumented(ds, skip=["width", "parameters", *series]) == []  # the grid key and the user's metric
    quiet = sweep.run({**spec, "track_paths": False, "metrics": []}, workers=0, progress=False)
    assert "apl_normalized" not in quiet and "parameters" not in quiet


# -- specs ------------------------------------------------------------------------------------------------

SPEC_TOML = """
kind = "training"
seeds = 2
samples = 3
random_seed = 7

[base]
dataset = "spirals"
epochs = 1
[base.model_kwargs]
width = 16
depth = 2

[grid]
schedule = ["early", "late"]
"model_kwargs.depth" = [1, 2]

[random]
lr = { log_uniform = [1e-4, 1e-2] }
"dataset_kwargs.noise" = { uniform = [0.1, 0.3] }
"""


def test_a_spec_from_toml(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC_TOML)
    spec = sweep.load_spec(path)
    assert spec.dims == ("schedule", "depth", "sample", "seed") and spec.shape == (2, 2, 3, 2)
    points = spec.points()
    assert len(points) == 24 and len({p.key for p in points}) == 24
    p = points[-1]
    assert p.params["model_kwargs"] == {"width": 16, "depth": 2} and p.params["schedule"] == "late"
    assert p.seed == 1 and 1e-4 <= p.params["lr"] <= 1e-2 and 0.1 <= p.params["dataset_kwargs"]["noise"] <= 0.3
    lrs = spec.random_values()["lr"]
    assert len(set(lrs)) == 3
    grown = sweep.load_spec(_with(path, "samples = 3", "samples = 5"))
    assert grown.random_values()["lr"][:3] == lrs  # draws do not move when a sweep grows


def _with(path: Path, old: str, new: str) -> Path:
    other = path.with_name("grown.toml")
    other.write_text(path.read_text().replace(old, new))
    return other


@pytest.mark.parametrize("spec, message", [
    ({"grdi": {}}, "unknown key(s) 'grdi'"),
    ({"kind": "eval"}, "unknown kind 'eval'"),
    ({"grid": {"width": [8, 16]}}, "did you mean 'model_kwargs.width'"),
    ({"grid": {"lr.x": [1]}}, "'lr' is not a table"),
    ({"grid": {"sparsity": []}}, "empty list"),
    ({"grid": {"sparsity": 0.1}}, "must be a list"),
    ({"grid": {"sparsity": [0.1, 0.1]}}, "repeated values"),
    ({"grid": {"schedule": ["early", 1]}}, "mixes kinds"),
    ({"grid": {"seed": [0, 1]}}, "top-level 'seeds'"),
    ({"grid": {"schedule": ["early", "never"]}}, "point (schedule='never', seed=0): unknown schedule"),
    ({"grid": {"lr": [1e-3, -1.0]}}, "lr must be > 0"),
    ({"random": {"lr": {"uniform": [0, 1]}}}, "need samples = N"),
    ({"samples": 2, "random": {"lr": {"normal": [0, 1]}}}, "unknown distribution 'normal'"),
    ({"samples": 2, "random": {"lr": {"log_uniform": [0, 1]}}}, "log_uniform needs low > 0"),
    ({"samples": 2, "random": {"lr": {"uniform": [1, 0]}}}, "low < high"),
    ({"samples": 2, "grid": {"lr": [1e-3]}, "random": {"lr": {"uniform": [0.1, 1]}}}, "both in [grid] and [random]"),
    ({"grid": {"model_kwargs": [{"width": 4}], "model_kwargs.depth": [1]}}, "overlap"),
    ({"seeds": [-1]}, "non-negative integers"),
    ({"seeds": [0, 0]}, "repeated values"),
    ({"metrics": ["nope"]}, "\"package.module:name\""),
    ({"track_paths": "yes"}, "track_paths must be true or false"),
    ({"kind": "compression", "base": {"N": 8, "d": 4}}, "compression needs M"),
    ({"kind": "compression", "base": {"N": 8, "M": 2, "d": 4, "compress": {"maxiter": 3}}},
     "unknown option 'compress.maxiter'"),
    ({"kind": "compression", "base": {"N": 8, "M": 2, "d": 4, "method": "best"}}, "unknown method 'best'"),
    ({"kind": "function", "function": "no_such_module_xyz:f"}, "cannot import 'no_such_module_xyz'"),
    ({"kind": "function", "function": "os:getcwd", "grid": {"time": [1, 2]}}, "reserved name"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(sweep.SpecError) as err:
        sweep.parse_spec(spec)
    assert message in str(err.value)


def test_bad_spec_files_and_arguments(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("grid = [1, 2\n")
    with pytest.raises(sweep.SpecError, match="invalid TOML"):
        sweep.load_spec(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        sweep.load_spec(tmp_path / "missing.toml")
    spec = _function_spec("marked_point", tmp_path, xs=(0,))
    with pytest.raises(ValueError, match="does not apply with a client"):
        sweep.run(spec, client="tcp://127.0.0.1:1", workers=2, progress=False)
    with pytest.raises(ValueError, match="workers must be"):
        sweep.run(spec, workers=-1, progress=False)
    with pytest.raises(OSError, match="does not exist"):
        sweep.run(spec, workers=0, out=tmp_path / "no" / "r.nc", progress=False)
    assert not (tmp_path / "log").exists()  # nothing ran


# -- command line -----------------------------------------------------------------------------------------

def _cli(argv):
    """The sweep command under the package's parser (as cli.main wires it)."""
    from nonlin_explorer.cli import _Parser
    from nonlin_explorer.sweep.cli import add_sweep_parser, sweep_main

    parser = _Parser(prog="nonlin-explorer")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_sweep_parser(sub)
    try:
        return sweep_main(parser.parse_args(argv))
    except SystemExit as exc:
        return exc.code


def test_cli_runs_a_toml_spec_on_a_scheduler(client, tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text(f'kind = "function"\nfunction = "{__name__}:marked_point"\nseeds = [0]\n'
                    f'[base]\nlog = "{tmp_path / "log"}"\nflag = "{tmp_path / "flag"}"\n[grid]\nx = [1, 2]\n')
    out = tmp_path / "cli.nc"
    assert _cli(["sweep", str(path), "--scheduler", client.scheduler.address, "--out", str(out), "--quiet"]) == 0
    assert "2 finished of 2 points" in capsys.readouterr().out
    assert read_netcdf(out)["y"].values.ravel().tolist() == [1, 4]
    (tmp_path / "flag").touch()
    out2 = tmp_path / "cli2.nc"
    assert _cli(["sweep", str(path), "--workers", "0", "--out", str(out2), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "1 point(s) failed (first: RuntimeError: boom); rerun with --resume" in err
    assert _cli(["sweep", str(path), "--workers", "0", "--out", str(out2), "--quiet"]) == 2  # exists, no --resume


@pytest.mark.parametrize("argv, message", [
    (["sweep", "s.toml"], "the following arguments are required: --out"),
    (["sweep", "s.toml", "--out", "r.nc", "--workers", "-1"], "must be >= 0"),
    (["sweep", "s.toml", "--out", "r.nc", "--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with"),
    (["sweep", "/no/such/spec.toml", "--out", "r.nc"], "spec file /no/such/spec.toml not found"),
])
def test_cli_bad_arguments_give_one_line_and_exit_code_2(argv, message, capsys):
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_zarr_output_round_trips_and_resumes(tmp_path):
    pytest.importorskip("zarr")
    spec = _function_spec("marked_point", tmp_path, xs=(0, 3))
    out = tmp_path / "z.zarr"
    sweep.run(spec, workers=0, out=out, progress=False)
    ds = sweep.run(spec, workers=0, out=out, resume=True, progress=False)
    assert _executions(tmp_path / "log") == [0, 3] and ds["y"].values.ravel().tolist() == [0, 9]


def product_point(a, b, seed):
    return {"y": a * b + seed, "z": a}


def test_plot_one_line_per_schedule_averaged_over_seeds():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    spec = {"kind": "function", "function": f"{__name__}:product_point", "seeds": [0, 2],
            "grid": {"a": [3, 1, 2], "b": [10, 20]}}
    ds = sweep.run(spec, workers=0, progress=False)
    ds["status"].loc[{"a": 2, "b": 20, "seed": 2}] = "failed"  # left out of the mean
    ax = sweep.plot_sweep(ds, "a", "y", hue="b")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b = 10", "b = 20"]
    line10, line20 = (c.lines[0] for c in ax.containers)
    assert line10.get_xdata().tolist() == [1, 2, 3] and line10.get_ydata().tolist() == [11, 21, 31]
    assert line20.get_ydata().tolist() == [21, 40, 61]
    with pytest.raises(ValueError, match="no variable 'acc'"):
        sweep.plot_sweep(ds, "a", "acc")
    with pytest.raises(ValueError, match="hue must be a swept dimension"):
        sweep.plot_sweep(ds, "a", "y", hue="z")


def test_a_torn_journal_line_is_cut_on_resume_and_no_record_is_lost(tmp_path):
    from nonlin_explorer.sweep.gather import journal_path, read_journal, repair_journal

    out = tmp_path / "s.nc"
    j = journal_path(out)
    j.write_text('{"key": "a", "status": "done"}\n{"key": "b", "sta')  # killed mid-append
    assert repair_journal(j) and j.read_text() == '{"key": "a", "status": "done"}\n'
    with open(j, "a") as fh:
        fh.write('{"key": "c", "status": "done"}\n')
    assert set(read_journal(j)) == {"a", "c"}  # c is not glued onto the fragment
    assert not repair_journal(j)


def test_a_second_sweep_on_an_output_in_use_is_refused_in_one_line(tmp_path, capsys):
    """Another process holds the output (a sweep writing it): the second refuses at once and computes nothing."""
    import subprocess
    import sys

    from nonlin_explorer.cli import main

    out = tmp_path / "busy.nc"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(_function_spec("marked_point", tmp_path, xs=(0, 1))))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom nonlin_explorer.files import hold\nh = hold(sys.argv[1])\n"
         "print('held', flush=True)\ntime.sleep(600)", str(out)],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(sweep.__file__).parents[2]),
                                                          os.environ.get("PYTHONPATH", "")])})
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(["sweep", str(spec_file), "--out", str(out), "--workers", "0", "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "in use by another process" in err[0], err
        assert _executions(tmp_path / "log") == [] and not out.exists() and not journal_path(out).exists()
    finally:
        holder.kill()
        holder.wait()
    ds = sweep.run(str(spec_file), workers=0, out=out, progress=False)  # a dead holder gave it back
    assert ds["y"].values.ravel().tolist() == [0, 1]


def test_huge_grids_and_empty_specs_are_refused_at_once():
    import time

    from nonlin_explorer.sweep.spec import MAX_POINTS, SpecError, parse_spec

    t0 = time.perf_counter()
    with pytest.raises(SpecError, match=r"1,000,000 points .* at most"):
        values = [1e-4 * (k + 1) for k in range(1000)]
        parse_spec({"base": {"epochs": 1}, "grid": {"sparsity": values, "lr": values}})
    assert time.perf_counter() - t0 < 2.0 and MAX_POINTS == 100_000
    with pytest.raises(SpecError, match="the spec is empty"):
        parse_spec({})
