"""``run``: every point of a sweep as one Dask task (a local cluster by default), gathered into one result set."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import xarray as xr

from nonlin_explorer.sweep.gather import Store
from nonlin_explorer.sweep.runners import run_point
from nonlin_explorer.sweep.spec import Point, SweepSpec, load_spec
from nonlin_explorer.validation import check_int

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


def run(spec, client=None, out=None, resume: bool = False, progress: bool = True, *, workers: int | None = None,
        flush_interval: float = 10.0) -> xr.Dataset:
    """Run a sweep and return its result set (also written to ``out``, netCDF or ``.zarr``, when given).

    ``spec``: a dict, a :class:`~nonlin_explorer.sweep.spec.SweepSpec`, or the path of a TOML/JSON file.
    ``client``: None starts a ``LocalCluster`` on this machine (``workers`` processes, default one per
    core, one thread each); a ``distributed.Client`` or cluster, or a scheduler address (``"tcp://host:8786"``),
    uses that. ``workers=0`` runs the points one after the other in this process, without Dask.

    Each finished point goes to a journal next to ``out`` at once, and ``out`` is rewritten atomically every
    ``flush_interval`` seconds and at the end (also on Ctrl-C), so an interrupt loses nothing. ``resume=True``
    reads ``out`` (and its journal) and runs only the points that failed or never ran; finished points are
    never recomputed. Without ``resume`` an existing ``out`` is an error.
    """
    if workers is not None:
        workers = check_workers(workers)
        if client is not None:
            raise ValueError("workers sets the size of the local cluster; it does not apply with a client or "
                             "scheduler address")
    spec = load_spec(spec)
    store = Store(spec, out, resume)  # holds out (its lock) until the end: a second sweep on it is refused
    try:
        return _run(spec, store, client, workers, progress, flush_interval)
    finally:
        store.close()


def _run(spec: SweepSpec, store: Store, client, workers: int | None, progress: bool,
         flush_interval: float) -> xr.Dataset:
    todo = store.todo()
    total = len(store.points)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=total - len(todo), disable=not progress, desc=f"sweep {spec.name}".strip(),
               unit="point")
    failed = 0
    last = time.monotonic()
    try:
        if todo:
            tasks = [task_for(spec, p) for p in todo]
            with _executor(spec, client, workers) as results, contextlib.closing(results(tasks)) as stream:
                for record in stream:
                    store.add(record)
                    failed += record["status"] == "failed"
                    bar.update(1)
                    if failed:
                        bar.set_postfix(failed=failed, refresh=False)
                    if store.out is not None and time.monotonic() - last >= flush_interval:
                        store.flush()
                        last = time.monotonic()
    finally:
        bar.close()
        ds = store.flush(final=True)
    return ds


def task_for(spec: SweepSpec, point: Point) -> dict[str, Any]:
    """What a worker needs to run ``point`` (plain data: cheap to send)."""
    return {"kind": spec.kind, "params": point.params, "seed": point.seed, "key": point.key,
            "threads": spec.threads, "series": spec.series, "metrics": list(spec.metrics),
            "track_paths": spec.track_paths,
            "function": spec.function}


def _failed(task: dict[str, Any], exc: BaseException | None, why: str = "") -> dict[str, Any]:
    error = f"{type(exc).__name__}: {exc}" if exc is not None else why
    return {"key": task["key"], "status": "failed", "error": error, "metrics": {}, "series": {},
            "provenance": {"key": task["key"], "params": task["params"], "seed": task["seed"],
                           "failed_outside_task": error}}


@contextlib.contextmanager
def _executor(spec: SweepSpec, client, workers: int | None):
    """A function from tasks to an iterator of records, in completion order."""
    if workers == 0:
        yield lambda tasks: _serial(spec, tasks)
        return
    with _dask_client(spec, client, workers) as c:
        yield lambda tasks: _dask_results(c, tasks)


def _serial(spec: SweepSpec, tasks: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    import torch

    before = torch.get_num_threads()
    try:
        for task in tasks:
            yield run_point(task)
    finally:
        if spec.threads > 0 and torch.get_num_threads() != before:
            torch.set_num_threads(before)


#: Local worker processes per usable core at most: more only compete for the same cores (and memory).
WORKERS_PER_CORE = 4


def check_workers(workers: Any) -> int:
    """A local cluster's size: 0 (run here, without Dask) up to :data:`WORKERS_PER_CORE` per usable core, or
    ``ValueError`` stating that range (a typo such as 100000 would otherwise start processes until memory runs
    out)."""
    most = WORKERS_PER_CORE * usable_cores()
    try:
        return check_int("workers", workers, low=0, high=most)
    except ValueError:
        raise ValueError(f"workers must be >= 0 and <= {most}, a whole number (0 runs the points here, without "
                         f"Dask; at most {WORKERS_PER_CORE} per usable core of this machine), "
                         f"got {workers!r}") from None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers narrow), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_cluster(n_workers: int | None = None, threads: int = 1, **kwargs):
    """A ``LocalCluster`` for sweeps: one process per core (or ``n_workers``), one task at a time each, and
    BLAS/OpenMP limited to ``threads`` per process so torch does not oversubscribe the cores. Dask's
    statistical profiler (a thread sampling every 10 ms, only shown on the dashboard) is off: it costs the
    points a few percent."""
    import dask
    from distributed import LocalCluster

    n = n_workers or usable_cores()
    env = {var: str(threads) for var in _THREAD_VARS} if threads > 0 else {}
    options = dict(n_workers=n, threads_per_worker=1, processes=True, env=env, silence_logs=logging.ERROR,
                   dashboard_address=":0" if importlib.util.find_spec("bokeh") else None)
    options.update(kwargs)
    with dask.config.set({"distributed.worker.profile.enabled": False}):  # the nannies pass it to the workers
        return LocalCluster(**options)


@contextlib.contextmanager
def _dask_client(spec: SweepSpec, client, workers: int | None):
    from distributed import Client

    owned: list = []
    try:
        if client is None:
            cluster = local_cluster(workers, spec.threads)
            owned.append(cluster)
            client = Client(cluster)
            owned.append(client)
        elif isinstance(client, str):
            try:
                client = Client(client, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise OSError(f"cannot reach the Dask scheduler at {client}: {exc}") from None
            owned.append(client)
        elif not hasattr(client, "submit") and hasattr(client, "scheduler_address"):  # a cluster object
            client = Client(client)
            owned.append(client)
        yield client
    finally:
        for obj in reversed(owned):
            with contextlib.suppress(Exception):
                obj.close()


def _dask_results(client, tasks: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    futures = {client.submit(run_point, task, key=f"nonlin-sweep-{token}-{i}", pure=False): task
               for i, task in enumerate(tasks)}
    try:
        for future in as_completed(list(futures)):
            task = futures.pop(future)
            if future.status == "finished":
                try:
                    record = future.result()
                except Exception as exc:  # e.g. the result could not be sent back
                    record = _failed(task, exc)
            elif future.status == "error":
                record = _failed(task, future.exception())  # e.g. KilledWorker: the worker process died
            else:
                record = _failed(task, None, f"task {future.status}")
            future.release()
            yield record
    finally:
        if futures:
            with contextlib.suppress(Exception):
                client.cancel(list(futures))
