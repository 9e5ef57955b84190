"""``nonlin-explorer serve --demo advantage`` in Chromium: the page opens on the stored result set at once (its lines,
bands and the gap with its interval, the numbers the stored set gives), reads its URL settings, streams a run started
from the page over the stored lines, and looks right light and dark at 1280x720 and 1920x1080 (text >= 14 px, DOM
text >= 4.5:1, legend swatches >= 3:1, nothing clipped, no horizontal scroll), with a clean console and server log."""

from __future__ import annotations

import time
from pathlib import Path

import page_checks as pc
import pytest
from served_app import TOKEN, ServedPage, serving

from nonlin_explorer.results import read_netcdf
from nonlin_explorer.ui.advantage_core import find_stored, stored_figure

pytestmark = pytest.mark.ui

SCREENS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "screens"
#: Both stored lines drawn in the accuracy chart.
DRAWN = ".ne-adv [data-chart='advantage-accuracy'][data-drawn='2']"
#: Loose ceiling for CI (a busy 2-core machine): from navigation to both stored lines on the canvas.
FIRST_LINE_CEILING_S = 20.0


class AdvantagePage(ServedPage):
    ready_button = "Run"


def _headline_gap() -> str:
    """The gap the page must state, computed here from the stored set ("+4.7 ± 2.0 points")."""
    few = stored_figure(read_netcdf(find_stored("mlp")), "mlp")["gap_few"]
    sign = "+" if few["mean"] >= 0 else "−"
    return f"{sign}{abs(few['mean']):.1f} ± {few['half']:.1f} points"


def _log_problems(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines()
            if any(word in line for word in ("Traceback", "ERROR", "Error", "E-1", "W-1"))]


def test_opens_on_the_stored_set_and_streams_a_run_on_top(browser, tmp_path):
    with serving(["--demo", "advantage"], tmp_path) as base:
        t0 = time.perf_counter()
        app = AdvantagePage(browser, base, query="sparsities=0.03&seeds=7&epochs=1")
        page = app.page
        try:
            page.locator(DRAWN).wait_for(timeout=60_000)
            first_line = time.perf_counter() - t0
            print(f"served: both stored lines drawn {first_line:.2f} s after navigation")
            assert first_line < FIRST_LINE_CEILING_S
            headline = page.locator(".ne-adv-headline")
            assert _headline_gap() in headline.inner_text() and "5 seeds" in headline.inner_text()
            assert page.locator(".ne-adv [data-chart='advantage-gap'][data-drawn='1']").count() == 1
            # PNG export: twice the pixels of the chart on screen, its title and legend above the drawing.
            chart = page.locator("[data-chart='advantage-accuracy']")
            canvas = chart.locator("canvas").bounding_box()
            with page.expect_download() as download:
                chart.get_by_role("button", name="save PNG").click()
            from PIL import Image

            with Image.open(download.value.path()) as png:
                assert png.width == 2 * round(canvas["width"]) and png.height > 2 * canvas["height"] + 60, png.size
            # The URL's settings are the form's, and Run trains them: two runs (early, late) stream on top.
            assert page.get_by_label("Seeds").input_value() == "7"
            app_state = app.state()
            assert app_state["settings"]["sparsities"] == "0.03" and app_state["stored"]["name"] == "mlp"
            page.get_by_role("button", name="Run").click()
            s = app.wait(lambda s: s["state"] == "finished" and s["runs"] == 2, "two runs from the page", 120)
            assert s["points"] == {"early": 1, "late": 1} and s["error"] == ""
            page.locator(".ne-adv [data-chart='advantage-accuracy'][data-live='2']").wait_for()
            page.locator(".ne-adv-status", has_text="finished, 2 of 2 runs").wait_for()
            page.locator(".ne-answer", has_text="started").wait_for()
            # Bad input: refused next to Run, the last valid settings back in the form.
            page.get_by_label("Sparsities λ (comma-separated)").fill("0.1, -1")
            page.get_by_role("button", name="Run").click()
            page.locator(".ne-answer[data-kind='danger']", has_text="sparsities").wait_for()
            assert page.get_by_label("Sparsities λ (comma-separated)").input_value() == "0.03"
            assert app.state()["gen"] == 1
            # Export answers next to its button; the file is the runs, read back.
            page.get_by_role("button", name="Export").click()
            page.locator(".ne-answer", has_text="wrote advantage.nc").wait_for()
            back = read_netcdf(tmp_path / "advantage.nc")
            assert back.test_acc.sizes == {"schedule": 2, "sparsity": 1, "seed": 1}
            assert app.external_requests() == [] and pc.console_problems(
                [("error", t) for t in app.console_errors]) == []
        finally:
            app.close()
        assert _log_problems(tmp_path / "serve.log") == []


def test_a_bad_url_setting_is_said_and_the_stored_set_still_drawn(browser, tmp_path):
    with serving(["--demo", "advantage"], tmp_path) as base:
        app = AdvantagePage(browser, base, query="seeds=abc")
        try:
            app.page.locator(DRAWN).wait_for(timeout=60_000)
            app.page.locator(".ne-dash-header .ne-notice", has_text="settings in the URL ignored").wait_for()
            assert app.page.get_by_label("Seeds").input_value() == "5"
        finally:
            app.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_served_look(browser, tmp_path, theme):
    SCREENS.mkdir(parents=True, exist_ok=True)
    sizes = []
    with serving(["--demo", "advantage", "--theme", theme], tmp_path) as base:
        for width, height in ((1280, 720), (1920, 1080)):
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            messages: list[tuple[str, str]] = []
            page.on("console", lambda m, log=messages: log.append((m.type, m.text)))
            where = f"advantage, {theme}, {width}x{height}"
            try:
                page.goto(f"{base}/?token={TOKEN}")
                page.locator(DRAWN).wait_for(timeout=60_000)
                page.wait_for_timeout(500)
                page.screenshot(path=str(SCREENS / f"advantage-served-{theme}-{width}x{height}.png"))
                pc.install(page)
                c = pc.contrast(page)
                assert c["checked"] > 20 and c["bad"] == [], (where, c["bad"][:5])
                assert pc.small_text(page, "body", 14.0) == [], where
                assert pc.overflow(page, "body")["document"] <= 0, where
                titles = "h2, h3, .ne-chart-title, .ne-section-title, .ne-legend-item, .ne-adv-headline"
                assert pc.clipped(page, "body", titles) == [], where
                swatches = pc.swatch_contrast(page, ".ne-adv")
                faint = [s for s in swatches if max(s["fill"], s["edge"]) < 3.0]
                assert len(swatches) >= 5 and faint == [], (where, faint)
                # Both charts inside the window's width, and the headline and the accuracy chart on the first screen.
                seen = pc.on_screen(page, "body", {"headline": ".ne-adv-headline",
                                                   "accuracy": "[data-chart='advantage-accuracy'] canvas",
                                                   "gap": "[data-chart='advantage-gap'] canvas"})
                seen.pop("frame")
                assert seen["headline"]["shown"] == 1 and seen["accuracy"]["shown"] >= 0.6, (where, seen)
                sizes.append(seen["accuracy"]["width"] * seen["accuracy"]["height"])
                assert pc.console_problems(messages) == [], (where, pc.console_problems(messages))
            finally:
                context.close()
    assert sizes[1] > 1.3 * sizes[0], sizes  # the charts grow with the screen
    assert _log_problems(tmp_path / "serve.log") == []
