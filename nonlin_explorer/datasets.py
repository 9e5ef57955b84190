"""Datasets that need no network: generated (MNIST-1D, spirals, teacher, sequence tasks), shipped with a
package (scikit-learn's 8x8 digits), given by the user (arrays or a torch Dataset), or read from files the
user already has (CIFAR-10 in torchvision's folder format). Nothing here ever downloads."""

from __future__ import annotations

import functools
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nonlin_explorer.validation import check_name, check_seed


@dataclass
class Dataset:
    """A train/test split held in memory as tensors, with what a model builder needs to know."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    kind: str = "classification"  # or "sequence": one label per token
    vocab_size: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def _check_finite(name: str, x: torch.Tensor) -> None:
    if x.is_floating_point() and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"dataset {name!r}: inputs contain {bad} NaN/inf values")


def _labels(name: str, y: torch.Tensor) -> torch.Tensor:
    """Class indices as int64; floats must be whole and finite, nothing negative (no silent truncation)."""
    if y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"dataset {name!r}: labels must be class indices (whole numbers), got dtype {y.dtype}")
    if y.is_floating_point():
        bad = ~torch.isfinite(y)
        if bad.any():
            raise ValueError(f"dataset {name!r}: {int(bad.sum())} labels are NaN or infinite")
        frac = y != torch.round(y)
        if frac.any():
            raise ValueError(f"dataset {name!r}: labels must be whole numbers (class indices), got "
                             f"{y[frac][:3].tolist()}")
    y = y.long()
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"dataset {name!r}: labels must be >= 0, got {int(y.min())}")
    return y


def _split(name: str, x: np.ndarray | torch.Tensor, y, test_fraction: float, seed: int, **kw) -> Dataset:
    """Shuffle with ``seed`` and split off ``test_fraction`` for testing."""
    check_name(name, "dataset name")
    seed = check_seed(seed)
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if x.is_floating_point():
        x = x.float()
    y = _labels(name, y)
    if len(x) != len(y):
        raise ValueError(f"dataset {name!r}: {len(x)} inputs but {len(y)} labels")
    if len(x) < 2:
        raise ValueError(f"dataset {name!r}: need at least 2 samples, got {len(x)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    _check_finite(name, x)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(round(test_fraction * len(x))))
    te, tr = perm[:n_test], perm[n_test:]
    num_classes = kw.pop("num_classes", int(y.max()) + 1)
    return Dataset(name, x[tr], y[tr], x[te], y[te], num_classes, **kw)


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset  # never mnist1d's get_dataset: it downloads

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    data = make_dataset(args)
    return data["x"], data["y"], data["x_test"], data["y_test"]


def mnist1d(num_samples: int = 5000, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020), generated locally: 40-sample 1-D signals, 10 classes, shape (1, 40)."""
    seed = check_seed(seed)
    x, y, xt, yt = _mnist1d_arrays(num_samples, seed)
    mean, std = x.mean(), x.std()
    norm = lambda a: torch.as_tensor((a - mean) / std, dtype=torch.float32).unsqueeze(1)
    return Dataset("mnist1d", norm(x), torch.as_tensor(y).long(), norm(xt), torch.as_tensor(yt).long(), 10,
                   meta={"num_samples": num_samples, "generator_seed": seed})


def digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped with the package), shape (1, 8, 8)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return _split("digits", x, d.target, test_fraction, seed, num_classes=10)


def spirals(num_samples: int = 2000, num_classes: int = 3, noise: float = 0.2, seed: int = 0,
            test_fraction: float = 0.25) -> Dataset:
    """Interleaved 2-D spirals, one arm per class: a small task a linear model cannot solve."""
    seed = check_seed(seed)
    if num_classes < 2:
        raise ValueError(f"spirals needs num_classes >= 2, got {num_classes}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, num_samples)
    t = rng.uniform(0.0, 1.0, num_samples)
    angle = 3.0 * math.pi * t + 2.0 * math.pi * y / num_classes
    r = 0.25 + 2.0 * t
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], 1) + noise * rng.standard_normal((num_samples, 2))
    return _split("spirals", x.astype(np.float32), y, test_fraction, seed, num_classes=num_classes)


def teacher(num_samples: int = 4000, dim: int = 20, num_classes: int = 4, width: int = 64, depth: int = 2,
            seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """Gaussian inputs labelled by the argmax of a random ReLU teacher MLP (seeded)."""
    seed = check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_samples, dim, generator=g)
    h = x
    for _ in range(depth):
        h = torch.relu(h @ torch.randn(h.shape[1], width, generator=g) / math.sqrt(h.shape[1]))
    logits = h @ torch.randn(width, num_classes, generator=g)
    logits = logits - logits.mean(0)  # balance the classes a little
    return _split("teacher", x, logits.argmax(1), test_fraction, seed, num_classes=num_classes)


def sequence(task: str = "reverse", num_samples: int = 4000, seq_len: int = 8, vocab_size: int = 10,
             seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Token sequences with a label per position: ``reverse`` (the sequence backwards) or ``sort``."""
    seed = check_seed(seed)
    if task not in ("reverse", "sort"):
        raise ValueError(f"unknown sequence task {task!r}; valid: reverse, sort")
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab_size, (num_samples, seq_len), generator=g)
    y = x.flip(1) if task == "reverse" else x.sort(1).values
    return _split(task, x, y, test_fraction, seed, num_classes=vocab_size, kind="sequence",
                  vocab_size=vocab_size)


def translation(num_samples: int = 4000, seq_len: int = 6, vocab_size: int = 10, seed: int = 0,
                test_fraction: float = 0.2) -> Dataset:
    """A translation-like task for an encoder-decoder, generated locally: the target is the source reversed, each
    word translated in the context of its neighbour (``t_i -> (t_i + t_{i+1}) mod vocab_size`` on the reversed
    source, the last word as is), so each output needs two source positions found by attention and a nonlinear
    combination of them (a sum modulo the vocabulary). Inputs are ``[source, decoder input]`` side by side, shape
    ``(2 * seq_len,)``: the decoder input is a start token (``vocab_size``) and the target shifted right (teacher
    forcing); labels are the target tokens."""
    seed = check_seed(seed)
    if seq_len < 1 or vocab_size < 2:
        raise ValueError(f"translation needs seq_len >= 1 and vocab_size >= 2, got {seq_len}, {vocab_size}")
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, vocab_size, (num_samples, seq_len), generator=g)
    rev = src.flip(1)
    target = rev.clone()
    target[:, :-1] = (rev[:, :-1] + rev[:, 1:]) % vocab_size
    start = torch.full((num_samples, 1), vocab_size, dtype=target.dtype)
    x = torch.cat([src, start, target[:, :-1]], dim=1)
    return _split("translation", x, target, test_fraction, seed, num_classes=vocab_size, kind="sequence",
                  vocab_size=vocab_size + 1)


def cifar10(root: str | Path | None = None) -> Dataset:
    """CIFAR-10 from a local copy in torchvision's format (``cifar-10-batches-py``). Never downloads."""
    if root is None:
        raise ValueError("cifar10 reads a local copy: give its folder (command line: --data-root DIR; "
                         "Python: dataset_kwargs={'root': DIR}); nonlin_explorer never downloads data")
    root = Path(root).expanduser()
    folder = root if (root / "test_batch").exists() else root / "cifar-10-batches-py"
    if not (folder / "test_batch").exists():
        raise FileNotFoundError(
            f"no CIFAR-10 found under {root} (expected cifar-10-batches-py/data_batch_1..5 and test_batch); "
            "nonlin_explorer never downloads data: copy the files there first"
        )

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        return d["data"].reshape(-1, 3, 32, 32), np.asarray(d["labels"])

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    xt, yt = read("test_batch")
    mean = x.reshape(-1, 3, 32 * 32).mean((0, 2)).reshape(1, 3, 1, 1) / 255.0
    std = x.reshape(-1, 3, 32 * 32).std((0, 2)).reshape(1, 3, 1, 1) / 255.0
    norm = lambda a: torch.as_tensor((a / 255.0 - mean) / std, dtype=torch.float32)
    return Dataset("cifar10", norm(x), torch.as_tensor(y).long(), norm(xt), torch.as_tensor(yt).long(), 10,
                   meta={"root": str(root)})


def from_arrays(x, y, x_test=None, y_test=None, name: str = "user", test_fraction: float = 0.2,
                seed: int = 0) -> Dataset:
    """User data: arrays or tensors; split off ``test_fraction`` unless a test set is given."""
    if x_test is None:
        return _split(name, x, y, test_fraction, seed)
    train = _split(name, x, y, 0.5, seed)  # validates shapes and finiteness
    test = _split(name, x_test, y_test, 0.5, seed)
    if train.input_shape != test.input_shape:
        raise ValueError(f"train inputs have shape {train.input_shape}, test inputs {test.input_shape}")
    xs = lambda a, b: torch.cat([a, b])
    x_tr, y_tr = xs(train.x_train, train.x_test), xs(train.y_train, train.y_test)
    x_te, y_te = xs(test.x_train, test.x_test), xs(test.y_train, test.y_test)
    n_cls = int(max(y_tr.max(), y_te.max())) + 1
    return Dataset(name, x_tr, y_tr, x_te, y_te, n_cls)


def from_torch(dataset: torch.utils.data.Dataset, name: str = "user", test_fraction: float = 0.2,
               seed: int = 0) -> Dataset:
    """A map-style torch Dataset of (input, label) pairs, read into memory."""
    try:
        n = len(dataset)
    except TypeError as exc:
        raise ValueError("from_torch needs a map-style Dataset with __len__ and __getitem__") from exc
    pairs = []
    for i in range(n):
        try:
            pairs.append(dataset[i])
        except (IndexError, KeyError) as exc:
            raise ValueError(f"the Dataset says it has {n} samples, but item {i} fails: {exc}") from None
        except TypeError as exc:
            raise ValueError("from_torch needs a map-style Dataset with __len__ and __getitem__") from exc
    try:
        x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"the Dataset's inputs do not all have the same shape: {exc}") from None
    y = torch.as_tensor([torch.as_tensor(p[1]).item() for p in pairs])
    return _split(name, x, y, test_fraction, seed)


_LOADERS = {
    "mnist1d": mnist1d,
    "digits": digits,
    "spirals": spirals,
    "teacher": teacher,
    "reverse": functools.partial(sequence, "reverse"),
    "sort": functools.partial(sequence, "sort"),
    "translation": translation,
    "cifar10": cifar10,
}

#: Dataset names accepted by :func:`load`.
DATASETS = tuple(_LOADERS)


def load(name, **kwargs) -> Dataset:
    """Load a dataset by name (see :data:`DATASETS`), or wrap user data: ``(x, y)``,
    ``(x, y, x_test, y_test)`` or a torch ``Dataset``. ``kwargs`` go to the loader (``seed``, sizes...)."""
    if isinstance(name, Dataset):
        return name
    if isinstance(name, tuple) and len(name) in (2, 4):
        return from_arrays(*name, **kwargs)
    if isinstance(name, torch.utils.data.Dataset):
        return from_torch(name, **kwargs)
    if not isinstance(name, str) or name.lower() not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)} "
                         "(or user data: (x, y), (x, y, x_test, y_test), a torch Dataset)")
    try:
        return _LOADERS[name.lower()](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for dataset {name!r}: {exc}") from exc
