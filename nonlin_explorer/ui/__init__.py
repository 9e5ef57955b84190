"""Jupyter widgets on top of the compute core (anywidget; front end in ``js/src``, bundled into ``static/``).

- :class:`NetworkView` — every unit of a model (or a running :class:`~nonlin_explorer.TrainingSession`),
  coloured by its slope, click to cycle free / forced linear / forced nonlinear.
"""

from nonlin_explorer.ui.layout import network_layout
from nonlin_explorer.ui.network_view import NetworkView

__all__ = ["NetworkView", "network_layout"]
