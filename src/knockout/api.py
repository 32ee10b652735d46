"""Knockout training from Python (a notebook): load a data folder, fit models, score them.

The workflow's steps, as functions: the same contract checks, split, trainer, exact
optimum and measures, on one training seed, with nothing written to disk; and the
experiment planner (:func:`plan`) on a pilot folder. A fit (:class:`Fits`) remembers the
seed, split and data it was made with, and whatever scores held-out rows takes them from
it: another seed's test rows hold some of this seed's training rows, and would score the
networks partly on what they were fitted to. The README's "Use from Python" shows a
session; a test runs it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import pandas as pd
import torch

from knockout import data_folder, metrics, planning
from knockout.behavior_data import BehaviorData, NeuronData
from knockout.convergence import LOSS_COLUMNS
from knockout.data_folder import FolderData
from knockout.identifiability import fitted_optimum, optimum_problem
from knockout.models import CONTRAST, OPTIMUM, spec
from knockout.network import Architecture, KnockoutNet
from knockout.planning import AUTO
from knockout.training import Fit, Progress, TrainingResult, TrainSettings, train_fits


def load(folder: str | os.PathLike, units: Iterable[str], history: int = 1) -> FolderData:
    """A data folder (behavior and optional neurons file, and an array of stimuli),
    checked against the contract; ``units`` are the silenceable units in order, as
    ``data.units`` in the config, ``history`` the frames per sample of a frames.npy
    (``data.history``). Beside an array, ``.inputs`` holds the frames the tables name,
    each once, and the tables' ``entry_*`` columns name each sample's (:class:`FolderData`)."""
    return data_folder.load(folder, list(units), history=history)


def architecture_for(
    data: FolderData,
    n_hidden: int | None = None,
    encoder: Iterable[int] = (),
    decoder: Iterable[int] = (),
    activation: str = "linear",
    conv: Iterable[Iterable[int]] = (),
    frame_features: int = 0,
    standardize: bool | str = "auto",
    batch_norm: bool = False,
) -> Architecture:
    """A model of the data's inputs and outputs (continuous and binary), with a bottleneck
    unit per data unit (unless ``n_hidden`` says otherwise), as the config's ``model``
    section describes (``standardize`` "auto": where the stimuli are frames; ``batch_norm``:
    every hidden layer batch-normalised)."""
    layout = data.layout
    return Architecture(
        n_inputs=layout.n_inputs,
        n_hidden=n_hidden or len(layout.units),
        encoder=tuple(encoder),
        decoder=tuple(decoder),
        n_outputs=len(layout.outputs),
        activation=activation,
        binary_outputs=layout.binary_outputs,
        frame_shape=layout.frame_shape,
        conv=tuple(tuple(layer) for layer in conv),
        frame_features=frame_features,
        standardize=layout.standardizes(standardize),
        batch_norm=batch_norm,
    )


def split(data: FolderData, seed: int, test_fraction: float = 0.2) -> tuple[BehaviorData, BehaviorData]:
    """The training and test rows of one seed (the file's split column, if it has one)."""
    return BehaviorData.split(data, test_fraction, seed)


def _digest(data: FolderData) -> str:
    """The behaviour table's content (columns, index and values), as a digest."""
    table = data.behavior
    hashes = pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes()
    return hashlib.sha256("\0".join(map(str, table.columns)).encode() + hashes).hexdigest()


@dataclass(frozen=True, eq=False)
class Fits(Mapping[str, KnockoutNet]):
    """What :func:`fit` made: per model its network (``fits["ko"]``, a ``torch.nn.Module``
    on the CPU), and what they were fitted with: the architecture, the seed, the split
    (``test_fraction`` of each set drawn with the seed; None where the data's split column
    decides), the data (a digest of the behaviour table) and, per trained model, its
    training (every restart's losses, the kept restart: :class:`TrainingResult`)."""

    networks: dict[str, KnockoutNet]
    training: dict[str, TrainingResult]
    architecture: Architecture
    seed: int
    test_fraction: float | None
    data_digest: str

    def __getitem__(self, model: str) -> KnockoutNet:
        return self.networks[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self.networks)

    def __len__(self) -> int:
        return len(self.networks)

    @property
    def losses(self) -> pd.DataFrame:
        """Every trained model's restarts' mean training loss per epoch: the columns of the
        workflow's ``models/<model>_loss.parquet``, with ``seed`` and ``model`` as
        ``convergence.read_loss_tables`` adds them (``convergence.convergence_table`` reads it)."""
        tables = [result.loss_table().assign(seed=self.seed, model=m) for m, result in self.training.items()]
        return pd.concat(
            tables or [pd.DataFrame(columns=[*LOSS_COLUMNS, "seed", "model"])], ignore_index=True
        )

    def check_scored_on(self, data: FolderData, seed: int | None, test_fraction: float | None) -> None:
        """Refuse to score on other data, or on another seed's or fraction's test rows than
        the fit's own (None: the fit's own), with one line saying why."""
        if seed is not None and seed != self.seed:
            raise ValueError(
                f"these networks were fitted on seed {self.seed}'s training rows; seed {seed}'s test rows "
                f"hold some of them: leave seed out to score on the fit's own test rows"
            )
        if test_fraction is not None and test_fraction != self.test_fraction:
            fitted = (
                "the data's split column"
                if self.test_fraction is None
                else f"test_fraction {self.test_fraction}"
            )
            raise ValueError(
                f"these networks were fitted with {fitted}, not test_fraction {test_fraction}: leave "
                f"test_fraction out to score on the fit's own test rows"
            )
        if _digest(data) != self.data_digest:
            raise ValueError(
                "these data are not the data the networks were fitted on (the behaviour table differs): "
                "score them on the data given to api.fit"
            )


def fit(
    data: FolderData,
    models: Iterable[str] = CONTRAST,
    architecture: Architecture | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    device: torch.device | str = "cpu",
    progress: Callable[[Progress], None] | None = None,
    **train_settings,
) -> Fits:
    """Train each model (any of ``knockout.models.TRAINED``; by default the sweeps' pair,
    ``models.CONTRAST``) on one seed's training rows, all their networks as one batched
    computation on ``device``; ``optimum`` is the knockout objective's exact optimum on
    the same rows, where there is one (linear two-layer networks with one output, sets
    silencing one unit each; else a ValueError before any training). ``train_settings``
    are the config's ``train`` keys (``epochs``, ``restarts`` ...). ``progress`` receives a
    :class:`~knockout.training.Progress` about every 10 s and at the end (``print`` shows
    it as one line)."""
    specs = {model: spec(model) for model in dict.fromkeys(models)}  # unknown names fail here
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: PyTorch sees no GPU here; use device='cpu'")
    architecture = architecture or architecture_for(data)
    settings = TrainSettings(**train_settings)
    train_data, _ = split(data, seed, test_fraction)
    single_unit_sets = train_data.single_unit_sets
    if OPTIMUM in specs and (problem := optimum_problem(architecture, single_unit_sets, settings.silencing)):
        raise ValueError(f"model {OPTIMUM!r}: {problem}")
    trained = [model for model, entry in specs.items() if entry.trained]
    fits = [Fit(model, train_data, settings, seed) for model in trained]
    results = train_fits(fits, architecture, device, progress=progress) if fits else []
    training = dict(zip(trained, results, strict=True))
    networks = {
        model: fitted_optimum(train_data, architecture) if model == OPTIMUM else training[model].network
        for model in specs
    }
    return Fits(
        networks,
        training,
        architecture,
        seed,
        None if data.layout.has_split else test_fraction,
        _digest(data),
    )


def _networks(fits: Mapping) -> dict[str, KnockoutNet]:
    return {model: getattr(fit, "network", fit) for model, fit in fits.items()}


def neural_r2(fits: Mapping, data: FolderData) -> pd.DataFrame:
    """Per model and unit: neural R² three ways against the recorded neurons (NaN for units
    not recorded), and the silencing effect (``metrics.neural_scores``)."""
    if data.neurons is None:
        raise ValueError("this data folder has no neurons file: there is nothing to compare units with")
    return metrics.neural_scores(_networks(fits), NeuronData.of_folder(data), data.layout)


def behavior_r2(
    fits: Mapping,
    data: FolderData,
    seed: int | None = None,
    test_fraction: float | None = None,
    silencing: Iterable[str] = ("zero", "centered"),
) -> pd.DataFrame:
    """Per model, test set, output and silencing mode (``evaluate.silencing``): behaviour
    R² (pseudo-R², log-likelihood and AUC for a binary output) on the fit's own test rows. ``seed`` and
    ``test_fraction`` may be left out; given, they must be the fit's. For networks not made
    by :func:`fit` (e.g. the workflow's ``.pt`` files), ``seed`` is required: the seed they
    were trained with (``test_fraction`` then defaults to 0.2, as in the config)."""
    if isinstance(fits, Fits):
        fits.check_scored_on(data, seed, test_fraction)
        seed, test_fraction = fits.seed, fits.test_fraction
    elif seed is None:
        raise ValueError(
            "these networks were not made by api.fit, so their split is unknown: pass the seed "
            "(and test_fraction) they were trained with"
        )
    _, test = split(data, seed, 0.2 if test_fraction is None else test_fraction)
    return metrics.behavior_scores(_networks(fits), test, data.layout, silencing=tuple(silencing))


def responses(fits: Mapping, data: FolderData) -> pd.DataFrame:
    """Every model unit's predicted response to each neuron stimulus (``r_<unit>`` columns)."""
    if data.neurons is None:
        raise ValueError("this data folder has no neurons file: there are no stimuli to respond to")
    return metrics.response_table(_networks(fits), NeuronData.of_folder(data), data.layout)


@dataclass(frozen=True)
class Plan:
    """An experiment plan (``knockout.planning``): per unit and design the predicted neural R²,
    its interval and ``p_identified`` (``designs``, the columns of ``plan/plan.parquet``), and
    per unit the smallest design reaching the target with the given probability
    (``smallest``, those of ``plan/min_n.parquet``)."""

    designs: pd.DataFrame
    smallest: pd.DataFrame


def plan(
    pilot: FolderData,
    n_per_set: Iterable[int],
    target_r2: float = 0.9,
    probability: float = 0.8,
    method: str = AUTO,
    architecture: Architecture | None = None,
    resamples: int = 1000,
    simulation_seeds: int = 4,
    check_training: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[Progress], None] | None = None,
    **train_settings,
) -> Plan:
    """Plan an experiment from a pilot (a data folder: control and some silenced sets, at
    any n), as ``snakemake plan`` does with a pilot folder: ``method`` ``formula`` (linear
    two-layer networks with one output; with ``check_training``, ko is trained on one
    experiment per design simulated from the pilot and its shortfall from the optimum taken
    off), ``simulation`` (ko trained on ``simulation_seeds`` experiments per design simulated
    from networks fitted to resamples of the pilot), or ``auto`` (the formula where it
    applies). ``train_settings`` are the config's ``train`` keys for the training either
    does; ``architecture`` is the model's (default: :func:`architecture_for`)."""
    (planned,) = planning.plan_pilots(
        [planning.PilotTable(pilot.behavior, pilot.layout, pilot.inputs)],
        [seed],
        architecture or architecture_for(pilot),
        TrainSettings(**train_settings),
        list(n_per_set),
        target_r2,
        method,
        resamples,
        simulation_seeds,
        check_training,
        device=device,
        progress=progress,
    )
    return Plan(planned, planning.smallest_designs(planned, probability))
