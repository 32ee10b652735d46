"""The figures of one experiment, registered once.

Each figure is one ``FigureSpec``: its name (``figures/<name>.png`` and the caption
template ``workflow/report/<name>.rst``), its label in the report, whether it needs a
ground truth (the true network: a simulated fly), the tables it reads, how it is drawn,
and what its caption adds to the values every caption gets. Everything that names a
figure reads this registry: the workflow's targets and the plot rule's inputs and outputs
(``figures_for``, ``tables_read``), the plot job, and the tests, which iterate it. So a
figure is added here, with its drawing function, and by its caption template: two files.

A figure draws each seed from the per-seed tables and every statistic over seeds from
the summary tables (``summary.replicate_summaries``): each such number is computed once,
by the summarize step, and the figures and their captions show it as it is.

The registry does not import matplotlib: the workflow reads it at every start, and a
figure's drawing function imports ``knockout.plotting`` when it draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from knockout import naming, tables
from knockout.convergence import read_loss_tables
from knockout.summary import SUMMARY_COLUMNS, read_summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from knockout.plotting import PlotSettings

SUMMARY = "summary_"
"""A table named ``summary_<name>`` is summary/<name>.parquet (``summary.SUMMARY_COLUMNS``)."""
TABLES = ["behavior", "neural", "losses", *(SUMMARY + name for name in SUMMARY_COLUMNS)]
"""What a figure may read: every seed's eval/behavior.parquet, eval/neural.parquet, every
seed's and model's models/<model>_loss.parquet, and each summary table."""


@dataclass
class FigureData:
    """What the figures are drawn from: the tables by name (``TABLES``), each read when a
    figure first asks for it, and what every caption says (the seeds, the noise σ of a
    simulated fly, whether the data have a ground truth). ``for_figure`` gives the view of
    one figure, which may read only the tables it registered."""

    load: Callable[[str], pd.DataFrame]
    seeds: list[int]
    noise_sd: float | None
    has_ground_truth: bool
    readable: frozenset[str] = frozenset(TABLES)
    read: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def from_files(
        cls,
        paths: Mapping[str, Any],
        seeds: list[int],
        models: list[str],
        noise_sd: float | None,
        has_ground_truth: bool,
    ) -> FigureData:
        """The tables at ``paths`` (by name: a summary table's path, or every seed's, or
        every seed's and model's, seed-major), checked as they are read."""

        def load(name: str) -> pd.DataFrame:
            if name.startswith(SUMMARY):
                return read_summary(paths[name], name.removeprefix(SUMMARY))
            if name == "losses":
                return read_loss_tables(list(paths[name]), seeds, models)
            read = {"behavior": tables.read_behavior_scores, "neural": tables.read_neural_scores}[name]
            return read(list(paths[name]), seeds)

        return cls(load, list(seeds), noise_sd, has_ground_truth)

    def for_figure(self, figure: FigureSpec) -> FigureData:
        """The view of ``figure``: the tables it registered, sharing what was read."""
        return FigureData(
            self.load, self.seeds, self.noise_sd, self.has_ground_truth, frozenset(figure.reads), self.read
        )

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.readable:
            registered = ", ".join(sorted(self.readable))
            raise KeyError(f"table {name!r} is not among the figure's registered tables ({registered})")
        if name not in self.read:
            self.read[name] = self.load(name)
        return self.read[name]

    @property
    def summaries(self) -> _Summaries:
        """The summary tables by their names in ``summary.SUMMARY_COLUMNS`` (``models``...)."""
        return _Summaries(self)

    def caption_values(self) -> dict:
        """What every caption template gets."""
        return {"seeds": self.seeds, "noise_sd": self.noise_sd, "recorded": not self.has_ground_truth}


class _Summaries(Mapping):
    """``FigureData``'s summary tables as the drawing functions take them, each read on demand."""

    def __init__(self, data: FigureData) -> None:
        self._data = data

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self._data[SUMMARY + name]

    def __iter__(self):
        readable = [name for name in TABLES if name.startswith(SUMMARY) and name in self._data.readable]
        return (name.removeprefix(SUMMARY) for name in readable)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _plotting():
    """``knockout.plotting`` (matplotlib), imported when a figure is drawn."""
    from knockout import plotting

    return plotting


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``name``, ``label`` (the report's), the ``reads`` of ``TABLES`` it is
    drawn from, ``draw`` (its view of the data and the plot settings to a matplotlib
    figure), ``needs_ground_truth`` (drawn only where the true network is known) and
    ``caption_values`` (what its caption template gets besides ``FigureData.caption_values``)."""

    name: str
    label: str
    reads: tuple[str, ...]
    draw: Callable[[FigureData, PlotSettings], Figure]
    needs_ground_truth: bool = False
    caption_values: Callable[[FigureData], dict] = lambda data: {}

    def __post_init__(self) -> None:
        if unknown := [name for name in self.reads if name not in TABLES]:
            raise ValueError(f"figure {self.name}: unknown table(s) {unknown}; the tables are {TABLES}")


def _behavior(data: FigureData, settings: PlotSettings) -> Figure:
    return _plotting().behavior_figure(data["behavior"], data.summaries, settings, data["neural"])


def _behavior_caption(data: FigureData) -> dict:
    """The silencing mode the figure shows (the first evaluated) and the binary outputs."""
    behavior = data["behavior"]
    binary = [output for output in dict.fromkeys(behavior["output"]) if naming.is_binary_output(output)]
    return {"silencing": behavior["silencing"].iloc[0], "binary_outputs": ", ".join(binary)}


def _neural(data: FigureData, settings: PlotSettings) -> Figure:
    return _plotting().neural_figure(data["neural"], data.summaries, data.noise_sd, settings)


def _three_ways(data: FigureData, settings: PlotSettings) -> Figure:
    return _plotting().three_ways_figure(data.summaries, settings, data.has_ground_truth)


def _three_ways_caption(data: FigureData) -> dict:
    return {"three_ways": _plotting().three_ways_numbers(data.summaries)}


def _contribution(data: FigureData, settings: PlotSettings) -> Figure:
    return _plotting().contribution_figure(data["neural"], data.noise_sd, settings)


def _silencing_effect(data: FigureData, settings: PlotSettings) -> Figure:
    return _plotting().silencing_effect_figure(data["neural"], settings)


def _weight_cosine(data: FigureData, settings: PlotSettings) -> Figure:
    return _plotting().weight_cosine_figure(data["neural"], data.summaries, settings)


def _loss_curves(data: FigureData, settings: PlotSettings) -> Figure:
    return _plotting().loss_curve_figure(data["losses"], settings)


FIGURES = [
    FigureSpec(
        name="behavior_r2",
        label="behaviour R² per test set",
        reads=("behavior", "neural", "summary_behavior", "summary_ranked"),
        draw=_behavior,
        caption_values=_behavior_caption,
    ),
    FigureSpec(
        name="neural_r2",
        label="neural R² per unit",
        reads=("neural", "summary_neural_units", "summary_ranked"),
        draw=_neural,
    ),
    FigureSpec(
        name="neural_r2_three_ways",
        label="neural R² three ways",
        reads=("summary_seeds", "summary_models"),
        draw=_three_ways,
        caption_values=_three_ways_caption,
    ),
    FigureSpec(
        name="r2_vs_contribution",
        label="neural R² vs contribution",
        reads=("neural",),
        draw=_contribution,
        needs_ground_truth=True,
    ),
    FigureSpec(
        name="silencing_effect",
        label="silencing effect, fly vs model",
        reads=("neural",),
        draw=_silencing_effect,
        needs_ground_truth=True,
    ),
    FigureSpec(
        name="weight_cosine",
        label="weight recovery",
        reads=("neural", "summary_ranked"),
        draw=_weight_cosine,
        needs_ground_truth=True,
    ),
    FigureSpec(name="loss_curves", label="training loss per epoch", reads=("losses",), draw=_loss_curves),
]
"""Every figure, in the order the report lists them."""
REGISTRY = {figure.name: figure for figure in FIGURES}


def spec(name: str) -> FigureSpec:
    """The registered figure ``name``; an unregistered name fails with the registered ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no figure {name!r}; registered: {', '.join(REGISTRY)}") from None


def figures_for(has_ground_truth: bool) -> list[FigureSpec]:
    """The figures of an experiment: those needing a ground truth only where there is one."""
    return [figure for figure in FIGURES if has_ground_truth or not figure.needs_ground_truth]


def tables_read(figures: Iterable[FigureSpec]) -> list[str]:
    """The tables ``figures`` read between them, in ``TABLES`` order."""
    read = {name for figure in figures for name in figure.reads}
    return [name for name in TABLES if name in read]
