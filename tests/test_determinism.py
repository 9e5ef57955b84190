"""Same seed, same numbers: a run's numbers depend on its seed alone, whether it runs alone, twice in a row or
beside another run in another thread (nonlin_explorer.seeding)."""

import threading

import numpy as np
import torch

from nonlin_explorer import TrainConfig, TrainingSession, gates, seeding
from nonlin_explorer.advantage import compare_schedules

TINY = TrainConfig(dataset="spirals", dataset_kwargs={"num_samples": 300}, model="mlp",
                   model_kwargs={"width": 8, "depth": 2}, epochs=4, batch_size=32, lr=1e-2, slope_lr=0.2,
                   eval_every=1000)
NUMBERS = ("test_acc", "train_loss", "nonlinear", "apl_normalized", "apl_unnormalized")


def _together(*jobs):
    """Run every job in its own thread, all released at once; their results in order."""
    results, errors = [None] * len(jobs), []
    go = threading.Barrier(len(jobs))

    def work(i, job):
        go.wait()
        try:
            results[i] = job()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_two_comparisons_in_two_threads_give_the_numbers_they_give_one_after_the_other():
    grid = dict(sparsities=[0.0, 0.05])
    first, second = (lambda: compare_schedules(TINY, seeds=[1, 2], **grid),
                     lambda: compare_schedules(TINY, seeds=[3, 4], **grid))
    alone = [first(), second()]
    for _ in range(2):
        together = _together(first, second)
        for a, b in zip(alone, together):
            for name in NUMBERS:
                np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def _history(session):
    return [(h["test_loss"], h["train_loss"], h["nonlinear"]) for h in session.history]


def test_a_session_beside_another_session_trains_as_it_does_alone():
    kw = dict(dataset="spirals", dataset_kwargs={"num_samples": 400}, model="mlp", model_kwargs={"width": 16},
              epochs=3, batch_size=32, eval_every=10, sparsity=1e-3)
    alone = TrainingSession(**kw, seed=5).run(progress=False)
    other_alone = TrainingSession(**kw, seed=6).run(progress=False)
    a, b = _together(lambda: TrainingSession(**kw, seed=5).run(progress=False),
                     lambda: TrainingSession(**kw, seed=6).run(progress=False))
    assert _history(a) == _history(alone) and _history(b) == _history(other_alone)
    for ga, gb in zip(gates(a.model), gates(alone.model)):
        assert torch.equal(ga.alpha, gb.alpha)


def test_a_dropout_model_keeps_its_own_stream_beside_another_run():
    kw = dict(dataset="reverse", dataset_kwargs={"num_samples": 200}, model="transformer",
              model_kwargs={"d_model": 16, "depth": 1, "heads": 2, "ff_width": 16, "dropout": 0.2},
              epochs=2, batch_size=32, eval_every=5)
    alone = TrainingSession(**kw, seed=1).run(progress=False)
    plain = dict(kw, model_kwargs={**kw["model_kwargs"], "dropout": 0.0})
    a, _ = _together(lambda: TrainingSession(**kw, seed=1).run(progress=False),
                     lambda: TrainingSession(**plain, seed=2).run(progress=False))
    assert _history(a) == _history(alone)


def test_a_run_starts_from_the_weights_torch_manual_seed_gives_and_leaves_the_global_stream_alone():
    torch.manual_seed(11)
    expected_next = torch.rand(3)
    torch.manual_seed(11)
    session = TrainingSession(dataset="spirals", dataset_kwargs={"num_samples": 100}, model="mlp",
                              model_kwargs={"width": 8}, seed=4)
    assert torch.equal(torch.rand(3), expected_next)  # building the run drew nothing from the caller's stream
    torch.manual_seed(4)
    reference = torch.nn.Linear(2, 8)  # the model's first layer: spirals have 2 inputs
    first = next(m for m in session.model.modules() if isinstance(m, torch.nn.Linear))
    assert torch.equal(first.weight, reference.weight) and torch.equal(first.bias, reference.bias)


def test_only_models_that_draw_in_training_are_stepped_on_their_own_stream():
    assert seeding.draws_in_training(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)))
    assert not seeding.draws_in_training(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.0)))
    assert seeding.draws_in_training(torch.nn.MultiheadAttention(4, 2, dropout=0.1))
    assert not seeding.draws_in_training(torch.nn.MultiheadAttention(4, 2))


def test_runs_are_built_while_a_dropout_run_steps():
    dropout = TrainingSession(dataset="reverse", dataset_kwargs={"num_samples": 200}, model="transformer",
                              model_kwargs={"d_model": 16, "depth": 1, "heads": 2, "ff_width": 16, "dropout": 0.2},
                              epochs=10_000, batch_size=32, eval_every=10**6, seed=1).start()
    built = []
    builder = threading.Thread(target=lambda: built.extend(
        TrainingSession(dataset="spirals", dataset_kwargs={"num_samples": 100}, model="mlp", seed=s) for s in range(5)),
        daemon=True)
    try:
        builder.start()
        builder.join(timeout=60)
        assert len(built) == 5 and not builder.is_alive()  # building traces the model: it waits for no step forever
    finally:
        dropout.stop(timeout=10)
