"""Many rows' inputs, each row's gathered when it is read from values held once.

A data folder whose stimuli are frames (``frames.npy``) names each sample's input by the k
frames of its history; consecutive samples of a session share k - 1 of them, and every
replicate seed's training and test rows are drawn from the same frames. Held as one
flattened history per row, a training job would hold each frame k times per copy (the
table, each seed's rows, their standardized copy, the trainer's data): paper-sized
recordings would not fit. :class:`Inputs` holds the frames once and gives a row's input
when it is read, standardized where the networks read it so; tables of ``x_*`` columns are
the case of one entry per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

CHUNK_VALUES = 1 << 24
"""Numbers (64 MiB of float32) a chunk of rows gathered at once may hold, where rows are
read a chunk at a time (standardization, evaluation)."""


@dataclass(frozen=True, eq=False)
class Inputs:
    """Rows' inputs: row r's is the values of its entries ``entries[r]`` side by side,
    flattened ([c x entry_width] values), then z-scored by ``mean`` and ``scale`` where
    given.

    ``values`` [n_entries, entry_width] float32 is held once, however many rows (and
    selections of rows) name its entries; ``entries`` [rows, c] int64 (None: row r is
    entry r, one entry a row, as a table of ``x_*`` columns is held)."""

    values: torch.Tensor
    entries: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    scale: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.values.dim() != 2:
            raise ValueError(f"values must be [entries, entry_width], not {tuple(self.values.shape)}")
        if self.entries is not None and (self.entries.dim() != 2 or self.entries.dtype != torch.int64):
            raise ValueError(f"entries must be int64 [rows, entries per row], not {self.entries}")
        if (self.mean is None) != (self.scale is None):
            raise ValueError("standardization needs both a mean and a scale")

    def __len__(self) -> int:
        return len(self.values) if self.entries is None else len(self.entries)

    @property
    def per_row(self) -> int:
        """c, the entries that make up one row's input."""
        return 1 if self.entries is None else self.entries.shape[1]

    @property
    def width(self) -> int:
        """d, the values of one row's input."""
        return self.per_row * self.values.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """[rows, d]: the shape :meth:`tensor` gives."""
        return len(self), self.width

    @property
    def device(self) -> torch.device:
        return self.values.device

    def _index(self, rows) -> torch.Tensor:
        """``rows`` (a boolean mask, or row numbers: tensor, array or list) as row numbers."""
        rows = torch.as_tensor(np.asarray(rows) if not isinstance(rows, torch.Tensor) else rows)
        if rows.dtype == torch.bool:
            return torch.nonzero(rows).squeeze(1).to(self.device)
        return rows.to(self.device, torch.int64).reshape(-1)

    def __getitem__(self, rows) -> torch.Tensor:
        """The inputs of ``rows`` (a boolean mask or row numbers), [len(rows), d]: a new tensor."""
        index = self._index(rows)
        if self.entries is None:
            gathered = self.values.index_select(0, index)
        else:
            named = self.entries.index_select(0, index).reshape(-1)
            gathered = self.values.index_select(0, named).view(len(index), self.width)
        if self.mean is None:
            return gathered
        return gathered.sub_(self.mean).div_(self.scale)

    def tensor(self) -> torch.Tensor:
        """Every row's input, [rows, d]; the values themselves (no copy) for one entry a row,
        unstandardized. Where the inputs are frames, this holds each frame once per row that
        names it: for what reads every row at once (small data), not for a recording."""
        if self.entries is None and self.mean is None:
            return self.values
        return self[torch.arange(len(self), device=self.device)]

    def chunks(self, max_rows: int) -> Iterator[torch.Tensor]:
        """Every row's input, in order, ``max_rows`` rows at a time (:meth:`__getitem__`);
        where one chunk holds them all, :meth:`tensor` (a table's rows as they are held)."""
        if max_rows >= len(self):
            yield self.tensor()
            return
        for rows in torch.arange(len(self), device=self.device).split(max(1, max_rows)):
            yield self[rows]

    def select(self, rows) -> Inputs:
        """The inputs of ``rows`` (a boolean mask or row numbers), naming the same values."""
        index = self._index(rows)
        entries = index[:, None] if self.entries is None else self.entries.index_select(0, index)
        return Inputs(self.values, entries, self.mean, self.scale)

    def standardized(self, mean: torch.Tensor, scale: torch.Tensor) -> Inputs:
        """The same rows, read as (x - mean) / scale ([d] each): what a network that
        z-scores its inputs reads them as."""
        return Inputs(self.values, self.entries, mean, scale)

    def to(self, device: torch.device | str, values: torch.Tensor | None = None) -> Inputs:
        """These inputs on ``device``; ``values``: this one's values already there (shared
        with other inputs, so that they are held there once)."""
        moved = [None if t is None else t.to(device) for t in (self.entries, self.mean, self.scale)]
        return Inputs(self.values.to(device) if values is None else values, *moved)

    def values_key(self) -> tuple:
        """Equal for inputs that name the same values (the same memory), however they were
        selected or wrapped: so that what holds several inputs holds their values once."""
        values = self.values
        return (values.device, values.data_ptr(), tuple(values.shape), values.stride(), values.dtype)


def rows_per_chunk(values_per_row: int, max_values: int | None = None) -> int:
    """Rows a chunk may hold where each takes ``values_per_row`` numbers at its widest,
    within ``max_values`` (None: :data:`CHUNK_VALUES`)."""
    return max(1, (CHUNK_VALUES if max_values is None else max_values) // max(1, values_per_row))
