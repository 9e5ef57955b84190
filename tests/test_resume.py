"""Resuming a run from its checkpoint: stopped at step k, written to disk, loaded into a new session and trained to
the end, a run is bit-identical on a CPU to the same run trained straight through: every weight, slope and unit state,
every recorded loss and the event log. The checkpoint carries the run's data order (the data generator's state before
this epoch's order was drawn, and that order's size; the batch position is the step) and, for a model that draws in
training, its dropout stream."""

import pytest
import torch

from nonlin_explorer import TrainConfig, TrainingSession, load_checkpoint, seeding
from nonlin_explorer.results import read_checkpoint

#: 225 training samples in batches of 32: 8 steps an epoch, 24 in all; the prior switches on at step 12; evaluations
#: every 7 steps, so a resume point between two of them carries a partial running train loss.
MLP = TrainConfig(dataset="spirals", dataset_kwargs={"num_samples": 300}, model="mlp",
                  model_kwargs={"width": 8, "depth": 2}, epochs=3, batch_size=32, lr=1e-2, slope_lr=0.1,
                  sparsity=1e-3, schedule="custom", switch_epoch=1.5, eval_every=7, seed=3)
#: A transformer with dropout 0.2 (draws in every training step): 160 training sequences, 5 steps an epoch, 10 in all;
#: the prior switches on at step 5.
DROPOUT = TrainConfig(dataset="reverse", dataset_kwargs={"num_samples": 200}, model="transformer",
                      model_kwargs={"d_model": 16, "depth": 1, "heads": 2, "ff_width": 16, "dropout": 0.2},
                      epochs=2, batch_size=32, sparsity=1e-3, schedule="custom", switch_epoch=1.0, eval_every=4,
                      seed=4)


def _straight(config: TrainConfig) -> TrainingSession:
    return TrainingSession(config).run(progress=False)


def _stopped_saved_and_resumed(config: TrainConfig, k: int, path) -> TrainingSession:
    """Train ``k`` steps, write the checkpoint with the project's writer, then train a new session loaded from the
    file to the end."""
    first = TrainingSession(config)
    for _ in range(k):
        first.train_step()
    assert first.step == k
    first.save(path)
    return load_checkpoint(path).run(progress=False)


def _recorded(session) -> list[dict]:
    """Every evaluation's numbers (losses, accuracies, nonlinear counts, path lengths, slopes): all but its wall-clock
    time."""
    return [{**{k: v for k, v in h.items() if k != "time"}, "slopes": [s.tolist() for s in h["slopes"]]}
            for h in session.history]


def assert_same_run(resumed: TrainingSession, straight: TrainingSession) -> None:
    assert (resumed.step, resumed.status) == (straight.step, "finished") == (straight.total_steps, straight.status)
    ours, theirs = resumed.model.state_dict(), straight.model.state_dict()
    assert list(ours) == list(theirs)
    for name in ours:  # weights, gate slopes (alpha) and unit states
        assert torch.equal(ours[name], theirs[name]), name
    for a, b in zip(resumed.snapshot().slopes, straight.snapshot().slopes, strict=True):
        assert torch.equal(a, b)
    assert {"train_loss", "test_loss", "apl_normalized"} <= set(straight.history[-1])
    assert _recorded(resumed) == _recorded(straight)
    assert resumed.events == straight.events
    assert resumed.prior_on and straight.prior_on


@pytest.mark.parametrize("k", [5, 10, 16], ids=["before-the-first-evaluation", "mid-epoch", "at-an-epoch-end"])
def test_an_mlp_resumed_from_disk_is_bit_identical_to_a_straight_run(k, tmp_path):
    assert_same_run(_stopped_saved_and_resumed(MLP, k, tmp_path / "run.pt"), _straight(MLP))


def test_a_dropout_model_resumed_from_disk_draws_the_same_masks_as_a_straight_run(tmp_path):
    resumed = _stopped_saved_and_resumed(DROPOUT, 3, tmp_path / "run.pt")  # mid-epoch, before the prior's switch
    assert seeding.draws_in_training(resumed.model)
    assert_same_run(resumed, _straight(DROPOUT))


def test_the_checkpoint_holds_the_streams_as_tensors_readable_with_weights_only(tmp_path):
    session = TrainingSession(DROPOUT)
    for _ in range(3):
        session.train_step()
    session.save(tmp_path / "run.pt")
    resume = torch.load(tmp_path / "run.pt", weights_only=True)["resume"]
    assert resume["data_generator"].dtype == torch.uint8
    assert resume["epoch_order_size"] == len(session.data.x_train)  # redrawn from the generator's state on loading
    assert resume["dropout_stream"].dtype == torch.uint8
    assert resume["running_count"] == 3 * 32 * 8  # tokens seen since the last evaluation (3 steps of 32 x 8)


def test_a_checkpoint_without_the_streams_loads_and_its_first_step_says_the_data_order_restarts(tmp_path):
    session = TrainingSession(MLP)
    for _ in range(10):
        session.train_step()
    state = read_checkpoint(session.save(tmp_path / "run.pt"))
    del state["resume"]
    torch.save(state, tmp_path / "old.pt")
    back = load_checkpoint(tmp_path / "old.pt")  # loading (as a replay does) says nothing
    assert back.step == 10
    with pytest.warns(UserWarning, match=r"^the checkpoint holds no data order.*restarts.*seed 3") as caught:
        back.train_step()
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    back.run(progress=False)
    assert back.status == "finished" and back.step == back.total_steps


def test_a_checkpoint_of_another_training_set_loads_and_its_first_step_says_the_data_order_restarts(tmp_path):
    session = TrainingSession(MLP)
    session.train_step()
    state = read_checkpoint(session.save(tmp_path / "run.pt"))
    other = TrainingSession(MLP, dataset_kwargs={"num_samples": 400})  # same model, 300 training samples
    other.load_state_dict(state)
    with pytest.warns(UserWarning, match="covers 225 examples, this run's training set 300: from step 1 the data"):
        other.train_step()
    assert other.step == 2


@pytest.mark.parametrize("resume, message", [
    ([1, 2], "'resume' entry must be a dict, got list"),
    ({"data_generator": torch.zeros(4, dtype=torch.uint8)}, r"needs 'epoch_order_size' \(int\), got NoneType"),
    ("bits", "'resume' entry must be a dict, got str"),
    ({"data_generator": torch.zeros(4, dtype=torch.uint8), "epoch_order_size": 3, "running_loss": 0.0,
      "running_correct": 0.0, "running_count": 0.0}, "'data_generator' is not a CPU generator state"),
    ({"data_generator": torch.Generator().get_state(), "epoch_order_size": -1, "running_loss": 0.0,
      "running_correct": 0.0, "running_count": 0.0}, "'epoch_order_size' must be >= 0, got -1"),
])
def test_a_malformed_resume_entry_is_refused_in_one_line_before_anything_loads(resume, message, tmp_path):
    state = read_checkpoint(TrainingSession(MLP).save(tmp_path / "run.pt"))  # the weights of step 0
    state["resume"] = resume
    trained = TrainingSession(MLP)
    trained.train_step()
    before = {name: value.clone() for name, value in trained.model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        trained.load_state_dict(state)
    assert trained.step == 1
    assert all(torch.equal(value, before[name]) for name, value in trained.model.state_dict().items())
