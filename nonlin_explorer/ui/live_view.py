"""What the Panel apps share: a message banner for bad input, and a refresh loop that calls ``flush()``
``rate`` times a second on the document's thread (worker threads only queue; ``flush`` draws)."""

from __future__ import annotations

import html
import re
from typing import Any

import panel as pn

from nonlin_explorer.ui import panel_notebook

panel_notebook.install()


class StatusLine(pn.widgets.StaticText):
    """A one-line status (``.object``: text with ``**bold**``) whose updates send nothing but its text.

    A Markdown pane re-sends its stylesheets with every update; in JupyterLab on a loaded machine the browser can
    drop such a patch ("reference ... isn't known": a stylesheet model it never got), and the status stayed at
    "optimizing" after the result had arrived (tests/ui/test_compression_explorer_lab.py, beside three CPU hogs).
    """

    def __init__(self, text: str = "", **params):
        super().__init__(**params)
        self.object = text

    @property
    def object(self) -> str:
        return self._text

    @object.setter
    def object(self, text: str) -> None:
        self._text = str(text)
        self.value = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(self._text))


class LiveView(pn.viewable.Viewer):
    """Base of :class:`TrainingDashboard`, :class:`CompressionExplorer` and :class:`AdvantageView`.

    Subclasses set ``rate``, ``message`` (from :meth:`_make_message`) and ``_layout``, and define ``flush``.
    """

    rate: float
    message: pn.pane.Alert
    _layout: Any
    _callback: Any = None

    @staticmethod
    def _make_message() -> pn.pane.Alert:
        """The banner that shows what was wrong with an input (hidden until there is something to say)."""
        return pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["ne-message"],
                             sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    def flush(self) -> bool:
        raise NotImplementedError

    def _start_callback(self) -> None:
        try:
            self._callback = pn.state.add_periodic_callback(self.flush, period=int(1000 / self.rate))
        except Exception:  # no event loop (plain scripts): call flush() yourself
            self._callback = None

    def _stop_callback(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def show_message(self, text: str, kind: str = "danger") -> None:
        self.message.alert_type = kind
        self.message.object = text
        self.message.visible = True

    def clear_message(self) -> None:
        self.message.visible = False
        self.message.object = ""
