"""``CompressionExplorer``: compress a random two-layer target onto M units in Jupyter and see how close the optimum
sits to a named shape (an anywidget; the served app shows the same front end through ``compression_panel``).

The logic is :class:`~nonlin_explorer.ui.compression_controller.CompressionController`; this is its Jupyter host
(:mod:`nonlin_explorer.ui.widget_host`). The page (``js/src/compression``) draws the Gram matrix, the ideal shape,
the draggable 2-D view, the 3-D view, the convergence and the loss against M itself, on canvases. No Panel or Bokeh
here.
"""

from __future__ import annotations

import os
from typing import Any

from nonlin_explorer.ui.compression_controller import CompressionController
from nonlin_explorer.ui.compression_core import ExplorerParams
from nonlin_explorer.ui.widget_host import widget_base

__all__ = ["CompressionExplorer"]


class CompressionExplorer(widget_base(CompressionController)):
    """Controls, live views and export for compressing a random two-layer target.

    ``CompressionExplorer(N=2000, d=20, M=4, method="exact")``: any of N, M, d, weight_dist, w_mean, w_spread,
    a_mean, a_std, seed, activation, method (see :func:`~nonlin_explorer.ui.compression_core.validate_params`).
    ``rate``: refreshes per second. ``theme``: "auto" (follow JupyterLab), "light" or "dark". ``files_root``: the
    folder *Export* may write to (default: the working directory).
    """

    def __init__(self, *, rate: float = 10.0, theme: str = "auto", files_root: str | os.PathLike | None = None,
                 controller: CompressionController | None = None, **settings: Any):
        if controller is None:
            controller = CompressionController(rate=rate, theme=theme, files_root=files_root, **settings)
        super().__init__(controller)

    # -- the controller's API, for notebooks and scripts ------------------------------------------------
    @property
    def params_valid(self) -> ExplorerParams:
        """The last valid settings."""
        return self.controller.params

    @property
    def result(self):
        """The shown :class:`~nonlin_explorer.compression.CompressionResult` (None before the first)."""
        return self.controller.result

    @property
    def requested_gen(self) -> int:
        return self.controller.requested_gen

    @property
    def applied_gen(self) -> int:
        return self.controller.applied_gen

    def update(self, **changes: Any) -> ExplorerParams:
        """Change settings (``update(M=5)``) and re-optimize; a refused value raises ValueError, nothing changes."""
        return self.controller.update(**changes)

    def optimize(self) -> int:
        return self.controller.optimize()

    def reoptimize(self) -> int:
        return self.controller.reoptimize()

    def drag(self, index: int, x: float, y: float):
        """Move unit ``index`` to ``(x, y)`` in the 2-D view and show the exact loss there (the new result)."""
        return self.controller.drag(index, x, y)

    def request_sweep(self) -> None:
        """Compute the relative loss against M = 1..8, point by point, on the worker."""
        self.controller.request_sweep()

    def dataset(self, what: str = "result"):
        return self.controller.dataset(what)

    def export(self, path: str | None = None, what: str = "result") -> str:
        return self.controller.export(path, what)

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the worker is idle and the page has been sent everything (scripts and tests)."""
        ok = self.controller.wait(timeout)
        return self.wait_flushed() and ok

    def flush(self) -> bool:
        """Publish the running curve and send what changed now. True if anything went out."""
        self.controller.tick()
        return super().flush()

    def status_dict(self) -> dict[str, Any]:
        return self.controller.status_dict()
