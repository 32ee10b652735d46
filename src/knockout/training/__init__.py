"""Knockout training, its comparison models and random restarts, for many networks at once.

- :mod:`~knockout.training.plan`: the science: which batches each model trains on, in
  which order, with which units masked (the model registry decides), and for how long.
- :mod:`~knockout.training.engine`: carries out many plans side by side as one batched
  computation (every seed, model and restart of an experiment in one call).
- :mod:`~knockout.training.relabel`: reorders ko's units to the roles its knockout loss
  assigns them (what makes ReLU ko reliable).
- :mod:`~knockout.training.stack` and :mod:`~knockout.training.optimizer`: the stacked
  networks, their gradients and the optimizer.
- :mod:`~knockout.training.progress`: what a long training has done, reported between
  the engine's chunks of steps (to the job's log, or a notebook's callback).

``train_fits`` trains a list of fits (a model, a replicate's training data, settings and
seed each); ``train`` one. A network trained among others is the network trained alone
(the tests hold them to 1e-5): its batches, masks, learning rates and initial weights
come from its own seed, and it shares no parameter with the others.

The knockout loss is not convex once units are nonlinear, and one run can stop in a
poor local minimum. Two remedies, both measured on the ReLU fly (docs/results.md):
``restarts`` trains R networks from independent initial weights and keeps the one with
the lowest final training loss; ``relabel`` reorders ko's units during training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from knockout import memory, models
from knockout.behavior_data import BehaviorData
from knockout.convergence import LOSS_COLUMNS
from knockout.network import Architecture, KnockoutNet, input_standardization
from knockout.training.engine import MemberRecord, kept_restart, raise_diverged, train_members
from knockout.training.plan import FitPlan, initial_networks, relabels
from knockout.training.progress import Progress, ProgressReporter
from knockout.training.settings import TrainSettings

__all__ = [
    "Fit",
    "Progress",
    "TrainSettings",
    "TrainingResult",
    "initial_networks",
    "relabels",
    "train",
    "train_fits",
]


@dataclass(frozen=True)
class Fit:
    """One model to fit on one replicate's training data; ``settings.restarts`` networks.
    The model's registry entry is looked up here, once (an unknown name fails naming the
    known ones), and is what training is given (``spec``)."""

    model: str
    data: BehaviorData
    settings: TrainSettings
    seed: int
    spec: models.ModelSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spec = models.spec(self.model)
        if not spec.trained:
            raise ValueError(
                f"model {self.model!r} is computed, not trained (the exact optimum of {spec.optimum_of!r})"
            )
        object.__setattr__(self, "spec", spec)


@dataclass(frozen=True)
class TrainingResult:
    """The kept network (on the CPU), every restart's mean training loss per epoch
    (``losses[epoch][restart]``), which restart was kept, per restart the epochs after
    which its units were relabelled (empty lists when no relabelling ran), and the Adam
    steps an epoch took."""

    network: KnockoutNet
    losses: list[list[float]]
    chosen: int
    relabelled: list[list[int]]
    steps_per_epoch: int

    @property
    def chosen_losses(self) -> list[float]:
        return [epoch[self.chosen] for epoch in self.losses]

    def loss_table(self) -> pd.DataFrame:
        """Every restart's loss per epoch, with the Adam steps taken by its end and the kept
        restart marked: the training job's ``<model>_loss.parquet`` (:data:`LOSS_COLUMNS`)."""
        rows = [
            (epoch, epoch * self.steps_per_epoch, restart, loss, int(restart == self.chosen))
            for epoch, per_restart in enumerate(self.losses, start=1)
            for restart, loss in enumerate(per_restart)
        ]
        return pd.DataFrame(rows, columns=LOSS_COLUMNS)


def member_bytes(architecture: Architecture, batch_size: int) -> int:
    """Bytes one network takes in the batched computation (:func:`knockout.memory.stacked_network_bytes`)."""
    values = architecture.n_inputs + architecture.values_per_sample()
    return memory.stacked_network_bytes(
        architecture.parameter_count(), values, architecture.n_hidden, batch_size
    )


def batches_of_fits(
    fits: list[Fit], architecture: Architecture, memory_bytes: int | None
) -> list[list[tuple[int, range]]]:
    """The networks trained together, as (fit, its restarts) in order, so that each batch's
    networks take at most ``memory_bytes`` (None: no limit; at least one network a batch)."""
    batches: list[list[tuple[int, range]]] = [[]]
    used = 0
    for number, fit in enumerate(fits):
        need = member_bytes(architecture, fit.settings.batch_size)
        first = 0
        for restart in range(fit.settings.restarts):
            if memory_bytes is not None and used + need > memory_bytes and used > 0:
                if restart > first:
                    batches[-1].append((number, range(first, restart)))
                batches.append([])
                used, first = 0, restart
            used += need
        batches[-1].append((number, range(first, fit.settings.restarts)))
    return batches


def train_fits(
    fits: list[Fit],
    architecture: Architecture,
    device: torch.device | str = "cpu",
    memory_bytes: int | None = None,
    closed_form: bool | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> list[TrainingResult]:
    """Train every fit's ``settings.restarts`` networks of ``architecture`` side by side and
    keep each fit's best. Networks that would take more than ``memory_bytes`` together
    are trained in consecutive batches (the networks come out the same).

    ``closed_form``: the linear two-layer closed-form gradient (None: wherever it fits;
    False: autograd). Raises :class:`~knockout.errors.TrainingDiverged` naming the model,
    seed and epoch where every restart of a fit has diverged; no network is returned then.
    ``progress``, if given, receives a :class:`Progress` about every
    :data:`~knockout.training.progress.PROGRESS_SECONDS` and when training ends.
    """
    standardization = _standardizations(fits, architecture)
    standardized = {  # per distinct data, its inputs read z-scored (the engine holds each data once)
        id(fit.data): fit.data.standardized(*standardization[id(fit.data)]) for fit in fits if standardization
    }
    plans = [
        FitPlan(fit.spec, standardized.get(id(fit.data), fit.data), architecture, fit.settings, fit.seed)
        for fit in fits
    ]
    records: list[list[MemberRecord]] = [[] for _ in fits]
    reporter = None
    if progress is not None:
        reporter = ProgressReporter(plans, [fit.settings.restarts for fit in fits], progress)
    kept: list[tuple[float, KnockoutNet] | None] = [None] * len(fits)
    for batch in batches_of_fits(fits, architecture, memory_bytes):
        starts = [
            initial_networks(architecture, fits[number].settings, fits[number].seed)[
                restarts.start : restarts.stop
            ]
            for number, restarts in batch
        ]
        whole = [len(restarts) == fits[number].settings.restarts for number, restarts in batch]
        stack, first_members, batch_records = train_members(
            [plans[number] for number, _ in batch],
            starts,
            device,
            closed_form,
            whole,
            None if reporter is None else reporter.batch(batch, [list(r) for r in records]),
        )
        for (number, _), first_member, fit_records in zip(batch, first_members, batch_records, strict=True):
            for offset, record in enumerate(fit_records):
                final = record.losses[-1] if record.losses else math.inf
                if record.diverged_at is None and (kept[number] is None or final < kept[number][0]):
                    network = stack.network(first_member + offset)
                    if architecture.standardize:
                        network.input_mean, network.input_scale = standardization[id(fits[number].data)]
                    kept[number] = (final, network)
            records[number].extend(fit_records)
    results = []
    for plan, fit_records, best in zip(plans, records, kept, strict=True):
        if best is None:
            raise_diverged(plan, fit_records)
        chosen = kept_restart(fit_records)
        results.append(
            TrainingResult(
                network=best[1],
                losses=[
                    list(epoch) for epoch in zip(*(record.losses for record in fit_records), strict=True)
                ],
                chosen=chosen,
                relabelled=[record.relabelled for record in fit_records],
                steps_per_epoch=plan.batches_per_epoch,
            )
        )
    return results


def _standardizations(fits: list[Fit], architecture: Architecture) -> dict[int, tuple]:
    """Per distinct training data (by identity: the models of a replicate share theirs), the
    (mean, scale) its networks z-score their inputs by, where the architecture does: the
    stacked networks train on the z-scored rows, and the kept network holds the two."""
    if not architecture.standardize:
        return {}
    pooled = bool(architecture.frame_shape)  # pixels: one kind of value, one scale
    distinct = {id(fit.data): fit.data for fit in fits}
    return {key: input_standardization(data.inputs, pooled) for key, data in distinct.items()}


def train(
    model: str,
    data: BehaviorData,
    architecture: Architecture,
    settings: TrainSettings,
    seed: int,
    device: torch.device | str = "cpu",
    closed_form: bool | None = None,
) -> TrainingResult:
    """Fit ``settings.restarts`` networks of ``architecture`` to a model's data sets and keep
    the best (:func:`train_fits` for one fit)."""
    return train_fits([Fit(model, data, settings, seed)], architecture, device, closed_form=closed_form)[0]
