"""Input checks shared by the compression modules: clear ``ValueError``s before any work is done."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from nonlin_explorer import validation
from nonlin_explorer.devices import pick_device


def resolve_device(device=None, like: torch.Tensor | None = None) -> torch.device:
    """The device to compute on: as asked, else that of ``like``, else CUDA when available, else the CPU.

    Apple's MPS has no float64, which this engine needs, so it is never picked by default.
    """
    if device is not None and str(device) != "auto":
        return pick_device(device)
    if like is not None and isinstance(like, torch.Tensor):
        return like.device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_dtype(dtype, like: torch.Tensor | None = None) -> torch.dtype:
    """float64 unless told otherwise (or unless ``like`` is a floating tensor of another precision)."""
    if dtype is None:
        if isinstance(like, torch.Tensor) and like.is_floating_point():
            return like.dtype
        return torch.float64
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    return dtype


def as_tensor(name: str, x, *, ndim: int | None = None, min_ndim: int | None = None, device=None,
              dtype=None) -> torch.Tensor:
    """``x`` as a floating tensor with the asked number of dimensions and only finite entries."""
    if x is None:
        raise ValueError(f"{name} is required")
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
            if not np.iscomplexobj(arr):
                arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of numbers ({exc})") from None
        t = torch.from_numpy(arr)
    if t.is_complex():  # casting to a real dtype would drop the imaginary part without a word
        raise ValueError(f"{name} must hold real numbers, got {t.dtype} values")
    dev = resolve_device(device, like=x if isinstance(x, torch.Tensor) else None)
    dt = resolve_dtype(dtype, like=x if isinstance(x, torch.Tensor) else None)
    if dev.type == "mps" and dt == torch.float64:
        raise ValueError("Apple's MPS has no float64: use device='cpu' or dtype=torch.float32")
    t = t.to(device=dev, dtype=dt)
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    if min_ndim is not None and t.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(t.shape)}")
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (``bool`` refused; a whole float accepted) in [``minimum``, ``maximum``]."""
    return validation.check_int(name, value, low=minimum, high=maximum)


def check_real(name: str, value, *, positive: bool = False, nonnegative: bool = False) -> float:
    """A finite real number (optionally > 0 or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_target(a: torch.Tensor, W: torch.Tensor) -> None:
    """``a`` (N,) and ``W`` (N, d) with N >= 1 and d >= 1."""
    if W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(f"W must have N >= 1 rows and d >= 1 columns, got shape {tuple(W.shape)}")
    if a.shape != (W.shape[0],):
        raise ValueError(f"a must have shape (N,) = ({W.shape[0]},) to match W {tuple(W.shape)}, "
                         f"got {tuple(a.shape)}")


def check_student(b: torch.Tensor, V: torch.Tensor, d: int) -> None:
    """``V`` (..., M, d) and ``b`` (..., M) with broadcastable leading (batch) dimensions."""
    if V.shape[-1] != d:
        raise ValueError(f"V must have d = {d} columns to match W, got shape {tuple(V.shape)}")
    if V.shape[-2] < 1:
        raise ValueError("V needs at least one row (M >= 1)")
    if b.ndim < 1 or b.shape[-1] != V.shape[-2]:
        raise ValueError(f"b must have shape (..., M) with M = {V.shape[-2]} to match V {tuple(V.shape)}, "
                         f"got {tuple(b.shape)}")
    try:
        torch.broadcast_shapes(b.shape[:-1], V.shape[:-2])
    except RuntimeError:
        raise ValueError(f"batch dimensions of b {tuple(b.shape)} and V {tuple(V.shape)} do not broadcast") from None


class HasFirstLayer:
    """``N``, ``d``, ``device`` and ``dtype`` of a first-layer weight matrix ``self.W`` (N x d)."""

    @property
    def N(self) -> int:
        return self.W.shape[0]

    @property
    def d(self) -> int:
        return self.W.shape[1]

    @property
    def device(self) -> torch.device:
        return self.W.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W.dtype
