"""Shared fixtures: small, seeded, fast on a 2-core CPU."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # small problems: one thread is faster and steadier on a shared machine
    yield


@pytest.fixture(scope="session")
def mnist1d_small():
    from nonlin_explorer.datasets import mnist1d

    return mnist1d(num_samples=2000, seed=7)
