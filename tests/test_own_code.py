"""No module of the package assigns to an attribute of another library's modules or classes.

Replacing a function inside torch, Panel or Bokeh bets on private code of one release and changes it for every
other user of that library in the process. The rule, checked on every module's syntax tree (imports inside
functions count):

- **foreign**: a name bound by an import from outside the package (``import torch``, ``import panel as pn``,
  ``from torch import nn``, ``from torch.nn import Module``), a name assigned a foreign attribute chain
  (``mod = panel.io``), or a module fetched by name (``importlib.import_module(...)``, ``__import__(...)``);
- **caught**: ``x.attr = ...``, ``x.attr += ...``, ``del x.attr``, ``setattr(x, ...)`` and ``delattr(x, ...)``
  where ``x`` is foreign or an attribute or item chain starting from one (``nn.Module.f``, ``sys.modules["m"].f``);
- **allowed**: instances, which are the caller's or ours (a chain through a call: ``nn.Linear(2, 2).weight``, a name
  assigned a call's result, a parameter, ``self``); so setting a model's own submodules, as ``linearize`` does with
  ``setattr(parent, name, gate)`` on the model the user passes, is fine; and the attributes of two public Panel
  objects that are settings meant to be assigned: the configuration ``pn.config`` and the served tab's URL
  ``pn.state.location`` (see ``SETTINGS_OBJECTS``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nonlin_explorer"
PACKAGE_NAME = "nonlin_explorer"

#: Instances of other libraries whose attributes are public settings, meant to be assigned (full dotted origins):
#: Panel's configuration object (``pn.config``, or ``from panel.config import config``) and the served tab's URL
#: (``pn.state.location``, a ``Location`` whose parameters, ``search`` among them, are Panel's public API for the
#: address). Only their own attributes, one level down.
SETTINGS_OBJECTS = ("panel.config", "panel.config.config", "panel.state.location")

#: Calls that return a module by its name.
_MODULE_GETTERS = ("importlib.import_module", "__import__")


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of names and attributes, None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


class _Imports(ast.NodeVisitor):
    """Every name bound to another library's module or class: local name -> full dotted origin."""

    def __init__(self) -> None:
        self.foreign: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE_NAME:
                continue
            if alias.asname:
                self.foreign[alias.asname] = alias.name
            else:  # ``import a.b`` binds ``a``
                self.foreign[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or (node.module or "").split(".")[0] == PACKAGE_NAME or node.module == "__future__":
            return
        for alias in node.names:
            self.foreign[alias.asname or alias.name] = f"{node.module}.{alias.name}"


def _is_module_getter(node: ast.AST, foreign: dict[str, str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = _dotted(node.func)
    if name is None:
        return False
    head, _, rest = name.partition(".")
    full = ".".join(filter(None, [foreign.get(head, head), rest]))
    return full in _MODULE_GETTERS


def _aliases(tree: ast.AST, foreign: dict[str, str]) -> dict[str, str]:
    """Names assigned a foreign chain or a module fetched by name (anywhere in the module), added to ``foreign``."""
    found = dict(foreign)
    changed = True
    while changed:  # ``a = pn.io``, then ``b = a.notebook``
        changed = False
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            name = node.targets[0].id
            if name in found:
                continue
            origin = _origin(node.value, found)
            if origin is None and _is_module_getter(node.value, found):
                origin = "<module fetched by name>"
            if origin is not None:
                found[name] = origin
                changed = True
    return found


def _origin(node: ast.AST, foreign: dict[str, str]) -> str | None:
    """The full dotted origin of ``node`` when it is a chain of attributes and items starting from a foreign name or
    a module fetched by name; None for an instance (a chain through a call) or our own objects."""
    parts: list[str] = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
        else:
            parts.append("[]")
        node = node.value
    if isinstance(node, ast.Name) and node.id in foreign:
        root = foreign[node.id]
    elif _is_module_getter(node, foreign):
        root = "<module fetched by name>"
    else:
        return None
    return root + "".join(p if p == "[]" else f".{p}" for p in reversed(parts))


def _allowed(origin: str) -> bool:
    """A setting of a public settings object (``panel.config.inline``), not anything below one."""
    owner, _, attr = origin.rpartition(".")
    return owner in SETTINGS_OBJECTS and "[" not in attr


def _targets(node: ast.AST) -> list[ast.AST]:
    """The assignment targets of ``node``, tuples and starred targets unpacked."""
    if isinstance(node, ast.Assign):
        pending = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        pending = [node.target]
    elif isinstance(node, ast.Delete):
        pending = list(node.targets)
    else:
        return []
    out = []
    while pending:
        t = pending.pop()
        if isinstance(t, (ast.Tuple, ast.List)):
            pending.extend(t.elts)
        elif isinstance(t, ast.Starred):
            pending.append(t.value)
        else:
            out.append(t)
    return out


def violations(source: str) -> list[str]:
    """``"line N: <code>"`` for every assignment into another library's module or class in ``source``."""
    tree = ast.parse(source)
    imports = _Imports()
    imports.visit(tree)
    foreign = _aliases(tree, imports.foreign)
    found = []

    def check(node: ast.AST, target: ast.AST) -> None:
        origin = _origin(target, foreign)
        if origin is not None and not _allowed(origin):
            found.append(f"line {node.lineno}: {ast.unparse(node).splitlines()[0]} (into {origin})")

    for node in ast.walk(tree):
        for target in _targets(node):
            if isinstance(target, ast.Attribute):
                check(node, target)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr")
                and node.func.id not in foreign and node.args):
            check(node, node.args[0])
    return sorted(found, key=lambda s: int(s.split(":")[0].split()[1]))


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


# -- the rule, on small sources ----------------------------------------------------------------------------------

CAUGHT = {
    "a module's function replaced": "import torch\ntorch.relu = lambda x: x",
    "a module reached through an alias": "import torch.nn.functional as F\nF.gelu = None",
    "a submodule attribute": "import torch\ntorch.backends.cudnn.benchmark = True",
    "a class's method replaced": "from torch import nn\nnn.Module.__call__ = None",
    "a class imported by name": "from torch.nn import Module\nModule.forward = None",
    "an augmented assignment": "import math\nmath.pi += 1",
    "an annotated assignment": "import math\nmath.tau: float = 6.0",
    "a deletion": "import math\ndel math.pi",
    "setattr on a module": "import math\nsetattr(math, 'pi', 3)",
    "delattr on a class": "from collections import OrderedDict\ndelattr(OrderedDict, 'move_to_end')",
    "an import inside a function": "def f():\n    import panel.reactive as reactive\n    reactive.Syncable._x = 1",
    "a module by name": "import importlib\nm = importlib.import_module('panel.io')\nm.push = None",
    "a module by name, directly": "import importlib\nimportlib.import_module('panel.io').push = None",
    "__import__": "mod = __import__('json')\nmod.dumps = None",
    "an alias of a module attribute": "import panel as pn\nio = pn.io\nio.push = None",
    "sys.modules": "import sys\nsys.modules['json'].dumps = None",
    "a tuple target": "import math\na, math.e = 1, 2",
    "panel outside pn.config": "import panel as pn\npn.state.cache = {}",
    "below a setting of pn.config": "import panel as pn\npn.config.param.x = 1",
}

ALLOWED = {
    "a model's own submodule (linearize)": "def put(parent, name, gate):\n    setattr(parent, name, gate)",
    "an instance's attribute": "from torch import nn\nlayer = nn.Linear(2, 2)\nlayer.weight = None",
    "an instance made inline": "from torch import nn\nnn.Linear(2, 2).bias = None",
    "self": "class A:\n    def f(self):\n        self.x = 1",
    "Panel's public config": "import panel as pn\npn.config.sizing_mode = 'stretch_width'",
    "Panel's config imported by name": "from panel.config import config\nconfig.inline = True",
    "Panel's config, augmented": "import panel as pn\npn.config.raw_css += ['a {}']",
    "the served tab's URL": "import panel as pn\nlocation = pn.state.location\nlocation.search = '?a=1'",
    "our own modules": "from nonlin_explorer import gates\ngates.X = 1\nfrom . import trainer\ntrainer.Y = 2",
    "our own package": "import nonlin_explorer\nnonlin_explorer.Z = 1",
    "a dict item of a module's mapping": "import os\nos.environ['A'] = '1'",
    "a local name that shadows nothing": "x = object()\nx.y = 1",
}


@pytest.mark.parametrize("source", CAUGHT.values(), ids=CAUGHT.keys())
def test_the_rule_catches_assignments_into_another_librarys_modules_and_classes(source):
    found = violations(source)
    assert len(found) == 1, found
    assert found[0].startswith(f"line {len(source.splitlines())}:"), found  # the offending line is the last one


@pytest.mark.parametrize("source", ALLOWED.values(), ids=ALLOWED.keys())
def test_the_rule_allows_instances_our_own_modules_and_panels_config(source):
    assert violations(source) == []


# -- the rule, on the package ----------------------------------------------------------------------------------

def test_no_module_assigns_into_another_librarys_modules_or_classes():
    found = {}
    for path in _modules():
        name = path.relative_to(PACKAGE).as_posix()
        bad = violations(path.read_text())
        if bad:
            found[name] = bad
    assert not found, "assignments into other libraries:\n" + "\n".join(
        f"{name} {line}" for name, lines in found.items() for line in lines)
