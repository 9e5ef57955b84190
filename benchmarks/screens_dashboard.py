"""Screenshots of the training dashboard where people meet it, for looking at (headless Chromium):

- JupyterLab, notebooks/quickstart.ipynb's first code cell, 1280x720 with the file browser open, light and dark;
- Jupyter Notebook 7, the same cell, 1280x720 and 1920x1080;
- the served app (``nonlin-explorer serve --demo spirals``), 1280x720 and 1920x1080, light and dark.

Each is taken a few seconds after *Start* (curves drawn, units turning linear), with the dashboard's top at the top of
its panel. For each it prints how much of the sparsity slider, Start, the network and the loss chart is on screen
without scrolling (the share of each one's height, counted up to 200 px; the browser tests require >= 0.6).

    python benchmarks/screens_dashboard.py [--out .test-artifacts/screens] [--train 12]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "ui"))

import page_checks as pc  # noqa: E402
from lab_helpers import (  # noqa: E402
    NOTEBOOK_SCROLLER,
    Notebook,
    RecordedPage,
    accept_kernel_dialog,
    launch_chromium,
    scroll_to_top,
    set_lab_theme,
    start_lab_server,
)
from served_app import TOKEN, serving  # noqa: E402

QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
TARGETS = {"slider": ".ne-dash .ne-sparsity-slider", "Start": ".ne-dash .ne-live-controls .ne-go",
           "network": ".ne-dash .ne-network .ne-stage", "loss": ".ne-dash [data-chart='loss']"}


def report(name: str, seen: dict) -> None:
    frame = seen.pop("frame", {})
    shares = ", ".join(f"{k} {v['shown']:.2f}" for k, v in seen.items())
    print(f"{name:34s} frame {frame.get('width')}x{frame.get('height')}: {shares}", flush=True)


def notebook_shots(browser, app: str, sizes, themes, out: Path, train: float) -> None:
    """The quickstart's first code cell in JupyterLab (``app="jupyterlab"``) or Notebook 7 (``"notebook"``)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_lab_server(Path(tmp), app=app)
        try:
            shutil.copy(QUICKSTART, server.root / QUICKSTART.name)
            for width, height in sizes:
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                accept_kernel_dialog(page)
                nb = Notebook(RecordedPage(page, server), QUICKSTART.name, app=app).open()
                nb.run(1)
                cell = nb.cell(1)
                cell.locator(".ne-dash .ne-unit").first.wait_for(timeout=120_000)
                cell.get_by_role("button", name="Start", exact=True).click()
                time.sleep(train)
                for theme in themes:
                    if app == "jupyterlab":
                        set_lab_theme(page, f"JupyterLab {theme.title()}")
                    scroll_to_top(page, ".ne-dash")
                    name = f"{'lab' if app == 'jupyterlab' else 'nb7'}-quickstart-{theme}-{width}x{height}"
                    page.screenshot(path=str(out / f"{name}.png"))
                    report(name, pc.on_screen(page, NOTEBOOK_SCROLLER, TARGETS))
                if app == "jupyterlab" and themes[-1] != "light":
                    set_lab_theme(page, "JupyterLab Light")
                cell.get_by_role("button", name="Pause", exact=True).click()
                context.close()
        finally:
            server.stop()


def served_shots(browser, sizes, themes, out: Path, train: float) -> None:
    for theme in themes:
        with tempfile.TemporaryDirectory() as tmp, serving(["--demo", "spirals", "--theme", theme], Path(tmp)) as base:
            for width, height in sizes:
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                page.goto(f"{base}/?token={TOKEN}")
                page.locator(".ne-unit").first.wait_for(timeout=60_000)
                page.get_by_role("button", name="Start", exact=True).click()
                time.sleep(train)
                name = f"served-{theme}-{width}x{height}"
                page.screenshot(path=str(out / f"{name}.png"))
                report(name, pc.on_screen(page, "body", TARGETS))
                context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".test-artifacts" / "screens")
    parser.add_argument("--train", type=float, default=12.0, help="seconds of training before each screenshot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            notebook_shots(browser, "jupyterlab", [(1280, 720)], ["light", "dark"], args.out, args.train)
            notebook_shots(browser, "notebook", [(1280, 720), (1920, 1080)], ["light"], args.out, args.train)
            served_shots(browser, [(1280, 720), (1920, 1080)], ["light", "dark"], args.out, args.train)
        finally:
            browser.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
