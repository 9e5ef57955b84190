"""torch.fx patches ``nn.Module.__call__`` process-wide while it traces: the package's traces and its forward passes
(training steps, evaluations, probes) never overlap, so a run training on its thread survives tracing on another."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
from torch import nn

from nonlin_explorer import TrainingSession, linearize, trace_guard
from nonlin_explorer.graph import unit_graph


class _SharedReLU(nn.Module):
    """One ReLU module called twice: ``linearize`` must take the fx route to give each call its own gate."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(40, 16), nn.Linear(16, 16), nn.Linear(16, 10)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def _trace_both(x: torch.Tensor) -> None:
    """A unit graph and an fx linearization of a fresh model with a reused module."""
    model = linearize(_SharedReLU(), x)
    assert isinstance(model, torch.fx.GraphModule)
    assert unit_graph(model, x).num_units > 0


def test_a_run_training_on_its_thread_survives_traces_on_another(mnist1d_small):
    s = TrainingSession(data=mnist1d_small, model="mlp", model_kwargs=dict(width=32, depth=2), batch_size=32,
                        eval_every=5, epochs=2, seed=0)
    x = mnist1d_small.x_train[:4]
    s.start()
    traced, end = 0, time.monotonic() + 60
    while s.is_alive and time.monotonic() < end:
        _trace_both(x)
        traced += 1
    s.wait(timeout=60, raise_errors=False)
    assert s.status == "finished", s.stop_reason
    assert traced > 0


def test_two_threads_trace_at_once():
    x = torch.randn(4, 40)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work():
        start.wait()
        try:
            for _ in range(15):
                _trace_both(x)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert errors == []


def test_a_trace_waits_for_running_passes_and_new_passes_wait_for_it():
    events: list[str] = []
    in_pass, trace_waiting = threading.Event(), threading.Event()

    def tracer():
        in_pass.wait(10)
        trace_waiting.set()
        with trace_guard.fx_tracing():
            events.append("trace")

    t = threading.Thread(target=tracer, daemon=True)
    t.start()
    with trace_guard.forward_pass():
        in_pass.set()
        trace_waiting.wait(10)
        time.sleep(0.1)  # the trace is waiting now: it must not start inside this pass
        events.append("pass ends")
    t.join(10)
    assert events == ["pass ends", "trace"]


def test_passes_and_traces_nest_on_one_thread():
    done = []
    with trace_guard.forward_pass(), trace_guard.forward_pass():
        with trace_guard.fx_tracing(), trace_guard.forward_pass(), trace_guard.fx_tracing():
            done.append("nested")
    assert done == ["nested"]


def test_two_passes_that_each_start_a_trace_do_not_wait_on_each_other():
    both_in_pass = threading.Barrier(2)
    traced: list[int] = []

    def work(i):
        with trace_guard.forward_pass():
            both_in_pass.wait(10)
            with trace_guard.fx_tracing():
                traced.append(i)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    assert sorted(traced) == [0, 1]


def test_two_comparisons_run_at_once():
    from nonlin_explorer import TrainConfig
    from nonlin_explorer.advantage import compare_schedules

    tiny = TrainConfig(dataset="spirals", dataset_kwargs={"num_samples": 300}, model="mlp",
                       model_kwargs={"width": 8, "depth": 2}, epochs=4, batch_size=32, lr=1e-2, slope_lr=0.2,
                       eval_every=1000)
    results: list = [None, None]
    errors: list[BaseException] = []

    def run(i):
        try:
            results[i] = compare_schedules(tiny, sparsities=[0.05, 0.1], seeds=[1])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert errors == []
    for ds in results:
        assert np.isfinite(ds.train_loss.values).all() and np.isfinite(ds.apl_normalized.values).all()
