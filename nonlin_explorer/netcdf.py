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
from nonlin_explorer.files import check_writable


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


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a result set atomically (a temporary file renamed into place: no half-written files)."""
    path = check_writable(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Read a result set fully into memory (the file is closed afterwards)."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()
