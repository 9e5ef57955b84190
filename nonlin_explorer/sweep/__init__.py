"""Sweeps: grids (and random draws) of training, compression or user-function runs, each point one Dask task,
gathered into one ``xr.Dataset`` with a dimension per swept parameter plus ``seed``.

    from nonlin_explorer import sweep
    ds = sweep.run("spec.toml", out="results.nc")            # LocalCluster, one worker per core
    ds = sweep.run(spec, client="tcp://scheduler:8786", out="results.nc", resume=True)

See :mod:`nonlin_explorer.sweep.spec` for the specification format; the command line is
:mod:`nonlin_explorer.sweep.cli` (``nonlin-explorer sweep``).
"""

from nonlin_explorer.sweep.engine import local_cluster, run, task_for
from nonlin_explorer.sweep.gather import assemble, records_from_dataset
from nonlin_explorer.sweep.plot import plot_sweep
from nonlin_explorer.sweep.runners import DONE, STATUSES, run_point
from nonlin_explorer.sweep.spec import SpecError, SweepSpec, load_spec, parse_spec

__all__ = [
    "DONE",
    "STATUSES",
    "SpecError",
    "SweepSpec",
    "assemble",
    "load_spec",
    "local_cluster",
    "parse_spec",
    "plot_sweep",
    "records_from_dataset",
    "run",
    "run_point",
    "task_for",
]
