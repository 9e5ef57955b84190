"""Result sets and checkpoints: labelled, exact through netCDF, nothing lost on bad paths."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from nonlin_explorer import TrainingSession, gates, load_checkpoint, read_netcdf, write_netcdf


@pytest.fixture(scope="module")
def session():
    # the data by name, so that load_checkpoint (which rebuilds from the config) trains on the same data
    s = TrainingSession(dataset="mnist1d", dataset_kwargs=dict(num_samples=2000, seed=7), model="mlp",
                        model_kwargs=dict(width=24, depth=2), epochs=3, sparsity=1e-3, eval_every=10, seed=1)
    s.run(progress=False)
    s.toggle(0, [0, 1], 1)
    return s


def test_result_set_has_the_documented_shape(session):
    ds = session.to_xarray()
    n = len(session.history)
    assert dict(ds.sizes) == {"step": n, "layer": 2, "unit": 24, "slope_step": n}
    assert list(ds.layer.values) == ["net.2", "net.4"]
    for var in ("train_loss", "train_acc", "test_loss", "test_acc", "sparsity", "prior_on", "nonlinear_total"):
        assert ds[var].dims == ("step",)
    assert ds.nonlinear.dims == ("step", "layer") and ds.slope.dims == ("slope_step", "layer", "unit")
    assert ds.epoch.dims == ("step",) and ds.step.values[-1] == session.step
    assert (ds.nonlinear.sum("layer") == ds.nonlinear_total).all()
    last = np.stack([g.slope.numpy() for g in gates(session.model)])
    # the toggle came after the last evaluation: the result set shows the slopes as evaluated
    np.testing.assert_array_equal(ds.slope.isel(slope_step=-1).values, np.stack(
        [s.numpy() for s in session.history[-1]["slopes"]]))
    assert last[0, 0] == 1.0
    assert float(ds.test_acc.max()) > 0.1


def test_provenance_attrs(session):
    attrs = session.to_xarray().attrs
    assert attrs["model"] == "mlp" and attrs["dataset"] == "mnist1d" and attrs["seed"] == 1
    assert attrs["torch_version"] == torch.__version__ and attrs["device"] == "cpu"
    config = json.loads(attrs["config"])
    assert config["sparsity"] == 1e-3 and config["model_kwargs"] == {"width": 24, "depth": 2}
    assert [e["kind"] for e in json.loads(attrs["events"])] == ["toggle"]


def test_netcdf_round_trip_is_exact(session, tmp_path):
    ds = session.to_xarray()
    path = write_netcdf(ds, tmp_path / "run.nc")
    back = read_netcdf(path)
    xr.testing.assert_identical(back, ds)
    assert back.slope.dtype == np.float32


def test_slopes_are_downsampled_but_keep_the_last_evaluation(session):
    ds = session.to_xarray(max_slope_values=48 * 3)
    assert ds.slope.size <= 48 * 3 and 2 <= ds.sizes["slope_step"] < len(session.history)
    assert ds.slope_step.values[-1] == session.step
    assert ds.sizes["step"] == len(session.history)


def test_unwritable_paths_fail_before_writing_and_leave_nothing(session, tmp_path):
    ds = session.to_xarray()
    with pytest.raises(OSError, match="does not exist"):
        write_netcdf(ds, tmp_path / "missing" / "run.nc")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # root ignores permission bits; /proc refuses new files to everyone
    target = locked if not os.access(locked, os.W_OK) else Path("/proc")
    try:
        # The OS's reason, with the path: "permission denied" (a locked folder), "no such file" (/proc for root).
        with pytest.raises(OSError, match=r"cannot write .*run\.nc: (?i:permission denied|no such file)"):
            write_netcdf(ds, target / "run.nc")
    finally:
        locked.chmod(0o700)
    assert not (target / "run.nc").exists() and not (target / ".run.nc.tmp").exists()


def test_failed_write_keeps_the_previous_file(session, tmp_path):
    path = write_netcdf(session.to_xarray(), tmp_path / "run.nc")
    before = path.read_bytes()
    bad = session.to_xarray().assign_attrs(bad=object())  # netCDF cannot store this attribute
    with pytest.raises((TypeError, ValueError)):
        write_netcdf(bad, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]


def test_checkpoint_round_trip_with_weights_only(session, tmp_path):
    path = tmp_path / "run.pt"
    session.save(path)
    torch.load(path, weights_only=True)  # loadable without unpickling arbitrary objects
    back = load_checkpoint(path)
    x = session.data.x_test[:16]
    session.model.eval()
    back.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(back.model(x), session.model(x), rtol=0, atol=0)
    assert back.step == session.step and back.events == session.events
    assert [g.state.tolist() for g in gates(back.model)] == [g.state.tolist() for g in gates(session.model)]
    xr.testing.assert_equal(back.to_xarray().drop_attrs(), session.to_xarray().drop_attrs())
    back.extend(1)
    back.run(progress=False)  # training resumes from the checkpoint
    assert back.step > session.step and back.status == "finished"


def test_a_folder_or_a_virtual_file_system_is_refused_before_any_work(tmp_path):
    from nonlin_explorer.results import check_writable

    with pytest.raises(OSError, match="it is a folder"):
        check_writable(tmp_path)
    with pytest.raises(OSError, match=r"cannot write /proc/a\.nc"):
        check_writable("/proc/a.nc")  # refused even to root
    assert check_writable(tmp_path / "ok.nc") == tmp_path / "ok.nc" and not (tmp_path / "ok.nc").exists()
    assert not list(tmp_path.iterdir())  # the probe leaves nothing behind


@pytest.mark.parametrize("error, reason", [
    (OSError(28, "No space left on device"), "No space left on device"),
    (RuntimeError("NetCDF: HDF error\nmore lines"), "NetCDF: HDF error"),  # what netCDF raises under a size limit
])
def test_a_failed_write_falls_back_and_names_the_fallback_with_the_checkpoint_first(session, tmp_path, monkeypatch,
                                                                                     error, reason):
    """A full disk where the results should go (any exception): the run is saved beside it, and the checkpoint came
    first."""
    import nonlin_explorer.results as results
    from nonlin_explorer.results import save_run

    order = []
    real_write, real_ckpt = results.write_netcdf, results.save_checkpoint

    def full_disk(ds, path, **kwargs):
        order.append(("results", Path(path).name))
        if Path(path).name == "run.nc":
            raise error
        return real_write(ds, path, **kwargs)

    def checkpoint(s, path, **kwargs):
        order.append(("checkpoint", Path(path).name))
        return real_ckpt(s, path, **kwargs)

    monkeypatch.setattr(results, "write_netcdf", full_disk)
    monkeypatch.setattr(results, "save_checkpoint", checkpoint)
    written, notes = save_run(session, tmp_path / "run.nc", tmp_path / "run.pt")
    assert order[0] == ("checkpoint", "run.pt") and order[1] == ("results", "run.nc")
    assert written["results"].parent == tmp_path and written["results"].name.startswith("run.unsaved-")
    assert notes == [f"could not write {tmp_path / 'run.nc'} ({reason}); saved it to {written['results']} instead"]
    assert read_netcdf(written["results"]).sizes["step"] == len(session.history)  # nothing lost
    assert load_checkpoint(tmp_path / "run.pt").step == session.step


def test_truncated_foreign_and_unsafe_checkpoints_are_clear_errors_and_never_run_code(session, tmp_path):
    path = tmp_path / "ck.pt"
    session.save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"ck\.pt: not a readable nonlin_explorer checkpoint"):
        load_checkpoint(path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt: not a readable"):
        load_checkpoint(tmp_path / "empty.pt")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "nonlin_explorer.checkpoint/1", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil\.pt: not a readable"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()  # weights_only: refused, never executed
    with pytest.raises(OSError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_numeric_attributes_are_numbers_in_the_file(tmp_path):
    """numpy and torch numbers stay numbers through netCDF and through JSON; None is left out, never "null"."""
    import numbers

    from nonlin_explorer.netcdf import netcdf_attrs

    attrs = netcdf_attrs({"seed": np.int64(0), "tol": np.float32(0.5), "lr": torch.tensor(0.25), "flag": np.bool_(True),
                          "steps": 7, "name": "mlp", "switch_step": None,
                          "config": {"seed": np.int64(3), "sparsity": np.float64(1e-3), "sizes": np.arange(2)}})
    path = write_netcdf(xr.Dataset(attrs=attrs), tmp_path / "attrs.nc")
    with xr.open_dataset(path, engine="netcdf4") as ds:
        back = dict(ds.attrs)
    assert back["seed"] == 0 and isinstance(back["seed"], numbers.Integral)
    assert back["tol"] == 0.5 and isinstance(back["tol"], numbers.Real) and not isinstance(back["tol"], str)
    assert back["lr"] == 0.25 and back["flag"] == 1 and back["steps"] == 7 and back["name"] == "mlp"
    assert "switch_step" not in back
    assert json.loads(back["config"]) == {"seed": 3, "sparsity": 1e-3, "sizes": [0, 1]}


def test_a_written_run_has_its_numbers_as_numbers(session, tmp_path):
    import numbers

    path = write_netcdf(session.to_xarray(), tmp_path / "run.nc")
    with xr.open_dataset(path, engine="netcdf4") as ds:
        attrs = dict(ds.attrs)
    for key in ("seed", "tol", "steps_per_epoch", "switch_step"):
        assert isinstance(attrs[key], numbers.Number) and not isinstance(attrs[key], str), key
    assert attrs["seed"] == 1 and attrs["tol"] == session.config.tol
    assert "null" not in attrs.values()
    config = json.loads(attrs["config"])
    assert config["seed"] == 1 and isinstance(config["tol"], float)


def test_every_variable_and_coordinate_has_long_name_and_units(session, tmp_path):
    from nonlin_explorer.labels import unlabelled

    back = read_netcdf(write_netcdf(session.to_xarray(), tmp_path / "run.nc"))
    assert {"apl_normalized", "apl_unnormalized", "nonlinear_layers"} <= set(back.data_vars)
    assert unlabelled(back) == []
    assert back.step.attrs["units"] == "steps" and back.epoch.attrs["units"] == "epochs"
    assert back.slope_step.attrs["units"] == "steps" and back.test_acc.attrs["units"] == "1"
    assert "path length" in back.apl_normalized.attrs["long_name"]
    assert back.step.dtype == np.int64  # "steps" is not a time unit: nothing decoded
    from doc_tables import undocumented

    assert undocumented(back) == []  # docs/results.md explains every dimension and variable
