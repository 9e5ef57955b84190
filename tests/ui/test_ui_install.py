"""Packaging: a plain install makes JupyterLab load the extension; the wheel carries the built front end."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import nonlin_explorer

ROOT = Path(__file__).resolve().parents[2]
EXT = "share/jupyter/labextensions/nonlin-explorer"


def test_jupyter_lists_the_extension_enabled_and_ok():
    out = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True,
                         text=True, check=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(rf"nonlin-explorer v{re.escape(nonlin_explorer.__version__)} enabled\s+OK", text), text


@pytest.mark.slow
def test_the_wheel_contains_the_widget_bundle_and_the_labextension(tmp_path):
    # No build isolation: hatchling and hatch-jupyter-builder come with the test extras; the build hook
    # finds the built front end (./dev.sh setup) and skips npm.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("nonlin_explorer-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    data = f"nonlin_explorer-{nonlin_explorer.__version__}.data/data/{EXT}"
    assert {"nonlin_explorer/static/network_view.js", "nonlin_explorer/static/network_view.css"} <= names
    assert {f"{data}/package.json", f"{data}/install.json", f"{data}/static/style.js"} <= names
    assert any(re.fullmatch(rf"{re.escape(data)}/static/remoteEntry\.[0-9a-f]+\.js", n) for n in names)
    assert not any(n.startswith("nonlin_explorer/labextension/") for n in names)  # shipped once
    assert "nonlin_explorer/ui/network_view.py" in names
