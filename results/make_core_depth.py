"""Compute the stored core-network depth grid: late-linearized MLPs trained until the prior converges.

    OMP_NUM_THREADS=1 nice -n 10 python results/make_core_depth.py     # results/core_depth.nc

A sweep (``nonlin_explorer.sweep``, kind "function") over dataset x depth x width x lambda x seed; every run is
:func:`nonlin_explorer.core_depth.train_to_convergence`: plain ReLU training for ``switch_epoch`` epochs, then the
prior with both learning rates halving every ``half_life`` epochs, stopped as converged when no unit changed state
(linear / nonlinear) in ``patience`` per-epoch evaluations in a row (not before ``min_prior_epochs`` of prior), or
at ``max_epochs``. A run that hits the cap is stored with status "not converged" (a failed or diverged run keeps
its status), so the tables never mix it with converged runs. Runs are serial on one torch thread: a seed gives the
same numbers bit for bit on the same machine and torch build. The sweep's own file lives in results/work/ (not
tracked) so that ``--resume`` continues an interrupted grid; results/core_depth.nc is written from it at the end.
The table in docs/nonlinear_advantage.md comes from it: ``python results/make_docs.py``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: What stays fixed in every run (TrainConfig fields and the stopping rule of train_to_convergence).
BASE = {"model": "mlp", "lr": 1e-2, "slope_lr": 0.03, "switch_epoch": 20, "max_epochs": 170, "half_life": 10,
        "patience": 5, "min_prior_epochs": 20}
#: The grid: tasks of increasing difficulty, base depths and widths, two strengths of the prior.
GRID = {"dataset": ["digits", "spirals", "mnist1d"], "model_kwargs.depth": [2, 4, 8],
        "model_kwargs.width": [32, 128], "sparsity": [3e-3, 1e-2]}
SEEDS = 5
FUNCTION = "nonlin_explorer.core_depth:train_to_convergence"


def spec(seeds: int = SEEDS, grid: dict | None = None) -> dict:
    """The sweep spec of the grid (``grid`` replaces the default grid, e.g. for a CI-sized rerun)."""
    return {"kind": "function", "function": FUNCTION, "name": "core_depth", "seeds": seeds, "threads": 1,
            "base": dict(BASE), "grid": dict(GRID if grid is None else grid),
            "description": "late linearization trained until the prior converges (no unit changed state for "
                           "`patience` per-epoch evaluations) or max_epochs"}


def finalize(ds):
    """The stored set: status "not converged" for finished runs that hit the cap, the per-layer counts as one
    variable along ``gate_layer``, train metrics described as what they are, labels from labels.LABELS."""
    import xarray as xr

    from nonlin_explorer.core_depth import MAX_LAYERS
    from nonlin_explorer.labels import LABELS, label

    status = ds["status"].values.astype(object)
    capped = (status == "finished") & ~(ds["converged"].values == 1)
    status[capped] = "not converged"
    ds["status"] = (ds["status"].dims, status.astype(str),
                    {"long_name": "finished (the prior converged), not converged (hit max_epochs), failed or "
                                  "pending", "units": "1"})
    names = [f"nonlinear_layer{i + 1}" for i in range(MAX_LAYERS)]
    per_layer = xr.concat([ds[n] for n in names], dim="gate_layer").transpose(*ds["status"].dims, "gate_layer")
    ds = ds.drop_vars(names).assign_coords(gate_layer=np.arange(1, MAX_LAYERS + 1))
    ds["nonlinear_per_layer"] = per_layer.assign_coords(gate_layer=ds.gate_layer)
    for name in ("dataset", "converged", "prior_evaluations", "last_change_epoch", "gate_layer",
                 "nonlinear_per_layer"):
        ds[name].attrs.update(long_name=LABELS[name][0], units=LABELS[name][1])
    ds["epochs"].attrs.update(long_name="epochs trained (plain, then under the prior)", units="epochs")
    for name, what in (("train_acc", "accuracy"), ("train_loss", "cross-entropy")):
        ds[name].attrs.update(long_name=f"{what} of the final model on the whole training set (eval mode)")
    return label(ds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"number of seeds (default {SEEDS})")
    parser.add_argument("--out", type=Path, default=HERE / "core_depth.nc", help="the result file")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted grid")
    args = parser.parse_args(argv)
    from nonlin_explorer import sweep
    from nonlin_explorer.results import read_netcdf

    given = sys.argv[1:] if argv is None else list(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [f"results/{Path(__file__).name}", *given])
    work = args.out.parent / "work" / f"{args.out.stem}.sweep.nc"
    work.parent.mkdir(exist_ok=True)
    ds = sweep.run(spec(args.seeds), workers=0, out=work, resume=args.resume)
    ds = finalize(read_netcdf(work))
    ds.attrs.update(command=command, result_set="core_depth")
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    ds.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, args.out)
    counts = {s: int(np.sum(ds.status.values == s)) for s in np.unique(ds.status.values)}
    print(f"{args.out}: {counts}, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
