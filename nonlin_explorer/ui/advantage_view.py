"""``AdvantageView``: early vs late linearization in Jupyter (an anywidget; the served app shows the same front end
through ``advantage_panel``). It opens on a stored result set (lines, bands over seeds, the gap at matched count with
its interval) and streams new runs on top.

The logic is :class:`~nonlin_explorer.ui.advantage_controller.AdvantageController`; this is its Jupyter host
(:mod:`nonlin_explorer.ui.widget_host`). The page (``js/src/advantage``) draws the charts on canvases.
"""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from nonlin_explorer.training import TrainConfig
from nonlin_explorer.ui.advantage_controller import (
    DEFAULT_SEEDS,
    DEFAULT_SET,
    AdvantageController,
)
from nonlin_explorer.ui.widget_host import widget_base
from nonlin_explorer.validation import parse_list

__all__ = ["AdvantageView", "parse_list"]


class AdvantageView(widget_base(AdvantageController)):
    """A stored early-vs-late comparison, and a grid of new runs streamed over it.

    ``AdvantageView(config, sparsities=[...], seeds=[...])``: ``config`` is a
    :class:`~nonlin_explorer.training.TrainConfig` (or a dict of its fields) for new runs (default: the stored set's
    configuration). ``stored``: the set drawn at once (``"mlp"``: where the advantage holds, ``"cnn"``: where it does
    not, or a ``.nc`` path). ``theme``: "auto" (follow JupyterLab), "light" or "dark". ``files_root``: the folder
    *Export* may write to. :meth:`run` starts, :meth:`cancel` stops after the current step, :meth:`close` ends the
    worker thread.
    """

    def __init__(self, config: TrainConfig | dict | None = None, sparsities=None, seeds=DEFAULT_SEEDS,
                 *, stored: str | os.PathLike = DEFAULT_SET, rate: float = 4.0, theme: str = "auto",
                 files_root: str | os.PathLike | None = None, controller: AdvantageController | None = None):
        if controller is None:
            controller = AdvantageController(config, sparsities, seeds, stored=stored, rate=rate, theme=theme,
                                             files_root=files_root)
        super().__init__(controller)

    # -- the controller's API, for notebooks and scripts ------------------------------------------------
    @property
    def running(self) -> bool:
        return self.controller.running

    @property
    def points(self) -> list[dict[str, Any]]:
        return self.controller.points

    @property
    def result(self) -> xr.Dataset | None:
        return self.controller.result

    def run(self, **changes: Any) -> bool:
        """Start the runs (``changes``: sparsities, seeds, epochs); False with a notice for bad input."""
        return self.controller.run(**changes)

    def cancel(self) -> None:
        self.controller.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        return self.controller.wait(timeout)

    def choose(self, name: str) -> None:
        """Draw another stored set (``"mlp"``, ``"cnn"`` or a path)."""
        self.controller.choose(name)

    def export(self, path: str | None = None) -> str:
        return self.controller.export(path)

    def points_dataset(self) -> xr.Dataset:
        return self.controller.points_dataset()

    def gaps(self) -> dict[str, float]:
        return self.controller.gaps()

    def status_dict(self) -> dict[str, Any]:
        return self.controller.status_dict()

    def close(self, timeout: float = 30.0) -> None:
        """Cancel the runs, end the worker thread and the flush thread, close the widget."""
        self.controller.close(timeout=timeout)
        super().close()
