"""A chart's saved files, as a browser test gets them: the bytes a click downloads, and the check that a PNG export is
the figure (title, legend, drawing) at twice its size on screen. Shared by the dashboard's and the compression
explorer's browser tests."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image


def download(page, click) -> bytes:
    """The bytes of the file a click saves (the page makes it: nothing is fetched)."""
    with page.expect_download(timeout=15_000) as info:
        click()
    time.sleep(0.6)  # at a person's pace: Chromium drops a download that follows the last within ~0.5 s
    with open(info.value.path(), "rb") as f:
        return f.read()


def check_figure_png(png: bytes, chart, name: str) -> None:
    """A chart's PNG is the figure at twice the size on screen: the drawing below a band with its title and legend."""
    w, h = chart.locator("canvas").evaluate("c => [c.clientWidth, c.clientHeight]")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width == 2 * w and image.height > 2 * (h + 30), (name, image.size, (w, h))
    pixels = np.asarray(image).astype(int)
    background = pixels[1, 1]
    head = image.height - 2 * h
    inked = np.abs(pixels - background).sum(axis=2) > 60
    title_band, legend_band = inked[: 2 * 30], inked[2 * 30: head]
    assert title_band.sum() > 200, (name, "no title drawn")
    legend = chart.locator(".ne-legend-item").count()
    assert legend == 0 or legend_band.sum() > 100 * legend, (name, "no legend drawn")
    assert inked[head:].sum() > 1000, (name, "no chart drawn")
