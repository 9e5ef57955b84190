"""Recordings: a trained session saved to a folder and read back exactly, without training; bad paths and files."""

from __future__ import annotations

import math

import pytest
import torch

from nonlin_explorer.recording import RecordingError, attach_step_log, load_recording, save_recording
from nonlin_explorer.training import TrainingSession

TINY = dict(dataset="spirals", dataset_kwargs={"num_samples": 300}, model_kwargs={"width": 8, "depth": 2},
            epochs=8, eval_every=3, batch_size=64, sparsity=1e-2, slope_lr=0.2)


@pytest.fixture(scope="module")
def run():
    session = TrainingSession(**TINY)
    log = attach_step_log(session)
    session.run(progress=False)
    return session, log


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_round_trip_is_exact(run, tmp_path):
    session, log = run
    path = save_recording(session, tmp_path / "run.rec", steps=log.snapshot())
    rec = load_recording(path)
    assert len(rec.evals) == len(session.history) > 3
    for got, want in zip(rec.evals, session.history):
        assert set(got) == set(want)
        for key, value in want.items():
            if key == "slopes":
                assert len(got[key]) == len(value)
                assert all(torch.equal(g, w.float()) for g, w in zip(got[key], value))
            else:
                assert _same(got[key], value), key
    assert rec.steps == log.snapshot() and len(rec.steps) == session.step
    assert rec.steps == sorted(rec.steps)
    assert rec.gate_names == session.gate_names and rec.units == [8, 8]
    assert rec.config.to_dict() == session.config.to_dict()
    # Slopes moved during the run: the recording holds more than the final state.
    assert not torch.equal(rec.evals[0]["slopes"][0], rec.evals[-1]["slopes"][0])


def test_show_puts_the_session_at_a_recorded_evaluation(run, tmp_path):
    session, log = run
    rec = load_recording(save_recording(session, tmp_path / "run.rec", steps=log.snapshot()))
    rec.show(1)
    snap = rec.session().snapshot()
    assert snap.step == rec.evals[1]["step"] > 0
    assert all(torch.equal(got, want.clamp(0, 1)) for got, want in zip(snap.slopes, rec.evals[1]["slopes"]))
    assert all((states == 0).all() for states in snap.states)  # free: the recorded slope is what shows
    rec.show(-1)  # before the first evaluation
    snap = rec.session().snapshot()
    assert snap.step == 0 and all((s == 0).all() for s in snap.slopes)


def test_checkpoint_restores_the_final_weights_without_training(run, tmp_path):
    session, log = run
    rec = load_recording(save_recording(session, tmp_path / "run.rec", steps=log.snapshot()))
    replay = rec.session()
    assert replay.status == "finished" and replay.step == session.step and not replay.is_alive
    want, got = session.model.state_dict(), replay.model.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k].cpu(), want[k].cpu()) for k in want)
    assert rec.session() is replay


def test_saving_again_replaces_the_recording_and_other_folders_are_kept(run, tmp_path):
    session, log = run
    path = save_recording(session, tmp_path / "run.rec")
    assert load_recording(path).steps == []
    save_recording(session, path, steps=log.snapshot())
    assert len(load_recording(path).steps) == session.step
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"x")
    with pytest.raises(OSError, match="not a recording"):
        save_recording(session, other)
    assert (other / "a.jpg").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "run.rec"]  # no temporary leftovers


def test_bad_path_is_a_clear_error(run, tmp_path):
    session, _ = run
    with pytest.raises(OSError, match="does not exist"):
        save_recording(session, tmp_path / "missing" / "run.rec")
    with pytest.raises(RecordingError, match="no such folder"):
        load_recording(tmp_path / "nothing.rec")


def test_truncated_or_foreign_files_are_clear_errors(run, tmp_path):
    session, log = run
    path = save_recording(session, tmp_path / "run.rec", steps=log.snapshot())
    nc = path / "recording.nc"
    data = nc.read_bytes()
    nc.write_bytes(data[: len(data) // 3])
    with pytest.raises(RecordingError, match="cannot be read"):
        load_recording(path)
    # A plain result set (export) is not a recording.
    session.to_xarray().to_netcdf(nc, engine="netcdf4")
    with pytest.raises(RecordingError, match="not a nonlin_explorer recording"):
        load_recording(path)
    # A file instead of a folder; a folder without its checkpoint.
    with pytest.raises(RecordingError, match="is a file|this is a file"):
        load_recording(nc)
    path2 = save_recording(session, tmp_path / "run2.rec")
    (path2 / "checkpoint.pt").unlink()
    with pytest.raises(RecordingError, match="checkpoint.pt is missing"):
        load_recording(path2)
    # A truncated checkpoint: an error when the model is rebuilt.
    path3 = save_recording(session, tmp_path / "run3.rec")
    ck = path3 / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(RecordingError, match="cannot read the checkpoint"):
        load_recording(path3).session()


def test_a_session_with_its_own_model_cannot_be_recorded(tmp_path):
    from nonlin_explorer.models import build

    model = build("mlp", (2,), 2, width=4, depth=1)
    session = TrainingSession(dataset="spirals", dataset_kwargs={"num_samples": 100}, model=model)
    with pytest.raises(ValueError, match="TrainConfig"):
        save_recording(session, tmp_path / "run.rec")
    assert not (tmp_path / "run.rec").exists()


def test_replacing_a_recording_never_leaves_it_missing(run, tmp_path):
    """While a recording is saved over and over, a reader always finds one under its name."""
    import threading

    session, log = run
    path = save_recording(session, tmp_path / "run.rec", steps=log.snapshot())
    stop, missing, reads = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            if not (path / "recording.nc").is_file():
                missing.append(1)
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(5):
        save_recording(session, path, steps=log.snapshot())
    stop.set()
    t.join()
    assert reads[0] > 100 and not missing
    assert len(load_recording(path).evals) == len(session.history)


def test_a_two_step_replace_killed_half_way_is_recovered_on_load(run, tmp_path, monkeypatch):
    """Where the system has no atomic exchange: old folder moved aside, then the process dies."""
    import os

    import nonlin_explorer.files as files

    session, log = run
    path = save_recording(session, tmp_path / "run.rec", steps=log.snapshot())
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    real_replace, calls = os.replace, []

    def dies_after_the_first(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between the two renames
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", dies_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        files.replace_folder(tmp_path / "new.rec", path)
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert not path.exists()  # the state a crash leaves ...
    assert len(load_recording(path).evals) == len(session.history)  # ... repaired by the next reader


def test_every_variable_and_coordinate_has_long_name_and_units(run, tmp_path):
    from nonlin_explorer.labels import unlabelled
    from nonlin_explorer.recording import RESULTS_FILE
    from nonlin_explorer.results import read_netcdf

    session, log = run
    ds = read_netcdf(save_recording(session, tmp_path / "run.rec", steps=log.snapshot()) / RESULTS_FILE)
    assert {"eval_time", "batch_step", "batch_loss", "slope"} <= set(ds.data_vars)
    assert unlabelled(ds) == []
    assert ds.eval_time.attrs["units"] == "s" and ds.batch_step.attrs["units"] == "steps"
    assert ds.eval_time.dtype == "float64"  # "s" alone is not a time unit xarray decodes
    from doc_tables import undocumented

    assert undocumented(ds) == []
