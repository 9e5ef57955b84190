"""Helpers for browser tests of Panel apps inside a real JupyterLab (fixtures: tests/ui/conftest.py).

Generic, for any Panel app shown by a notebook cell: open a notebook whose cells are written to disk first,
run a cell, wait for its Panel output to render, find widgets inside one cell's output by label or CSS
class, and read the value of a Python expression from the kernel (a scratch cell, edited and run in the
page, writes it as JSON to a file the test reads).

Panel renders through Bokeh, whose components live in open shadow roots; Playwright's CSS, label and text
locators pierce them.
"""

from __future__ import annotations

import ast
import json
import time
import urllib.request
import uuid
from pathlib import Path

from lab_helpers import Notebook, RecordedPage, write_notebook

#: The import cell for Panel in a notebook. inline=True embeds Bokeh/Panel's JS and CSS in the output: without it
#: Panel loads them from cdn.bokeh.org and cdn.holoviz.org (nothing renders offline).
PANEL_SETUP = "import panel as pn\npn.extension(inline=True)"
#: The last cell of the notebooks written by :func:`open_panel_notebook`; :meth:`PanelNotebook.evaluate`
#: replaces its source each time.
SCRATCH = "# scratch: PanelNotebook.evaluate writes here"


class PanelNotebook(Notebook):
    """A notebook open in JupyterLab whose cells show Panel apps."""

    def __init__(self, rec: RecordedPage, path: str):
        super().__init__(rec, path)
        self.evaluations = 0

    def output(self, index: int):
        """The output area of cell ``index``."""
        return self.cell(index).locator(".jp-OutputArea")

    def wait_panel(self, index: int, text: str | None = None, timeout: float = 90.0):
        """Wait until cell ``index`` shows a rendered Panel/Bokeh root (and ``text`` in it, when given, e.g. a
        button's label); returns the output locator. Fails early with the output's text on a Python error."""
        out = self.output(index)
        # Bokeh draws a root's view into the (display: contents) element that holds the data-root-id.
        root = out.locator(".jp-OutputArea-output [data-root-id] > *").first
        marker = root if text is None else out.get_by_text(text, exact=True).first
        error = out.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                            has_text="Error")
        deadline_ms = timeout * 1000
        step = 500
        waited = 0
        while True:
            try:
                if text is None:  # attached, and drawn with some height
                    marker.wait_for(state="attached", timeout=step)
                    box = marker.bounding_box()
                    if box is None or box["height"] < 50:
                        raise TimeoutError("not drawn yet")
                else:
                    marker.wait_for(timeout=step)
                return out
            except Exception:
                waited += step
                if error.count():
                    raise AssertionError(f"cell {index} failed:\n{error.first.inner_text()}") from None
                if waited >= deadline_ms:
                    raise AssertionError(f"cell {index}: no Panel output{f' with {text!r}' if text else ''} "
                                         f"after {timeout:.0f} s; output: {out.inner_text()[:2000]!r}") from None

    def widget(self, index: int, label: str):
        """The input labelled ``label`` (exactly) in cell ``index``'s output."""
        return self.output(index).get_by_label(label, exact=True)

    def by_class(self, index: int, css_class: str):
        """Elements with ``css_class`` (a Panel ``css_classes`` entry) in cell ``index``'s output."""
        return self.output(index).locator(f".{css_class}")

    def button(self, index: int, name: str):
        return self.output(index).get_by_role("button", name=name, exact=True)

    def type_into(self, index: int, label: str, text: str) -> None:
        """Replace a text input's value and commit it (Enter), as a user would."""
        box = self.widget(index, label)
        box.fill(text)
        box.press("Enter")

    def set_source(self, index: int, source: str) -> None:
        """Replace cell ``index``'s source by typing into its editor."""
        editor = self.cell(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(source)

    def evaluate(self, expr: str, timeout: float = 60.0):
        """The value of the Python expression ``expr`` in the kernel (JSON-serialisable). The scratch cell (the
        notebook's last cell) is edited and run in the page; it writes the value to a file next to the lab's
        root, which is read here (printed output is not reliable while Panel's comms are busy)."""
        last = self.page.locator(".jp-Notebook .jp-Cell").count() - 1
        self.evaluations += 1
        folder = self.rec.server.root.parent / "panel_lab_values"
        folder.mkdir(exist_ok=True)
        # A fresh name each time: notebooks of other tests (same lab server) write into the same folder.
        name = f"{Path(self.path).stem}-{self.evaluations}-{uuid.uuid4().hex[:8]}"
        path, tmp = folder / f"{name}.json", folder / f"{name}.tmp"
        self.set_source(last, f"import json as _j, os as _os; _j.dump({expr}, open({str(tmp)!r}, 'w')); "
                              f"_os.replace({str(tmp)!r}, {str(path)!r})")
        self.run(last)
        err = self.cell(last).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        deadline = time.monotonic() + timeout
        while not path.exists():
            if err.count() or time.monotonic() > deadline:
                detail = err.first.inner_text() if err.count() else "no value written"
                raise AssertionError(f"evaluating {expr!r} in the kernel failed:\n{detail}")
            time.sleep(0.05)
        return json.loads(path.read_text())

    def kernel_id(self) -> str:
        """The id of the kernel of this notebook's session (the lab server's REST API)."""
        server = self.rec.server
        with urllib.request.urlopen(f"{server.base}/api/sessions?token={server.token}", timeout=30) as r:
            (kernel,) = [s["kernel"]["id"] for s in json.loads(r.read()) if s["path"] == self.path]
        return kernel

    def query(self, expr: str, timeout: float = 30.0):
        """The value of ``expr`` (JSON-serialisable) in the notebook's kernel, asked by a second client of the same
        kernel (its connection file, in the lab's runtime folder) instead of through the page: fast even when the
        page is busy drawing. The page sees nothing of it (JupyterLab shows only its own requests' outputs)."""
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(self.rec.server.root.parent / "runtime" /
                                                          f"kernel-{self.kernel_id()}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            reply = client.execute_interactive("", store_history=False, timeout=timeout, output_hook=lambda msg: None,
                                               user_expressions={"v": f"__import__('json').dumps({expr})"})
        finally:
            client.stop_channels()
        value = reply["content"].get("user_expressions", {}).get("v", {})
        if value.get("status") != "ok":
            raise AssertionError(f"evaluating {expr!r} in the kernel failed: {value or reply['content']}")
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))  # the repr of the JSON text

    def wait_value(self, expr: str, predicate, what: str, timeout: float = 90.0, direct: bool = False):
        """Evaluate ``expr`` (through the page, or :meth:`query` when ``direct``) until ``predicate(value)`` holds;
        returns that value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.query(expr) if direct else self.evaluate(expr)
            if predicate(value):
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; last value of {expr}: {value!r}")


def open_panel_notebook(rec: RecordedPage, root: Path, name: str, cells: list[str],
                        cls: type[PanelNotebook] = PanelNotebook) -> PanelNotebook:
    """Write a notebook (``cells`` then a scratch cell) under the lab's root and open it (as a ``cls``, a
    :class:`PanelNotebook` subclass with app-specific helpers)."""
    write_notebook(root, name, [*cells, SCRATCH])
    nb = cls(rec, name)
    nb.open()
    return nb
