"""NetworkView in Jupyter Notebook 7 (not JupyterLab): the widget renders from the installed front end, a click
changes the gate in the kernel, and nothing leaves the machine."""

from __future__ import annotations

import pytest
from lab_helpers import CHECK_CELL, Notebook, mlp_view_cell, open_page, start_lab_server, unit_button, write_notebook

pytestmark = pytest.mark.ui

SETUP = mlp_view_cell(width=5)


@pytest.fixture(scope="module")
def notebook_server(tmp_path_factory):
    try:
        server = start_lab_server(tmp_path_factory.mktemp("notebook7"), app="notebook")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


def test_network_view_in_notebook_7(browser, notebook_server):
    context, rec = open_page(browser, notebook_server)
    try:
        write_notebook(notebook_server.root, "view_nb7.ipynb", [SETUP, CHECK_CELL])
        nb = Notebook(rec, "view_nb7.ipynb", app="notebook").open()
        assert rec.page.locator("#main-panel, .jp-NotebookApp, #top-panel").count() >= 1  # Notebook 7's shell
        assert "/notebooks/" in rec.page.url and "/lab" not in rec.page.url
        nb.run(0)
        page = rec.page
        unit_button(page, "net.2", 0, "nonlinear").wait_for(timeout=120_000)
        assert page.locator(".ne-network .ne-unit").count() == 10
        assert page.locator(".ne-network .ne-count").inner_text() == "10 of 10 units nonlinear"

        unit_button(page, "net.2", 2, "nonlinear").click()
        unit_button(page, "net.2", 2, "forced linear").wait_for()
        assert nb.kernel_states() == [[0, 0, 1, 0, 0], [0] * 5]
        unit_button(page, "net.4", 4, "nonlinear").click()
        unit_button(page, "net.4", 4, "forced linear").wait_for()
        assert nb.kernel_states() == [[0, 0, 1, 0, 0], [0, 0, 0, 0, 1]]
        assert page.locator(".ne-network .ne-count").inner_text() == "8 of 10 units nonlinear"
        assert rec.external_requests() == []
        assert [e for e in rec.console_errors if "favicon" not in e] == []
    finally:
        context.close()
