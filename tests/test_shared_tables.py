"""Tables that Python and the front end share live once, in JSON files of the package: the palettes and the
dashboard's run settings (js/scripts/generate-tables.mjs turns them into js/src/generated/tables.ts)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nonlin_explorer.trainer import TrainConfig
from nonlin_explorer.ui import palette as palettes
from nonlin_explorer.ui import url_settings
from nonlin_explorer.ui.dashboard_controller import _settings_of

ROOT = Path(__file__).resolve().parents[1]
UI = ROOT / "nonlin_explorer" / "ui"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_matches_wcag_reference_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_the_python_palettes_are_the_json_file():
    assert palettes.PALETTES == json.loads((UI / "palette.json").read_text())


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_palette_names_the_same_colours_and_its_text_is_readable(theme):
    palette = palettes.PALETTES[theme]
    other = palettes.PALETTES["dark" if theme == "light" else "light"]
    assert set(palette) == set(other) and set(palette["series"]) == set(other["series"])
    colours = [v for k, v in palette.items() if k != "series"] + list(palette["series"].values())
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours), colours
    for key in ("text", "muted"):  # WCAG AA for text
        assert contrast(palette[key], palette["background"]) >= 4.5, key


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_series_colour_stands_out_from_the_chart_background(theme):
    """Lines, points and bars are drawn in these colours on the background: WCAG non-text contrast, >= 3:1."""
    palette = palettes.PALETTES[theme]
    faint = {k: round(contrast(v, palette["background"]), 2) for k, v in palette["series"].items()
             if contrast(v, palette["background"]) < 3.0}
    assert faint == {}


def test_the_front_end_reads_its_palettes_from_the_generated_table():
    theme = (ROOT / "js" / "src" / "charts" / "theme.ts").read_text()
    assert "from '../generated/tables'" in theme
    assert not re.search(r"#[0-9a-fA-F]{6}", theme), "a colour written into theme.ts instead of palette.json"
    generator = (ROOT / "js" / "scripts" / "generate-tables.mjs").read_text()
    assert "palette.json" in generator and "dashboard_settings.json" in generator


def test_the_dashboard_settings_are_one_list():
    keys = json.loads((UI / "dashboard_settings.json").read_text())["keys"]
    assert url_settings.DASHBOARD_KEYS == tuple(keys)
    settings = _settings_of(TrainConfig(model_kwargs={"width": 12}))
    assert list(settings) == keys
    assert settings["width"] == 12 and settings["depth"] is None and settings["lr"] == TrainConfig().lr
