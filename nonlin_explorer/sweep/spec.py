"""Sweep specifications: which parameters vary (a grid, random draws, seeds) and what stays fixed.

A spec is a dict (or a TOML/JSON file holding one)::

    kind = "training"            # "training" (TrainConfig fields), "compression", or "function"
    seeds = [0, 1, 2]            # or seeds = 3 for 0, 1, 2: the `seed` dimension
    series = false               # also keep each point's time series
    track_paths = true           # training only: record average path length at each evaluation (default)
    metrics = ["pkg.mod:factory"]  # training only: more metrics, factory(model, example_input) -> {name: fn}

    [base]                       # fixed values
    dataset = "spirals"
    epochs = 2
    model_kwargs = { width = 16, depth = 2 }

    [grid]                       # one dimension per key
    sparsity = [0.0, 1e-3, 1e-2]
    schedule = ["early", "late"]
    "model_kwargs.width" = [16, 32]

    samples = 4                  # random draws: the `sample` dimension
    random_seed = 0
    [random]
    lr = { log_uniform = [1e-4, 1e-2] }

Nested values are addressed with dotted keys (``model_kwargs.width``); their dimension is named by the last
part (``width``) unless that clashes, then by the whole key with underscores (``model_kwargs_width``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import itertools
import json
import math
import numbers
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nonlin_explorer.netcdf import to_json
from nonlin_explorer.validation import MAX_SEED, check_name

KINDS = ("training", "compression", "function")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
TOP_LEVEL = ("kind", "name", "description", "function", "seeds", "base", "grid", "random", "samples",
             "random_seed", "series", "metrics", "track_paths", "threads")

#: Compression parameters: plain keys, and tables whose entries go to one function.
COMPRESSION_KEYS = ("N", "M", "d", "method", "activation", "device")
COMPRESSION_TABLES = ("target", "compress", "sgd")

#: Names a swept dimension may not take (dimensions, variables and coordinates of every result set).
RESERVED = frozenset({"seed", "sample", "eval", "iteration", "status", "error", "key", "provenance",
                      "series_length", "series_step", "series_epoch", "time"})


class SpecError(ValueError):
    """A sweep specification that cannot run, with a message saying what to change."""


@dataclass(frozen=True)
class GridParameter:
    """A swept key, its dimension name and its values."""

    key: str
    dim: str
    values: tuple


@dataclass(frozen=True)
class RandomParameter:
    """A randomly drawn key: ``dist`` is one of :data:`DISTRIBUTIONS`, ``args`` its bounds or choices."""

    key: str
    name: str
    dist: str
    args: tuple

    def draw(self, random_seed: int, sample: int):
        """The value for ``sample``: depends only on the seed, the sample index and the key (stable)."""
        rng = np.random.default_rng([random_seed, sample, zlib.crc32(self.key.encode())])
        if self.dist == "uniform":
            return float(rng.uniform(*self.args))
        if self.dist == "log_uniform":
            lo, hi = self.args
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.dist == "int_uniform":
            lo, hi = self.args
            return int(rng.integers(lo, hi, endpoint=True))
        return self.args[int(rng.integers(len(self.args)))]


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its position in the result set and everything the task needs."""

    index: tuple[int, ...]
    labels: dict[str, Any]
    params: dict[str, Any]
    seed: int
    key: str


#: The most points one sweep may have (checked before the grid is expanded: a typo of 1000 x 1000 fails at once).
MAX_POINTS = 100_000


@dataclass
class SweepSpec:
    """A parsed, checked specification (build it with :func:`parse_spec` or :func:`load_spec`)."""

    kind: str
    base: dict[str, Any]
    grid: list[GridParameter]
    random: list[RandomParameter]
    samples: int
    random_seed: int
    seeds: tuple[int, ...]
    series: bool = False
    metrics: tuple[str, ...] = ()
    track_paths: bool = True
    function: str | None = None
    threads: int = 1
    name: str = ""
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def dims(self) -> tuple[str, ...]:
        """Result-set dimensions, in order: the grid keys, then ``sample`` (with random keys), then ``seed``."""
        return tuple(p.dim for p in self.grid) + (("sample",) if self.random else ()) + ("seed",)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(p.values) for p in self.grid) + ((self.samples,) if self.random else ()) + (
            len(self.seeds),)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def series_dim(self) -> str | None:
        return {"training": "eval", "compression": "iteration"}.get(self.kind)

    def parameters(self) -> dict[str, str]:
        """Each swept dimension or coordinate name and the key it sets."""
        return {**{p.dim: p.key for p in self.grid}, **{r.name: r.key for r in self.random}}

    def random_values(self) -> dict[str, list]:
        """The drawn values of each random key, one per sample (coordinates along ``sample``)."""
        return {r.name: [r.draw(self.random_seed, i) for i in range(self.samples)] for r in self.random}

    def points(self) -> list[Point]:
        """Every point of the sweep, in row-major order of :attr:`dims`."""
        drawn = self.random_values()
        ranges = [range(n) for n in self.shape]
        out = []
        for index in itertools.product(*ranges):
            flat = dict(self.base)
            labels: dict[str, Any] = {}
            for p, i in zip(self.grid, index):
                _assign(flat, p.key, p.values[i])
                labels[p.dim] = p.values[i]
            if self.random:
                s = index[len(self.grid)]
                labels["sample"] = s
                for r in self.random:
                    _assign(flat, r.key, drawn[r.name][s])
            seed = self.seeds[index[-1]]
            labels["seed"] = seed
            params = _unflatten(flat)
            out.append(Point(index=index, labels=labels, params=params, seed=seed,
                             key=point_key(self.kind, self.function, params, seed)))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as given (JSON-friendly), for provenance."""
        return self.raw


def point_key(kind: str, function: str | None, params: Mapping[str, Any], seed: int) -> str:
    """A stable identity for a point: what it computes, not where it sits in the grid."""
    blob = json.dumps({"kind": kind, "function": function, "params": params, "seed": seed},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


# -- loading --------------------------------------------------------------------------------------------

def load_spec(spec) -> SweepSpec:
    """A :class:`SweepSpec` from a spec, a dict, or the path of a TOML or JSON file."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return parse_spec(read_spec_file(spec), source=str(spec))
    if isinstance(spec, Mapping):
        return parse_spec(spec)
    raise SpecError(f"a sweep spec must be a dict or the path of a .toml/.json file, got {type(spec).__name__}")


def read_spec_file(path) -> dict[str, Any]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"spec file {path} not found")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}: invalid JSON: {exc}") from None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SpecError("reading TOML specs on Python 3.10 needs the tomli package (pip install tomli)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None


def parse_spec(raw: Mapping[str, Any], source: str = "spec") -> SweepSpec:
    """Check a spec dict and expand it into a :class:`SweepSpec`; raises :class:`SpecError` saying what is wrong."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"{source}: a sweep spec must be a table/dict, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise SpecError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; "
                        f"valid keys: {', '.join(TOP_LEVEL)}")
    kind = raw.get("kind", "training")
    if kind not in KINDS:
        raise SpecError(f"{source}: unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    function = raw.get("function")
    if kind == "function":
        if not isinstance(function, str):
            raise SpecError(f"{source}: kind 'function' needs function = \"module:name\"")
        resolve(function, "function")
    elif function is not None:
        raise SpecError(f"{source}: 'function' applies only to kind = \"function\"")

    base = _flatten(_table(raw, "base", source), "base", source)
    grid_raw = _flatten(_table(raw, "grid", source), "grid", source)
    random_raw = _flatten(_table(raw, "random", source), "random", source, leaf_tables=True)
    seeds = _seeds(raw.get("seeds", [0]), source)
    samples = raw.get("samples", 0)
    if not _is_int(samples) or samples < 0:
        raise SpecError(f"{source}: samples must be a non-negative integer, got {samples!r}")
    if random_raw and samples == 0:
        raise SpecError(f"{source}: [random] parameters need samples = N (how many random draws)")
    if samples and not random_raw:
        raise SpecError(f"{source}: samples = {samples} but no [random] parameters to draw")
    random_seed = raw.get("random_seed", 0)
    if not _is_int(random_seed) or random_seed < 0:
        raise SpecError(f"{source}: random_seed must be a non-negative integer, got {random_seed!r}")
    series = raw.get("series", False)
    if not isinstance(series, bool):
        raise SpecError(f"{source}: series must be true or false, got {series!r}")
    threads = raw.get("threads", 1)
    if not _is_int(threads) or threads < 0:
        raise SpecError(f"{source}: threads (torch threads per task; 0 leaves torch's default) must be a "
                        f"non-negative integer, got {threads!r}")
    metrics = raw.get("metrics", [])
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, Sequence) or not all(isinstance(m, str) for m in metrics):
        raise SpecError(f"{source}: metrics must be a list of \"package.module:factory\" names")
    if metrics and kind != "training":
        raise SpecError(f"{source}: metrics apply only to kind = \"training\"")
    metrics = tuple(metrics)
    for m in metrics:
        resolve(m, "metric factory")
    track_paths = raw.get("track_paths", True)
    if not isinstance(track_paths, bool):
        raise SpecError(f"{source}: track_paths must be true or false, got {track_paths!r}")
    if "track_paths" in raw and kind != "training":
        raise SpecError(f"{source}: track_paths applies only to kind = \"training\"")

    if not base and not grid_raw and not random_raw and kind != "function":
        raise SpecError(f"{source}: the spec is empty: give [base] settings and/or [grid]/[random] parameters "
                        "(an empty spec would run the defaults, which is rarely meant)")
    swept = list(grid_raw) + list(random_raw)
    for key in swept:
        _check_key(kind, key, source)
    for key in base:
        _check_key(kind, key, source)
    _check_overlaps(grid_raw, random_raw, source)
    names = _dim_names(swept, source)

    grid = [GridParameter(key, names[key], _grid_values(key, values, source)) for key, values in grid_raw.items()]
    randoms = [RandomParameter(key, names[key], *_distribution(key, value, source))
               for key, value in random_raw.items()]
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise SpecError(f"{source}: name must be a string")
    if name:
        try:
            check_name(name, "the sweep's name")
        except ValueError as exc:
            raise SpecError(f"{source}: {exc}") from None
    spec = SweepSpec(kind=kind, base=base, grid=grid, random=randoms, samples=int(samples),
                     random_seed=int(random_seed), seeds=seeds, series=series, metrics=metrics, track_paths=track_paths,
                     function=function,
                     threads=int(threads), name=name, raw=json.loads(to_json(raw)))
    if spec.size > MAX_POINTS:
        raise SpecError(f"{source}: {spec.size:,} points (shape {' x '.join(map(str, spec.shape))}); a sweep may have "
                        f"at most {MAX_POINTS:,}: split it into several")
    if spec.size == 0:
        raise SpecError(f"{source}: the sweep has no points")
    _check_points(spec, source)
    return spec


def resolve(ref: str, what: str = "function"):
    """Import ``"package.module:name"``; a :class:`SpecError` when it cannot be found."""
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise SpecError(f"{what} must be given as \"package.module:name\", got {ref!r}")
    module_name, attr = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"{what} {ref!r}: cannot import {module_name!r}: {exc}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"{what} {ref!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"{what} {ref!r} is not callable")
    return obj


# -- helpers --------------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _table(raw: Mapping, name: str, source: str) -> Mapping:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise SpecError(f"{source}: [{name}] must be a table of key = value, got {type(value).__name__}")
    return value


def _flatten(table: Mapping, name: str, source: str, prefix: str = "", leaf_tables: bool = False) -> dict:
    """Nested tables become dotted keys; in [random] a table of plain values is a leaf (a distribution)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if not isinstance(key, str) or not key:
            raise SpecError(f"{source}: [{name}] has an empty or non-string key {key!r}")
        full = f"{prefix}{key}"
        is_distribution = leaf_tables and not any(isinstance(v, Mapping) for v in value.values()) if isinstance(
            value, Mapping) else False
        if isinstance(value, Mapping) and not is_distribution:
            if not value and name == "base":
                out[full] = {}
                continue
            out.update(_flatten(value, name, source, f"{full}.", leaf_tables))
        else:
            out[full] = value
    return out


def _assign(flat: dict, key: str, value) -> None:
    """Set a dotted key, replacing whatever the base held at or below it."""
    for k in [k for k in flat if k.startswith(key + ".")]:
        del flat[k]
    parts = key.split(".")
    for i in range(1, len(parts)):
        flat.pop(".".join(parts[:i]), None)  # a leaf above the key (an empty table) gives way to it
    flat[key] = value


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: k.count(".")):
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"key {key!r} sets a field inside {part!r}, which is not a table")
        value = flat[key]
        node[parts[-1]] = dict(value) if isinstance(value, Mapping) else value
    return out


def _training_fields() -> dict[str, Any]:
    from nonlin_explorer.training import TrainConfig

    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _check_key(kind: str, key: str, source: str) -> None:
    top, _, rest = key.partition(".")
    if top == "seed":
        raise SpecError(f"{source}: set seeds with the top-level 'seeds' key, not {key!r}")
    if kind == "training":
        fields = _training_fields()
        if top not in fields or top == "seed":
            hint = ""
            if top in ("width", "depth"):
                hint = f"; did you mean 'model_kwargs.{top}'?"
            elif top in ("num_samples", "noise", "dim", "num_classes"):
                hint = f"; did you mean 'dataset_kwargs.{top}'?"
            valid = ", ".join(f for f in fields if f != "seed")
            raise SpecError(f"{source}: unknown training parameter {key!r}{hint} (valid: {valid}; nested: "
                            "model_kwargs.<name>, dataset_kwargs.<name>)")
        if rest and top not in ("model_kwargs", "dataset_kwargs"):
            raise SpecError(f"{source}: {top!r} is not a table; only model_kwargs.<name> and "
                            f"dataset_kwargs.<name> take dotted keys, got {key!r}")
    elif kind == "compression":
        if top in COMPRESSION_KEYS and not rest:
            return
        if top in COMPRESSION_TABLES and rest:
            _check_compression_option(top, rest, key, source)
            return
        raise SpecError(f"{source}: unknown compression parameter {key!r} (valid: {', '.join(COMPRESSION_KEYS)}; "
                        "target.<random_target option>, compress.<compress option>, sgd.<sgd_distill option>)")


def _check_compression_option(table: str, name: str, key: str, source: str) -> None:
    from nonlin_explorer import compression

    fn = {"target": compression.random_target, "compress": compression.compress,
          "sgd": compression.sgd_distill}[table]
    taken = {"target": ("N", "d", "seed", "activation", "device"), "compress": ("a", "W", "M", "method", "seed",
                                                                               "callback", "activation"),
             "sgd": ("a", "W", "M", "seed", "activation")}[table]
    params = [p for p in inspect.signature(fn).parameters if p not in taken]
    if "." in name or name not in params:
        raise SpecError(f"{source}: unknown option {key!r} for {fn.__name__} (valid: "
                        f"{', '.join(f'{table}.{p}' for p in params)})")


def _check_overlaps(grid: Mapping, random: Mapping, source: str) -> None:
    both = sorted(set(grid) & set(random))
    if both:
        raise SpecError(f"{source}: {', '.join(map(repr, both))} is both in [grid] and [random]")
    keys = list(grid) + list(random)
    for a, b in itertools.permutations(keys, 2):
        if b.startswith(a + "."):
            raise SpecError(f"{source}: swept keys {a!r} and {b!r} overlap (one sets part of the other)")


def _dim_names(keys: Sequence[str], source: str) -> dict[str, str]:
    short = [k.rsplit(".", 1)[-1] for k in keys]
    names = {}
    for key, s in zip(keys, short):
        try:
            check_name(key, "a swept parameter's name")
        except ValueError as exc:
            raise SpecError(f"{source}: {exc}") from None
        name = s if short.count(s) == 1 and s not in RESERVED else key.replace(".", "_")
        if name in RESERVED:
            raise SpecError(f"{source}: cannot sweep {key!r}: {name!r} is a reserved name in the result set")
        names[key] = name
    return names


def _label(value):
    """A grid value as a coordinate label: numbers, booleans and strings as they are, the rest as JSON."""
    if isinstance(value, (bool, str)) or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _grid_values(key: str, values, source: str) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise SpecError(f"{source}: [grid] {key} must be a list of values, got {values!r}")
    if not values:
        raise SpecError(f"{source}: [grid] {key} is an empty list")
    labels = [_label(v) for v in values]
    kinds = {"bool" if isinstance(v, bool) else "str" if isinstance(v, str) else
             "number" if isinstance(v, numbers.Real) else "json" for v in values}
    if len(kinds) > 1:
        raise SpecError(f"{source}: [grid] {key} mixes kinds of values ({', '.join(sorted(kinds))}): {values!r}")
    if len(set(map(repr, labels))) != len(labels) or (kinds == {"number"} and len(set(labels)) != len(labels)):
        raise SpecError(f"{source}: [grid] {key} has repeated values: {values!r}")
    return tuple(values)


def _distribution(key: str, value, source: str) -> tuple[str, tuple]:
    form = '{ uniform = [low, high] } (or log_uniform, int_uniform, choice = [...])'
    if not isinstance(value, Mapping) or len(value) != 1:
        raise SpecError(f"{source}: [random] {key} must be one distribution like {form}, got {value!r}")
    (dist, args), = value.items()
    if dist not in DISTRIBUTIONS:
        raise SpecError(f"{source}: [random] {key}: unknown distribution {dist!r}; valid: {', '.join(DISTRIBUTIONS)}")
    if dist == "choice":
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence) or not args:
            raise SpecError(f"{source}: [random] {key}: choice needs a non-empty list of values")
        kinds = {type(_label(a)).__name__ for a in args}
        if len(kinds) > 1 and not kinds <= {"int", "float"}:
            raise SpecError(f"{source}: [random] {key}: choice mixes kinds of values: {args!r}")
        return dist, tuple(args)
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence) or len(args) != 2:
        raise SpecError(f"{source}: [random] {key}: {dist} needs [low, high], got {args!r}")
    lo, hi = args
    if dist == "int_uniform":
        if not (_is_int(lo) and _is_int(hi)) or lo > hi:
            raise SpecError(f"{source}: [random] {key}: int_uniform needs integers low <= high, got {args!r}")
        return dist, (int(lo), int(hi))
    ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in args)
    if not ok or lo >= hi:
        raise SpecError(f"{source}: [random] {key}: {dist} needs finite numbers low < high, got {args!r}")
    if dist == "log_uniform" and lo <= 0:
        raise SpecError(f"{source}: [random] {key}: log_uniform needs low > 0, got {args!r}")
    return dist, (float(lo), float(hi))


def _seeds(value, source: str) -> tuple[int, ...]:
    if _is_int(value):
        if value < 1:
            raise SpecError(f"{source}: seeds = N needs N >= 1, got {value}")
        return tuple(range(int(value)))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise SpecError(f"{source}: seeds must be a non-empty list of integers or a count, got {value!r}")
    if not all(_is_int(s) and 0 <= s <= MAX_SEED for s in value):
        raise SpecError(f"{source}: seeds must be non-negative integers up to {MAX_SEED}, got {value!r}")
    if len(set(value)) != len(value):
        raise SpecError(f"{source}: seeds has repeated values: {value!r}")
    return tuple(int(s) for s in value)


def _check_points(spec: SweepSpec, source: str) -> None:
    """Catch bad values now, before any task runs (training configs; compression sizes and methods)."""
    if spec.kind == "training":
        from nonlin_explorer.training import TrainConfig

        for point in spec.points():
            try:
                TrainConfig(**point.params, seed=point.seed).validate()
            except (TypeError, ValueError) as exc:
                where = ", ".join(f"{k}={v!r}" for k, v in point.labels.items())
                raise SpecError(f"{source}: point ({where}): {exc}") from None
    elif spec.kind == "compression":
        from nonlin_explorer.compression.sweep import SWEEP_METHODS

        for point in spec.points():
            p = point.params
            where = ", ".join(f"{k}={v!r}" for k, v in point.labels.items())
            for name in ("N", "M", "d"):
                if name not in p:
                    raise SpecError(f"{source}: compression needs {name} (in [base], [grid] or [random])")
                if not _is_int(p[name]) or p[name] < 1:
                    raise SpecError(f"{source}: point ({where}): {name} must be a positive integer, got {p[name]!r}")
            method = p.get("method", "exact")
            if method not in SWEEP_METHODS:
                raise SpecError(f"{source}: point ({where}): unknown method {method!r}; "
                                f"valid: {', '.join(SWEEP_METHODS)}")
