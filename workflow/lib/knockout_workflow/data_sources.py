"""Where an experiment's data come from: one object per kind of data source.

``data_source(settings)`` picks the kind for a checked config from ``data.source``
(``simulate``, or a data folder's path); the workflow looks it up once per experiment
(``SOURCES`` in workflow/rules/experiments.smk), and every rule asks that object what the
source gives and knows, never which kind it is:

- ``files(kinds, experiment, seeds)``: the import contract's files (knockout.data_folder) per
  kind it gives (``behavior``, ``neurons``, and ``fly``: the true network's weights);
- ``layout()``: what those files hold (knockout.data_folder.Layout), before any job runs;
  ``set_rows()``: each set's rows;
- ``has_ground_truth``: whether a true network exists to compare with (the noise ceiling,
  contribution, weight cosine, the fly's silencing effect, predicted R², the knockout
  optimum); ``true_architecture()``, ``design()`` and ``noise_sd`` describe it;
- ``fitted_architecture()``: the fitted models' network, with the data's inputs, outputs
  and units;
- ``content_pinned`` and ``digests(files)``: a user's files pinned by content (the jobs
  that read them rerun when they change, and stop if one changes mid-run); files the
  workflow writes itself are not;
- ``data_keys`` and ``own_sections``: the config it reads, as the figures' captions list it;
- ``results_folder`` and ``results_record``: its experiment's folder under results/, and
  what that folder records so that another source landing there is refused;
- ``config_problems()``: its cross-key rules, and ``training_estimate()``: the memory a
  training job takes where the config alone tells.

Adding a data source (another simulator, a lab's file format) to the workflow is a change
to three files:

1. here: a subclass of ``DataSource`` that answers each of the above (the abstract methods
   fail loudly where one is missing), listed in ``KINDS`` before ``DataFolder``; the first
   kind whose ``accepts(data.source)`` is true is an experiment's;
2. if it makes its data, a rule in workflow/rules/simulate.smk that writes the import
   contract's files at the paths its ``files`` gives, paths of its own (no other rule's
   outputs), as ``generate_fly_data`` writes ``SimulatedFly.FILES``;
3. tests/test_data_sources.py: an example config of it in ``EXAMPLES``; the tests refuse a
   kind in ``KINDS`` without one, and run every check of the interface on each.

A simulator also brings its science (a module in src/knockout/, as knockout.simulation is
the fly's, and the thin script its rule runs), and settings of its own need their keys in
workflow/schemas/config.schema.yaml.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from knockout import data_folder, stimulus_arrays
from knockout.data_folder import Layout
from knockout_workflow.sources import file_digest
from knockout_workflow.step_settings import (
    batch_sizes,
    budget_problems,
    model_overrides,
    training_estimates,
)

STIMULI = "stimuli"
"""A data folder's array of stimuli (frames.npy or stimuli.npy), as a kind of file it gives."""
ARCHITECTURE_KEYS = (
    "n_inputs",
    "n_hidden",
    "encoder",
    "decoder",
    "n_outputs",
    "activation",
    "binary_outputs",
)
"""A network's architecture (knockout.network.Architecture fields), as the ``fly`` section names them."""


class DataSource(ABC):
    """An experiment's data source, answering for one checked config (``settings``)."""

    kinds: ClassVar[tuple[str, ...]]
    """The kinds of file it can give (``files``); a kind it lacks is left out there."""
    has_ground_truth: ClassVar[bool]
    """A true network exists to compare the fitted ones with (``true_architecture``,
    the ``fly`` file): the measures that need one are computed only then."""
    content_pinned: ClassVar[bool]
    """Its files are the user's, pinned by their content (``digests``); False where the
    workflow writes them (its jobs' own outputs, tracked by Snakemake)."""
    data_keys: ClassVar[tuple[str, ...]]
    """The keys of the config's ``data`` section it reads."""
    own_sections: ClassVar[tuple[str, ...]] = ()
    """Config sections that describe this source alone (the captions list them with it)."""

    def __init__(self, settings: dict) -> None:
        self.settings = settings

    @classmethod
    @abstractmethod
    def accepts(cls, source: str) -> bool:
        """Whether ``data.source`` = ``source`` names this kind of source."""

    @abstractmethod
    def files(self, kinds: Iterable[str], experiment: str, seeds: list[int]) -> dict[str, list[str]]:
        """Per kind of ``kinds`` that the source gives, its files for the job that serves
        ``seeds`` of ``experiment`` (its folder under results/): one a seed, or one that
        every seed reads."""

    @abstractmethod
    def layout(self) -> Layout:
        """What the files hold (knockout.data_folder.Layout), known before any job runs;
        :class:`knockout.errors.InputFileError` where a file is missing or bad."""

    @abstractmethod
    def set_rows(self) -> dict[str, int]:
        """Each set's rows (training and test), by set name, before any job runs."""

    @abstractmethod
    def true_architecture(self) -> dict | None:
        """The true network's architecture (ARCHITECTURE_KEYS); None without a ground truth."""

    @abstractmethod
    def design(self) -> dict | None:
        """How the data were drawn from the true network (knockout.metrics.DataDesign
        fields); None without a ground truth."""

    @property
    @abstractmethod
    def noise_sd(self) -> float | None:
        """The known noise of the outputs (its SD), for the noise ceiling; None where unknown."""

    @property
    @abstractmethod
    def results_folder(self) -> str:
        """The experiment's folder under results/ (and logs/, benchmarks/): "" or ending in /."""

    @abstractmethod
    def results_record(self) -> str | None:
        """What the results folder records of its source when a run starts (data_source.txt),
        where another source could land in the same folder; None where it cannot."""

    @abstractmethod
    def config_problems(self) -> list[str]:
        """The config's problems that concern this source (empty when it is fine)."""

    @abstractmethod
    def training_estimate(self) -> float | None:
        """The most bytes a training job's data and networks take, from the config alone;
        None where only the files tell (the job is then given ``limits.memory_gb``)."""

    def fitted_architecture(self) -> dict:
        """The fitted models' architecture (ARCHITECTURE_KEYS): the data's inputs, outputs
        and units, and what ``model`` sets; what it leaves null is the ``fly`` section's."""
        fly = self.settings["fly"]
        layout = self.layout()
        counts = {
            "n_inputs": layout.n_inputs,
            "n_outputs": len(layout.outputs),
            "binary_outputs": layout.binary_outputs,
            "n_hidden": len(layout.units),
        }
        data = {key: fly[key] for key in ARCHITECTURE_KEYS} | counts
        model = self.settings["model"]
        frames = {}
        if layout.stimulus is not None:  # the frames' shape; the model's frame encoder, if any
            frames = {"frame_shape": list(layout.frame_shape)}
            if model["frame_features"]:
                frames |= {"conv": model["conv"], "frame_features": model["frame_features"]}
        standardize = {"standardize": True} if layout.standardizes(model["standardize"]) else {}
        batch_norm = {"batch_norm": True} if model["batch_norm"] else {}
        return data | model_overrides(self.settings) | frames | standardize | batch_norm

    def model_problems(self) -> list[str]:
        """The ``model`` section against the data and the training settings."""
        return self._batch_norm_problems() + self._frame_encoder_problems()

    def _batch_norm_problems(self) -> list[str]:
        """Batch normalisation needs batches of two rows or more (one row's values, less
        their mean, are 0)."""
        if not self.settings["model"]["batch_norm"]:
            return []
        return [
            f"{key} = {size} with model.batch_norm: a batch-normalised layer needs batches of 2 rows "
            "or more (a single row, less the batch's mean, is 0)"
            for key, size in batch_sizes(self.settings["train"]).items()
            if size < 2
        ]

    def _frame_encoder_problems(self) -> list[str]:
        """The ``model`` section's frame encoder against the data's stimuli (the data are read
        only where one is asked for)."""
        model = self.settings["model"]
        if not model["conv"] and not model["frame_features"]:
            return []
        if not model["frame_features"]:
            return ["model.conv needs model.frame_features >= 1 (the dense layer after the convolutions)"]
        layout = self.layout()
        if layout.stimulus is None:
            return [
                "model.frame_features (and conv) need stimuli over time: a data folder with frames.npy "
                'or stimuli.npy (README, "Stimuli over time"); set frame_features: 0 and conv: []'
            ]
        if model["conv"] and len(layout.frame_shape) != 2:
            return [
                f"model.conv needs image frames [H, W]; this data's frames are {list(layout.frame_shape)} "
                "(features): remove model.conv"
            ]
        return []

    def digests(self, files: dict[str, list[str]]) -> dict[str, str]:
        """The SHA-256 of each of ``files`` (as ``files`` gives them) where the content is
        pinned, else {}."""
        if not self.content_pinned:
            return {}
        return {path: _planned_digest(path) for paths in files.values() for path in paths}

    def results_folder_problem(self, recorded: str | None) -> str | None:
        """One line if the results folder, recording ``recorded`` (None: nothing yet),
        holds another source's results."""
        record = self.results_record()
        if record is None or recorded is None or recorded == record:
            return None
        return (
            f"data.source {record}: results/{self.results_folder} holds the results of another "
            f"folder of the same name, {recorded}; rename one of the two folders, or delete "
            f"results/{self.results_folder} to start this one's afresh"
        )


@functools.cache  # hashed once per workflow start, whatever the number of jobs reading it
def _planned_digest(path: str) -> str:
    return file_digest(path)


class SimulatedFly(DataSource):
    """``data.source: simulate``: the fly of the ``fly`` section draws each seed's data
    (generate_fly_data writes ``FILES``), so it is the ground truth."""

    NAME = "simulate"
    FILES: ClassVar[dict[str, str]] = {
        "behavior": "results/{experiment}seed{seed}/data/behavior.parquet",
        "neurons": "results/{experiment}seed{seed}/data/neurons.parquet",
        "fly": "results/{experiment}seed{seed}/fly.pt",
    }
    """The files generate_fly_data writes per seed (patterns over experiment and seed)."""
    kinds = tuple(FILES)
    has_ground_truth = True
    content_pinned = False
    data_keys = ("source", "n_train", "n_test", "n_probe", "n_silenced")
    own_sections = ("fly",)

    @classmethod
    def accepts(cls, source: str) -> bool:
        return source == cls.NAME

    def files(self, kinds: Iterable[str], experiment: str, seeds: list[int]) -> dict[str, list[str]]:
        return {
            kind: [self.FILES[kind].format(experiment=experiment, seed=seed) for seed in seeds]
            for kind in kinds
            if kind in self.kinds
        }

    def layout(self) -> Layout:
        fly, data = self.settings["fly"], self.settings["data"]
        return data_folder.simulated_layout(
            fly["n_inputs"], fly["n_hidden"], fly["n_outputs"], data["n_silenced"], fly["binary_outputs"]
        )

    def set_rows(self) -> dict[str, int]:
        data = self.settings["data"]
        return {name: data["n_train"] + data["n_test"] for name, _ in self.layout().sets}

    def true_architecture(self) -> dict:
        return {key: self.settings["fly"][key] for key in ARCHITECTURE_KEYS}

    def design(self) -> dict:
        return {
            "noise_sd": self.noise_sd,
            "n_train": self.settings["data"]["n_train"],
            "silenced_activity": self.settings["fly"]["silenced_activity"],
        }

    @property
    def noise_sd(self) -> float:
        return self.settings["fly"]["noise_sd"]

    @property
    def results_folder(self) -> str:
        return ""  # the simulated fly's results are results/ itself

    def results_record(self) -> None:
        return None  # no other source's folder is results/ itself

    def config_problems(self) -> list[str]:
        problems = []
        if self.settings["data"]["units"] is not None:
            problems.append(
                "data.units is for a data folder (data.source); the simulated fly's units are "
                "unit_00, unit_01 ... (fly.n_hidden); remove data.units"
            )
        if self.settings["data"]["history"] != 1:
            problems.append(
                "data.history is for a data folder whose frames.npy holds its stimuli over time; "
                "the simulated fly's samples are single draws: remove data.history"
            )
        n_train = self.settings["data"]["n_train"]
        for key, size in batch_sizes(self.settings["train"]).items():
            if size > n_train:
                problems.append(
                    f"{key} = {size} is larger than data.n_train = {n_train}; "
                    f"every batch comes from one data set, so use at most {n_train}"
                )
        fly = self.settings["fly"]
        if fly["binary_outputs"] > fly["n_outputs"]:
            problems.append(
                f"fly.binary_outputs = {fly['binary_outputs']} is more than fly.n_outputs = "
                f"{fly['n_outputs']}; the binary outputs are the last of the n_outputs"
            )
        n_silenced, n_hidden = self.settings["data"]["n_silenced"], fly["n_hidden"]
        if n_silenced is not None and n_silenced > n_hidden:
            problems.append(
                f"data.n_silenced = {n_silenced} is larger than fly.n_hidden = {n_hidden}; "
                f"use 1-{n_hidden}, or null to silence every unit"
            )
        return problems + self.model_problems() + budget_problems(self.settings)

    def training_estimate(self) -> float:
        return training_estimates(self.settings)[1]


@functools.cache  # a folder is read and checked once per workflow start, for every experiment
def _folder_summary(
    folder: str, units: tuple[str, ...], memory_gb: float, history: int
) -> tuple[Layout, dict[str, int]]:
    """The folder's layout and each set's samples (not its tables, which are read by the jobs)."""
    loaded = data_folder.load(folder, list(units), memory_gb, history, gather=False)
    return loaded.layout, loaded.behavior["set"].value_counts(sort=False).to_dict()


class DataFolder(DataSource):
    """``data.source: <folder>``: a user's experiment, as the import contract's files
    (knockout.data_folder), read and checked once per workflow start; no ground truth."""

    kinds = (data_folder.BEHAVIOR, data_folder.NEURONS, STIMULI)
    has_ground_truth = False
    content_pinned = True
    data_keys = ("source", "units", "test_fraction", "history")

    @classmethod
    def accepts(cls, source: str) -> bool:
        return True  # any value no other kind accepts is a folder's path

    @property
    def folder(self) -> str:
        return self.settings["data"]["source"]

    def files(self, kinds: Iterable[str], experiment: str, seeds: list[int]) -> dict[str, list[str]]:
        found = {
            kind: stimulus_arrays.find_array(self.folder)
            if kind == STIMULI
            else data_folder.find_file(self.folder, kind, required=kind == data_folder.BEHAVIOR)
            for kind in kinds
            if kind in self.kinds
        }
        return {kind: [str(path)] for kind, path in found.items() if path is not None}

    def layout(self) -> Layout:
        return self._summary()[0]

    def set_rows(self) -> dict[str, int]:
        """Each set's rows in the behaviour file (training and test), by set name."""
        return self._summary()[1]

    def _summary(self) -> tuple[Layout, dict[str, int]]:
        data = self.settings["data"]
        return _folder_summary(
            self.folder, tuple(data["units"]), self.settings["limits"]["memory_gb"], data["history"]
        )

    def true_architecture(self) -> None:
        return None

    def design(self) -> None:
        return None

    @property
    def noise_sd(self) -> None:
        return None

    @property
    def results_folder(self) -> str:
        """data/<the folder's name>/, so that runs on different data started from one
        working directory never write into each other's folders."""
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(self.folder).resolve().name)
        return f"data/{name or 'root'}/"

    def results_record(self) -> str:
        """The folder relative to the working directory where it lies inside it (moving
        the whole project keeps its results), else absolute."""
        source = Path(self.folder).resolve()
        try:
            return source.relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return str(source)

    def config_problems(self) -> list[str]:
        if self.settings["data"]["units"]:
            return self.model_problems()
        return [
            f"data.units: missing; data.source {self.folder} is a data folder, so list its "
            f"silenceable units in order (the names its silenced column and r_<unit> columns use)"
        ]

    def training_estimate(self) -> None:
        return None  # a folder's size is checked when its files are read


KINDS: tuple[type[DataSource], ...] = (SimulatedFly, DataFolder)
"""Every kind of data source, in the order ``data_source`` asks them (DataFolder, which
accepts any value, last)."""


def data_source(settings: dict) -> DataSource:
    """The data source of a checked config (the first kind of KINDS that accepts its ``data.source``)."""
    source = settings["data"]["source"]
    return next(kind for kind in KINDS if kind.accepts(source))(settings)
