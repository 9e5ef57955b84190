"""Datasets: generated or shipped locally, seeded, validated; never downloaded."""

import numpy as np
import pytest
import torch

from nonlin_explorer import datasets


def test_mnist1d_is_generated_locally_and_standardized(mnist1d_small):
    d = mnist1d_small
    assert d.input_shape == (1, 40) and d.num_classes == 10
    assert len(d.x_train) == 1600 and len(d.x_test) == 400
    assert abs(float(d.x_train.mean())) < 0.05 and abs(float(d.x_train.std()) - 1) < 0.05


def test_mnist1d_never_calls_the_downloader(monkeypatch):
    import mnist1d.data

    monkeypatch.setattr(mnist1d.data, "get_dataset", lambda *a, **k: pytest.fail("downloader called"))
    datasets._mnist1d_arrays.cache_clear()
    assert datasets.load("mnist1d", num_samples=500, seed=3).num_classes == 10


@pytest.mark.parametrize("name, shape, classes", [
    ("digits", (1, 8, 8), 10), ("spirals", (2,), 3), ("teacher", (20,), 4), ("reverse", (8,), 10),
    ("sort", (8,), 10)])
def test_builtin_datasets(name, shape, classes):
    a, b = datasets.load(name, seed=1), datasets.load(name, seed=1)
    assert a.input_shape == shape and a.num_classes == classes
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)  # seeded
    assert int(a.y_train.max()) < classes and torch.isfinite(a.x_train.float()).all()


def test_sequence_targets_are_what_the_task_says():
    d = datasets.load("reverse", num_samples=50)
    assert torch.equal(d.y_train, d.x_train.flip(1)) and d.kind == "sequence" and d.vocab_size == 10
    s = datasets.load("sort", num_samples=50)
    assert torch.equal(s.y_train, s.x_train.sort(1).values)


def test_user_data_arrays_and_torch_datasets():
    x, y = np.random.default_rng(0).normal(size=(100, 3)), np.arange(100) % 4
    d = datasets.load((x, y), test_fraction=0.25)
    assert (len(d.x_train), len(d.x_test), d.num_classes) == (75, 25, 4)
    tds = torch.utils.data.TensorDataset(torch.randn(20, 2), torch.arange(20) % 2)
    assert datasets.load(tds).input_shape == (2,)
    d4 = datasets.load((x[:80], y[:80], x[80:], y[80:]))
    assert len(d4.x_train) == 80 and len(d4.x_test) == 20


@pytest.mark.parametrize("x, y, match", [
    (np.full((10, 2), np.nan), np.zeros(10), "NaN/inf"),
    (np.zeros((10, 2)), np.zeros(9), "10 inputs but 9 labels"),
])
def test_bad_user_data_is_a_clear_error(x, y, match):
    with pytest.raises(ValueError, match=match):
        datasets.load((x, y))


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid datasets: mnist1d, digits, spirals"):
        datasets.load("cifar100")


def test_cifar10_reads_local_files_only(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        datasets.load("cifar10", root=tmp_path)
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}, f)
    d = datasets.load("cifar10", root=tmp_path)
    assert d.input_shape == (3, 32, 32) and len(d.x_train) == 20 and len(d.x_test) == 4


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 2.5, 1] * 5, "whole numbers"),
    ([0, 1, float("nan"), 1] * 5, "NaN or infinite"),
    ([0, -1, 1, 1] * 5, ">= 0"),
    ([True, False, True, False] * 5, "class indices"),
])
def test_labels_must_be_class_indices_not_truncated(labels, message):
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match=message):
        datasets.from_arrays(x, torch.tensor(labels))
    assert datasets.from_arrays(x, torch.tensor([0.0, 1.0, 2.0, 1.0] * 5)).num_classes == 3  # whole floats are fine


def test_a_torch_dataset_whose_length_lies_is_a_clear_error():
    class Liar(torch.utils.data.Dataset):
        def __len__(self):
            return 130

        def __getitem__(self, i):
            if i >= 121:
                raise IndexError(f"index {i} is out of bounds")
            return torch.randn(3), i % 2

    with pytest.raises(ValueError, match="says it has 130 samples, but item 121 fails"):
        datasets.from_torch(Liar())
