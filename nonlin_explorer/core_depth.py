"""Late linearization trained until the prior converges: the runs behind the core-network depth grid.

A core network is what stays nonlinear once the sparsity prior has converged. :func:`train_to_convergence` trains
plain ReLUs for ``switch_epoch`` epochs, switches the prior on and then checks the state (linear / nonlinear) of
every gated unit once per epoch; the run stops as *converged* when no unit changed state for ``patience``
evaluations in a row (:func:`prior_converged`), or as *not converged* at ``max_epochs``. It is a sweep function
(``kind = "function"``, ``function = "nonlin_explorer.core_depth:train_to_convergence"``): it returns plain numbers,
among them ``converged`` (1 or 0), so a capped run is never mistaken for a converged one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from nonlin_explorer.advantage import unit_state_changes
from nonlin_explorer.gates import gates
from nonlin_explorer.trainer import TrainConfig, Trainer
from nonlin_explorer.validation import check_int

__all__ = ["MAX_LAYERS", "PATIENCE", "prior_converged", "train_to_convergence"]

#: Evaluations in a row (one per epoch) without any unit changing state that make the prior converged.
PATIENCE = 5
#: Per-layer nonlinear counts are returned for gate layers 1..MAX_LAYERS (NaN past the network's depth).
MAX_LAYERS = 8


def prior_converged(changes: Sequence[float], patience: int = PATIENCE) -> bool:
    """True when the last ``patience`` entries of ``changes`` (units that changed state at each evaluation since
    the prior switched on) are all 0; False for fewer evaluations than that."""
    patience = check_int("patience", patience, low=1)
    tail = list(changes)[-patience:]
    return len(tail) == patience and all(c == 0 for c in tail)


def train_to_convergence(seed: int = 0, *, switch_epoch: float = 20, max_epochs: float = 200,
                         patience: int = PATIENCE, half_life: float | None = None, min_prior_epochs: float = 0,
                         **config: Any) -> dict[str, float]:
    """Train one late-linearized run until its prior converges (or ``max_epochs``); return its final numbers.

    ``config``: :class:`~nonlin_explorer.trainer.TrainConfig` fields (dataset, model, model_kwargs, lr, sparsity,
    ...; ``schedule``, ``epochs`` and ``eval_every`` are set here). ``half_life``: once the prior is on, both
    learning rates (weights and slopes) halve every ``half_life`` epochs (updated once per epoch), so the units
    can settle; None keeps them constant. ``min_prior_epochs``: convergence is not declared before the prior has
    been on this long (a few quiet evaluations right after the switch only say that the slopes have not moved yet).
    Returns test/train accuracy and loss,
    nonlinear units (total, fraction, per layer), APL (both normalizations), ``converged`` (1.0 or 0.0),
    ``epochs`` trained, ``prior_evaluations`` and ``last_change_epoch`` (the last epoch at which a unit changed
    state; ``switch_epoch`` when none did).
    """
    patience = check_int("patience", patience, low=1)
    if half_life is not None and not (isinstance(half_life, (int, float)) and math.isfinite(half_life)
                                      and half_life > 0):
        raise ValueError(f"half_life must be a positive number of epochs or None, got {half_life!r}")
    if not (math.isfinite(switch_epoch) and math.isfinite(max_epochs)) or not 0 < switch_epoch < max_epochs:
        raise ValueError(f"need 0 < switch_epoch < max_epochs, got switch_epoch={switch_epoch!r}, "
                         f"max_epochs={max_epochs!r}")
    fixed = {"schedule", "epochs", "eval_every", "switch_epoch", "seed"}
    clash = sorted(fixed & set(config))
    if clash:
        raise ValueError(f"train_to_convergence sets {', '.join(clash)} itself; give switch_epoch and max_epochs")
    cfg = dataclasses.replace(TrainConfig(**config), schedule="late", epochs=float(max_epochs),
                              switch_epoch=float(switch_epoch), seed=int(seed), eval_every=10**9)
    session = Trainer(cfg, track_paths=True)
    per_epoch = session.steps_per_epoch
    changes: list[float] = []
    # the states the prior starts from: every unit nonlinear (alpha = 0, not trained before the switch)
    counter = unit_state_changes(session.model, tol=cfg.tol)["units_changed"]
    last_change = float(switch_epoch)
    done = False
    while session.step < session.total_steps and session.status != "diverged" and not done:
        session.train_step()
        if session.step > session.switch_step and session.step % per_epoch == 0:  # once per epoch under the prior
            changed = counter(session.model)
            changes.append(changed)
            if changed:
                last_change = session.epoch
            done = session.epoch - switch_epoch >= min_prior_epochs and prior_converged(changes, patience)
            if half_life is not None:
                scale = 0.5 ** ((session.epoch - switch_epoch) / half_life)
                session.set(lr=cfg.lr * scale, slope_lr=cfg.slope_lr * scale)
    if session.status == "diverged":
        raise RuntimeError(f"training diverged: {session.stop_reason}")
    test_loss, test_acc = session.evaluate()
    train_loss, train_acc = session.evaluate("train")
    gs = gates(session.model)
    per_layer = [g.nonlinear_count(cfg.tol) for g in gs]
    units = sum(g.num_units for g in gs)
    out = {
        "test_acc": test_acc, "test_loss": test_loss, "train_acc": train_acc, "train_loss": train_loss,
        "nonlinear_total": float(sum(per_layer)), "units_total": float(units),
        "nonlinear_fraction": sum(per_layer) / units,
        "apl_normalized": float(session.metrics["apl_normalized"](session.model)),
        "apl_unnormalized": float(session.metrics["apl_unnormalized"](session.model)),
        "converged": float(done), "epochs": float(session.epoch), "prior_evaluations": float(len(changes)),
        "last_change_epoch": last_change,
    }
    for i in range(MAX_LAYERS):
        out[f"nonlinear_layer{i + 1}"] = float(per_layer[i]) if i < len(per_layer) else math.nan
    return out
