"""Test shorthand: the seed problem's two-layer network of a given size, simulated tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from knockout import metrics
from knockout.behavior_data import BehaviorData
from knockout.data_folder import simulated_layout
from knockout.network import Architecture, KnockoutNet


def two_layer(n_inputs: int, n_hidden: int, activation: str = "linear") -> KnockoutNet:
    return KnockoutNet(Architecture(n_inputs, n_hidden, activation=activation))


def silenced_unit(table: pd.DataFrame) -> np.ndarray:
    """Per row of a simulated behaviour table, the unit its set silenced (-1: control)."""
    return np.array([int(name.removeprefix("unit_")) if name else -1 for name in table["silenced"]])


def simulated_data(
    table: pd.DataFrame, n_inputs: int, n_hidden: int, n_outputs: int = 1, binary_outputs: int = 0
) -> BehaviorData:
    """A simulated behaviour table (every unit silenced) as training tensors."""
    return BehaviorData.from_table(
        table, simulated_layout(n_inputs, n_hidden, n_outputs, None, binary_outputs)
    )


def fly_layout(fly: KnockoutNet, n_silenced: int | None = None):
    """The layout of the files this simulated fly writes."""
    architecture = fly.architecture
    return simulated_layout(architecture.n_inputs, architecture.n_hidden, architecture.n_outputs, n_silenced)


def simulated_behavior_scores(fly, nets, test, silenced_activity=0.0):
    """``metrics.behavior_scores`` on a simulated test table, with its fly."""
    n_silenced = test["set"].nunique() - 1
    layout = fly_layout(fly, n_silenced)
    data = BehaviorData.from_table(test, layout)
    return metrics.behavior_scores(nets, data, layout, fly, silenced_activity)


def simulated_neural_scores(fly, nets, neurons, n_silenced=None, design=None):
    """``metrics.neural_scores`` on a simulated neurons table, with its fly."""
    return metrics.neural_scores(nets, neurons, fly_layout(fly, n_silenced), fly, design)
