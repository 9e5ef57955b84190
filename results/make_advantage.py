"""Compute the stored nonlinear-advantage result sets (early vs late linearization, with a plain control).

    OMP_NUM_THREADS=1 nice -n 15 python results/make_advantage.py mlp     # results/advantage_mlp.nc (+ _plain.nc)
    OMP_NUM_THREADS=1 nice -n 15 python results/make_advantage.py cnn     # results/advantage_cnn.nc (+ _plain.nc)

Each set is a sweep (``nonlin_explorer.sweep``) over schedule x lambda x seed, every run with the same budget of
epochs (the cap), evaluated once per epoch; the per-epoch series are stored, with ``units_changed`` (units whose
linear/nonlinear state changed since the previous evaluation) for the convergence criterion of the prior. The
plain control trains the same network without a prior for the same budget. Runs are serial on one torch thread, so
a seed gives the same numbers bit for bit on the same machine and torch build. ``--resume`` continues an
interrupted set. The tables in docs/nonlinear_advantage.md come from these files: ``python results/make_docs.py``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The configurations: what stays fixed, the lambdas, the seeds.
SETS = {
    "mlp": {
        "base": {"dataset": "mnist1d", "dataset_kwargs": {"num_samples": 4000}, "model": "mlp",
                 "model_kwargs": {"width": 64, "depth": 4}, "epochs": 40, "switch_epoch": 20, "lr": 1e-2,
                 "slope_lr": 0.03, "eval_every": 25},
        "sparsities": [3e-4, 1e-3, 2e-3, 4e-3, 1e-2, 3e-2, 6e-2],
        "seeds": 5,
    },
    "cnn": {
        "base": {"dataset": "mnist1d", "dataset_kwargs": {"num_samples": 4000}, "model": "cnn",
                 "model_kwargs": {"width": 8, "depth": 3}, "epochs": 20, "switch_epoch": 10, "lr": 1e-2,
                 "slope_lr": 0.03, "eval_every": 25},
        "sparsities": [3e-3, 1e-2, 3e-2],
        "seeds": 5,
    },
}

#: The metric factory that records ``units_changed`` at every evaluation.
STATE_METRIC = "nonlin_explorer.advantage:unit_state_changes"


def specs(name: str, seeds: int | None = None) -> tuple[dict, dict]:
    """The sweep specs of set ``name``: (early vs late over lambda, plain control)."""
    cfg = SETS[name]
    n = seeds or cfg["seeds"]
    common = {"kind": "training", "seeds": n, "series": True, "metrics": [STATE_METRIC], "threads": 1}
    grid = {**common, "name": f"advantage_{name}", "base": dict(cfg["base"]),
            "grid": {"schedule": ["early", "late"], "sparsity": list(cfg["sparsities"])},
            "description": "early vs late linearization at the same budget (one evaluation per epoch)"}
    plain_base = {**cfg["base"], "schedule": "custom", "switch_epoch": cfg["base"]["epochs"], "sparsity": 0.0}
    plain = {**common, "name": f"advantage_{name}_plain", "base": plain_base, "grid": {},
             "description": "plain control: the same network and budget, the prior never on"}
    return grid, plain


def store_small(path: Path, **attrs) -> None:
    """Rewrite a finished result file with ``attrs`` added and its per-epoch series compressed (zlib)."""
    import os

    from nonlin_explorer.results import read_netcdf

    ds = read_netcdf(path)
    ds.attrs.update(attrs)
    tmp = path.with_name(f".{path.name}.tmp")
    series = {v: {"zlib": True, "complevel": 6} for v in ds.data_vars if v.startswith("series_")}
    ds.to_netcdf(tmp, engine="netcdf4", encoding=series)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the set's)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the result files")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted set")
    args = parser.parse_args(argv)
    from nonlin_explorer import sweep

    given = sys.argv[1:] if argv is None else list(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [f"results/{Path(__file__).name}", *given])
    grid, plain = specs(args.set, args.seeds)
    for spec, path in ((plain, args.out / f"advantage_{args.set}_plain.nc"),
                       (grid, args.out / f"advantage_{args.set}.nc")):
        ds = sweep.run(spec, workers=0, out=path, resume=args.resume)
        store_small(path, command=command, result_set=args.set)
        print(f"{path}: {int(ds.attrs['points_finished'])} of {int(ds.attrs['points'])} points finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
