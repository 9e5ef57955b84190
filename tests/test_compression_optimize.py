"""compress: the ETF acceptance case, where the conjecture fails, optimality, callbacks and bad input."""

import math

import pytest
import torch

from nonlin_explorer.compression import (
    CompressionProgress,
    PopulationLoss,
    compare_methods,
    compress,
    magnitude_prune,
    make_target,
    random_target,
)

f64 = torch.float64


@pytest.fixture(scope="module")
def wide_target():
    return random_target(2000, 20, seed=0)  # a_i = (1 + g_i) / N, positive mean


@pytest.fixture(scope="module")
def wide_results(wide_target):
    return compare_methods(wide_target, M=4)


def test_acceptance_gram_is_the_simplex_etf(wide_results):
    res = wide_results["exact"]
    off = res.gram[~torch.eye(4, dtype=torch.bool)]
    assert float((off + 1 / 3).abs().max()) < 0.03
    assert res.etf_distance < 0.03
    c = res.b * res.V.norm(dim=1)  # equal b_j |v_j|
    assert float(c.max() / c.min()) < 1.1


def test_acceptance_etf_family_loses_less_than_one_percent(wide_results):
    exact, etf = wide_results["exact"], wide_results["etf"]
    assert exact.loss <= etf.loss <= 1.01 * exact.loss
    assert etf.info["family"] == "tilted simplex"
    assert abs(etf.info["tilt_degrees"]) < 10


def test_meanfield_weights_are_close_but_worse_on_the_exact_loss(wide_results):
    exact, mf = wide_results["exact"], wide_results["meanfield"]
    assert mf.etf_distance < 1e-12
    assert exact.loss < mf.loss < 1.2 * exact.loss
    assert abs(mf.meanfield_loss - exact.loss) < 0.02 * exact.energy


def test_result_is_self_consistent(wide_target, wide_results):
    res = wide_results["exact"]
    fn = PopulationLoss(wide_target.a, wide_target.W)
    assert math.isclose(res.loss, float(fn(res.b, res.V)), rel_tol=1e-12)
    assert math.isclose(res.relative_loss, res.loss / res.energy, rel_tol=1e-15)
    assert res.history[-1] == pytest.approx(res.loss, rel=1e-10)
    assert all(b <= a + 1e-15 for a, b in zip(res.history, res.history[1:]))
    assert res.M == 4 and res.V.shape == (4, 20) and res.alignment.shape == (4,)
    assert set(res.summary()) >= {"loss", "relative_loss", "etf_distance", "time", "mean_cosine"}


def test_exact_optimum_is_stationary(wide_target, wide_results):
    res = wide_results["exact"]
    fn = PopulationLoss(wide_target.a, wide_target.W)
    b, V = res.b.clone().requires_grad_(), res.V.clone().requires_grad_()
    gb, gV = (g.detach() for g in torch.autograd.grad(fn(b, V), (b, V)))
    V = V.detach()
    tangent = gV - (gV * V).sum(1, keepdim=True) * V / (V * V).sum(1, keepdim=True)
    assert float(gb.abs().max()) < 1e-9 and float(tangent.abs().max()) < 1e-9


def test_zero_mean_output_weights_break_the_conjecture():
    t = random_target(2000, 20, seed=0, a_mean=0.0)
    exact = compress(t, M=4)
    etf = compress(t, M=4, method="etf")
    assert exact.etf_distance > 0.2  # the linear part dominates: no simplex
    assert etf.loss > 1.3 * exact.loss
    assert float(exact.alignment.abs().max()) > 0.4


def test_callback_streams_progress_and_can_stop():
    t = random_target(300, 6, seed=1)
    seen = []
    full = compress(t, M=3, callback=lambda p: seen.append(p))
    assert seen and all(isinstance(p, CompressionProgress) for p in seen)
    assert seen[-1].loss == pytest.approx(full.loss, rel=1e-9)
    assert all(b.loss <= a.loss + 1e-15 for a, b in zip(seen, seen[1:]))
    assert seen[0].V.shape == (3, 6) and seen[0].b.shape == (3,)
    stopped = compress(t, M=3, callback=lambda p: p.iteration >= 2)
    assert stopped.iterations == 2 and stopped.info["stopped"]
    assert stopped.loss >= full.loss


def test_random_init_reaches_a_comparable_loss():
    t = random_target(300, 6, seed=2)
    a, b = compress(t, M=3), compress(t, M=3, init="random", seed=5)
    # Different local optima of a nearly flat landscape: equal to a few parts in a thousand.
    assert abs(a.loss - b.loss) < 5e-3 * a.loss
    assert b.etf_distance < 0.1


def test_small_cases_and_shorthand():
    t = random_target(50, 4, seed=3)
    one = compress(t, 1)  # compress(target, M)
    assert one.M == 1 and one.loss < t.energy
    edge = compress(t, M=5, method="etf")  # M = d + 1: a rotated simplex, no room to tilt
    assert edge.info["family"] == "rotated simplex" and edge.etf_distance < 1e-10
    assert compress(t, M=5).loss <= edge.loss + 1e-12


def test_in_one_dimension_two_units_are_exact():
    """For d = 1, f*(x) = A relu(x) + B relu(-x): M = 2 reproduces any target (loss 0 to rounding)."""
    t = random_target(30, 1, seed=6)
    for method in ("exact", "etf"):
        res = compress(t, M=2, method=method)
        assert abs(res.loss) < 1e-14 * t.energy
        assert sorted(res.V[:, 0].tolist()) == [-1.0, 1.0]


def test_beyond_relu_exact_beats_pruning():
    t = random_target(40, 3, seed=4, activation="tanh")
    res = compress(t, M=3, restarts=2, quad_points=24)  # unit-scale weights: 24 points are accurate to ~1e-7
    assert res.loss < magnitude_prune(t, M=3).loss
    assert res.loss < t.energy


def test_user_arrays():
    W = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]]
    res = compress([0.5, 1.0, -0.3], W, 2)
    assert isinstance(res.b, torch.Tensor) and res.V.shape == (2, 2)
    assert res.loss < make_target([0.5, 1.0, -0.3], W).energy


@pytest.mark.parametrize("kwargs, message", [
    ({"M": 40}, "M must be smaller than the target's N = 40"),
    ({"M": 0}, "M must be >= 1"),
    ({"M": 6, "method": "etf"}, "M <= d \\+ 1"),
    ({"M": 2, "method": "greedy"}, "unknown method"),
    ({"M": 2, "init": "zeros"}, "unknown init"),
    ({"M": 2, "restarts": 0}, "restarts must be >= 1"),
    ({"M": 2, "tol": -1.0}, "tol must be >= 0"),
    ({"M": 2, "callback": 3}, "callback must be callable"),
    ({}, "M .* is required"),
])
def test_bad_arguments(kwargs, message):
    t = random_target(40, 4, seed=5)
    with pytest.raises(ValueError, match=message):
        compress(t, **kwargs)


def test_meanfield_draw_is_the_n_the_mean_fields_shape_is_named_at():
    from nonlin_explorer.compression.optimize import meanfield_draw

    centred = random_target(300, 5, seed=0)  # relu, centred isotropic: the closed form, no draw
    with_mean = random_target(300, 5, w_mean=0.4, seed=0)  # the population target's points
    for target in (centred, with_mean):
        assert compress(target, M=3, method="meanfield").shape.N == meanfield_draw(target)
    assert meanfield_draw(centred) is None and meanfield_draw(with_mean) == 4096
