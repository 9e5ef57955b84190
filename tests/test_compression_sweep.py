"""Sweeps: a labelled grid over N, M, d, seeds and methods that round-trips through netCDF exactly."""

import json
import math

import numpy as np
import pytest
import xarray as xr

from nonlin_explorer.compression import compress, random_target, sweep, sweep_attrs
from nonlin_explorer.results import read_netcdf, write_netcdf


@pytest.fixture(scope="module")
def small_sweep():
    return sweep(N=[30, 60], M=[2, 5], d=[3], seeds=[0, 1], methods=["exact", "etf", "meanfield", "magnitude"],
                 target_kwargs={"a_mean": 1.0}, compress_kwargs={"restarts": 2}, progress=False)


def test_dims_coords_and_variables(small_sweep):
    ds = small_sweep
    assert dict(ds.sizes) == {"N": 2, "M": 2, "d": 1, "seed": 2, "method": 4}
    assert list(ds.method.values) == ["exact", "etf", "meanfield", "magnitude"]
    assert set(ds.data_vars) >= {"loss", "relative_loss", "etf_distance", "time"}
    assert ds.time.attrs["units"] == "s"


def test_cells_that_do_not_apply_are_nan(small_sweep):
    # ``method`` is also a keyword of ``.sel``: select it with a dict.
    assert np.isnan(small_sweep.loss.sel({"M": 5, "method": "etf"})).all()  # M > d + 1
    assert np.isfinite(small_sweep.loss.sel({"M": 5, "method": "exact"})).all()
    mf = small_sweep.meanfield_loss
    assert np.isfinite(mf.sel({"method": "meanfield"})).all() and np.isnan(mf.sel({"method": "exact"})).all()


def test_values_match_a_direct_run(small_sweep):
    direct = compress(random_target(60, 3, seed=1), M=2, restarts=2, seed=1)
    cell = small_sweep.sel({"N": 60, "M": 2, "d": 3, "seed": 1, "method": "exact"})
    assert math.isclose(float(cell.loss), direct.loss, rel_tol=1e-12)
    assert math.isclose(float(cell.relative_loss), direct.relative_loss, rel_tol=1e-12)
    assert (small_sweep.loss.sel({"method": "exact"}) <= small_sweep.loss.sel({"method": "magnitude"}) + 1e-12).all()


def test_netcdf_round_trip_is_identical(small_sweep, tmp_path):
    path = write_netcdf(small_sweep, tmp_path / "sweep.nc")
    xr.testing.assert_identical(read_netcdf(path), small_sweep)


def test_every_variable_and_coordinate_has_long_name_and_units(small_sweep, tmp_path):
    from nonlin_explorer.labels import unlabelled

    back = read_netcdf(write_netcdf(small_sweep, tmp_path / "sweep.nc"))
    assert unlabelled(back) == []
    assert back.time.attrs["units"] == "s" and back.tilt_degrees.attrs["units"] == "degrees"
    assert back.N.attrs["units"] == "1" and "width" in back.N.attrs["long_name"]
    from doc_tables import undocumented

    assert undocumented(back) == []


def test_numpy_numbers_in_the_arguments_are_stored_as_numbers():
    ds = sweep(N=[10], M=[2], d=[3], seeds=[0], methods=["magnitude"], target_kwargs={"a_mean": np.float32(0.5)},
               progress=False)
    assert json.loads(ds.attrs["target_kwargs"]) == {"a_mean": 0.5}


def test_provenance_attrs(small_sweep):
    attrs = small_sweep.attrs
    assert all(isinstance(v, (str, int, float)) for v in attrs.values())
    assert attrs["kind"] == "compression_sweep" and attrs["activation"] == "relu"
    assert json.loads(attrs["target_kwargs"]) == {"a_mean": 1.0}
    decoded = sweep_attrs(small_sweep)
    assert decoded["compress_kwargs"] == {"restarts": 2} and decoded["torch_version"] == attrs["torch_version"]


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": ["exact", "bogus"]}, "unknown method 'bogus'"),
    ({"N": [10, 10]}, "repeated values"),
    ({"d": [0]}, "d must be >= 1"),
    ({"target_kwargs": {"N": 3}}, "must not set 'N'"),
    ({"methods": []}, "not empty"),
])
def test_bad_arguments(kwargs, message):
    args = {"N": [10], "M": [2], "d": [2], "seeds": [0], "methods": ["exact"], "progress": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        sweep(**args)


def test_each_run_carries_its_shape_name(small_sweep):
    names = set(small_sweep["shape"].values.ravel().tolist())
    assert names <= {"", "vacuous", "simplex ETF", "tilted simplex", "distorted tilted simplex", "distorted simplex",
                     "general ETF", "none"}
    assert names - {""}, "every computed run is named"
    computed = ~np.isnan(small_sweep["loss"].values)
    assert (small_sweep["shape"].values[computed] != "").all() and (small_sweep["shape"].values[~computed] == "").all()
