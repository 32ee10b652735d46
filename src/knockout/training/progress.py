"""Progress of a long training, as the batched engine sees it between chunks of steps.

The engine reads the epoch losses back to the host only between chunks (a few hundred
steps), never per step; it reports progress there, so reporting costs the step loop
nothing. :class:`ProgressReporter` turns the engine's counts into a :class:`Progress`
and passes it on at most every ``every_s`` seconds of wall time (and once at the end):
the training job's log and a notebook's callback receive the same reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from knockout.training.engine import MemberRecord
from knockout.training.plan import FitPlan

PROGRESS_SECONDS = 10.0
"""Wall time between two progress reports: how fast a step goes is unpredictable (the
data, the device, how many networks), so the rate is set in time, not in steps."""


@dataclass(frozen=True)
class FitProgress:
    """One fit (a model of one seed) so far: the epochs its restarts have completed (the
    furthest), of ``n_epochs``, and the lowest of their losses at that epoch (mean training
    loss; NaN before the first epoch ends or where every restart has diverged)."""

    model: str
    seed: int
    epoch: int
    n_epochs: int
    loss: float


@dataclass(frozen=True)
class Progress:
    """What a training has done: the share of all its networks' Adam steps taken, the wall
    time since it started, and every fit's latest epoch and loss. ``str()`` gives one line."""

    fraction: float
    elapsed_s: float
    fits: tuple[FitProgress, ...]

    def __str__(self) -> str:
        left = self.elapsed_s * (1 - self.fraction) / self.fraction if self.fraction > 0 else math.nan
        head = f"training {self.fraction:.0%} done in {self.elapsed_s:.0f} s"
        if 0 < self.fraction < 1:
            head += f", about {left:.0f} s left"
        models = dict.fromkeys(fit.model for fit in self.fits)
        return "; ".join([head, *(_model_line([f for f in self.fits if f.model == m]) for m in models)])


def _model_line(fits: list[FitProgress]) -> str:
    """``ko epoch 20/60 loss 0.0123`` (several seeds: the lowest epoch and the loss range)."""
    losses = [fit.loss for fit in fits if not math.isnan(fit.loss)]
    if not losses:
        loss = "no loss yet"
    elif len(losses) == 1:
        loss = f"loss {losses[0]:.4g}"
    else:
        loss = f"loss {min(losses):.4g}-{max(losses):.4g} over {len(losses)} seeds"
    epoch, n_epochs = min(fit.epoch for fit in fits), max(fit.n_epochs for fit in fits)
    return f"{fits[0].model} epoch {epoch}/{n_epochs} {loss}"


def fit_progress(plan: FitPlan, records: list[MemberRecord]) -> FitProgress:
    """A fit's progress from its restarts' records so far."""
    epoch = max((len(record.losses) for record in records), default=0)
    latest = [
        record.losses[-1]
        for record in records
        if len(record.losses) == epoch and epoch > 0 and record.diverged_at is None
    ]
    return FitProgress(plan.model, plan.seed, epoch, plan.n_epochs, min(latest, default=math.nan))


class ProgressReporter:
    """Collects the engine's reports over the batches of a training (``train_fits`` may
    train its networks in turns) and passes ``callback`` a :class:`Progress` at most every
    ``every_s`` seconds (None: :data:`PROGRESS_SECONDS`), and when the last step is taken."""

    def __init__(
        self,
        plans: list[FitPlan],
        restarts: list[int],
        callback: Callable[[Progress], None],
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plans, self.callback, self.clock = plans, callback, clock
        self.every_s = PROGRESS_SECONDS if every_s is None else every_s
        self.total = sum(self._steps(number, n) for number, n in enumerate(restarts))
        """Network steps (one Adam step of one network) of the whole training."""
        self.done_before = self.batch_steps = 0
        """Network steps of the batches before the current one, and of the current one."""
        self.started = self.last = clock()

    def _steps(self, number: int, n_restarts: int) -> int:
        plan = self.plans[number]
        return plan.n_epochs * plan.batches_per_epoch * n_restarts

    def batch(self, batch: list[tuple[int, range]], finished: list[list[MemberRecord]]) -> Callable:
        """The engine's callback for the next batch (fits and their restarts, as
        ``batches_of_fits`` gives them); ``finished``: every fit's records from the batches
        before. The callback takes the network steps taken in this batch and the batch's
        records, per fit of ``batch``."""
        self.done_before += self.batch_steps
        self.batch_steps = sum(self._steps(number, len(restarts)) for number, restarts in batch)

        def report(steps: int, batch_records: list[list[MemberRecord]]) -> None:
            now, done = self.clock(), self.done_before + steps
            if now - self.last < self.every_s and done < self.total:
                return
            self.last = now
            records = list(finished)
            for (number, _), fit_records in zip(batch, batch_records, strict=True):
                records[number] = finished[number] + fit_records
            fits = tuple(fit_progress(p, r) for p, r in zip(self.plans, records, strict=True))
            self.callback(Progress(done / self.total if self.total else 1.0, now - self.started, fits))

        return report
