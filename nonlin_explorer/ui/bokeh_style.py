"""One look for the Bokeh figures of the Panel apps (compression explorer, early-vs-late view), light or dark.

Bokeh draws on a canvas, so the page's CSS theme does not reach axes, titles, grids or legends: each figure is
styled here. Colours meet WCAG AA (>= 4.5:1) against the figure's own background in both themes; text is at least
12 pt (16 px) for titles and 11 pt for ticks, readable on a projector. Legends sit outside the data, to the right.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Per theme: background, border (around the plot), text, muted text, grid, axis line and series colours. One source
#: for Python and the front end: ``palette.json`` beside this module (``js/scripts/generate-tables.mjs`` reads it too).
PALETTES: dict[str, dict] = json.loads((Path(__file__).with_name("palette.json")).read_text(encoding="utf-8"))


def check_theme(theme: str) -> str:
    """``"light"`` or ``"dark"`` (anything else is refused with the choices)."""
    if theme not in PALETTES:
        raise ValueError(f"theme must be 'light' or 'dark', got {theme!r}")
    return theme


def style_figure(fig, theme: str = "light", *, legend: str = "right") -> None:
    """Apply the theme's colours and readable font sizes to ``fig`` (a bokeh ``figure``), in place. ``legend``: the
    side of the plot its legend moves to, outside the data ("right"; "below": in one line, the plot keeps its
    width)."""
    if legend not in ("right", "below"):
        raise ValueError(f"legend must be 'right' or 'below', got {legend!r}")
    p = PALETTES[check_theme(theme)]
    fig.background_fill_color = p["background"]
    fig.border_fill_color = p["border"]
    fig.outline_line_color = p["grid"]
    if fig.title is not None:
        fig.title.text_color = p["text"]
        fig.title.text_font_size = "12pt"
    for axis in fig.axis:
        axis.axis_label_text_color = p["text"]
        axis.axis_label_text_font_size = "12pt"
        axis.axis_label_text_font_style = "normal"
        axis.major_label_text_color = p["muted"]
        axis.major_label_text_font_size = "11pt"
        axis.axis_line_color = p["axis"]
        axis.major_tick_line_color = p["axis"]
        axis.minor_tick_line_color = p["axis"]
    for grid in fig.grid:
        grid.grid_line_color = p["grid"]
    for box in fig.legend:
        box.label_text_color = p["text"]
        box.label_text_font_size = "11pt"
        box.background_fill_color = p["border"]
        box.background_fill_alpha = 1.0
        box.border_line_color = p["grid"]
    if fig.legend:
        box = fig.legend[0]
        if box not in getattr(fig, legend):
            fig.center = [r for r in fig.center if r is not box]
            if legend == "right":
                box.location = "top_left"
            else:
                box.orientation = "horizontal"
            fig.add_layout(box, legend)


def text_color_on(value: float, theme: str = "light") -> str:
    """Cell text colour for a heatmap value in [-1, 1] (RdBu): white on the dark ends, near-black in between."""
    return "#ffffff" if abs(value) > 0.55 else "#111111"


__all__ = ["PALETTES", "check_theme", "style_figure", "text_color_on"]
