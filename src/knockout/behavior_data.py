"""A behaviour table (training or test) as tensors, grouped by data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from knockout import naming


@dataclass(frozen=True)
class BehaviorData:
    """A behaviour table as tensors: inputs [rows, d], behaviour [rows, outputs] and the
    silenced unit per row."""

    x: torch.Tensor
    y: torch.Tensor
    silenced_unit: torch.Tensor

    @classmethod
    def from_table(cls, table: pd.DataFrame, n_inputs: int, n_outputs: int = 1) -> BehaviorData:
        x = table[naming.input_columns(n_inputs)].to_numpy(np.float32, copy=True)
        y = table[naming.output_columns(n_outputs)].to_numpy(np.float32, copy=True)
        return cls(
            x=torch.from_numpy(x),
            y=torch.from_numpy(y),
            silenced_unit=torch.from_numpy(table["silenced_unit"].to_numpy(np.int64, copy=True)),
        )

    def rows_by_set(self, include_silenced: bool) -> list[tuple[int, torch.Tensor]]:
        """(silenced unit, row indices) per data set, in order; control is -1."""
        units = torch.unique(self.silenced_unit).tolist()
        if not include_silenced:
            units = [u for u in units if u < 0]
        return [(u, torch.nonzero(self.silenced_unit == u).squeeze(1)) for u in units]
