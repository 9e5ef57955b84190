"""The apps' colours, light and dark: ``palette.json`` beside this module is the one source (the front end's
constants are generated from it by ``js/scripts/generate-tables.mjs``)."""

from __future__ import annotations

import json
from pathlib import Path

#: Per theme: background, border, text, muted text, grid, axis line and series colours.
PALETTES: dict[str, dict] = json.loads((Path(__file__).with_name("palette.json")).read_text(encoding="utf-8"))


def check_theme(theme: str) -> str:
    """``"light"`` or ``"dark"`` (anything else is refused with the choices)."""
    if theme not in PALETTES:
        raise ValueError(f"theme must be 'light' or 'dark', got {theme!r}")
    return theme
