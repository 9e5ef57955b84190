"""What a person sees in the served apps, light and dark, at a projector's 1280x720, at 1600x1000 and at 1920x1080:
screenshots (saved to .test-artifacts/screens/, for looking at), and in each: DOM text contrast >= 4.5:1 (WCAG AA;
canvas text is out of scope), text >= 14 px, no horizontal scroll, headings not clipped, and a clean console. In the
training dashboard, a control and its effect are on screen together (the sparsity slider, Start, the network and the
loss chart, without scrolling) and the charts grow with the screen; in it and in the early-vs-late view every legend
swatch stands out from the chart (its colour or its edge >= 3:1, WCAG non-text contrast)."""

from __future__ import annotations

from pathlib import Path

import page_checks as pc
import pytest
from served_app import TOKEN, serving

pytestmark = pytest.mark.ui

SCREENS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "screens"
VIEWPORTS = ((1280, 720), (1600, 1000), (1920, 1080))
#: how each app shows it has drawn its first state
READY = {"training": ".ne-unit", "compression": "text=Status: done",
         "advantage": "[data-chart='advantage-accuracy'][data-drawn='2']"}
#: at least this many DOM texts are checked for contrast in each app (the check is not vacuous)
TEXTS = {"training": 30, "compression": 30, "advantage": 10}
#: In the training dashboard, what must be on screen together (as in tests/ui/test_first_minute.py for JupyterLab).
ON_SCREEN = {"sparsity slider": ".ne-dash .ne-sparsity-slider", "Start": ".ne-dash .ne-live-controls .ne-go",
             "network": ".ne-dash .ne-network .ne-stage", "loss chart": ".ne-dash [data-chart='loss']"}
MIN_SHOWN = 0.6
#: the apps drawn on the shared canvas charts, and how many legend swatches each shows at least
SWATCHES = {"training": 12, "advantage": 5}
#: WCAG 1.4.11: marks and legend swatches against what is behind them
MARK_CONTRAST = 3.0


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("app", ["training", "compression", "advantage"])
def test_app_is_readable_fits_and_logs_nothing(browser, tmp_path, app, theme):
    SCREENS.mkdir(parents=True, exist_ok=True)
    loss_sizes: list[tuple[int, int]] = []
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
                if app in SWATCHES:
                    # Legend swatches stand out from the chart (WCAG non-text contrast): the colour or its edge.
                    swatches = pc.swatch_contrast(page, ".ne-dash")
                    faint = [s for s in swatches if max(s["fill"], s["edge"]) < MARK_CONTRAST]
                    assert len(swatches) >= SWATCHES[app] and faint == [], (where, len(swatches), faint)
                if app == "training":
                    seen = pc.on_screen(page, "body", ON_SCREEN)
                    frame = seen.pop("frame")
                    assert all(s["shown"] >= MIN_SHOWN for s in seen.values()), (where, frame, seen)
                    loss_sizes.append((seen["loss chart"]["width"], seen["loss chart"]["height"]))
            finally:
                context.close()
    if app == "training":  # the loss chart grows with the screen (1920x1080 against 1280x720), taller too
        (w1, h1), _, (w3, h3) = loss_sizes
        assert w3 * h3 > 1.2 * w1 * h1 and h3 > h1, loss_sizes
