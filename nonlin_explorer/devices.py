"""Where training runs: CUDA when available, else Apple's MPS, else the CPU."""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device (checked to exist), or the best one available."""
    if device is not None and str(device) != "auto":
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto") from None
        if dev.type not in ("cpu", "cuda", "mps"):  # meta tensors hold no data; other backends are untested here
            raise ValueError(f"device {device!r} cannot run training or compression; use cpu, cuda, cuda:N, mps "
                             "or auto")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for, but CUDA is not available here")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} was asked for, but this machine has {torch.cuda.device_count()} "
                             "CUDA device(s), numbered from 0")
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device {device!r} was asked for, but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
