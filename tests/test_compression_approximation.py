"""The simplification's error, measured: the cross term against its mean, and exponent fits with intervals."""

import math

import numpy as np
import pytest
import xarray as xr

from nonlin_explorer.compression import random_target
from nonlin_explorer.compression.approximation import cross_term_error, error_study, fit_exponents


def test_fit_recovers_known_exponents_and_their_uncertainty():
    rng = np.random.default_rng(0)
    Ns, ds, seeds = [100, 400, 1600, 6400], [4, 16, 64], range(6)
    values = np.array([[[2.0 * N**-0.5 * d**0.25 * math.exp(0.05 * rng.standard_normal()) for _ in seeds]
                        for d in ds] for N in Ns])
    da = xr.DataArray(values, dims=("N", "d", "seed"), coords={"N": Ns, "d": ds, "seed": list(seeds)})
    fit = fit_exponents(da)
    assert fit.alpha_ci[0] < -0.5 < fit.alpha_ci[1] and fit.beta_ci[0] < 0.25 < fit.beta_ci[1]
    assert fit.alpha_ci[1] - fit.alpha_ci[0] < 0.05 and fit.points == 72
    assert math.isclose(math.exp(fit.intercept), 2.0, rel_tol=0.05)


def test_cross_term_error_shrinks_like_n_to_the_minus_half_and_not_like_sqrt_d():
    """Small grid (N 250..4000, d 5..80, seeds 0-2). The full grid (python -m
    nonlin_explorer.compression.approximation --full) measured sup: alpha -0.49 [-0.51, -0.47], beta +0.08
    [+0.05, +0.10]; rms: alpha -0.51, beta -0.39."""
    ds = error_study()
    sup, rms = fit_exponents(ds["sup"]), fit_exponents(ds["rms"])
    assert -0.6 < sup.alpha < -0.4 and -0.6 < rms.alpha < -0.4
    assert sup.beta_ci[1] < 0.5  # sqrt(d/N) would give beta = +1/2
    assert rms.beta < -0.2  # pointwise, the error also falls with d
    assert (ds["sup"] >= ds["rms"]).all()


def test_sup_search_beats_random_directions():
    t = random_target(1000, 40, seed=1)
    few = cross_term_error(t, directions=16, ascent_steps=0)
    searched = cross_term_error(t, directions=16, ascent_steps=60)
    assert searched.sup > few.sup


def test_cross_term_error_needs_the_closed_form_setting():
    with pytest.raises(ValueError, match="centred isotropic"):
        cross_term_error(random_target(100, 4, w_mean=0.5))
    with pytest.raises(ValueError, match="mean cross term is zero"):
        t = random_target(100, 4)
        t.a.zero_()
        cross_term_error(t)
