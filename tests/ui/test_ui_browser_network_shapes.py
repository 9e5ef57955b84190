"""NetworkView in a real JupyterLab (headless Chromium) on the shapes people bring: a small CNN (long, similar
layer names) and a TransformerEncoder (every encoder layer a residual block, the first one fed by the input).
Light and dark screenshots of both go to .test-artifacts/screens/ for looking at."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_helpers import Notebook, open_page, scroll_to_top, set_lab_theme, write_notebook

pytestmark = pytest.mark.ui

SETUP = """\
import torch, nonlin_explorer as ne
from nonlin_explorer.ui import NetworkView
torch.manual_seed(0)"""
CNN = """\
cnn = ne.linearize(ne.models.SmallCNN((3, 32, 32), 10), torch.randn(2, 3, 32, 32))
NetworkView(cnn)"""
NARROW_CNN = """\
thin = ne.linearize(ne.models.SmallCNN((3, 32, 32), 10, width=2), torch.randn(2, 3, 32, 32))
NetworkView(thin)"""
TRANSFORMER = """\
tf = ne.linearize(ne.models.TransformerClassifier(vocab_size=20, num_classes=3, seq_len=6, d_model=32, depth=3,
                                                  heads=2, ff_width=16), torch.randint(0, 20, (2, 6)))
NetworkView(tf)"""

SCREENS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "screens"


@pytest.fixture(scope="module")
def nb(browser, lab_server):
    context, rec = open_page(browser, lab_server)
    rec.page.set_viewport_size({"width": 1280, "height": 720})
    write_notebook(lab_server.root, "shapes_view.ipynb", [SETUP, CNN, TRANSFORMER, NARROW_CNN])
    notebook = Notebook(rec, "shapes_view.ipynb").open()
    for k in range(4):
        notebook.run(k)
    for k in (1, 2, 3):
        notebook.cell(k).locator(".ne-network .ne-unit").first.wait_for(timeout=120_000)
    yield notebook
    context.close()


def labels(view) -> list[dict]:
    """Every layer label's text, title (the full name) and box, and whether its text fits its box."""
    return view.locator(".ne-layer-label").evaluate_all("""els => els.map(el => {
        const r = el.getBoundingClientRect();
        return {text: el.textContent, title: el.title, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                fits: el.scrollWidth <= el.clientWidth + 1};
    })""")


@pytest.mark.parametrize("cell", [1, 3], ids=["wide columns", "one-cell columns"])
def test_cnn_layer_labels_are_shortened_from_the_left_and_readable_with_the_full_name_on_hover(nb, cell):
    view = nb.cell(cell).locator(".ne-network")
    shown = labels(view)
    assert [lab["title"] for lab in shown] == ["features.2", "features.5", "features.8"]
    for lab in shown:
        full = lab["title"]
        assert lab["text"] == full or (lab["text"].startswith("\u2026") and full.endswith(lab["text"][1:]))
        last = full.rsplit(".", 1)[-1]
        assert lab["text"] == full or len(lab["text"]) >= len("\u2026") + len(last) + 2, lab  # "…s.2", not "…2"
        assert lab["fits"], lab
    if cell == 3:  # columns one cell wide: too narrow for "features.N", shortened from the left
        assert all(lab["text"].startswith("\u2026") for lab in shown), shown
    for a, b in zip(shown, shown[1:]):
        assert a["right"] <= b["left"], (a, b)  # no two labels overlap
    # Each label sits under its layer's column.
    columns = view.locator(".ne-layer").evaluate_all("""els => els.map(g => {
        const r = [...g.children].map(u => u.getBoundingClientRect());
        return [Math.min(...r.map(b => b.left)), Math.max(...r.map(b => b.right)), Math.max(...r.map(b => b.bottom))];
    })""")
    for lab, (left, right, bottom) in zip(shown, columns):
        assert left <= (lab["left"] + lab["right"]) / 2 <= right and lab["top"] >= bottom - 1


def test_transformer_skip_arcs_stay_inside_the_view_and_above_every_layer(nb):
    view = nb.cell(2).locator(".ne-network")
    found = view.evaluate("""root => {
        const canvas = root.querySelector('canvas');
        const plane = root.querySelector('.ne-plane').getBoundingClientRect();
        const layers = [...root.querySelectorAll('.ne-layer')].map(g => {
            const r = [...g.children].map(u => u.getBoundingClientRect());
            return [Math.min(...r.map(b => b.left)) - plane.left, Math.max(...r.map(b => b.right)) - plane.left,
                    Math.min(...r.map(b => b.top)) - plane.top];
        });
        const dpr = window.devicePixelRatio || 1;
        const ctx = canvas.getContext('2d');
        const arcs = JSON.parse(root.dataset.skips).map(([x0, y0, cx, cy, x1, y1]) => {
            const at = t => [(1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t * t * x1,
                             (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t * t * y1];
            const [mx, my] = at(0.5);
            // The canvas is painted where the arc's numbers say (alpha in a 3x3 patch around its middle).
            const patch = ctx.getImageData(Math.round(mx * dpr) - 1, Math.round(my * dpr) - 1, 3, 3).data;
            let ink = 0;
            for (let k = 3; k < patch.length; k += 4) ink = Math.max(ink, patch[k]);
            return {points: Array.from({length: 41}, (_, j) => at(j / 40)), ink};
        });
        return {arcs, layers, width: canvas.clientWidth, height: canvas.clientHeight};
    }""")
    assert len(found["arcs"]) == 3 and len(found["layers"]) == 3  # one block per encoder layer
    for k, arc in enumerate(found["arcs"]):
        assert arc["ink"] > 0, f"arc {k} is not painted where its geometry says"
        for x, y in arc["points"]:
            assert 0 <= x <= found["width"] and 0 <= y <= found["height"], (k, x, y)
            for li, (left, right, top) in enumerate(found["layers"]):
                assert not (left <= x <= right and y >= top), f"arc {k} crosses layer {li} at ({x:.1f}, {y:.1f})"


def test_hover_shows_the_units_tooltip_without_a_click_and_focus_shows_the_same(nb):
    page = nb.page
    view = nb.cell(1).locator(".ne-network")
    tooltip = view.locator(".ne-tooltip")
    unit = view.get_by_role("button", name="features.5 unit 3: nonlinear", exact=True)
    unit.hover()
    tooltip.wait_for(state="visible", timeout=2000)
    text = tooltip.inner_text()
    assert "features.5 \u00b7 unit 3" in text and "alpha 0" in text and "state: free" in text
    box, cell = tooltip.bounding_box(), unit.bounding_box()
    assert abs(box["x"] - (cell["x"] + cell["width"])) < 40 or abs(box["x"] + box["width"] - cell["x"]) < 40
    page.mouse.move(5, 5)  # off the view: the tooltip goes
    tooltip.wait_for(state="hidden", timeout=2000)
    other = view.get_by_role("button", name="features.8 unit 0: nonlinear", exact=True)
    other.focus()  # the keyboard's way to the same place
    tooltip.wait_for(state="visible", timeout=2000)
    assert "features.8 \u00b7 unit 0" in tooltip.inner_text() and "state: free" in tooltip.inner_text()
    described = page.evaluate("document.activeElement.getAttribute('aria-describedby')")
    assert described == tooltip.get_attribute("id")
    assert page.locator(f"[id='{described}']").count() == 1  # each view's tooltip has an id of its own
    page.keyboard.press("ArrowDown")
    view.locator(".ne-tooltip", has_text="features.8 \u00b7 unit 1").wait_for(state="visible", timeout=2000)


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_screenshots_light_and_dark(nb, theme):
    """1280x720 pictures of both views, for looking at; each view painted (its canvas not blank)."""
    page = nb.page
    set_lab_theme(page, theme)
    SCREENS.mkdir(parents=True, exist_ok=True)
    word = theme.split()[-1].lower()
    for k, name in ((1, "cnn"), (2, "transformer"), (3, "cnn-narrow")):
        scroll_to_top(page, f".jp-Notebook .jp-Cell:nth-child({k + 1}) .ne-network")
        view = nb.cell(k).locator(".ne-network")
        assert view.evaluate("r => Number(r.dataset.paints) > 0")
        page.screenshot(path=str(SCREENS / f"network-view-{name}-{word}-1280x720.png"))
    assert nb.rec.console_errors == []
