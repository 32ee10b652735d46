"""The knockout plan: which batches a network trains on, in which order, with which model
units masked. This is the science of knockout training; the engine only carries it out.

Every batch comes from one data set (control, or a silencing of one or several units).
What a model trains on and masks on a silenced batch are objects of its registry entry
(:mod:`knockout.models`), which the plan asks: control fits the control set only; noko
fits every set and masks nothing; ko masks the model units matching the silenced ones;
do masks as many uniformly random units on silenced batches (:mod:`knockout.masking`).
A plan is made from the entry, resolved once from the model's name (:class:`FitPlan`).

Schedules: ``interleaved`` (the default) shuffles each set, cuts it into batches and
shuffles the batches of all sets together; ``blocked`` trains one set after another,
the sets in a new random order each epoch (as the authors' published script does).

All draws come from the replicate's named streams (:mod:`knockout.seeding`): noko, ko
and do see the same batches in the same order and differ only in what they mask, and
every restart of a model sees the same batches and masks as the others.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from knockout import seeding
from knockout.behavior_data import BehaviorData
from knockout.models import ModelSpec
from knockout.network import Architecture, KnockoutNet, initialize, keep_matrix
from knockout.training.settings import TrainSettings

Batch = tuple[tuple[int, ...], torch.Tensor]
"""(the units its data set silenced, its rows)."""


class BatchOrder:
    """The batches of the sets one replicate's model trains on, epoch after epoch.

    Each epoch, each set is shuffled and cut into batches of ``batch_size`` rows (its last
    batch may be smaller). interleaved: the batches of all sets are then shuffled
    together; blocked: the sets follow each other, in a new random order each epoch.
    The draws come from the replicate's schedule stream, so the models that train on the
    same sets (noko, ko and do) get the same batches; they share one order, which keeps
    each epoch until every one of its ``consumers`` has taken it.
    """

    def __init__(self, sets: list[Batch], batch_size: int, schedule: str, seed: int, consumers: int = 1):
        self.sets, self.batch_size, self.schedule, self.consumers = sets, batch_size, schedule, consumers
        self.width = min(batch_size, max(len(rows) for _, rows in sets))
        """Columns of an epoch's row table: the largest batch."""
        # The index work of an epoch is done in numpy (a few microseconds a call, where a
        # small torch operation costs several times that); the draws stay torch's.
        self._rows = [rows.numpy() for _, rows in sets]
        # Per set, where each batch's rows sit in the set's shuffled rows (-1: padding), and
        # the set of each batch: the same every epoch, so laid out once.
        self._positions, self._set_of_batch = [], []
        for number, rows in enumerate(self._rows):
            starts = np.arange(0, len(rows), batch_size)
            positions = starts[:, None] + np.arange(self.width)
            self._positions.append(np.where(positions < len(rows), positions, -1))
            self._set_of_batch.append(np.full(len(starts), number))
        self._fixed = self._table(range(len(sets))) if schedule == "interleaved" else None
        self._generator = seeding.generator(seed, "schedule")
        self._drawn = 0
        self._kept: dict[int, list] = {}

    def _table(self, order) -> tuple[np.ndarray, np.ndarray]:
        """For sets shuffled and concatenated in ``order``: where each batch's rows sit in
        the concatenation ([batches, width], -1 padding), and each batch's set."""
        tables, offset = [], 0
        for number in order:
            tables.append(np.where(self._positions[number] >= 0, self._positions[number] + offset, -1))
            offset += len(self._rows[number])
        return np.concatenate(tables), np.concatenate([self._set_of_batch[number] for number in order])

    def epoch(self, number: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Epoch ``number``'s batches (epochs are taken in order by each consumer): the rows
        [batches, width] (-1 pads a short batch) and each batch's set (an index into ``sets``)."""
        while self._drawn < number:
            self._drawn += 1
            self._kept[self._drawn] = [self._draw(), self.consumers]
        entry = self._kept[number]
        entry[1] -= 1
        if entry[1] == 0:
            del self._kept[number]
        return entry[0]

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        order = range(len(self.sets))
        if self.schedule == "blocked":
            order = torch.randperm(len(self.sets), generator=self._generator).tolist()
        table, set_of_batch = self._fixed or self._table(order)
        shuffled = np.concatenate(
            [self._rows[s][self._permutation(len(self._rows[s]))] for s in order]
            + [np.array([-1])]  # what the padding's -1 picks
        )
        rows = shuffled[table]
        if self.schedule == "interleaved":
            shuffle = self._permutation(len(rows))
            rows, set_of_batch = rows[shuffle], set_of_batch[shuffle]
        return torch.from_numpy(rows), torch.from_numpy(set_of_batch)

    def _permutation(self, n: int) -> np.ndarray:
        return torch.randperm(n, generator=self._generator).numpy()


def initial_networks(architecture: Architecture, settings: TrainSettings, seed: int) -> list[KnockoutNet]:
    """The ``settings.restarts`` networks training starts from, drawn one after another
    from the replicate's model_init stream: the same for every model of a replicate, and
    restart 0 is the network a run without restarts starts from."""
    generator = seeding.generator(seed, "model_init")
    return [initialize(KnockoutNet(architecture), settings.init, generator) for _ in range(settings.restarts)]


@dataclass(frozen=True)
class Epoch:
    """One epoch of a plan: its number (from 1), learning rate, and per batch, in training
    order, its rows (indices into the data; -1 pads a short batch) and the ``keep``
    multipliers of the model's units (0: masked)."""

    number: int
    lr: float
    rows: torch.Tensor
    keep: torch.Tensor

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each batch's (rows, keep [n_hidden]), one after another."""
        for rows, keep in zip(self.rows, self.keep, strict=True):
            yield rows[rows >= 0], keep


@dataclass(frozen=True)
class FitPlan:
    """The whole training of one model (its registry entry: :func:`knockout.models.spec`)
    on one replicate's training data."""

    spec: ModelSpec
    data: BehaviorData
    architecture: Architecture
    settings: TrainSettings
    seed: int

    def __post_init__(self) -> None:
        if not isinstance(self.spec, ModelSpec):
            raise TypeError(f"FitPlan takes a model's registry entry (models.spec), not {self.spec!r}")

    @property
    def model(self) -> str:
        return self.spec.name

    @functools.cached_property
    def sets(self) -> list[Batch]:
        """The data sets this model fits, as (silenced units, rows)."""
        return self.spec.trains_on.sets(self.data)

    @functools.cached_property
    def batches_per_epoch(self) -> int:
        return sum(math.ceil(len(rows) / self.settings.batch_size) for _, rows in self.sets)

    @property
    def rows_per_epoch(self) -> int:
        return sum(len(rows) for _, rows in self.sets)

    @functools.cached_property
    def n_epochs(self) -> int:
        """``settings.epochs``, or more where ``settings.min_steps`` asks for them."""
        return self.settings.epochs_for(self.batches_per_epoch)

    @property
    def relabels(self) -> bool:
        """Whether this model's units are reordered during training (knockout.training.relabel)."""
        return relabels(self.spec, self.architecture, self.settings)

    def batch_order(self, consumers: int = 1) -> BatchOrder:
        """This plan's batches; ``consumers`` plans of models that train on the same sets may share it."""
        return BatchOrder(self.sets, self.settings.batch_size, self.settings.schedule, self.seed, consumers)

    def order_key(self) -> tuple:
        """Plans with equal keys draw the same batches (one :class:`BatchOrder` serves them all)."""
        return (
            id(self.data),
            self.spec.trains_on,
            self.settings.batch_size,
            self.settings.schedule,
            self.seed,
        )

    def epochs(self, order: BatchOrder | None = None) -> Iterator[Epoch]:
        """Every epoch's batches in training order, with the units each masks."""
        order = order or self.batch_order()
        set_units = [units for units, _ in self.sets]
        masking, n_hidden = self.spec.train_masking, self.architecture.n_hidden
        dropout = seeding.Draws(seeding.generator(self.seed, "dropout"))
        # A masking that draws nothing masks by the batch's set alone: its masks per set, once.
        per_set = None
        if not masking.draws:
            per_set = keep_matrix(masking.units(set_units, range(len(set_units)), n_hidden), n_hidden)
        for number in range(1, self.n_epochs + 1):
            rows, set_of_batch = order.epoch(number)
            if per_set is not None:
                keep = per_set[set_of_batch]
            else:
                keep = keep_matrix(
                    masking.units(set_units, set_of_batch.tolist(), n_hidden, dropout), n_hidden
                )
            yield Epoch(number, self.settings.lr_at(number, self.n_epochs), rows, keep)

    def behaviour_variance(self) -> float:
        """The variance of the behaviour this model fits (all its outputs pooled)."""
        rows = torch.cat([rows for _, rows in self.sets])
        return float(self.data.y[rows].var())


def relabels(spec: ModelSpec, architecture: Architecture, settings: TrainSettings) -> bool:
    """Whether a model's units are reordered during training (:mod:`knockout.training.relabel`):
    only a model whose masking gives its units the silenced units' roles (ko) has an order
    to get wrong, and plain training gets it wrong for ReLU networks (``relabel: auto``)."""
    if not spec.train_masking.assigns_roles or settings.relabel == "never":
        return False
    return settings.relabel == "always" or architecture.activation != "linear"
