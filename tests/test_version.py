"""One version number: nonlin_explorer/_version.py defines it; js/package.json (and its lockfile) mirror it."""

import json
from pathlib import Path

import nonlin_explorer

JS = Path(__file__).resolve().parent.parent / "js"


def test_js_package_version_is_the_python_version():
    assert json.loads((JS / "package.json").read_text())["version"] == nonlin_explorer.__version__


def test_js_lockfile_version_is_the_python_version():
    lock = json.loads((JS / "package-lock.json").read_text())
    assert lock["version"] == lock["packages"][""]["version"] == nonlin_explorer.__version__


def test_built_labextension_has_the_python_version():
    built = Path(nonlin_explorer.__file__).parent / "labextension" / "package.json"
    if built.exists():  # built by pip install / ./dev.sh setup
        assert json.loads(built.read_text())["version"] == nonlin_explorer.__version__
