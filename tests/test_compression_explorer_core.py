"""The compression explorer's logic, without a browser: validation, views' data, export."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
import xarray as xr

from nonlin_explorer.compression import compress, random_target, simplex_etf
from nonlin_explorer.compression.optimize import finish
from nonlin_explorer.results import read_netcdf, write_netcdf
from nonlin_explorer.ui.compression_core import (
    ExplorerParams,
    drag_unit,
    etf_gram,
    evaluate_weights,
    ideal_gram,
    loss_vs_m_dataset,
    make_target,
    orthographic,
    pca_axes,
    pca_projection,
    result_dataset,
    rotation_3d,
    run_method,
    summary_rows,
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
    ({"w_mean": "nan"}, "w mean"),
    ({"w_spread": -0.1}, "w spread: must be >= 0"),
    ({"weight_dist": "sphere", "w_mean": 0.3}, "sphere weights are unit vectors"),
    ({"w_spread": 0, "w_mean": 0}, "every target weight zero"),
    ({"method": "etf", "M": 5, "d": 3}, r"M <= d \+ 1 = 4"),
    ({"method": "pruning"}, "unknown method"),
    ({"weight_dist": "cauchy"}, "unknown weight distribution"),
    ({"color": 1}, "unknown setting"),
])
def test_validate_rejects_with_message(raw, msg):
    with pytest.raises(ValueError, match=msg):
        validate_params(raw)


def test_a_target_with_a_mean_direction_reaches_the_explorer_and_its_shape_is_named():
    p = validate_params({"N": 800, "d": 8, "M": 3, "w_mean": "0.5", "w_spread": "1.5", "method": "meanfield"})
    target = make_target(p)
    assert target.info["w_mean"] == [0.5] + [0.0] * 7 and math.isclose(target.info["w_cov"], 1.5**2 / 8)
    result = run_method(target, p)
    rows = dict(summary_rows(result))
    assert rows["shape"] == f"tilted simplex ({result.shape.tilt_degrees:.1f} deg)"
    assert float(rows["tilt (degrees)"]) > float(rows["significant above"]) > 0
    assert result.info["meanfield"] == "population"
    assert validate_params({"activation": "gelu", "method": "meanfield"}).method == "meanfield"


def test_non_closed_form_activation_allowed_with_other_methods():
    assert validate_params({"activation": "tanh", "method": "kmeans"}).activation == "tanh"
    assert sweep_applicable(validate_params({"d": 3}), "etf", 4)
    assert not sweep_applicable(validate_params({"d": 3}), "etf", 5)


def test_etf_gram():
    G = etf_gram(4)
    assert np.allclose(np.diag(G), 1) and np.allclose(G[~np.eye(4, dtype=bool)], -1 / 3)


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
    from doc_tables import undocumented

    from nonlin_explorer.labels import unlabelled

    assert unlabelled(back) == [] and undocumented(back) == []  # long_name and units everywhere, each in the docs
    assert back.attrs["seed"] == p.seed and not isinstance(back.attrs["N"], str)
    rows = dict(summary_rows(res))
    assert rows["method"] == "exact" and rows["relative loss"] == f"{res.relative_loss:.6g}"


def test_loss_vs_m_dataset(tmp_path):
    p = validate_params({})
    ds = loss_vs_m_dataset(p, {"exact": {1: 0.5, 2: 0.3}, "etf": {2: 0.31}})
    from nonlin_explorer.labels import unlabelled

    assert unlabelled(ds) == []
    assert list(ds["method"].values) == ["exact", "etf"] and list(ds["M"].values) == [1, 2]
    assert np.isnan(float(ds["relative_loss"].sel({"method": "etf", "M": 1})))
    back = read_netcdf(write_netcdf(ds, tmp_path / "s.nc"))
    xr.testing.assert_identical(back, ds)


# -- the 3-D view ---------------------------------------------------------------------------------------------
def test_pca_3d_of_a_regular_tetrahedron_and_its_projection():
    # The simplex ETF on 4 units spans 3 dimensions: the 3-D PCA keeps its Gram exactly, the 2-D one cannot.
    from nonlin_explorer.compression import simplex_etf

    V = simplex_etf(4, 6).numpy() * np.array([[1.0], [2.0], [0.5], [3.0]])
    c3, arrow3, ex3 = pca_projection(V, direction=V[0], k=3)
    assert c3.shape == (4, 3) and ex3.sum() == pytest.approx(1)
    assert np.allclose(c3 @ c3.T, etf_gram(4))
    assert np.linalg.norm(arrow3) == pytest.approx(1) and np.allclose(arrow3, c3[0])
    c2, _, ex2 = pca_projection(V, k=2)
    assert np.allclose(c2, c3[:, :2]) and ex2.sum() == pytest.approx(2 / 3)


def test_rotation_and_orthographic_projection():
    for az, el in ((0, 0), (30, 20), (-75, 80), (200, -45)):
        R = rotation_3d(az, el)
        assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1)
    P = np.random.default_rng(0).normal(size=(6, 3))
    xy, depth = orthographic(P, 0, 0)
    assert np.allclose(xy, P[:, :2]) and np.allclose(depth, P[:, 2])  # the 2-D view, PC3 towards the viewer
    xy, depth = orthographic(P, 90, 0)  # a quarter turn about the vertical axis: PC3 across the screen
    assert np.allclose(xy[:, 0], P[:, 2]) and np.allclose(xy[:, 1], P[:, 1]) and np.allclose(depth, -P[:, 0])
    xy, depth = orthographic(P, 0, 90)  # looking along PC2
    assert np.allclose(xy[:, 0], P[:, 0]) and np.allclose(np.abs(xy[:, 1]), np.abs(P[:, 2]))
    xy, depth = orthographic(P, 37, -21)
    assert np.allclose((xy ** 2).sum(1) + depth ** 2, (P ** 2).sum(1))  # lengths are kept


# -- dragging a unit in the 2-D view --------------------------------------------------------------------------
def test_drag_unit_moves_within_the_plane_and_lands_where_dropped():
    rng = np.random.default_rng(1)
    V = rng.normal(size=(5, 7)) * 3.0
    axes, _ = pca_axes(V, 2)
    assert np.allclose(axes @ axes.T, np.eye(2))
    V2 = drag_unit(V, axes, 2, [0.3, -0.4])
    assert np.allclose(np.delete(V2, 2, 0), np.delete(V, 2, 0))  # the other units stay
    assert np.linalg.norm(V2[2]) == pytest.approx(np.linalg.norm(V[2]))  # the length stays
    u_old, u_new = V[2] / np.linalg.norm(V[2]), V2[2] / np.linalg.norm(V2[2])
    assert np.allclose(axes @ u_new, [0.3, -0.4])  # its projection is where it was dropped
    out_old, out_new = u_old - axes.T @ (axes @ u_old), u_new - axes.T @ (axes @ u_new)
    assert np.allclose(out_new / np.linalg.norm(out_new), out_old / np.linalg.norm(out_old))  # same direction off-plane
    # Outside the unit circle: pulled back onto it, the direction then lies in the plane.
    V3 = drag_unit(V, axes, 0, [3.0, 4.0])
    u3 = V3[0] / np.linalg.norm(V3[0])
    assert np.allclose(axes @ u3, [0.6, 0.8])
    with pytest.raises(ValueError, match="no unit 9"):
        drag_unit(V, axes, 9, [0, 0])
    with pytest.raises(ValueError, match="finite"):
        drag_unit(V, axes, 0, [np.nan, 0])


def test_evaluate_weights_and_warm_start(small):
    p, target = small
    best = run_method(target, p)
    same = evaluate_weights(target, best.V)
    assert same.loss == pytest.approx(best.loss, rel=1e-9) and same.method == "dragged"
    axes, _ = pca_axes(best.V, 2)
    coords = pca_projection(best.V)[0]
    moved = drag_unit(best.V, axes, 0, coords[0] * 0.5)  # halfway to the origin: a worse fit
    worse = evaluate_weights(target, moved)
    assert worse.loss > best.loss * 1.01
    warm = run_method(target, p, V0=moved)
    assert warm.method == "exact" and warm.info["restarts"] == 1
    assert warm.loss < worse.loss and warm.loss == pytest.approx(best.loss, rel=1e-3)
    with pytest.raises(ValueError, match="V0 must be"):
        run_method(target, p, V0=moved[:2])
    tanh = validate_params({"N": 200, "M": 3, "d": 6, "activation": "tanh", "method": "etf"})
    with pytest.raises(ValueError, match="tanh has no exact"):
        run_method(make_target(tanh), tanh, V0=moved)


def _controller(**settings):
    from nonlin_explorer.ui.compression_controller import CompressionController

    c = CompressionController(**settings)
    assert c.wait(), "the first optimization finishes"
    return c


def test_the_controller_shows_its_first_result_with_every_view_sized_by_m():
    c = _controller(N=200, d=6, M=4)
    try:
        shown = c.state["shown"]
        assert c.state["status"]["state"] == "done" and c.applied_gen == c.requested_gen == 1
        assert len(shown["gram"]) == 4 and all(len(row) == 4 for row in shown["gram"])
        assert len(shown["pca"]["x"]) == 4 and len(shown["coords3"]) == 4
        assert shown["ideal"]["name"] == c.result.shape.name and shown["ideal"]["title"] == ideal_gram(c.result)[0]
        assert dict(shown["rows"])["method"] == "exact"
        curve = c.state["convergence"]
        assert curve["gen"] == 1 and len(curve["iteration"]) == len(curve["relative_loss"]) > 1
        assert curve["relative_loss"][-1] == pytest.approx(c.result.relative_loss, rel=1e-6)
        c.update(M=6)
        assert c.wait()
        assert len(c.state["shown"]["gram"]) == 6 and len(c.state["shown"]["coords3"]) == 6
    finally:
        c.close()


@pytest.mark.parametrize("change, message", [({"M": 500}, "M must be smaller than N"), ({"M": "many"}, "M"),
                                             ({"d": 0}, "d"), ({"activation": "tanh"}, "tanh has no exact")])
def test_a_refused_setting_answers_one_line_and_keeps_the_last_valid_state(change, message):
    c = _controller(N=200, d=6, M=3)
    try:
        before_params, before_result, gen = c.state["params"], c.state["shown"], c.requested_gen
        c.receive({"type": "set", "values": change, "id": "r1"})
        (error,) = [m for m in c.state.take_messages() if m.get("id") == "r1"]
        assert error["type"] == "error" and message in error["message"] and "\n" not in error["message"]
        assert "keeping the last valid settings" in error["message"]
        assert c.state["params"] == before_params and c.state["shown"] == before_result
        assert c.requested_gen == gen  # nothing was started
    finally:
        c.close()


def test_a_newer_request_cancels_the_running_optimization_and_its_result_is_dropped():
    c = _controller(N=2000, d=20, M=4)
    try:
        c.update(M=8)  # a long optimization...
        time.sleep(0.05)
        c.update(M=3)  # ...replaced before it ends
        assert c.wait()
        assert c.result.M == 3 and c.applied_gen == c.requested_gen == 3
        assert len(c.state["shown"]["gram"]) == 3 and c.state["convergence"]["gen"] == 3
    finally:
        c.close()


def test_dragging_a_unit_recomputes_the_exact_loss_and_reoptimize_starts_from_there():
    c = _controller(N=300, d=6, M=4)
    try:
        best = c.result.loss
        x, y = c.state["shown"]["pca"]["x"][0], c.state["shown"]["pca"]["y"][0]
        c.receive({"type": "drag", "unit": 0, "x": -x, "y": -y, "id": "d1"})
        assert {"type": "ack", "id": "d1"} in c.state.take_messages()
        assert c.dragged and c.result.method == "dragged" and c.result.loss > best
        shown = c.state["shown"]
        assert shown["dragged"] and shown["pca"]["x"][0] == pytest.approx(-x, abs=1e-6)
        assert shown["loss"] == pytest.approx(c.result.loss)
        c.receive({"type": "drag", "unit": 9, "x": 0.1, "y": 0.1, "id": "d2"})
        (error,) = [m for m in c.state.take_messages() if m.get("id") == "d2"]
        assert error["type"] == "error" and "no unit 9" in error["message"] and c.result.method == "dragged"
        c.reoptimize()
        assert c.wait()
        assert not c.dragged and c.result.info["restarts"] == 1  # a warm start: one run from the dragged weights
        assert c.result.loss == pytest.approx(best, rel=1e-3)
    finally:
        c.close()


def test_loss_against_m_fills_in_point_by_point_the_chosen_method_first():
    from nonlin_explorer.ui.compression_controller import sweep_order

    assert sweep_order("meanfield")[0] == "meanfield" and set(sweep_order("sgd")) == set(sweep_order("exact"))
    c = _controller(N=200, d=6, M=3)
    seen = []
    c.state.on_change(lambda: seen.append(c.state.get("sweep", {}).get("done", 0)))
    try:
        c.request_sweep()
        assert c.wait()
        sweep = c.state["sweep"]
        assert sweep["done"] == sweep["total"] > 8 and not sweep["running"]
        assert sorted(int(M) for M in sweep["losses"]["exact"]) == list(range(1, 9))
        assert len(set(seen)) > 8  # published point by point, not at the end
        exact = sweep["losses"]["exact"]
        assert exact["3"] == pytest.approx(c.result.relative_loss, rel=1e-3)
        assert exact["8"] < exact["1"]
    finally:
        c.close()


def test_a_new_target_stops_the_loss_against_m_of_the_old_one():
    c = _controller(N=3000, d=20, M=2)
    try:
        c.request_sweep()
        old = c.state["sweep"]["key"]
        deadline = time.monotonic() + 60
        while c.state["sweep"]["done"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        c.update(N=300)  # another target: its optimization first, and the old sweep is not resumed
        assert c.wait(60)
        assert c.state["sweep"]["key"] is None and not c.state["sweep"]["running"]
        c.update(N=3000)  # back to the first target (its optimization runs first, then the sweep)...
        c.request_sweep()
        sweep = c.state["sweep"]
        assert sweep["key"] == old and 0 < sweep["done"] < sweep["total"]  # ...which had stopped part-way
    finally:
        c.close()


def test_export_is_confined_to_its_folder_and_never_overwrites(tmp_path):
    c = _controller(N=200, d=6, M=3, files_root=tmp_path)
    try:
        c.receive({"type": "export", "path": "a.nc", "what": "result", "id": "e1"})
        c.receive({"type": "export", "path": "a.nc", "what": "result", "id": "e2"})
        c.receive({"type": "export", "path": "../outside.nc", "id": "e3"})
        c.receive({"type": "export", "path": "b.nc", "what": "loss_vs_m", "id": "e4"})
        answers = {m["id"]: m for m in c.state.take_messages() if m.get("id", "").startswith("e")
                   and m["type"] != "ack"}
        assert answers["e1"]["text"] == "wrote a.nc" and answers["e2"]["text"] == "wrote a-1.nc (a.nc exists)"
        assert answers["e3"]["type"] == "error" and not (tmp_path.parent / "outside.nc").exists()
        assert answers["e4"]["type"] == "error" and "Loss vs M" in answers["e4"]["message"]
        ds = read_netcdf(tmp_path / "a.nc")
        assert ds.attrs["method"] == "exact" and ds.sizes["unit"] == 3
        assert float(ds["loss"]) == pytest.approx(c.result.loss)
    finally:
        c.close()


def test_the_widget_keeps_the_notebook_api_and_imports_no_panel_or_bokeh():
    import subprocess
    import sys

    code = ("import sys\n"
            "from nonlin_explorer.ui.compression_explorer import CompressionExplorer\n"
            "e = CompressionExplorer(N=200, d=6, M=4)\n"
            "e.wait()\n"
            "e.update(M=5)\n"
            "e.wait()\n"
            "s = e.status_dict()\n"
            "print(s['M'], s['gram_size'], e.applied_gen == e.requested_gen, e.result.M, len(e.shown['gram']),\n"
            "      any(m.split('.')[0] in ('panel', 'bokeh') for m in sys.modules))\n"
            "e.close()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and out.stdout.split() == ["5", "5", "True", "5", "5", "False"], out.stderr[-800:]


def test_a_script_that_builds_the_explorer_and_ends_exits_cleanly():
    """Its worker thread (in torch, optimizing) is stopped before the interpreter goes: no abort (exit 134)."""
    import subprocess
    import sys

    code = ("from nonlin_explorer.ui.compression_explorer import CompressionExplorer\n"
            "e = CompressionExplorer(N=2000, d=20, M=4)\nprint('built')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and out.stdout.strip() == "built", (out.returncode, out.stderr[-500:])


def test_the_ideal_is_never_impossible():
    simplex = compress(random_target(400, 6, seed=0), M=4)
    title, G = ideal_gram(simplex)
    assert simplex.shape.name == "simplex ETF"
    assert title == "Ideal simplex ETF" and np.allclose(G[0, 1], -1 / 3)
    tilted = compress(random_target(800, 6, w_mean=0.6, seed=0), M=3, method="meanfield")
    title, G = ideal_gram(tilted)
    assert title == f"Ideal: tilted simplex, {tilted.shape.tilt_degrees:.1f} deg" and G[0, 1] > 0
    crowded = compress(random_target(400, 3, seed=0), M=7)  # M > d + 1: no ETF of 7 vectors in R^3
    title, G = ideal_gram(crowded)
    assert crowded.shape.name == "none" and G is None and title == "No ideal shape near these directions"


def test_a_distorted_tilted_simplex_is_drawn_as_the_tilted_simplex_it_departs_from():
    """The stored runs named so (a mean along e1, unequal scales) keep a common cosine: the panel draws that."""
    from nonlin_explorer.compression.diagnostics import frame_shape

    V = simplex_etf(4, 6) * 0.3 + torch.tensor([1.0, 0, 0, 0, 0, 0], dtype=torch.float64)
    V = V / V.norm(dim=1, keepdim=True)
    b = torch.tensor([1.0, 1.0, 1.6, 0.6], dtype=torch.float64)
    shape = frame_shape(V, b, N=300)
    assert shape.name == "distorted tilted simplex", shape
    r = finish(random_target(300, 6, seed=0), b, V, "exact", 0.0)
    title, G = ideal_gram(r)
    assert title == f"Distorted; nearest ideal: tilted simplex, {r.shape.tilt_degrees:.1f} deg"
    assert r.shape.name == "distorted tilted simplex" and np.allclose(G[0, 1], r.shape.common_cosine) and G[0, 1] > 0


@pytest.mark.parametrize("raw", [{"N": 200, "w_mean": "0.5"}, {"N": 200, "w_mean": "0.5", "method": "meanfield"},
                                 {"N": 500}, {"N": 400, "d": 3, "M": 7}])
def test_the_panel_draws_the_shape_the_table_names(raw):
    """The ideal panel's title and Gram follow the table's shape row: no ideal is drawn beside "none"."""
    p = validate_params(raw)
    result = run_method(make_target(p), p)
    shape = dict(summary_rows(result))["shape"]
    title, G = ideal_gram(result)
    expected = {"simplex ETF": "Ideal simplex ETF", "distorted simplex": "Distorted; nearest ideal: simplex ETF",
                "none": "No ideal shape near these directions"}
    if "tilted simplex" in shape:
        prefix = "Distorted; nearest ideal" if shape.startswith("distorted") else "Ideal"
        assert title == f"{prefix}: tilted simplex, {result.shape.tilt_degrees:.1f} deg"
        assert np.allclose(G[~np.eye(p.M, dtype=bool)], result.shape.common_cosine)
    else:
        assert title == expected[shape]
        assert (G is None) == (shape == "none")


def test_a_vacuous_solution_has_no_ideal():
    t = random_target(300, 5, seed=0)
    r = finish(t, torch.zeros(3, dtype=torch.float64), simplex_etf(3, 5), "exact", 0.0)
    assert r.shape.name == "vacuous" and dict(summary_rows(r))["shape"] == "vacuous"
    assert ideal_gram(r) == ("No ideal shape: the solution is g = 0", None)
