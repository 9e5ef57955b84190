"""``CompressionExplorerPane``: the compression explorer in Panel (``nonlin-explorer serve --demo compression``): the
same controller and front end as the Jupyter widget, in the Panel host (:mod:`nonlin_explorer.ui.panel_host`)."""

from __future__ import annotations

from typing import Any

from nonlin_explorer.ui.compression_controller import CompressionController
from nonlin_explorer.ui.panel_host import panel_base

__all__ = ["CompressionExplorerPane"]


class CompressionExplorerPane(panel_base(CompressionController)):
    """Shows a :class:`CompressionController` (``CompressionExplorerPane(controller)``) as a Panel component."""

    def __init__(self, controller: CompressionController, **params: Any):
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__(controller, **params)

    def status_dict(self) -> dict[str, Any]:
        return self.controller.status_dict()
