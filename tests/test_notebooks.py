"""Every notebook runs top to bottom on a CPU, headless; its last cells assert the key results; saved after Run All
it stays small enough to open, diff and send (at most 1 MB)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: Largest notebook, saved after Run All (nbformat's JSON, as JupyterLab writes it).
MAX_BYTES = 1_000_000


def test_there_are_notebooks():
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_its_checks_pass(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    size = len(nbformat.writes(nb))
    assert size <= MAX_BYTES, f"{path.name} is {size:,} bytes after Run All (at most {MAX_BYTES:,})"
