"""``NetworkViewPane``: the network view inside Panel layouts and served Panel apps.

The same controller (:class:`~nonlin_explorer.ui.network_controller.NetworkController`) and the same front end as
the Jupyter widget, in the Panel host (:mod:`nonlin_explorer.ui.panel_host`): nothing is declared twice.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nonlin_explorer.ui.network_controller import NetworkController
from nonlin_explorer.ui.panel_host import panel_base

__all__ = ["NetworkViewPane"]


class NetworkViewPane(panel_base(NetworkController)):
    """Every unit of a session's model (or a linearized model), coloured by slope, clickable: a Panel component.

    ``NetworkViewPane(session)`` builds a :class:`NetworkController`; ``NetworkViewPane(controller=...)`` shows one
    you made. Updates are pushed by a periodic callback on the document's thread (``flush`` by hand in scripts).
    """

    def __init__(self, model_or_session: nn.Module | Any = None, example_input: Any = None, *,
                 max_rate: float = 15.0, controller: NetworkController | None = None, **params: Any):
        if controller is None:
            if model_or_session is None:
                raise TypeError("NetworkViewPane needs a session, a model or controller=")
            controller = NetworkController(model_or_session, example_input, max_rate=max_rate)
        params.setdefault("min_height", 220)
        super().__init__(controller, **params)
