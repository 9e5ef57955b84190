"""The package's layering, checked: every import follows the layer table of docs/architecture.md, no import cycle
between its modules (lazy imports inside functions count too: they are dependencies), the compute core imports no UI
library, and the plumbing idioms live in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nonlin_explorer"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (anywhere in the file)."""
    mods = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                while name and name not in mods:
                    name = name.rsplit(".", 1)[0] if "." in name else ""
                if name and name != mod and not mod.startswith(name + "."):  # a package's own __init__ is fine
                    graph[mod].add(name)
    return graph


def layer_table(text: str) -> list[tuple[str, list[str]]]:
    """The rows of the markdown table headed ``| layer | modules |``: (layer, entries of its modules column)."""
    rows, inside = [], False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells[:2] == ["layer", "modules"]:
            inside = True
        elif inside and not cells:
            break
        elif inside and not set(cells[0]) <= {"-"}:
            rows.append((cells[0], re.findall(r"`([^`]+)`", cells[1])))
    return rows


def layer_of(module: str, table: list[tuple[str, list[str]]]) -> int | None:
    """The index of ``module``'s layer: the row with its most specific entry (``sweep/cli`` over ``sweep/``)."""
    best: tuple[int, int] | None = None  # (length of the entry, row)
    for row, (_, entries) in enumerate(table):
        for entry in entries:
            dotted = "nonlin_explorer." + entry.rstrip("/").replace("/", ".")
            if module == dotted or (entry.endswith("/") and module.startswith(dotted + ".")):
                if best is None or len(dotted) > best[0]:
                    best = (len(dotted), row)
    return None if best is None else best[1]


def layer_breaks(graph: dict[str, set[str]], table: list[tuple[str, list[str]]]) -> list[str]:
    """Every module in no layer, and every import of a module from a layer below its own."""
    problems = []
    for mod in sorted(graph):
        if mod == "nonlin_explorer":
            continue  # the re-export hub
        own = layer_of(mod, table)
        if own is None:
            problems.append(f"{mod} is in no layer of docs/architecture.md")
            continue
        for dep in sorted(graph[mod] - {"nonlin_explorer"}):
            theirs = layer_of(dep, table)
            if theirs is not None and theirs > own:
                problems.append(f"{mod} ({table[own][0]}) imports {dep} ({table[theirs][0]})")
    return problems


def test_every_import_follows_the_layers_of_docs_architecture():
    table = layer_table(ARCHITECTURE.read_text())
    assert [name for name, _ in table] == ["core", "analysis", "training", "apps", "command line"]
    assert layer_breaks(imports(), table) == []


def test_the_layer_check_names_an_upward_import_and_a_module_in_no_layer():
    table = [("core", ["gates"]), ("training", ["results", "sweep/"]), ("command line", ["sweep/cli"])]
    graph = {"nonlin_explorer.gates": {"nonlin_explorer.results"},
             "nonlin_explorer.sweep": {"nonlin_explorer.sweep.cli"},
             "nonlin_explorer.sweep.cli": {"nonlin_explorer.sweep", "nonlin_explorer.gates"},
             "nonlin_explorer.stray": set()}
    assert layer_breaks(graph, table) == [
        "nonlin_explorer.gates (core) imports nonlin_explorer.results (training)",
        "nonlin_explorer.stray is in no layer of docs/architecture.md",
        "nonlin_explorer.sweep (training) imports nonlin_explorer.sweep.cli (command line)",
    ]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if n == "nonlin_explorer" or n.endswith(".__init__"):
                continue  # the package's re-export hub: importing it is importing its parts
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle_between_the_packages_modules():
    cycle = find_cycle(imports())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_compute_core_imports_no_ui_library():
    ui_libraries = ("panel", "bokeh", "anywidget", "ipywidgets", "traitlets")
    for path in PACKAGE.rglob("*.py"):
        if "ui" in path.relative_to(PACKAGE).parts or path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad = [n for n in names if n.split(".")[0] in ui_libraries]
                assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_mode_and_hook_idioms_are_written_once():
    """model.eval() with its restore, and register_forward_hook with its removal, only in plumbing.py."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "plumbing.py":
            continue
        text = path.read_text()
        assert "register_forward_hook(" not in text and "register_forward_pre_hook(" not in text, path
        assert ".train(was" not in text, path


def test_readers_hold_a_session_through_its_public_contract():
    """Another object's lock is read nowhere: sessions are held with ``session.locked()`` or read by ``snapshot()``."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"(?<!\bself)\._lock\b", text), f"{path.relative_to(PACKAGE)} reads another's _lock"
        assert '"_lock"' not in text and "'_lock'" not in text, f"{path.relative_to(PACKAGE)} looks up _lock"


TESTS = PACKAGE.parent / "tests"


def imported_test_modules(source: str) -> list[str]:
    """The ``test_*`` modules a file imports, anywhere in it (``import test_x``, ``from test_x import f``,
    ``from tests.test_x import f``, ``from tests import test_x``, ``from . import test_x``), one name per import."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base] + [f"{base}.{a.name}" if base else a.name for a in node.names]
        else:
            continue
        hits = [n for n in names if any(part.startswith("test_") for part in n.split("."))]
        found += hits[:1]
    return found


def test_no_test_module_imports_another_test_module():
    """Shared test code lives in helper modules (``tests/tiny_models.py``, ``tests/ui/lab_helpers.py``,
    ``tests/ui/chart_exports.py``, ...), never in a test module that others import: that would collect and build the
    other file's module-level state again and tie one file's tests to another's private names."""
    found = {str(p.relative_to(TESTS)): imported_test_modules(p.read_text()) for p in sorted(TESTS.rglob("*.py"))}
    assert {path: names for path, names in found.items() if names} == {}


def test_the_test_import_check_names_every_form_of_import():
    source = ("import test_a\nfrom test_b import f\nfrom tests.test_c import g\nfrom tests import test_d\n"
              "from . import test_e\nimport tiny_models\nfrom page_checks import install\nimport pytest\n"
              "\ndef later():\n    from test_f import h\n")
    assert imported_test_modules(source) == ["test_a", "test_b", "tests.test_c", "tests.test_d", "test_e", "test_f"]
