"""Labelled result files: where a result came from (:func:`provenance`) and atomic netCDF writes and reads.

Shared by every layer that writes an ``xr.Dataset`` (training runs, compression sweeps, recordings).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path
from typing import Any

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
