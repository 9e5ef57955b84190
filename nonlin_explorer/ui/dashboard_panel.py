"""``TrainingDashboardPane``: the training dashboard in Panel (the served app, or a Panel layout): the same controller
and front end as the Jupyter widget, in the Panel host (:mod:`nonlin_explorer.ui.panel_host`)."""

from __future__ import annotations

from typing import Any

from nonlin_explorer.ui.dashboard_controller import DashboardController
from nonlin_explorer.ui.panel_host import panel_base

__all__ = ["TrainingDashboardPane"]


class TrainingDashboardPane(panel_base(DashboardController)):
    """Shows a :class:`DashboardController` (``TrainingDashboardPane(controller)``) as a Panel component."""

    def __init__(self, controller: DashboardController, **params: Any):
        params.setdefault("sizing_mode", "stretch_both")
        super().__init__(controller, **params)

    def status_dict(self) -> dict[str, Any]:
        return self.controller.status_dict()
