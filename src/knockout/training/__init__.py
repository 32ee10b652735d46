"""Knockout training, its comparison models and random restarts, for many networks at once.

- :mod:`~knockout.training.plan`: the science: which batches each model trains on, in
  which order, with which units masked (the model registry decides), and for how long.
- :mod:`~knockout.training.engine`: carries out many plans side by side as one batched
  computation (every seed, model and restart of an experiment in one call).
- :mod:`~knockout.training.relabel`: reorders ko's units to the roles its knockout loss
  assigns them (what makes ReLU ko reliable).
- :mod:`~knockout.training.stack` and :mod:`~knockout.training.adam`: the stacked
  networks, their gradients and the optimizer.

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

from dataclasses import dataclass

import torch

from knockout import memory
from knockout.behavior_data import BehaviorData
from knockout.network import Architecture, KnockoutNet
from knockout.training.engine import kept_restart, train_members
from knockout.training.plan import FitPlan, initial_networks, relabels
from knockout.training.settings import TrainSettings

__all__ = ["Fit", "TrainSettings", "TrainingResult", "initial_networks", "relabels", "train", "train_fits"]


@dataclass(frozen=True)
class Fit:
    """One model to fit on one replicate's training data; ``settings.restarts`` networks."""

    model: str
    data: BehaviorData
    settings: TrainSettings
    seed: int


@dataclass(frozen=True)
class TrainingResult:
    """The kept network (on the CPU), every restart's mean training MSE per epoch
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


def member_bytes(architecture: Architecture, batch_size: int) -> int:
    """Bytes one network takes in the batched computation (:func:`knockout.memory.network_bytes`)."""
    widths = [architecture.n_inputs, *(fan_out for _, fan_out in architecture.layer_sizes())]
    return memory.network_bytes(widths, architecture.n_hidden, batch_size)


def batches_of_fits(fits: list[Fit], architecture: Architecture, memory_bytes: int | None) -> list[list[int]]:
    """The fits (their indices, in order) trained together, so that each batch's networks
    take at most ``memory_bytes`` (None: no limit); a fit's restarts stay together."""
    if memory_bytes is None:
        return [list(range(len(fits)))]
    batches: list[list[int]] = [[]]
    used = 0
    for number, fit in enumerate(fits):
        need = fit.settings.restarts * member_bytes(architecture, fit.settings.batch_size)
        if batches[-1] and used + need > memory_bytes:
            batches.append([])
            used = 0
        batches[-1].append(number)
        used += need
    return batches


def train_fits(
    fits: list[Fit],
    architecture: Architecture,
    device: torch.device | str = "cpu",
    memory_bytes: int | None = None,
    closed_form: bool | None = None,
) -> list[TrainingResult]:
    """Train every fit's ``settings.restarts`` networks of ``architecture`` side by side and
    keep each fit's best. Networks that would take more than ``memory_bytes`` together
    are trained in consecutive batches (the networks come out the same).

    ``closed_form``: the linear two-layer closed-form gradient (None: wherever it fits;
    False: autograd). Raises :class:`~knockout.errors.TrainingDiverged` naming the model,
    seed and epoch where every restart of a fit has diverged; no network is returned then.
    """
    plans = [FitPlan(fit.model, fit.data, architecture, fit.settings, fit.seed) for fit in fits]
    results: list[TrainingResult | None] = [None] * len(fits)
    for batch in batches_of_fits(fits, architecture, memory_bytes):
        starts = [
            initial_networks(architecture, fits[number].settings, fits[number].seed) for number in batch
        ]
        stack, first_members, records = train_members([plans[n] for n in batch], starts, device, closed_form)
        for number, first_member, fit_records in zip(batch, first_members, records, strict=True):
            chosen = kept_restart(fit_records)
            results[number] = TrainingResult(
                network=stack.network(first_member + chosen),
                losses=[
                    list(epoch) for epoch in zip(*(record.losses for record in fit_records), strict=True)
                ],
                chosen=chosen,
                relabelled=[record.relabelled for record in fit_records],
                steps_per_epoch=plans[number].batches_per_epoch,
            )
    return results


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
