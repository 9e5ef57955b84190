"""The JupyterLab extension in a real JupyterLab: the launcher section, the palette commands, the demos."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def open_lab(rec):
    rec.page.goto(rec.server.url("lab", reset=""))
    rec.page.locator(".jp-Launcher").wait_for(timeout=60_000)


def test_launcher_section_opens_the_demo_notebook(lab_page, lab_server):
    page = lab_page.page
    open_lab(lab_page)
    section = page.locator(".jp-Launcher-section", has=page.locator(".jp-Launcher-sectionTitle",
                                                                      has_text="Nonlinear Explorer"))
    card = section.locator(".jp-LauncherCard", has_text="Quickstart")
    assert card.count() == 1
    card.click()
    # A copy under a free name: quickstart.ipynb, or quickstart-1.ipynb where another test's copy is already there.
    tab = page.locator(".lm-TabBar-tab.lm-mod-current", has_text=re.compile(r"quickstart(-\d+)?\.ipynb"))
    tab.wait_for()
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for()

    name = re.search(r"quickstart(-\d+)?\.ipynb", tab.inner_text()).group(0)
    copied = json.loads((lab_server.root / name).read_text())
    original = json.loads((NOTEBOOKS / "quickstart.ipynb").read_text())
    assert copied["metadata"]["nonlin_explorer_demo"] == "quickstart"
    assert [c["source"] for c in copied["cells"]] == [c["source"] for c in original["cells"]]
    assert lab_page.external_requests() == []


def test_palette_has_the_demo_and_present_commands(lab_page):
    page = lab_page.page
    open_lab(lab_page)
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Nonlinear")
    items = page.locator(".lm-CommandPalette-item")
    items.first.wait_for()
    labels = items.all_inner_texts()
    assert any("Open demo notebook: Quickstart" in text for text in labels), labels
    assert any("Present widget output in its own tab" in text for text in labels), labels
