"""``NetworkView``: every gated unit of a model, coloured by its slope alpha; click to force it (Jupyter widget).

The logic lives in :class:`~nonlin_explorer.ui.network_controller.NetworkController`; this is its anywidget host
(:mod:`nonlin_explorer.ui.widget_host`): traits built from the controller's fields, the front end
``js/src/network_view.ts`` (bundled into ``nonlin_explorer/static``). State travels as binary typed arrays
(float32 slopes, uint8 states, float32 mean activations), layout as small JSON. The page paints a click at once
(optimistically) and reconciles with the kernel's answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from nonlin_explorer.gates import UnitState
from nonlin_explorer.ui.network_controller import ACTIVATION_INTERVAL, NetworkController
from nonlin_explorer.ui.widget_host import widget_base

__all__ = ["NetworkView", "ACTIVATION_INTERVAL"]


class NetworkView(widget_base(NetworkController)):
    """Every unit of ``model_or_session`` as a coloured cell: alpha on a continuous scale, state marked.

    ``model_or_session``: a linearized ``nn.Module`` or a :class:`~nonlin_explorer.TrainingSession` (the view then
    follows its events and toggles through its command queue). ``example_input``: a batch for the mean activations
    shown on hover (default: the session's ``example_input``; none for a bare model). ``max_rate``: most updates
    per second. Pass ``controller=`` to show an existing :class:`NetworkController`.
    """

    def __init__(self, model_or_session: nn.Module | Any = None, example_input: Any = None, *,
                 max_rate: float = 15.0, title: str | None = None, tol: float | None = None, max_rows: int = 0,
                 controller: NetworkController | None = None, **kwargs: Any):
        if controller is None:
            if model_or_session is None:
                raise TypeError("NetworkView needs a linearized model, a TrainingSession or controller=")
            controller = NetworkController(model_or_session, example_input, max_rate=max_rate, title=title, tol=tol,
                                           max_rows=max_rows)
        super().__init__(controller, **kwargs)

    @property
    def model(self) -> nn.Module:
        return self.controller.model

    @property
    def session(self) -> Any:
        return self.controller.session

    @property
    def gate_names(self) -> list[str]:
        return self.controller.gate_names

    def toggle(self, layer: str | int, units: None | int | Sequence[int], state: int | UnitState) -> None:
        """Set ``units`` (None: all) of gate ``layer`` (name or index) to ``state`` (see
        :meth:`NetworkController.toggle`)."""
        self.controller.toggle(layer, units, state)

    def update(self, activations: bool = False) -> None:
        """Repaint from the gates' current values, soon (throttled; see :meth:`NetworkController.update`)."""
        self.controller.update(activations=activations)

    def refresh(self) -> None:
        """Re-read layout, slopes, states and mean activations now, and send them (blocking)."""
        self.controller.refresh()
        self.flush()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every requested update has been read and sent (for scripts and tests)."""
        return self.controller.wait_idle(timeout) and self.wait_flushed(timeout)
