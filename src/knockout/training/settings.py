"""One model's training settings (its slice of the config's ``train`` section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("interleaved", "blocked")
LR_SCHEDULES = ("cosine", "constant")
RELABEL_CHOICES = ("auto", "always", "never")
SILENCING_MODES = ("zero", "centered")
"""How a masked or silenced unit is silenced: set to 0, or clamped to its mean activity
(the authors' "knockout" and "knockout-centered"; :func:`knockout.network.silenced`)."""


@dataclass(frozen=True)
class TrainSettings:
    """How one model is trained: Adam's rate and its schedule, the batches, the length of
    training, the initial weights, restarts and relabelling."""

    lr: float = 1e-2
    batch_size: int = 64
    epochs: int = 60
    min_steps: int = 16000
    """At least this many Adam steps per network: a model whose epochs hold few batches
    (small data sets, the control set alone) trains for more epochs, so that how far
    training gets does not shrink with the data (Adam converges in steps, not epochs).
    0: ``epochs`` alone."""
    init: str = "glorot"
    lr_schedule: str = "cosine"
    schedule: str = "interleaved"
    restarts: int = 1
    relabel: str = "auto"
    """Reorder ko's units after epochs 1, 2, 4, ...: always, never, or auto (nonlinear networks only:
    plain training of linear ones reaches the exact optimum)."""
    optimizer: str = "adam"
    """``adam``, or ``sgd`` with ``momentum`` (the authors' recipe: SGD, momentum 0.7)."""
    momentum: float = 0.0
    """SGD's momentum (0: plain SGD); Adam ignores it."""
    silencing: str = "zero"
    """How a masked unit is silenced in training: ``zero``, or ``centered`` (clamped to its
    mean activity over the batch's rows)."""

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("schedule", self.schedule, SCHEDULES),
            ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
            ("relabel", self.relabel, RELABEL_CHOICES),
            ("silencing", self.silencing, SILENCING_MODES),
            ("optimizer", self.optimizer, OPTIMIZERS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} {value!r} unknown (allowed: {', '.join(allowed)})")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), not {self.momentum}")
        if self.restarts < 1:
            raise ValueError(f"restarts must be at least 1, not {self.restarts}")
        if self.epochs < 0 or self.min_steps < 0 or self.batch_size < 1:
            raise ValueError(
                f"epochs ({self.epochs}) and min_steps ({self.min_steps}) must be >= 0, "
                f"batch_size ({self.batch_size}) >= 1"
            )

    def epochs_for(self, batches_per_epoch: int) -> int:
        """Epochs to train when an epoch holds this many batches: ``epochs``, or more where
        that many epochs would take fewer than ``min_steps`` Adam steps."""
        if batches_per_epoch == 0:
            return self.epochs
        return max(self.epochs, math.ceil(self.min_steps / batches_per_epoch))

    def lr_at(self, epoch: int, n_epochs: int) -> float:
        """Learning rate of ``epoch`` (1-based) of ``n_epochs``: constant, or cosine-annealed
        towards 0.

        With a constant rate, Adam ends wherever the last few batches pushed it;
        annealing lets the fit settle on all data sets at once.
        """
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / n_epochs))
