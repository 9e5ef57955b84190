"""Baselines: pruning and merging refit b exactly; SGD distillation gets there, slowly; compress beats all."""

import pytest
import torch

from nonlin_explorer.compression import (
    PopulationLoss,
    compress,
    kmeans_merge,
    magnitude_prune,
    random_target,
    sgd_distill,
)

f64 = torch.float64


@pytest.fixture(scope="module")
def target():
    return random_target(300, 6, seed=0)


def _b_gradient(target, res):
    fn = PopulationLoss(target.a, target.W)
    b = res.b.clone().requires_grad_()
    return torch.autograd.grad(fn(b, res.V), b)[0].abs().max().item()


def test_magnitude_pruning_keeps_the_largest_units_and_refits_b(target):
    res = magnitude_prune(target, M=4)
    score = target.a.abs() * target.W.norm(dim=1)
    assert sorted(res.info["kept"]) == sorted(torch.topk(score, 4).indices.tolist())
    assert torch.equal(res.V, target.W[res.info["kept"]])
    assert _b_gradient(target, res) < 1e-10
    assert res.method == "magnitude" and res.time >= 0


def test_kmeans_merging_refits_b(target):
    res = kmeans_merge(target, M=4, seed=1)
    assert res.V.shape == (4, 6) and res.method == "kmeans"
    assert _b_gradient(target, res) < 1e-10
    assert res.loss < magnitude_prune(target, M=4).loss  # merging uses every unit


def test_sgd_distillation_reaches_a_target_loss(target):
    best = compress(target, M=4)
    res = sgd_distill(target, M=4, steps=4000, target_loss=1.2 * best.loss, seed=2)
    assert res.info["reached"] and res.loss <= 1.2 * best.loss
    assert res.history[0] > res.history[-1]
    capped = sgd_distill(target, M=4, steps=10, seed=2)
    assert not capped.info["reached"] and capped.iterations == 10


def test_compress_beats_every_baseline(target):
    exact = compress(target, M=4).loss
    for res in (magnitude_prune(target, M=4), kmeans_merge(target, M=4), sgd_distill(target, M=4, steps=300)):
        assert exact < res.loss


@pytest.mark.parametrize("fn", [magnitude_prune, kmeans_merge, sgd_distill])
def test_bad_arguments(fn, target):
    with pytest.raises(ValueError, match="M must be smaller"):
        fn(target, M=300)
    with pytest.raises(ValueError, match="M .* is required"):
        fn(target)
