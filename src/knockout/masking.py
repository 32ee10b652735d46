"""Masking: which model units a network masks (multiplies by 0) on a batch, in training
and at test time, given the fly units the batch's data set silenced.

Each behaviour is one small object whose one method, :meth:`Masking.units`, says per
batch which model units are masked. The model registry (:mod:`knockout.models`) says
which masking each model uses in training and at test time; the training plan and the
evaluation ask that object, and :func:`knockout.network.keep_matrix` turns its answer
into the ``keep`` multipliers a network takes (the one place they are built).

A new masking behaviour is a subclass here and a registry entry that uses it; nothing
else changes. A masking masks nothing on the control set (no unit silenced): the tests
hold every registered model to that. This module is plain Python (no torch): the
registry is read by the summaries and figures too, whose environment has no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

SetUnits = Sequence[tuple[int, ...]]
"""Per data set, the fly units it silenced (empty: control)."""


class Draws(Protocol):
    """A random stream, as a drawing masking takes it (the training plan gives the
    replicate's dropout stream: :class:`knockout.seeding.Draws`)."""

    def integers(self, high: int, size: int) -> list[int]:
        """``size`` independent uniform draws from 0 .. high - 1."""
        ...

    def permutation(self, n: int) -> list[int]:
        """A uniformly random permutation of 0 .. n - 1."""
        ...


@dataclass(frozen=True)
class Masking:
    """What a model masks on a batch of a data set: :meth:`units` says which model units."""

    draws: ClassVar[bool] = False
    """Whether it draws the units at random. One that does not masks by the batch's set
    alone (the plan makes its masks once per set), and only such a masking can mask at
    test time: evaluation draws nothing."""
    assigns_roles: ClassVar[bool] = False
    """Whether it masks model unit i where the fly's unit i was silenced, so that the units'
    order matters (relabelling applies: :mod:`knockout.training.relabel`)."""

    def units(
        self, set_units: SetUnits, set_of_batch: Sequence[int], n_hidden: int, draws: Draws | None = None
    ) -> list[tuple[int, ...]]:
        """Per batch (``set_of_batch``: each batch's set, an index into ``set_units``), the
        model units (of ``n_hidden``) masked. A masking that draws takes its draws from
        ``draws``, in the order it documents: the same masks for the same stream, whatever
        else is trained."""
        raise NotImplementedError

    def on_set(self, silenced: tuple[int, ...], n_hidden: int) -> tuple[int, ...]:
        """The model units masked on a test set that silenced the fly's units ``silenced``."""
        if self.draws:
            raise ValueError(f"{self!r} draws its units at random: it cannot mask at test time")
        return self.units([silenced], [0], n_hidden)[0]


@dataclass(frozen=True)
class NoMasking(Masking):
    """Nothing masked."""

    def units(self, set_units, set_of_batch, n_hidden, draws=None):
        return [()] * len(set_of_batch)


@dataclass(frozen=True)
class MatchingUnits(Masking):
    """The model units matching the silenced fly units (model unit i for fly unit i; a model
    smaller than the fly has no unit for the fly's last units): knockout training."""

    assigns_roles: ClassVar[bool] = True

    def units(self, set_units, set_of_batch, n_hidden, draws=None):
        per_set = [tuple(unit for unit in units if unit < n_hidden) for units in set_units]
        return [per_set[number] for number in set_of_batch]


@dataclass(frozen=True)
class RandomUnits(Masking):
    """As many uniformly random model units as the set silenced (distinct), drawn afresh for
    every batch: dropout at knockout's rate. Draws: one unit per batch, for every batch (so
    that the batches of one-unit sets see the same stream whatever the other sets), then,
    batch after batch, a permutation for each batch whose set silenced k > 1 units (its
    first k units)."""

    draws: ClassVar[bool] = True

    def units(self, set_units, set_of_batch, n_hidden, draws=None):
        drawn = draws.integers(n_hidden, len(set_of_batch))
        sizes = [len(set_units[number]) for number in set_of_batch]
        masked = [(unit,) if size == 1 else () for unit, size in zip(drawn, sizes, strict=True)]
        for batch, size in enumerate(sizes):
            if size > 1:
                masked[batch] = tuple(draws.permutation(n_hidden)[:size])
        return masked


NONE = NoMasking()
MATCHING = MatchingUnits()
RANDOM = RandomUnits()
