"""Diagnostics: the shape names of frame_shape, ETF distance, alignment with the target's linear part, Monte Carlo
loss with its interval."""

import math
from pathlib import Path

import pytest
import torch

from nonlin_explorer.compression import (
    alignment,
    cosine_gram,
    etf_distance,
    etf_search,
    frame_shape,
    monte_carlo_loss,
    population_loss,
    random_target,
    simplex_etf,
)
from nonlin_explorer.compression.diagnostics import (
    COSINE_SCATTER,
    MARGIN,
    NOISE_TILT,
    SCALE_SCATTER,
    equiangular_tolerance,
    noise_tilt,
    shape_name,
    tilt_threshold,
)

f64 = torch.float64


def test_etf_distance_is_zero_on_etfs_and_measures_the_worst_cosine():
    assert etf_distance(3.0 * simplex_etf(4, 6, seed=1)) < 1e-14  # lengths do not matter
    assert etf_distance(etf_search(6, 3).U) < 1e-8  # M > d + 1: equiangular at Welch's bound
    V = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=f64)  # cosine 0 where the simplex has -1
    assert math.isclose(etf_distance(V), 1.0, rel_tol=1e-15)
    assert etf_distance(torch.ones(1, 3)) == 0.0


def test_cosine_gram_handles_zero_rows():
    G = cosine_gram(torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=f64))
    assert torch.allclose(G, torch.tensor([[1, 0, 2**-0.5], [0, 1, 0], [2**-0.5, 0, 1]], dtype=f64), atol=1e-15)


def test_alignment_with_the_linear_direction():
    t = random_target(50, 4, seed=0)
    m = t.linear_direction()
    orth = torch.linalg.qr(torch.stack([m, torch.randn(4, dtype=f64)], 1))[0][:, 1]
    al = alignment(torch.stack([3 * m, -m, orth, torch.zeros(4, dtype=f64)]), t)
    assert torch.allclose(al, torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=f64), atol=1e-12)
    with pytest.raises(ValueError, match="d = 4 columns"):
        alignment(torch.ones(2, 3), t)


def test_monte_carlo_interval_and_reproducibility():
    t = random_target(20, 3, seed=1)
    b, V = torch.tensor([0.3, -0.2], dtype=f64), torch.randn(2, 3, dtype=f64)
    mc = monte_carlo_loss(t, None, b, V, n_samples=200_000, seed=4, batch_size=30_000)
    again = monte_carlo_loss(t, None, b, V, n_samples=200_000, seed=4, batch_size=50_000)
    assert math.isclose(mc.mean, again.mean, rel_tol=1e-12)  # batching does not change the estimate
    assert mc.ci_low < mc.mean < mc.ci_high
    assert math.isclose(mc.ci_high - mc.mean, 1.959963984540054 * mc.std_error, rel_tol=1e-9)
    exact = float(population_loss(t.a, t.W, b, V))
    assert mc.contains(exact)
    assert not mc.contains(exact * 1.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 1}, "n_samples must be >= 2"),
    ({"confidence": 1.5}, "confidence must be in"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
])
def test_monte_carlo_bad_arguments(kwargs, message):
    t = random_target(5, 2, seed=2)
    with pytest.raises(ValueError, match=message):
        monte_carlo_loss(t, None, torch.ones(1), torch.ones(1, 2), **kwargs)


# --- frame_shape: one exact constructed frame per name ---------------------------------------------------------

def _tilted(M: int, d: int, degrees: float) -> torch.Tensor:
    """A simplex ETF in the hyperplane orthogonal to e_d, every unit lifted towards e_d by ``degrees``."""
    t = math.radians(degrees)
    U = simplex_etf(M, d - 1).to(torch.float64)
    return torch.cat([math.cos(t) * U, torch.full((M, 1), math.sin(t), dtype=torch.float64)], dim=1)


def test_an_exact_simplex_is_a_simplex_etf_at_every_n():
    V = 2.0 * simplex_etf(4, 10)
    for N in (None, 200, 100_000):
        s = frame_shape(V, torch.ones(4), N=N)
        assert s.name == "simplex ETF" and s.distance < 1e-12 and s.tilt_degrees < 1e-6


def test_a_tilt_is_named_with_its_angle_when_it_exceeds_the_draws_noise():
    V = _tilted(4, 12, 7.256)  # the audited mean-field optimum: common cosine -0.312
    s = frame_shape(V, torch.ones(4), N=None)
    assert s.name == "tilted simplex" and abs(s.common_cosine - (-0.31206)) < 1e-4
    assert abs(s.tilt_degrees - 7.256) < 1e-9 and s.label == "tilted simplex (7.3 deg)"
    assert torch.allclose(s.direction, torch.eye(12, dtype=torch.float64)[-1], atol=1e-12)
    # At large N the same frame is a tilted simplex; at small N its tilt is within what the draw alone gives.
    assert frame_shape(V, torch.ones(4), N=16_000).name == "tilted simplex"
    assert tilt_threshold(500, 4, 12) > 7.256 and frame_shape(V, torch.ones(4), N=500).name == "simplex ETF"
    # The threshold is the draw's reach: its noise tilt times the largest stored run over it, times the margin;
    # about N^-1/2 for M > 2.
    envelope = NOISE_TILT["M>2"].envelope
    assert tilt_threshold(2000, 4, 12) == pytest.approx(MARGIN * envelope * noise_tilt(2000, 4, 12))
    assert 0.45 < math.log(noise_tilt(2000, 4, 12) / noise_tilt(8000, 4, 12)) / math.log(4) < 0.55


def test_a_distorted_simplex_and_unequal_scales_are_named_as_such():
    # Cosines -0.30 .. -0.36 around -1/3 (M = 4): not equiangular, but simplex-like.
    G = torch.tensor([[1.0, -0.30, -0.36, -0.33], [-0.30, 1.0, -0.33, -0.36], [-0.36, -0.33, 1.0, -0.30],
                      [-0.33, -0.36, -0.30, 1.0]], dtype=torch.float64)
    evals, evecs = torch.linalg.eigh(G)
    V = torch.cat([evecs * evals.clamp_min(0).sqrt(), torch.zeros(4, 3, dtype=torch.float64)], dim=1)
    assert torch.allclose(cosine_gram(V), G, atol=1e-12)
    assert frame_shape(V, torch.ones(4), N=None).name == "distorted simplex"
    # An exact simplex whose units carry unequal output scales.
    s = frame_shape(simplex_etf(4, 6), torch.tensor([1.0, 1.0, 1.0, 2.0]), N=None)
    assert s.name == "distorted simplex" and s.scale_spread == pytest.approx(0.8)


def test_b_zero_is_the_vacuous_solution():
    assert frame_shape(simplex_etf(4, 6), torch.zeros(4)).name == "vacuous"
    assert frame_shape(torch.zeros(3, 5), torch.ones(3)).name == "vacuous"


def test_welch_etfs_and_frames_with_no_shape():
    U = etf_search(6, 3, seed=0).U  # the icosahedron's six diagonals: a real ETF with M > d + 1
    assert frame_shape(U, torch.ones(6)).name == "general ETF"
    # Equiangular at any cosine above -1/(M-1) is a tilted simplex, even at a positive one.
    assert frame_shape(torch.eye(3, 5, dtype=torch.float64) + 0.3, torch.ones(3)).name == "tilted simplex"
    V = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 1.0, 0, 0]], dtype=torch.float64)  # cosines 0, .71, .71
    assert frame_shape(V, torch.ones(3)).name == "none"
    assert frame_shape(torch.randn(7, 3, generator=torch.Generator().manual_seed(0)), torch.ones(7)).name == "none"


@pytest.mark.parametrize("activation", ["erf", "tanh", "linear"])
def test_names_do_not_change_when_single_units_flip_for_odd_activations(activation):
    for V, b in ((_tilted(4, 8, 10.0), torch.ones(4)), (simplex_etf(5, 6), torch.ones(5))):
        base = frame_shape(V, b, activation=activation, N=None)
        for flips in ([-1, 1, 1, 1], [1, -1, -1, 1], [-1] * 4):
            f = torch.tensor(flips + [1] * (V.shape[0] - 4), dtype=torch.float64)
            s = frame_shape(V * f[:, None], b * f, activation=activation, N=None)
            assert (s.name, round(s.tilt_degrees, 9)) == (base.name, round(base.tilt_degrees, 9))
    # relu is not odd: a flipped unit is another unit, and the shape changes.
    f = torch.tensor([-1.0, 1, 1, 1], dtype=torch.float64)
    assert frame_shape(simplex_etf(4, 6) * f[:, None], torch.ones(4) * f, N=None).name != "simplex ETF"


def test_odd_activations_need_b_and_bad_n_is_refused():
    with pytest.raises(ValueError, match="erf is odd: pass b"):
        frame_shape(simplex_etf(3, 4), activation="erf")
    with pytest.raises(ValueError, match="N"):
        frame_shape(simplex_etf(3, 4), torch.ones(3), N=0)


# --- frame_shape's thresholds: calibrated in N and d on the stored draw ---------------------------------------

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def shapes_set():
    from nonlin_explorer import findings

    return findings.load_compression(RESULTS, "shapes")


def _stored_name(run) -> str:
    """The name frame_shape's rules give a stored exact optimum from its stored numbers."""
    M, d, N = int(run.M), int(run.d), int(run.N)
    off = -1.0 / (M - 1)
    return shape_name(M, d, N, tilt=float(run.tilt_degrees), cosine_spread=float(run.cosine_spread),
                      scale_spread=float(run.scale_spread),
                      simplex_distance=max(abs(float(run.cosine_min) - off), abs(float(run.cosine_max) - off)))


def test_the_thresholds_are_the_stored_draws_fits_and_cover_every_centred_run(shapes_set):
    from nonlin_explorer import findings

    fits = findings.draw_calibration(shapes_set)
    used = {"tilt M=2": NOISE_TILT[2], "tilt M>2": NOISE_TILT["M>2"], "cosine": COSINE_SCATTER,
            "scale": SCALE_SCATTER}
    for key, fit in fits.items():  # the constants are the fits, rounded (the envelope up)
        c = used[key]
        assert c.scale == pytest.approx(fit.scale, rel=0.002), key
        assert (c.n_power, c.d_power) == pytest.approx((fit.n_power, fit.d_power), abs=0.001), key
        assert fit.envelope <= c.envelope <= fit.envelope + 0.01, key
    centred = shapes_set.sel(w_mean=0.0)
    for M in (2, 4):
        for d in centred.d.values:
            for N in centred.N.values:
                run = centred.sel(M=M, d=d, N=N)
                assert (run.tilt_degrees <= tilt_threshold(int(N), M, int(d)) / MARGIN).all()
                if M == 4:  # the scatter bounds, where the floors do not raise them
                    assert (run.cosine_spread <= COSINE_SCATTER.bound(N, d) / MARGIN).all()
                    assert (run.scale_spread <= SCALE_SCATTER.bound(N, d) / MARGIN).all()


def test_every_centred_stored_optimum_is_a_simplex_etf_at_its_n_and_d(shapes_set):
    # Old N-only scale tolerance 5 / sqrt(N): d = 6, N = 1000 seed 0 and N = 2000 seed 3 spread 5.08 and 5.31 / sqrt(N).
    for point in ({"N": 1000, "seed": 0}, {"N": 2000, "seed": 3}):
        run = shapes_set.sel(w_mean=0.0, M=4, d=6, **point)
        assert float(run.scale_spread) * math.sqrt(point["N"]) > 5.0
        assert _stored_name(run) == "simplex ETF"
    centred = shapes_set.sel(w_mean=0.0).stack(run=("M", "d", "N", "seed"))
    assert {_stored_name(centred.isel(run=i)) for i in range(centred.sizes["run"])} == {"simplex ETF"}


def test_a_tilted_simplex_with_unequal_scales_is_never_none(shapes_set):
    # With a mean (w_mean 0.3, M = 4) every stored optimum is tilted about 22 degrees; 9 of 75 have scales or
    # cosines beyond the centred draw's scatter, named "none" by an N-only rule.
    tilted = shapes_set.sel(w_mean=0.3, M=4).stack(run=("d", "N", "seed"))
    names = [_stored_name(tilted.isel(run=i)) for i in range(tilted.sizes["run"])]
    assert set(names) == {"tilted simplex", "distorted tilted simplex"}
    # A constructed one: a simplex tilted 20 degrees whose last unit carries 1.5 times the others' output scale.
    s = frame_shape(_tilted(4, 12, 20.0), torch.tensor([1.0, 1.0, 1.0, 1.5]), N=2000)
    assert s.name == "distorted tilted simplex" and s.label == "distorted tilted simplex (20.0 deg)"
    assert s.distance == pytest.approx(0.0, abs=1e-12)  # its cosines are exactly equal: only the scales differ
    assert frame_shape(_tilted(4, 12, 20.0), torch.ones(4), N=2000).name == "tilted simplex"


def test_the_tilt_threshold_grows_with_d_like_the_draws_tilt():
    # At N = 1000 the draw tilts the optimum more in d = 20 than in d = 6 (d^+0.29): a 6.5 degree tilt is
    # significant in d = 6 and within the draw's reach in d = 20 (an N-only threshold names both alike).
    assert tilt_threshold(1000, 4, 6) < 6.5 < tilt_threshold(1000, 4, 20)
    assert frame_shape(_tilted(4, 6, 6.5), torch.ones(4), N=1000).name == "tilted simplex"
    assert frame_shape(_tilted(4, 20, 6.5), torch.ones(4), N=1000).name == "simplex ETF"
    ratio = tilt_threshold(1000, 4, 20) / tilt_threshold(1000, 4, 6)
    assert ratio == pytest.approx((20 / 6) ** NOISE_TILT["M>2"].d_power, rel=1e-12)


def test_the_scatter_allowed_shrinks_with_d_like_the_draws():
    # Cosines -1/3 +- 0.07 at N = 1000: within the draw's scatter in d = 6, beyond it in d = 20.
    assert equiangular_tolerance(1000, 20) < 0.07 < equiangular_tolerance(1000, 6)
    G = torch.full((4, 4), -1.0 / 3, dtype=f64)
    G[0, 1] = G[1, 0] = G[2, 3] = G[3, 2] = -1.0 / 3 + 0.07
    G[0, 2] = G[2, 0] = G[1, 3] = G[3, 1] = -1.0 / 3 - 0.07
    G.fill_diagonal_(1.0)
    evals, evecs = torch.linalg.eigh(G)
    U = evecs * evals.clamp_min(0).sqrt()
    for d, name in ((6, "simplex ETF"), (20, "distorted simplex")):
        V = torch.cat([U, torch.zeros(4, d - 4, dtype=f64)], dim=1)
        s = frame_shape(V, torch.ones(4), N=1000)
        assert s.cosine_spread == pytest.approx(0.07, abs=1e-9) and s.name == name, d
