"""A behaviour table (training or test rows) as tensors, grouped by data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from knockout.data_folder import Layout


@dataclass(frozen=True)
class BehaviorData:
    """Behaviour rows as tensors: inputs [rows, d], behaviour [rows, outputs], each row's
    set (an index into ``set_units``), and per set the units it silences (indices into
    the layout's units; empty for control)."""

    x: torch.Tensor
    y: torch.Tensor
    set_index: torch.Tensor
    set_units: tuple[tuple[int, ...], ...]

    @classmethod
    def from_table(cls, table: pd.DataFrame, layout: Layout) -> BehaviorData:
        x = table[list(layout.input_names)].to_numpy(np.float32, copy=True)
        y = table[list(layout.outputs)].to_numpy(np.float32, copy=True)
        number = {name: index for index, (name, _) in enumerate(layout.sets)}
        set_index = table["set"].map(number).to_numpy(np.int64, copy=True)
        return cls(
            x=torch.from_numpy(x),
            y=torch.from_numpy(y),
            set_index=torch.from_numpy(set_index),
            set_units=tuple(units for _, units in layout.sets),
        )

    def standardized(self, mean: torch.Tensor, scale: torch.Tensor) -> BehaviorData:
        """The same rows with inputs (x - mean) / scale: what a network that z-scores its
        inputs trains on (its first layer reads them so)."""
        return BehaviorData((self.x - mean).div_(scale), self.y, self.set_index, self.set_units)

    def rows_by_set(self, include_silenced: bool) -> list[tuple[tuple[int, ...], torch.Tensor]]:
        """(silenced units, row indices) per set that has rows, in the layout's order (control,
        which silences nothing, first)."""
        present = torch.unique(self.set_index).tolist()
        if not include_silenced:
            present = [number for number in present if not self.set_units[number]]
        return [(self.set_units[n], torch.nonzero(self.set_index == n).squeeze(1)) for n in present]

    @property
    def single_unit_sets(self) -> bool:
        """Whether every silenced set silences exactly one unit."""
        return all(len(units) == 1 for units in self.set_units if units)

    def silenced_unit(self) -> np.ndarray:
        """Per row, the unit its set silences (-1 for control): for data whose sets each
        silence one unit (the knockout optimum's premise)."""
        if not self.single_unit_sets:
            raise ValueError("a set silences several units; there is no single silenced unit per row")
        per_set = np.array([units[0] if units else -1 for units in self.set_units], dtype=np.int64)
        return per_set[self.set_index.numpy()]
