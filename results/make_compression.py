"""Compute the stored compression result sets behind docs/compression.md.

    OMP_NUM_THREADS=1 nice -n 10 python results/make_compression.py shapes   # results/compression_shapes.nc
    OMP_NUM_THREADS=1 nice -n 10 python results/make_compression.py cases    # results/compression_cases.nc
    OMP_NUM_THREADS=1 nice -n 10 python results/make_compression.py gap      # results/compression_gap.nc
    OMP_NUM_THREADS=1 nice -n 10 python results/make_compression.py gap_erf  # results/compression_gap_erf.nc
    OMP_NUM_THREADS=1 nice -n 10 python results/make_compression.py approximation
    OMP_NUM_THREADS=1 nice -n 10 python results/make_compression.py all
    python results/make_compression.py relabel  # name the stored runs again by frame_shape's current rules

Each set is a sweep (``nonlin_explorer.sweep``, ``kind = "function"``) over the functions of
``nonlin_explorer.compression.studies``, run serially on one torch thread:

- ``shapes``: the exact optimum of random targets, centred (``w_mean`` 0: any tilt is the draw's) and with a mean
  (``w_mean`` 0.3 along e1), over N x d x M x seed: tilt, cosine and scale spread, shape name. The draw's tilt
  and scatter are what ``frame_shape`` compares a shape with before naming it.
- ``cases``: the named configurations of ``studies.CASES`` (centred, with a mean, zero-mean output weights,
  anisotropic at M = 4, 5), exact optimum and mean field, over seeds.
- ``gap``: the mean field against the exact optimum, plain and orientation-oracle ratio, over law x N x d x seed
  (M = 4); ``gap_erf``: the same for erf units (a set of its own: its points are the slow ones, 5-35 s each).
- ``approximation``: the simplification's cross-term error (RMS and largest found over the sphere) on centred
  targets over N x d x seed.

Shape names are stored as ``shape_index*`` into the set's ``shape_names`` attribute. ``relabel`` recomputes them
and the tilt thresholds from each run's stored numbers (``studies.relabel``: the names follow from the tilt, the
spreads and the extreme cosines, so new naming rules need no new optima) and records the command in the set's
``relabelled`` attribute; ``wall_seconds`` is the wall
time of the command that finished the set (a resumed run counts only its own part), ``points_seconds`` the sum of
every point's own time (all five sets: about 44 minutes of point time on one thread of a shared 2-core machine).
``--resume`` continues an interrupted set. The tables of docs/compression.md come from these files:
``python results/make_docs.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDIES = "nonlin_explorer.compression.studies"

#: The sets: the function each point calls, what stays fixed, the grid, the seeds.
SETS = {
    "shapes": {"function": f"{STUDIES}:shape_point", "base": {"restarts": 2},
               "grid": {"w_mean": [0.0, 0.3], "M": [2, 4], "d": [6, 10, 20], "N": [500, 1000, 2000, 4000, 8000]},
               "seeds": 5,
               "description": "exact optimum of random targets (a = (1 + g)/N, W = N(w_mean e1, I/d)): tilt, "
                              "cosine and scale spread, shape"},
    "cases": {"function": f"{STUDIES}:case_point", "base": {},
              "grid": {"case": None, "method": ["exact", "meanfield"]}, "seeds": 5,
              "description": "the configurations docs/compression.md discusses: exact optimum and mean field"},
    "gap": {"function": f"{STUDIES}:gap_point", "base": {"M": 4},
            "grid": {"law": ["isotropic+mean", "anisotropic"], "N": [1000, 2000, 4000, 8000], "d": [8, 12, 16]},
            "seeds": 5,
            "description": "mean field / exact optimum relative loss, plain and at the best orientation on the draw"},
    "gap_erf": {"function": f"{STUDIES}:gap_point", "base": {"M": 4},
                "grid": {"law": ["erf"], "N": [1000, 2000, 4000, 8000], "d": [8, 12, 16]}, "seeds": 5,
                "description": "mean field / exact optimum relative loss for erf units, plain and at the best "
                               "orientation on the draw"},
    "approximation": {"function": f"{STUDIES}:cross_term_point", "base": {"directions": 512},
                      "grid": {"N": [250, 500, 1000, 2000, 4000, 8000, 16000], "d": [5, 10, 20, 40, 80]}, "seeds": 5,
                      "description": "relative error of the mean-field cross term on centred targets (a = (1 + g)/N, "
                                     "W = N(0, I/d))"},
}


def spec(name: str, seeds: int | None = None) -> dict:
    """The sweep spec of set ``name``."""
    from nonlin_explorer.compression.studies import CASES

    cfg = SETS[name]
    grid = {k: (list(CASES) if v is None else list(v)) for k, v in cfg["grid"].items()}
    return {"kind": "function", "name": f"compression_{name}", "function": cfg["function"], "base": dict(cfg["base"]),
            "grid": grid, "seeds": seeds or cfg["seeds"], "threads": 1, "description": cfg["description"]}


#: The sets that store shape names (``shape_index*``), which ``relabel`` names again.
NAMED = ("shapes", "cases", "gap", "gap_erf")


def store_small(path: Path, ds=None, **attrs) -> None:
    """Rewrite a finished result file (or write ``ds`` over it) with ``attrs`` added and every variable compressed
    (zlib; strings as character arrays, which HDF5 can compress, unlike variable-length strings). Reads back
    identical."""
    from nonlin_explorer.results import read_netcdf

    ds = read_netcdf(path) if ds is None else ds
    ds.attrs.update(attrs)
    tmp = path.with_name(f".{path.name}.tmp")
    encoding = {v: {"zlib": True, "complevel": 6, **({"dtype": "S1"} if ds[v].dtype.kind in "UO" else {})}
                for v in ds.data_vars}
    ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=[*SETS, "all", "relabel"])
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the set's)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the result files")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted set")
    args = parser.parse_args(argv)
    import torch

    from nonlin_explorer import sweep
    from nonlin_explorer.compression.diagnostics import SHAPES

    torch.set_num_threads(1)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [f"results/{Path(__file__).name}", *given])
    if args.set == "relabel":
        from nonlin_explorer.compression.studies import relabel
        from nonlin_explorer.results import read_netcdf

        for name in NAMED:
            path = args.out / f"compression_{name}.nc"
            old = read_netcdf(path)
            ds = relabel(old)
            changed = sum(int((ds[v] != old[v]).sum()) for v in ds.data_vars if v.startswith("shape_index"))
            store_small(path, ds, shape_names=json.dumps(list(SHAPES)), relabelled=command)
            print(f"{path}: {changed} shape names changed", flush=True)
        return 0
    for name in (list(SETS) if args.set == "all" else [args.set]):
        path = args.out / f"compression_{name}.nc"
        t0 = time.perf_counter()
        ds = sweep.run(spec(name, args.seeds), workers=0, out=path, resume=args.resume, progress=False)
        wall = time.perf_counter() - t0
        store_small(path, command=command, result_set=name, shape_names=json.dumps(list(SHAPES)),
                    wall_seconds=round(wall, 1), points_seconds=round(float(ds["time"].sum()), 1))
        print(f"{path}: {int(ds.attrs['points_finished'])} of {int(ds.attrs['points'])} points finished "
              f"in {wall:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
