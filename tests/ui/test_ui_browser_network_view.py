"""NetworkView in a real JupyterLab (headless Chromium): what the user does in the page changes the gates
*in the kernel*, checked by running a cell that prints them.

One notebook and kernel serve the whole module (kernel start and the torch import cost ~10 s); the tests
run in file order and each leaves the model as it found it.
"""

from __future__ import annotations

import pytest
from lab_helpers import CHECK_CELL, Notebook, mlp_view_cell, open_page, unit_button, write_notebook

pytestmark = pytest.mark.ui

SETUP = mlp_view_cell(width=6)

FREE = [[0] * 6, [0] * 6]


@pytest.fixture(scope="module")
def nb(browser, lab_server):
    context, rec = open_page(browser, lab_server)
    write_notebook(lab_server.root, "mlp_view.ipynb", [SETUP, CHECK_CELL])
    notebook = Notebook(rec, "mlp_view.ipynb").open()
    notebook.run(0)
    unit_button(rec.page, "net.2", 0, "nonlinear").wait_for(timeout=120_000)
    yield notebook
    context.close()


def pixel(page, layer: str, unit: int, word: str) -> list[int]:
    """The canvas colour painted in a unit's cell (off its centre and diagonal, where state glyphs go)."""
    el = unit_button(page, layer, unit, word)
    return el.evaluate("""el => {
        const canvas = el.closest('.ne-plane').querySelector('canvas');
        const dpr = window.devicePixelRatio || 1;
        const x = (el.offsetLeft + el.offsetWidth * 0.3) * dpr, y = (el.offsetTop + el.offsetHeight * 0.3) * dpr;
        return Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
    }""")


def test_every_unit_is_a_labelled_focusable_element(nb):
    page = nb.page
    units = page.locator(".ne-network .ne-unit")
    assert units.count() == 12
    assert all(units.nth(i).get_attribute("aria-label").endswith(": nonlinear") for i in range(12))
    # Roving tabindex: exactly one unit is in the tab order, every unit can take focus.
    assert page.locator('.ne-network .ne-unit[tabindex="0"]').count() == 1
    assert page.locator('.ne-network .ne-unit[tabindex="-1"]').count() == 11
    assert page.locator(".ne-network .ne-count").inner_text() == "12 of 12 units nonlinear"
    assert page.locator(".ne-legend-bar").is_visible()
    # alpha = 0 is painted in the scale's first colour (viridis #440154).
    assert pixel(page, "net.2", 0, "nonlinear") == [0x44, 0x01, 0x54]


def test_click_cycles_the_state_in_the_kernel(nb):
    page = nb.page
    unit_button(page, "net.2", 3, "nonlinear").click()
    unit_button(page, "net.2", 3, "forced linear").wait_for()
    assert nb.kernel_states() == [[0, 0, 0, 1, 0, 0], [0] * 6]
    assert pixel(page, "net.2", 3, "forced linear")[0] > 200  # alpha = 1: the yellow end of the scale

    unit_button(page, "net.2", 3, "forced linear").click()
    unit_button(page, "net.2", 3, "forced nonlinear").wait_for()
    assert nb.kernel_states() == [[0, 0, 0, 2, 0, 0], [0] * 6]

    unit_button(page, "net.2", 3, "forced nonlinear").click()
    unit_button(page, "net.2", 3, "nonlinear").wait_for()
    assert nb.kernel_states() == FREE


def test_enter_and_space_toggle_the_focused_unit(nb):
    page = nb.page
    unit_button(page, "net.4", 1, "nonlinear").focus()
    page.keyboard.press("Enter")
    unit_button(page, "net.4", 1, "forced linear").wait_for()
    assert nb.kernel_states() == [[0] * 6, [0, 1, 0, 0, 0, 0]]

    unit_button(page, "net.4", 1, "forced linear").focus()
    page.keyboard.press(" ")
    unit_button(page, "net.4", 1, "forced nonlinear").wait_for()
    page.keyboard.press("ArrowDown")  # arrow keys move the focus; it is the only unit in the tab order
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "net.4 unit 2: nonlinear"
    assert page.locator('.ne-network .ne-unit[tabindex="0"]').get_attribute("aria-label") == focused
    page.keyboard.press("ArrowUp")
    page.keyboard.press("f")  # f: free again
    unit_button(page, "net.4", 1, "nonlinear").wait_for()
    assert nb.kernel_states() == FREE


def test_layer_buttons_set_and_release_a_whole_layer(nb):
    page = nb.page
    page.get_by_role("button", name="net.4: all linear", exact=True).click()
    page.locator(".ne-network .ne-count", has_text="6 of 12 units nonlinear").wait_for()
    assert nb.kernel_states() == [[0] * 6, [1] * 6]
    page.get_by_role("button", name="net.4: release all", exact=True).click()
    unit_button(page, "net.4", 5, "linear").wait_for()  # released: free, alpha stays 1 (linear)
    assert nb.kernel_states() == FREE


def test_shift_drag_selects_several_units(nb):
    page = nb.page
    first = unit_button(page, "net.2", 0, "nonlinear").bounding_box()
    third = unit_button(page, "net.2", 2, "nonlinear").bounding_box()
    page.keyboard.down("Shift")
    page.mouse.move(first["x"] + 2, first["y"] + 2)
    page.mouse.down()
    page.mouse.move(third["x"] + third["width"] / 2, third["y"] + third["height"] / 2, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    bar = page.locator(".ne-network .ne-selection")
    assert bar.locator(".ne-selection-text").inner_text() == "3 units selected in 1 layer:"
    bar.get_by_role("button", name="Nonlinear", exact=True).click()
    unit_button(page, "net.2", 2, "forced nonlinear").wait_for()
    assert nb.kernel_states() == [[2, 2, 2, 0, 0, 0], [0] * 6]
    bar.get_by_role("button", name="Release", exact=True).click()
    unit_button(page, "net.2", 2, "nonlinear").wait_for()
    bar.get_by_role("button", name="Clear selection", exact=True).click()
    assert bar.is_hidden()
    assert nb.kernel_states() == FREE


def test_present_opens_the_widget_in_its_own_full_size_tab(nb):
    page = nb.page
    in_notebook = page.locator(".jp-Notebook .ne-unit").first.bounding_box()
    panel = nb.present(0)
    panel.locator(".ne-network.ne-fill").wait_for()
    assert page.locator(".lm-TabBar-tab.lm-mod-current", has_text="Present: mlp_view.ipynb").count() >= 1
    presented = panel.locator(".ne-unit")
    assert presented.count() == 12
    assert presented.first.bounding_box()["width"] > in_notebook["width"]  # bigger cells: it fills the tab
    # The presented view shares the kernel-side widget: a click there reaches the gates.
    panel.get_by_role("button", name="net.2 unit 5: nonlinear", exact=True).click()
    panel.get_by_role("button", name="net.2 unit 5: forced linear", exact=True).wait_for()
    page.locator(".lm-TabBar-tab", has_text="mlp_view.ipynb").first.click()
    assert nb.kernel_states() == [[0, 0, 0, 0, 0, 1], [0] * 6]


def test_the_page_made_no_request_outside_the_server(nb):
    assert len(nb.rec.requests) > 20  # the log is recording
    assert nb.rec.external_requests() == []


BIG = """\
import torch
from torch import nn
import nonlin_explorer as ne
from nonlin_explorer.ui import NetworkView
layers = []
for k in range(8):
    layers += [nn.Conv1d(1000, 1000, 1, groups=1000), nn.ReLU()]
big = ne.linearize(nn.Sequential(*layers), torch.randn(2, 1000, 3))
big_view = NetworkView(big)
big_view"""
BIG_CHECK = 'print("BIG", [int(g.state.sum()) for g in ne.gates(big)])'


def test_a_big_network_shows_labelled_layer_strips_that_zoom_into_units(browser, lab_server):
    """8000 units: too many for a cell each, so an overview (a strip per layer, every layer labelled) that zooms."""
    context, rec = open_page(browser, lab_server)
    try:
        write_notebook(lab_server.root, "big_view.ipynb", [BIG, BIG_CHECK])
        nb = Notebook(rec, "big_view.ipynb").open()
        nb.run(0)
        page = rec.page
        view = page.locator(".ne-network[data-mode='overview']")
        view.wait_for(timeout=120_000)
        strips = view.locator(".ne-layer-strip")
        assert strips.count() == 8 and view.locator(".ne-unit").count() == 0  # no element per unit
        assert strips.nth(2).get_attribute("aria-label") == "5: 1000 units, 1000 nonlinear"  # nn.Sequential's names
        strips.nth(2).click()
        units = view.locator(".ne-unit")
        units.first.wait_for()
        assert units.count() == 1000 and units.first.bounding_box()["width"] >= 5  # readable cells
        unit_button(page, "5", 7, "nonlinear").click()
        unit_button(page, "5", 7, "forced linear").wait_for(timeout=2000)  # at once
        nb.run(1)
        nb.cell(1).locator(".jp-OutputArea-output", has_text="BIG [0, 0, 1, 0, 0, 0, 0, 0]").wait_for()
        view.get_by_role("button", name="all layers").click()
        strips.first.wait_for()
        assert view.locator(".ne-layer-strip").nth(2).get_attribute("aria-label") == "5: 1000 units, 999 nonlinear"
        assert rec.external_requests() == []
    finally:
        context.close()
