"""``TrainingDashboard``: steer a training run live in Jupyter, with curves, the network's units, export, record and
replay (an anywidget; the served app shows the same front end through ``dashboard_panel``).

The logic is :class:`~nonlin_explorer.ui.dashboard_controller.DashboardController`; this is its Jupyter host
(:mod:`nonlin_explorer.ui.widget_host`). The page (``js/src/dashboard``) draws every curve itself on canvases and
paints a click at once, so training never makes the notebook sluggish.
"""

from __future__ import annotations

import os
from typing import Any

from nonlin_explorer.recording import Recording
from nonlin_explorer.training import TrainConfig, TrainingSession
from nonlin_explorer.ui.dashboard_controller import DashboardController, ReplayController
from nonlin_explorer.ui.dashboard_core import DEFAULT_RATE
from nonlin_explorer.ui.widget_host import widget_base

__all__ = ["TrainingDashboard"]


class TrainingDashboard(widget_base(DashboardController)):
    """Controls, live curves and the clickable network of one training session.

    ``TrainingDashboard(session)`` steers an existing session; ``TrainingDashboard(config)`` or keyword fields
    (``TrainingDashboard(dataset="spirals", model_kwargs={"width": 32})``) build one. ``rate``: curve refreshes per
    second. ``theme``: "auto" (follow JupyterLab), "light" or "dark". ``files_root``: the folder *Export* and *Record*
    may write to (default: the working directory). :meth:`from_recording` replays a saved run instead.
    """

    def __init__(self, session_or_config: TrainingSession | TrainConfig | None = None, *, rate: float = DEFAULT_RATE,
                 theme: str = "auto", files_root: str | os.PathLike | None = None,
                 controller: DashboardController | None = None, **config: Any):
        if controller is None:
            controller = DashboardController(session_or_config, rate=rate, theme=theme, files_root=files_root,
                                             **config)
        super().__init__(controller)

    @classmethod
    def demo(cls, name: str = "spirals", **kwargs: Any) -> TrainingDashboard:
        """A dashboard on a demo run (:mod:`nonlin_explorer.demos`: "spirals" or "mnist1d"), ready to *Start*."""
        from nonlin_explorer.demos import demo_config

        return cls(demo_config(name), **kwargs)

    @classmethod
    def from_recording(cls, recording: Recording | str, *, speed: float = 1.0, rate: float = DEFAULT_RATE,
                       theme: str = "auto") -> TrainingDashboard:
        """A dashboard replaying a saved run (:func:`~nonlin_explorer.recording.save_recording`); no training."""
        return cls(controller=ReplayController(recording, speed=speed, rate=rate, theme=theme))

    # -- the controller's API, for notebooks and scripts ------------------------------------------------
    @property
    def session(self) -> TrainingSession:
        return self.controller.session

    def start(self) -> None:
        self.controller.start()

    def pause(self) -> None:
        self.controller.pause()

    def stop(self) -> None:
        self.controller.stop()

    def set(self, **values: Any) -> None:
        """Live changes (``sparsity``, ``lr``), checked and applied at the session's next step."""
        self.controller.set(**values)

    def reset(self, settings: dict[str, Any] | None = None, wait: bool = True) -> None:
        """A new run from ``settings`` (dataset, model, width, depth, seed, epochs, schedule, sparsity, lr)."""
        self.controller.reset(settings, wait=wait)

    def export(self, path: str | None = None) -> str:
        return self.controller.export(path)

    def record(self, path: str | None = None) -> str:
        return self.controller.record(path)

    def status_dict(self) -> dict[str, Any]:
        return self.controller.status_dict()
