"""``AdvantagePane``: the early-vs-late view in Panel (``nonlin-explorer serve --demo advantage``, or a Panel layout):
the same controller and front end as the Jupyter widget, in the Panel host (:mod:`nonlin_explorer.ui.panel_host`)."""

from __future__ import annotations

from typing import Any

from nonlin_explorer.ui.advantage_controller import AdvantageController
from nonlin_explorer.ui.panel_host import panel_base

__all__ = ["AdvantagePane"]


class AdvantagePane(panel_base(AdvantageController)):
    """Shows an :class:`AdvantageController` (``AdvantagePane(controller)``) as a Panel component."""

    def __init__(self, controller: AdvantageController, **params: Any):
        params.setdefault("sizing_mode", "stretch_both")
        super().__init__(controller, **params)

    def status_dict(self) -> dict[str, Any]:
        return self.controller.status_dict()
