"""The compression explorer's logic, without a browser: validation, views' data, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from nonlin_explorer.compression import compress, random_target
from nonlin_explorer.results import read_netcdf, write_netcdf
from nonlin_explorer.ui.compression_core import (
    ExplorerParams,
    etf_gram,
    gram_columns,
    loss_vs_m_dataset,
    make_target,
    pca_projection,
    result_dataset,
    run_method,
    summary_markdown,
    sweep_applicable,
    validate_params,
)


def test_validate_accepts_text_and_defaults():
    p = validate_params({"N": "300", "M": " 3 ", "d": 8.0, "a_mean": "0.5", "seed": "2"})
    assert p == ExplorerParams(N=300, M=3, d=8, a_mean=0.5, seed=2)


@pytest.mark.parametrize("raw, msg", [
    ({"N": 10, "M": 10}, "M must be smaller than N = 10"),
    ({"M": 0}, "M: must be >= 1"),
    ({"d": 0}, "d: must be >= 1"),
    ({"M": "four"}, "'four' is not a number"),
    ({"N": "2.5"}, "whole number"),
    ({"a_std": -1}, "a spread: must be >= 0"),
    ({"activation": "tanh", "method": "exact"}, "tanh has no exact"),
    ({"activation": "gelu", "method": "meanfield"}, "mean-field method is derived for relu"),
    ({"method": "etf", "M": 5, "d": 3}, r"M <= d \+ 1 = 4"),
    ({"method": "pruning"}, "unknown method"),
    ({"weight_dist": "cauchy"}, "unknown weight distribution"),
    ({"color": 1}, "unknown setting"),
])
def test_validate_rejects_with_message(raw, msg):
    with pytest.raises(ValueError, match=msg):
        validate_params(raw)


def test_non_closed_form_activation_allowed_with_other_methods():
    assert validate_params({"activation": "tanh", "method": "kmeans"}).activation == "tanh"
    assert sweep_applicable(validate_params({"d": 3}), "etf", 4)
    assert not sweep_applicable(validate_params({"d": 3}), "etf", 5)


def test_etf_gram_and_columns():
    G = etf_gram(4)
    assert np.allclose(np.diag(G), 1) and np.allclose(G[~np.eye(4, dtype=bool)], -1 / 3)
    cols = gram_columns(G)
    assert len(cols["x"]) == 16
    # row 0 is drawn at the top: y = M - 1; the value at (x=2, y=3) is G[0, 2]
    k = next(i for i in range(16) if cols["x"][i] == 2 and cols["y"][i] == 3)
    assert cols["value"][k] == pytest.approx(G[0, 2])


def test_pca_projection_of_a_planar_simplex():
    # Three unit vectors at 120 degrees in a plane of R^5 (lengths differ: directions only matter).
    e1, e2 = np.eye(5)[1], np.eye(5)[3]
    angles = np.array([0, 2, 4]) * np.pi / 3
    V = np.stack([np.cos(a) * e1 + np.sin(a) * e2 for a in angles]) * np.array([[1.0], [2.0], [3.0]])
    coords, arrow, explained = pca_projection(V, direction=e1 * 5)
    assert np.allclose(np.linalg.norm(coords, axis=1), 1)  # the plane is captured exactly
    assert np.allclose(coords @ coords.T, [[1, -.5, -.5], [-.5, 1, -.5], [-.5, -.5, 1]])
    assert np.linalg.norm(arrow) == pytest.approx(1)  # e1 lies in the plane
    assert explained.sum() == pytest.approx(1)
    _, arrow_out, _ = pca_projection(V, direction=np.eye(5)[0])
    assert np.allclose(arrow_out, 0)  # orthogonal to the plane


def test_pca_projection_degenerate_shapes():
    coords, arrow, _ = pca_projection(np.ones((1, 3)), direction=np.zeros(3))
    assert coords.shape == (1, 2) and np.allclose(arrow, 0)
    coords, _, _ = pca_projection(np.array([[1.0], [-2.0]]))
    assert np.allclose(np.abs(coords[:, 0]), 1) and np.allclose(coords[:, 1], 0)


@pytest.fixture(scope="module")
def small():
    p = validate_params({"N": 200, "M": 3, "d": 6})
    return p, make_target(p)


def test_run_method_matches_compress_and_streams(small):
    p, target = small
    seen = []
    res = run_method(target, p, callback=lambda pr: seen.append(pr.loss))
    ref = compress(random_target(200, 6, seed=0), M=3)
    assert res.loss == pytest.approx(ref.loss, rel=1e-9)
    assert seen and seen[-1] >= res.loss * (1 - 1e-9)
    for method in ("magnitude", "kmeans", "meanfield"):
        other = run_method(target, p, method=method)
        assert other.M == 3 and other.loss >= res.loss * (1 - 1e-6)


def test_result_dataset_round_trips_netcdf(small, tmp_path):
    p, target = small
    res = run_method(target, p)
    ds = result_dataset(p, res, wall_time=0.1)
    assert ds["V"].shape == (3, 6) and ds["gram"].shape == (3, 3)
    assert float(ds["loss"]) == res.loss
    assert json.loads(ds.attrs["settings"]) == p.to_dict()
    back = read_netcdf(write_netcdf(ds, tmp_path / "r.nc"))
    xr.testing.assert_identical(back, ds)
    assert "exact" in summary_markdown(res) and "relative loss" in summary_markdown(res)


def test_loss_vs_m_dataset(tmp_path):
    p = validate_params({})
    ds = loss_vs_m_dataset(p, {"exact": {1: 0.5, 2: 0.3}, "etf": {2: 0.31}})
    assert list(ds["method"].values) == ["exact", "etf"] and list(ds["M"].values) == [1, 2]
    assert np.isnan(float(ds["relative_loss"].sel({"method": "etf", "M": 1})))
    back = read_netcdf(write_netcdf(ds, tmp_path / "s.nc"))
    xr.testing.assert_identical(back, ds)
