"""Demo runs for the dashboard and talks: settings that show the idea within seconds of *Start* and leave minutes to
interact (the sparsity prior is on early, lambda > 0, accuracy stays high). Measured on the 2-core CPU machine:

- ``spirals``: 3-class spirals (noise 0.1), MLP 32 x 3. Test accuracy 0.92 after 400 steps (about a second), the prior
  switches on at step 360; at lambda 3e-3 the nonlinear units fall from 96 to about 40 within 4000 steps while the
  test accuracy stays at 0.93-0.95 (seed 0). 72,000 steps in all: minutes of training.
- ``mnist1d``: MNIST-1D (generated locally), MLP 64 x 3, lambda 1e-3, the prior on after 5 epochs.
"""

from __future__ import annotations

from typing import Any

DEMOS: dict[str, dict[str, Any]] = {
    "spirals": dict(dataset="spirals", dataset_kwargs={"noise": 0.1}, model="mlp",
                    model_kwargs={"width": 32, "depth": 3}, epochs=3000, eval_every=40, batch_size=64, lr=1e-2,
                    slope_lr=5e-2, sparsity=3e-3, schedule="late", switch_epoch=15),
    "mnist1d": dict(dataset="mnist1d", model="mlp", model_kwargs={"width": 64, "depth": 3}, epochs=400,
                    eval_every=50, lr=1e-3, slope_lr=1e-2, sparsity=1e-3, schedule="late", switch_epoch=5),
}
#: What ``nonlin-explorer serve`` shows by default.
DEFAULT_DEMO = "spirals"


def demo_config(name: str = DEFAULT_DEMO, overrides: dict[str, Any] | None = None):
    """The demo's :class:`~nonlin_explorer.training.TrainConfig` (``overrides``: fields to change), validated."""
    from nonlin_explorer.training import TrainConfig

    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; demos: {', '.join(sorted(DEMOS))}")
    fields = {**DEMOS[name], **(overrides or {})}
    try:
        return TrainConfig(**fields).validate()
    except TypeError as exc:
        raise ValueError(f"bad --config: {exc}") from None
