"""Jupyter widgets and apps on top of the compute core.

- :class:`NetworkView` (anywidget; front end in ``js/src``, bundled into ``static/``): every unit of a model
  or of a running :class:`~nonlin_explorer.TrainingSession`, coloured by its slope; click to cycle
  free / forced linear / forced nonlinear.
- :class:`TrainingDashboard` (anywidget): steer a training run live, with curves drawn on canvases.
- :class:`CompressionExplorer` (anywidget): compress two-layer networks interactively and see their shape.
- :class:`AdvantageView` (anywidget): early vs late linearization, a stored result set with new runs on top.

The apps load lazily, so ``from nonlin_explorer.ui import NetworkView`` imports only the network view; none of
them imports Panel or Bokeh (``nonlin-explorer serve`` hosts the same pages through Panel).
"""

from nonlin_explorer.ui.layout import network_layout
from nonlin_explorer.ui.network_view import NetworkView

__all__ = ["AdvantageView", "CompressionExplorer", "NetworkView", "TrainingDashboard", "network_layout"]

_LAZY = {
    "TrainingDashboard": "nonlin_explorer.ui.dashboard",
    "CompressionExplorer": "nonlin_explorer.ui.compression_explorer",
    "AdvantageView": "nonlin_explorer.ui.advantage_view",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nonlin_explorer.ui' has no attribute {name!r}")
