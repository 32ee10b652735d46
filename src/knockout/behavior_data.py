"""A behaviour table (training or test rows) as tensors, grouped by data set, and a
neurons table as the stimuli and responses of its recorded units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from knockout import naming
from knockout.data_folder import FolderData, Layout, split
from knockout.inputs import Inputs


def table_inputs(table: pd.DataFrame, layout: Layout, values: torch.Tensor | None = None) -> Inputs:
    """The inputs of a table's rows: its ``x_*`` columns, or (read beside an array stimulus)
    the rows of ``values`` (:attr:`FolderData.inputs`) its entry columns name."""
    if layout.stimulus is None:
        return Inputs(torch.from_numpy(table[list(layout.inputs)].to_numpy(np.float32, copy=True)))
    if values is None:
        raise ValueError("these rows name their inputs in an array's values: pass the values")
    entries = table[list(layout.entry_columns)].to_numpy(np.int64, copy=True)
    return Inputs(values, torch.from_numpy(entries))


@dataclass(frozen=True)
class BehaviorData:
    """Behaviour rows as tensors: inputs (:class:`~knockout.inputs.Inputs`, d values a row;
    a tensor [rows, d] given is held as they are), behaviour [rows, outputs], each row's
    set (an index into ``set_units``), and per set the units it silences (indices into
    the layout's units; empty for control)."""

    inputs: Inputs
    y: torch.Tensor
    set_index: torch.Tensor
    set_units: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if isinstance(self.inputs, torch.Tensor):
            object.__setattr__(self, "inputs", Inputs(self.inputs))

    @property
    def x(self) -> torch.Tensor:
        """Every row's input [rows, d] (:meth:`Inputs.tensor`: for small data; training and
        evaluation read ``inputs`` by rows)."""
        return self.inputs.tensor()

    @classmethod
    def from_table(
        cls, table: pd.DataFrame, layout: Layout, values: torch.Tensor | None = None
    ) -> BehaviorData:
        """Rows of a behaviour table; ``values``: the array's (:func:`table_inputs`)."""
        y = table[list(layout.outputs)].to_numpy(np.float32, copy=True)
        number = {name: index for index, (name, _) in enumerate(layout.sets)}
        set_index = table["set"].map(number).to_numpy(np.int64, copy=True)
        return cls(
            inputs=table_inputs(table, layout, values),
            y=torch.from_numpy(y),
            set_index=torch.from_numpy(set_index),
            set_units=tuple(units for _, units in layout.sets),
        )

    @classmethod
    def split(
        cls, data: FolderData, test_fraction: float | None, seed: int
    ) -> tuple[BehaviorData, BehaviorData]:
        """One seed's training and test rows of a data folder (:func:`knockout.data_folder.split`),
        their inputs naming the folder's values, held once."""
        train_rows, test_rows = split(data.behavior, data.layout, test_fraction, seed)
        values = held_values(data)
        return cls.from_table(train_rows, data.layout, values), cls.from_table(test_rows, data.layout, values)

    def standardized(self, mean: torch.Tensor, scale: torch.Tensor) -> BehaviorData:
        """The same rows with inputs read as (x - mean) / scale: what a network that
        z-scores its inputs trains on (its first layer reads them so)."""
        return BehaviorData(self.inputs.standardized(mean, scale), self.y, self.set_index, self.set_units)

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


def held_values(data: FolderData) -> torch.Tensor | None:
    """A folder's array values as a tensor sharing their memory (None without an array)."""
    return None if data.inputs is None else torch.from_numpy(data.inputs)


@dataclass(frozen=True)
class NeuronData:
    """A neurons table as tensors: its stimuli (:class:`~knockout.inputs.Inputs`), the data's
    indices of its recorded units, and their responses [stimuli, recorded] (float64, NaN
    where not recorded)."""

    stimuli: Inputs
    recorded: list[int]
    responses: np.ndarray

    @classmethod
    def from_table(
        cls, table: pd.DataFrame, layout: Layout, values: torch.Tensor | None = None
    ) -> NeuronData:
        units = list(layout.units)
        recorded = [unit for unit in units if naming.response_column(unit) in table]
        responses = table[[naming.response_column(unit) for unit in recorded]].to_numpy(np.float64)
        return cls(table_inputs(table, layout, values), [units.index(unit) for unit in recorded], responses)

    @classmethod
    def of_folder(cls, data: FolderData) -> NeuronData:
        """A data folder's neurons file (a ValueError where it has none)."""
        if data.neurons is None:
            raise ValueError("this data folder has no neurons file: there are no recorded neurons or stimuli")
        return cls.from_table(data.neurons, data.layout, held_values(data))

    @classmethod
    def unrecorded(cls, stimuli: Inputs) -> NeuronData:
        """Stimuli without recordings: where the model units' responses are all there is."""
        return cls(stimuli, [], np.zeros((len(stimuli), 0)))
