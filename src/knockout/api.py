"""Knockout training from Python (a notebook): load a data folder, fit models, score them.

The workflow's steps, as functions: the same contract checks, split, trainer and
measures, on one training seed, with nothing written to disk. The README's "Use from
Python" shows a session; a test runs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from knockout import dataset, metrics
from knockout.behavior_data import BehaviorData
from knockout.dataset import Dataset
from knockout.network import Architecture, KnockoutNet
from knockout.training import Fit, TrainingResult, TrainSettings, train_fits


def load(folder: str | os.PathLike, units: Iterable[str]) -> Dataset:
    """A data folder (behavior and optional neurons file), checked against the contract;
    ``units`` are the silenceable units in order, as ``data.units`` in the config."""
    return dataset.load(folder, list(units))


def architecture_for(
    data: Dataset,
    n_hidden: int | None = None,
    encoder: Iterable[int] = (),
    decoder: Iterable[int] = (),
    activation: str = "linear",
) -> Architecture:
    """A model of the data's inputs and outputs, with a bottleneck unit per data unit
    (unless ``n_hidden`` says otherwise), as the config's ``model`` section describes."""
    layout = data.layout
    return Architecture(
        n_inputs=len(layout.inputs),
        n_hidden=n_hidden or len(layout.units),
        encoder=tuple(encoder),
        decoder=tuple(decoder),
        n_outputs=len(layout.outputs),
        activation=activation,
    )


def split(data: Dataset, seed: int, test_fraction: float = 0.2) -> tuple[BehaviorData, BehaviorData]:
    """The training and test rows of one seed (the file's split column, if it has one)."""
    train_rows, test_rows = dataset.split(data.behavior, data.layout, test_fraction, seed)
    return BehaviorData.from_table(train_rows, data.layout), BehaviorData.from_table(test_rows, data.layout)


def fit(
    data: Dataset,
    models: Iterable[str] = ("ko", "do"),
    architecture: Architecture | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    **train_settings,
) -> dict[str, TrainingResult]:
    """Train each model (``control``, ``noko``, ``ko``, ``do``) on one seed's training rows,
    all their networks as one batched computation; ``train_settings`` are the config's
    ``train`` keys (``epochs``, ``restarts`` ...). Each result has the kept ``network``,
    every restart's ``losses`` and the ``chosen`` one."""
    architecture = architecture or architecture_for(data)
    settings = TrainSettings(**train_settings)
    train_data, _ = split(data, seed, test_fraction)
    models = list(models)
    results = train_fits([Fit(model, train_data, settings, seed) for model in models], architecture)
    return dict(zip(models, results, strict=True))


def _networks(fits: dict) -> dict[str, KnockoutNet]:
    return {model: getattr(fit, "network", fit) for model, fit in fits.items()}


def neural_r2(fits: dict, data: Dataset) -> pd.DataFrame:
    """Per model and unit: neural R² three ways against the recorded neurons (NaN for units
    not recorded), and the silencing effect (``metrics.neural_scores``)."""
    if data.neurons is None:
        raise ValueError("this data folder has no neurons file: there is nothing to compare units with")
    return metrics.neural_scores(_networks(fits), data.neurons, data.layout)


def behavior_r2(fits: dict, data: Dataset, seed: int = 0, test_fraction: float = 0.2) -> pd.DataFrame:
    """Per model, test set and output: behaviour R² on that seed's test rows."""
    _, test = split(data, seed, test_fraction)
    return metrics.behavior_scores(_networks(fits), test, data.layout)


def responses(fits: dict, data: Dataset) -> pd.DataFrame:
    """Every model unit's predicted response to each neuron stimulus (``r_<unit>`` columns)."""
    if data.neurons is None:
        raise ValueError("this data folder has no neurons file: there are no stimuli to respond to")
    return metrics.response_table(_networks(fits), data.neurons, data.layout)
