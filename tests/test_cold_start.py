"""``import nonlin_explorer`` stays cheap: the layers that pull in xarray, scipy.stats, the compression package, the
sweeps, the training loop and the UI load on first use (``benchmarks/bench_cold_start.py`` times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Imported only when a name that needs them is used.
HEAVY = ("scipy.stats", "xarray", "pandas", "nonlin_explorer.compression", "nonlin_explorer.sweep",
         "nonlin_explorer.results", "nonlin_explorer.training", "nonlin_explorer.advantage", "nonlin_explorer.ui")


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_package_loads_none_of_the_heavy_layers():
    loaded = _modules_after("import nonlin_explorer")
    assert not [m for m in HEAVY if m in loaded]


def test_the_lazy_names_load_on_first_use_and_the_core_names_stay_functions():
    loaded = _modules_after(
        "import nonlin_explorer as ne\n"
        "assert ne.TrainConfig.__name__ == 'TrainConfig' and ne.compression.__name__ == 'nonlin_explorer.compression'\n"
        "assert callable(ne.read_netcdf) and callable(ne.train) and ne.models.__name__ == 'nonlin_explorer.models'\n"
        "import types\n"
        "assert not any(isinstance(getattr(ne, n), types.ModuleType) for n in "
        "('linearize', 'gates', 'collapse', 'core_network'))\n"
        "assert set(ne.__all__) <= set(dir(ne))")
    assert {"nonlin_explorer.compression", "nonlin_explorer.training", "xarray"} <= loaded
