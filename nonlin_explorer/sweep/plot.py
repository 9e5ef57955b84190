"""Plot a sweep's result set: one metric against another (or against a swept parameter), one line per value
of a swept dimension, averaged over seeds with their spread as error bars. Needs matplotlib."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

#: Points that produced results (failed, skipped and pending ones are left out).
PLOTTED = ("finished", "diverged")


def _values(ds: xr.Dataset, name: str) -> xr.DataArray:
    if name not in ds.variables:
        numeric = [v for v in ds.data_vars if ds[v].dtype.kind in "fiu" and not v.startswith("series_")]
        raise ValueError(f"no variable {name!r} in the result set; plottable: {', '.join(numeric + list(ds.dims))}")
    value = ds[name]
    if value.dtype.kind not in "fiub":
        raise ValueError(f"{name!r} is not numeric")
    return xr.broadcast(value, ds["status"])[0]


def plot_sweep(ds: xr.Dataset, x: str, y: str, hue: str | None = None, *, over: Sequence[str] = ("seed",),
               ax=None, errorbars: bool = True):
    """Plot ``y`` against ``x`` (metrics or swept parameters), one line per ``hue`` value (a swept dimension).

    Points are averaged over the ``over`` dimensions (seeds by default; the standard deviation gives the error
    bars); what remains are the points of each line, sorted by ``x``. E.g. test accuracy against nonlinear
    units, one line per schedule::

        plot_sweep(ds, "nonlinear_total", "test_acc", hue="schedule")
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_sweep needs matplotlib (pip install matplotlib)") from None
    if hue is not None and hue not in ds.dims:
        raise ValueError(f"hue must be a swept dimension ({', '.join(ds['status'].dims)}), got {hue!r}")
    ok = ds["status"].isin(list(PLOTTED))
    xs, ys = _values(ds, x).where(ok), _values(ds, y).where(ok)
    over = [d for d in over if d in ds["status"].dims and d != hue]
    mx, my, sy = xs.mean(over), ys.mean(over), ys.std(over)
    if ax is None:
        _, ax = plt.subplots()
    labels = list(ds[hue].values) if hue is not None else [None]
    for label in labels:
        sel = {hue: label} if hue is not None else {}
        px, py, pe = (a.sel(sel).values.ravel() for a in (mx, my, sy))
        keep = ~(np.isnan(px) | np.isnan(py))
        order = np.argsort(px[keep], kind="stable")
        px, py, pe = px[keep][order], py[keep][order], pe[keep][order]
        ax.errorbar(px, py, yerr=pe if errorbars and over else None, marker="o", capsize=3,
                    label=f"{hue} = {label}" if hue is not None else None)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if hue is not None:
        ax.legend()
    if over:
        ax.set_title(f"mean over {', '.join(over)}" + (" (bars: standard deviation)" if errorbars else ""))
    return ax
