"""What a person sees in the served apps, light and dark, at a projector's 1280x720 and at 1600x1000: screenshots
(saved to .test-artifacts/screens/, for looking at), and in each: DOM text contrast >= 4.5:1 (WCAG AA; canvas text
is out of scope), text >= 14 px, no horizontal scroll, headings not clipped, and a clean console."""

from __future__ import annotations

from pathlib import Path

import page_checks as pc
import pytest
from served_app import TOKEN, serving

pytestmark = pytest.mark.ui

SCREENS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "screens"
VIEWPORTS = ((1280, 720), (1600, 1000))
#: how each app shows it has drawn its first state
READY = {"training": ".ne-unit", "compression": "text=Status: done", "advantage": "text=Status: idle"}
#: at least this many DOM texts are checked for contrast in each app (the check is not vacuous)
TEXTS = {"training": 30, "compression": 30, "advantage": 10}


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("app", ["training", "compression", "advantage"])
def test_app_is_readable_fits_and_logs_nothing(browser, tmp_path, app, theme):
    SCREENS.mkdir(parents=True, exist_ok=True)
    with serving(["--demo", app, "--theme", theme], tmp_path) as base:
        for width, height in VIEWPORTS:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            messages: list[tuple[str, str]] = []
            page.on("console", lambda m, log=messages: log.append((m.type, m.text)))
            try:
                page.goto(f"{base}/?token={TOKEN}")
                page.locator(READY[app]).first.wait_for(timeout=60_000)
                page.wait_for_timeout(1500)  # let the plots draw their first data
                page.screenshot(path=str(SCREENS / f"{app}-{theme}-{width}x{height}.png"))
                where = f"{app}, {theme}, {width}x{height}"
                c = pc.contrast(page)
                assert c["checked"] > TEXTS[app] and c["bad"] == [], (where, c["bad"][:5])
                small = pc.small_text(page, "body", 14.0)
                assert small == [], (where, small[:5])
                assert pc.overflow(page, "body")["document"] <= 0, where
                titles = "h1, h2, h3, .ne-title, .ne-dash-title, .ne-chart-title, .ne-section-title, .ne-legend-item"
                assert pc.clipped(page, "body", titles) == [], where
                assert pc.console_problems(messages) == [], (where, pc.console_problems(messages))
            finally:
                context.close()
