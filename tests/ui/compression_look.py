"""What a person sees of the compression explorer at one window size (every panel inside the frame, no hidden
overflow, no overlapping labels, readable text and swatches): :func:`check_look`, shared by its served and
JupyterLab browser tests."""

from __future__ import annotations

import json

import page_checks as pc

#: Boxes of the explorer that pass a frame's right edge (the output, or the window), and elements that hide an
#: overflow (content wider than the box, clipped or scrolled): what a person at 1280 px would not see.
PAST_EDGE = """(frameSel) => {
  const { deep } = window.__neChecks;
  const root = deep('.ne-cx')[0];
  const frame = frameSel ? root.closest(frameSel) : null;
  const edge = Math.min(window.innerWidth, frame ? frame.getBoundingClientRect().right : Infinity);
  const past = [];
  const hidden = [];
  for (const e of [root, ...deep('*', root)]) {
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(e).visibility === 'hidden') continue;
    const name = e.className && typeof e.className === 'string' ? e.className : e.tagName;
    if (r.right > edge + 1) past.push([name, Math.round(r.right), Math.round(edge)]);
    const ox = getComputedStyle(e).overflowX;
    if (ox !== 'visible' && e.scrollWidth > e.clientWidth + 1 && e.tagName !== 'INPUT' && e.tagName !== 'SELECT')
      hidden.push([name, e.scrollWidth, e.clientWidth]);
  }
  return { past, hidden, width: root.getBoundingClientRect().width };
}"""

def overlapping(boxes: list[list[float]]) -> list[tuple[int, int]]:
    """Pairs of label boxes ([x, y, w, h]) that overlap."""
    return [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j
            and a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]]


def check_look(page, where: str, frame: str | None = None) -> None:
    """What a person at this size sees: every panel inside the frame, no hidden overflow, no overlapping labels,
    DOM text >= 14 px and >= 4.5:1, canvas text >= 14 px (each chart notes its smallest), legend swatches >= 3:1."""
    pc.install(page)
    fit = page.evaluate(PAST_EDGE, frame)
    assert fit["past"] == [] and fit["hidden"] == [], (where, fit)
    for name in ("directions", "view3d"):
        boxes = json.loads(page.locator(f".ne-cx [data-chart='{name}']").get_attribute("data-labels"))
        assert len(boxes) == 8 and overlapping(boxes) == [], (where, name, boxes)
    assert pc.small_text(page, ".ne-cx", 14.0) == [], where
    c = pc.contrast(page, ".ne-cx")
    assert c["checked"] > 30 and c["bad"] == [], (where, c["bad"][:5])
    sizes = page.evaluate("""() => window.__neChecks.deep('.ne-cx .ne-chart canvas').map(
      c => Number(c.closest('.ne-chart').dataset.minText))""")
    assert len(sizes) == 6 and min(sizes) >= 14, (where, sizes)
    # Legend swatches stand out from the chart (WCAG non-text contrast): the colour or its edge >= 3:1.
    swatches = pc.swatch_contrast(page, ".ne-cx")
    assert len(swatches) >= 5 and [s for s in swatches if max(s["fill"], s["edge"]) < 3.0] == [], (where, swatches)
