"""The sweep points behind the stored compression sets: targets of each law, numbers only, the oracle never worse
than the plain mean field, clear errors for unknown laws and cases."""

from __future__ import annotations

import math

import pytest
import torch

from nonlin_explorer.compression import random_target
from nonlin_explorer.compression.diagnostics import SHAPES
from nonlin_explorer.compression.studies import (
    CASES,
    LAWS,
    case_point,
    gap_point,
    law_target,
    oracle_loss,
    shape_names,
    shape_point,
)


def test_each_law_gives_its_weight_law():
    iso = law_target("isotropic+mean", 20000, 6, seed=0)
    assert float(iso.W[:, 0].mean()) == pytest.approx(0.3, abs=0.03)       # N(0.3 e1, I)
    assert float(iso.W[:, 1].std()) == pytest.approx(1.0, rel=0.03)
    aniso = law_target("anisotropic", 20000, 8, seed=0)
    variances = aniso.W.var(0) * 8                                          # diag(3, 2, 1.5, 0.5, ...) / d
    assert variances.tolist() == pytest.approx([3.0, 2.0, 1.5] + [0.5] * 5, rel=0.05)
    erf = law_target("erf", 100, 6, seed=0)
    assert erf.activation == "erf"
    with pytest.raises(ValueError, match="unknown law 'gauss'"):
        law_target("gauss", 100, 6, seed=0)
    with pytest.raises(ValueError, match="needs d >= 4"):
        law_target("anisotropic", 100, 3, seed=0)


def test_a_gap_point_is_numbers_and_the_oracle_is_never_worse_than_the_plain_mean_field():
    out = gap_point("anisotropic", 300, 6, seed=1)
    assert all(isinstance(v, float) for v in out.values())
    assert out["plain_ratio"] >= 1.0 - 1e-9                                 # the exact optimum is the optimum
    assert 1.0 - 1e-9 <= out["oracle_ratio"] <= out["plain_ratio"] + 1e-12
    assert out["relative_loss_oracle"] == pytest.approx(out["oracle_ratio"] * out["relative_loss_exact"])
    assert shape_names([out["shape_index_exact"]])[0] in SHAPES


def test_the_oracle_undoes_a_rotation():
    target = random_target(400, 5, w_mean=0.5, seed=0)
    from nonlin_explorer.compression import compress

    r = compress(target, M=3)
    A = 0.2 * torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Q = torch.linalg.matrix_exp(A - A.T)                                    # a rotation, about 0.3 rad
    assert target.loss_fn().reduced(r.V @ Q.T)[0] / target.energy > 1.05 * r.relative_loss
    assert oracle_loss(target, r.V @ Q.T) == pytest.approx(r.relative_loss, rel=1e-6)


def test_shape_and_case_points_name_what_they_found():
    out = shape_point(300, 6, 4, seed=0, restarts=1)
    assert set(out) >= {"shape_index", "tilt_degrees", "cosine_spread", "scale_spread", "relative_loss"}
    case = case_point("zero-mean a d20 M4 N2000", "meanfield", 0)
    assert shape_names([case["shape_index"]]) == ["vacuous"] and case["a_mean"] == 0.0 and case["N"] == 2000.0
    assert set(CASES) and set(LAWS) == {"isotropic+mean", "anisotropic", "erf"}
    with pytest.raises(ValueError, match="unknown case 'nope'"):
        case_point("nope", "exact", 0)
    assert shape_names([math.nan, 1.0]) == ["", "simplex ETF"]
