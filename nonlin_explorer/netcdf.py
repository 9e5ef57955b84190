"""Labelled result files: where a result came from (:func:`provenance`) and atomic netCDF writes and reads.

Shared by every layer that writes an ``xr.Dataset`` (training runs, compression sweeps, recordings). Attributes go
through :func:`netcdf_attrs`, so a number is stored as a number (``seed`` 0, not ``"0"``) whatever type it came in.
"""

from __future__ import annotations

import datetime as _dt
import json
import numbers
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from nonlin_explorer._version import __version__
from nonlin_explorer.files import check_writable, write_file


def provenance(**extra) -> dict[str, Any]:
    """Versions, platform and time: what is needed to say where a result came from."""
    return {
        "nonlin_explorer_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _plain(value: Any) -> Any:
    """JSON's fallback: numpy and torch numbers and arrays as numbers and lists, anything else as its text."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    return str(value)


def to_json(value: Any) -> str:
    """``value`` as JSON with sorted keys; numpy and torch numbers stay numbers (never their text)."""
    return json.dumps(value, sort_keys=True, default=_plain)


def attr_value(value: Any) -> str | int | float:
    """One netCDF attribute: text and numbers as they are (numpy and torch scalars as Python numbers, booleans as
    0/1), anything nested as JSON (:func:`to_json`)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.device):
        return str(value)
    return to_json(value)


def netcdf_attrs(values: dict[str, Any]) -> dict[str, str | int | float]:
    """Attributes for a result set: each value through :func:`attr_value`; a ``None`` is left out (netCDF has no
    null: an absent attribute means "none", never the text "null")."""
    return {key: attr_value(value) for key, value in values.items() if value is not None}


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, *, exists: str = "replace") -> Path:
    """Write a result set atomically (:func:`~nonlin_explorer.files.write_file`: a temporary file renamed into place,
    never a half-written file); the path written. ``exists``: ``"replace"`` (default) an existing regular file,
    ``"refuse"`` or ``"rename"`` (``NAME-1.nc``). A device, folder or symbolic link is never replaced."""
    path = check_writable(path)
    return write_file(path, lambda tmp: ds.to_netcdf(tmp.path, engine="netcdf4"), exists=exists)


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Read a result set fully into memory (the file is closed afterwards)."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()
