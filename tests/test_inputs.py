"""Every bad input to the Python API is one clear error (naming the argument, what was given and what is allowed),
raised before any work starts; the inputs the documentation promises are accepted."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nonlin_explorer import compression, datasets, linearize, models
from nonlin_explorer.gates import LinearizableReLU, UnitState
from nonlin_explorer.sweep.engine import WORKERS_PER_CORE, check_workers, usable_cores
from nonlin_explorer.sweep.spec import load_spec
from nonlin_explorer.trainer import MAX_RATE, TrainConfig, Trainer
from nonlin_explorer.training import TrainingSession
from nonlin_explorer.validation import MAX_SEED, check_int, check_name, check_number, check_seed

TINY = dict(dataset="spirals", model_kwargs={"width": 8, "depth": 1}, epochs=1, eval_every=5, track_paths=False)


def _trainer(**fields) -> Trainer:
    return Trainer(**{**TINY, **fields})


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))


@pytest.fixture(scope="module")
def trainer() -> Trainer:
    return _trainer()


BAD_SEEDS = [-1, 1.5, "abc", None, math.nan, 2**70]


@pytest.mark.parametrize("seed", BAD_SEEDS)
@pytest.mark.parametrize("where, call", [
    ("TrainConfig", lambda s: TrainConfig(seed=s).validate()),
    ("a generated dataset", lambda s: datasets.spirals(num_samples=30, seed=s)),
    ("user arrays", lambda s: datasets.from_arrays(np.zeros((10, 2)), np.zeros(10), seed=s)),
    ("a random target", lambda s: compression.random_target(4, 3, seed=s)),
    ("a compression baseline", lambda s: compression.kmeans_merge(np.ones(4), np.eye(4, 3), M=2, seed=s)),
])
def test_a_bad_seed_is_refused_stating_the_range(seed, where, call):
    with pytest.raises(ValueError, match=rf"seed must be a whole number in 0\.\.{MAX_SEED}, got "):
        call(seed)


def test_the_largest_seed_is_accepted():
    assert check_seed(MAX_SEED) == MAX_SEED and check_seed(np.int64(7)) == 7 and check_seed(3.0) == 3


BAD_INPUTS = [
    # (what, call, exception, message fragment)
    ("lr 1e38 up front", lambda: TrainConfig(lr=1e38).validate(), ValueError, "lr must be <= 1e+30, got 1e+38"),
    ("weight_decay 1e300", lambda: TrainConfig(weight_decay=1e300).validate(), ValueError,
     "weight_decay must be <= 1e+30"),
    ("slope_lr 1e300", lambda: TrainConfig(slope_lr=1e300).validate(), ValueError, "slope_lr must be <= 1e+30"),
    ("an int past any float", lambda: TrainConfig(sparsity=10**400).validate(), ValueError, "sparsity must be finite"),
    ("batch_size True", lambda: TrainConfig(batch_size=True).validate(), ValueError,
     "batch_size must be a positive integer, got True"),
    ("eval_every 2.5", lambda: TrainConfig(eval_every=2.5).validate(), ValueError,
     "eval_every must be a positive integer, got 2.5"),
    ("epochs True", lambda: TrainConfig(epochs=True).validate(), ValueError, "epochs must be a number, got True"),
    ("epochs complex", lambda: TrainConfig(epochs=1j).validate(), ValueError, "epochs must be a number, got 1j"),
    ("epochs of two elements", lambda: TrainConfig(epochs=torch.ones(2)).validate(), ValueError,
     "epochs must be a number"),
    ("model 123 in a config", lambda: TrainConfig(model=123).validate(), ValueError,
     "unknown model 123; valid models: mlp"),
    ("model 123", lambda: Trainer(model=123), TypeError, "model must be a model name (mlp, cnn"),
    ("model_kwargs None", lambda: TrainConfig(model_kwargs=None).validate(), ValueError,
     "model_kwargs must be a dict of settings, e.g. {'width': 64}, got None"),
    ("dataset_kwargs a list", lambda: TrainConfig(dataset_kwargs=[1]).validate(), ValueError,
     "dataset_kwargs must be a dict of settings"),
    ("an unknown model setting", lambda: _trainer(model_kwargs={"bogus": 1}), ValueError,
     "model 'mlp' has no setting 'bogus'; its settings: width, depth, activation"),
    ("width for a seq2seq", lambda: _trainer(dataset="translation", model="seq2seq", model_kwargs={"width": 8}),
     ValueError, "model 'seq2seq' has no setting 'width'; its settings: vocab_size, d_model"),
    ("heads 0", lambda: models.build("transformer", (8,), 10, vocab_size=10, heads=0), ValueError,
     "heads must be a whole number >= 1, got 0"),
    ("dropout 5", lambda: models.build("transformer", (8,), 10, vocab_size=10, dropout=5), ValueError,
     "dropout must be <= 0.999, got 5"),
    ("a ResNet width of -3", lambda: models.build("resnet", (3, 8, 8), 10, width=-3), ValueError,
     "width must be > 0, got -3"),
    ("a size past any index", lambda: _trainer(model_kwargs={"width": 1e12}), ValueError,
     "is too large to build"),
    ("a size past this machine", lambda: _trainer(model_kwargs={"width": 10**7}), ValueError,
     "this machine has"),
    ("device meta", lambda: _trainer(device="meta"), ValueError,
     "device 'meta' cannot run training or compression; use cpu, cuda"),
    ("linearize(None)", lambda: linearize(None, torch.zeros(1, 2)), TypeError,
     "linearize needs a torch nn.Module, got NoneType"),
    ("axis 7", lambda: linearize(_mlp(), torch.zeros(3, 2), axis=7), ValueError,
     "axis must be 1 (channels) or -1 (last dimension), got 7"),
    ("axis True", lambda: linearize(_mlp(), torch.zeros(3, 2), axis=True), ValueError,
     "axis must be 1 (channels) or -1 (last dimension), got True"),
    ("axis 7 for one gate", lambda: linearize(_mlp(), torch.zeros(3, 2), axis={"1": 7}), ValueError,
     "axis['1'] must be 1 (channels) or -1"),
    ("an unknown activation kind", lambda: linearize(_mlp(), torch.zeros(3, 2), activations=("nope",)),
     ValueError, "activations: unknown kind 'nope'; known kinds: celu, elu, gelu"),
    ("complex W", lambda: compression.Target(torch.ones(4), torch.ones(4, 3, dtype=torch.complex128)), ValueError,
     "W must hold real numbers, got torch.complex128 values"),
    ("complex W from numpy", lambda: compression.Target(np.ones(4), np.ones((4, 3)) * 1j), ValueError,
     "W must hold real numbers"),
    ("quad_points -5 (exact kernel)", lambda: compression.kernel_matrix(torch.eye(2, dtype=torch.float64),
                                                                       quad_points=-5), ValueError,
     "quad_points must be >= 2, got -5"),
    ("quad_points 0 (quadrature kernel)", lambda: compression.kernel_matrix(
        torch.eye(2, dtype=torch.float64), activation="gelu", quad_points=0), ValueError,
     "quad_points must be >= 2, got 0"),
    ("a gate set to state True", lambda: LinearizableReLU(3).set_state([0], True), ValueError,
     "state must be 0 (free), 1 (linear), 2 (nonlinear) or a UnitState, got True"),
    ("a sweep seed of 2**70", lambda: load_spec({"seeds": [0, 2**70], "base": {"dataset": "spirals"}}), ValueError,
     f"seeds must be non-negative integers up to {MAX_SEED}"),
    ("workers 100000", lambda: check_workers(100000), ValueError,
     f"workers must be >= 0 and <= {WORKERS_PER_CORE * usable_cores()}, a whole number (0 runs the points here, "
     f"without Dask; at most {WORKERS_PER_CORE} per usable core of this machine), got 100000"),
    ("workers True", lambda: check_workers(True), ValueError, "workers must be >= 0 and <="),
]


@pytest.mark.parametrize("what, call, error, message", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_a_bad_input_is_one_clear_error(what, call, error, message):
    with pytest.raises(error) as info:
        call()
    text = str(info.value)
    assert message in text and "\n" not in text, text


TRAINER_INPUTS = [
    ("to_xarray(max_slope_values=0)", lambda t: t.to_xarray(max_slope_values=0), "max_slope_values must be >= 1"),
    ("set lr 1e300", lambda t: t.set(lr=1e300), "lr must be <= 1e+30, got 1e+300"),
    ("set weight_decay 1e300", lambda t: t.set(weight_decay=1e300), "weight_decay must be <= 1e+30"),
    ("set slope_lr 1e300", lambda t: t.set(slope_lr=1e300), "slope_lr must be <= 1e+30"),
    ("toggle to state True", lambda t: t.toggle(0, [0], True),
     "state must be 0 (free), 1 (linear), 2 (nonlinear) or a UnitState, got True"),
    ("toggle to state 3", lambda t: t.toggle(0, [0], 3), "state must be 0 (free)"),
    ("toggle layer True", lambda t: t.toggle(True, [0], 0), "layer must be a gate name or index, got True"),
    ("a layer name with a newline", lambda t: t.toggle("net.1\n", [0], 0), "contains U+000A"),
    ("a layer name with a bidi override", lambda t: t.toggle("net.\u202e1", [0], 0),
     "contains U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("set eval_every 2.5", lambda t: t.set(eval_every=2.5), "eval_every must be a positive integer, got 2.5"),
    ("evaluate with batch_size 0", lambda t: t.evaluate(batch_size=0), "batch_size must be a positive integer"),
    ("extend by a bool", lambda t: t.extend(True), "epochs must be a number, got True"),
]


@pytest.mark.parametrize("what, call, message", TRAINER_INPUTS, ids=[row[0] for row in TRAINER_INPUTS])
def test_a_bad_input_to_a_trainer_changes_nothing(trainer, what, call, message):
    before = (trainer.config.to_dict(), [g.state.clone() for g in trainer.gates], len(trainer.events))
    with pytest.raises(ValueError, match=None) as info:
        call(trainer)
    assert message in str(info.value), str(info.value)
    after = (trainer.config.to_dict(), [g.state.clone() for g in trainer.gates], len(trainer.events))
    assert before[0] == after[0] and before[2] == after[2]
    assert all(torch.equal(a, b) for a, b in zip(before[1], after[1]))


@pytest.mark.parametrize("name", ["run\nname", "run\rname", "run\u202ename", "run\u2028name", "tab\there", "", " "])
@pytest.mark.parametrize("where, call", [
    ("check_name", lambda n: check_name(n, "run name")),
    ("a dataset's name", lambda n: datasets.from_arrays(np.zeros((10, 2)), np.zeros(10), name=n)),
    ("a gate's name", lambda n: LinearizableReLU(3, name=n or " ")),
    ("a gate name in axis", lambda n: linearize(_mlp(), torch.zeros(3, 2), axis={n: 1})),
    ("a sweep's name", lambda n: load_spec({"name": n or " ", "base": {"dataset": "spirals"}})),
])
def test_control_line_break_and_bidi_characters_are_refused_in_names(name, where, call):
    with pytest.raises(ValueError, match="must not be empty|names may not hold control, line-break or bidir"):
        call(name)


@pytest.mark.parametrize("value, expected", [
    (torch.tensor(2.0), 2.0), (torch.tensor([2.0]), 2.0), (np.float32(2.5), 2.5), (np.array([3]), 3.0), (4, 4.0),
])
def test_one_element_tensors_and_numpy_scalars_are_numbers(value, expected):
    assert check_number("epochs", value) == expected and type(check_number("epochs", value)) is float


def test_documented_inputs_are_accepted_and_normalized():
    t = _trainer(epochs=torch.tensor([2.0]), batch_size=np.int64(64), eval_every=np.int32(5), seed=np.uint8(3),
                 model_kwargs={"width": np.int64(8), "depth": 1})
    cfg = t.config
    assert (cfg.epochs, cfg.batch_size, cfg.eval_every, cfg.seed) == (2.0, 64, 5, 3)
    assert (type(cfg.epochs), type(cfg.batch_size), type(cfg.seed)) == (float, int, int)
    assert t.total_steps == 2 * t.steps_per_epoch
    assert check_int("n", np.int64(5)) == 5 and check_int("n", torch.tensor(5)) == 5 and check_int("n", 5.0) == 5
    t.toggle(0, [0], np.int64(1))  # a state's number, as numpy gives it
    assert t.gates[0].state[0] == UnitState.LINEAR


def test_a_huge_rate_ends_the_run_diverged_with_its_reason():
    s = TrainingSession(**{**TINY, "epochs": 2}, lr=MAX_RATE).run(progress=False)
    assert s.status == "diverged" and s.error is None
    assert s.stop_reason.startswith("loss became nan at step")
    assert s.events[-1]["kind"] == "diverged"


def test_a_rate_the_parameters_cannot_hold_ends_the_run_diverged_not_in_error():
    class HalfMLP(nn.Module):  # float16 weights: 1e30 overflows them inside the optimizer
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)).half()

        def forward(self, x):
            return self.net(x.half()).float()

    s = TrainingSession(model=HalfMLP(), data="spirals", lr=MAX_RATE, weight_decay=MAX_RATE, epochs=1,
                        track_paths=False).run(progress=False)
    assert s.status == "diverged" and s.error is None
    assert "the optimizer step overflowed at step 0" in s.stop_reason
    assert s.events[-1] == {**s.events[-1], "kind": "diverged", "restored_step": 0}


def test_a_huge_value_set_while_running_is_refused_and_the_run_goes_on():
    s = TrainingSession(**{**TINY, "epochs": 3}).start()
    try:
        for key in ("lr", "weight_decay", "slope_lr", "sparsity"):
            with pytest.raises(ValueError, match=f"{key} must be <= 1e\\+30"):
                s.set(**{key: 1e300})
    finally:
        s.wait(timeout=120)
    assert s.status == "finished" and not [e for e in s.events if e["kind"] == "set"]


def test_model_settings_are_listed_per_model():
    assert models.settings_of("resnet20") == ("width",)
    assert models.settings_of("transformer") == ("vocab_size", "d_model", "depth", "heads", "ff_width", "dropout")
    with pytest.raises(ValueError, match="model 'resnet20' has no setting 'depth'; its settings: width"):
        models.build("resnet20", (3, 8, 8), 10, depth=56)


@pytest.mark.parametrize("text", ["١٢", "１２", "1２", "٣.٥"])
def test_a_typed_number_in_other_scripts_digits_is_refused_not_read(text):
    from nonlin_explorer.validation import parse_number

    with pytest.raises(ValueError, match="is not a number .digits 0-9"):
        parse_number(text, "M")
    assert parse_number(" 12 ", "M", integer=True) == 12
