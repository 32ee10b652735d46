"""Replicates summarised: per-seed statistics, then their mean and 95 % interval over seeds.

A seed is one replicate (a new fly, new data, new initial weights), so seeds are the
independent samples: every interval here is over per-seed values, never over units or
test sets of the same seed (those share a fly and are not independent). The interval is
a percentile bootstrap of the mean over seeds: each end is a mean of resampled per-seed
values, so it lies between the smallest and the largest of them, and never leaves the
quantity's range (a t-interval around 0.987 reached 1.018, an R² no model can score).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pandas as pd

from knockout import models, naming
from knockout.convergence import GAP_MEASURES
from knockout.models import KNOCKOUT
from knockout.tables import read_table

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
"""The resampling is fixed (the same values give the same interval, the same bytes)."""
IDENTIFIED_R2 = 0.9
"""A recorded unit counts as identified by a measure when its R² is at least this."""
CHANCE_QUANTILE = 0.95
"""The chance level a model's value is read against: this quantile of the null's values."""
NEURAL_MEASURES = ["r2", "r2_matched", "r2_decoded", "weight_cosine"]
"""Per-unit neural measures summarised per model (see ``metrics.neural_scores``)."""
UNIT_STATISTICS = ("median", "min", "mean")
"""Per seed, each neural measure's statistics over the units that have it; the recording
measures also get ``identified`` (units with R² >= ``IDENTIFIED_R2``) and ``units`` (the
units with a defined R²), so that a median never hides a misassigned unit."""
UNIT_MEASURES = [
    *NEURAL_MEASURES,
    *("r2_predicted", "estimation_floor", "silencing_effect", "fly_silencing_effect", "contribution"),
]
SEED_COLUMNS = ["seed", "model", "output", "measure", "score"]
"""summary/seeds.parquet: per seed, model and measure, one value; ``output`` names the
behavioural output of a behaviour measure (R² is never averaged over outputs), "" else."""
BEHAVIOR_MEASURES = ["behavior_r2_silenced", "behavior_r2_control"]
"""Per seed, model and output: behaviour R² averaged over the silenced sets, and on the control set."""
INTERVAL_COLUMNS = ["mean", "ci_low", "ci_high", "n_seeds"]
CHANCE_COLUMNS = ["chance_mean", "chance_p95", "permuted_mean", "permuted_p95"]
"""In summary/models.parquet, neural_units.parquet and ranked.parquet, beside each neural
measure or statistic: its mean and 95th percentile over untrained networks (``chance``),
and for matched R² over the model's own units matched to stimulus-permuted responses
(``permuted``); see ``chance_levels``."""
RANKED_BEHAVIOR_MEASURES = ["behavior_r2", "noise_ceiling"]
"""In summary/ranked.parquet, beside the per-unit measures: behaviour R² and the noise
ceiling of the test set that silenced the unit of each rank (rank 0: the control set)."""
SUMMARY_COLUMNS = {
    "behavior": ["model", "set", "silenced_units", "output", "silencing", "measure", *INTERVAL_COLUMNS],
    "neural_units": [
        *("model", "unit", "unit_name", "recorded", "silenced", "measure"),
        *INTERVAL_COLUMNS,
        *CHANCE_COLUMNS,
    ],
    "ranked": ["model", "rank", "output", "measure", *INTERVAL_COLUMNS, *CHANCE_COLUMNS],
    "seeds": SEED_COLUMNS,
    "models": ["model", "output", "measure", *INTERVAL_COLUMNS, *CHANCE_COLUMNS],
}
"""The columns of each summary table that ``replicate_summaries`` makes."""
SUMMARY_MAY_BE_NAN = ("score", "mean", "ci_low", "ci_high", *CHANCE_COLUMNS)
"""An interval is NaN with one seed, a mean (or a seed's behaviour R²) where no seed (or
test set) has the measure, a chance level where there is none."""


@functools.cache
def _resamples(n: int) -> np.ndarray:
    """[resamples, n] indices of the bootstrap's draws of ``n`` values (fixed)."""
    return np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, (BOOTSTRAP_RESAMPLES, n))


BOOTSTRAP_CHUNK = 1 << 22
"""At most this many resampled values are held at once (32 MB): groups of the same size are
resampled together, in chunks of this many values."""


def mean_and_interval(values) -> tuple[float, float, float, int]:
    """Mean of the defined values, the ends of its 95 % percentile-bootstrap interval (NaN
    with fewer than two values) and their count. NaN values (an undefined R²) are left out."""
    return means_and_intervals([values])[0]


def means_and_intervals(groups: list) -> list[tuple[float, float, float, int]]:
    """``mean_and_interval`` of each group of values: the same numbers, with the groups of
    the same size resampled in one NumPy computation rather than one at a time (a summary
    has hundreds of groups)."""
    defined = [np.asarray(values, np.float64) for values in groups]
    defined = [values[~np.isnan(values)] for values in defined]
    results: list = [(np.nan, np.nan, np.nan, 0)] * len(defined)
    by_size: dict[int, list[int]] = {}
    for index, values in enumerate(defined):
        if len(values) == 1:
            results[index] = (float(values.mean()), np.nan, np.nan, 1)
        elif len(values) > 1:
            by_size.setdefault(len(values), []).append(index)
    ends = [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]
    for n, indices in by_size.items():
        step = max(1, BOOTSTRAP_CHUNK // (BOOTSTRAP_RESAMPLES * n))
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            stacked = np.stack([defined[index] for index in chunk])  # [groups, n]
            means = stacked[:, _resamples(n)].mean(axis=2)  # [groups, resamples]
            lows, highs = np.quantile(means, ends, axis=1)
            for index, values, low, high in zip(chunk, stacked, lows, highs, strict=True):
                results[index] = (float(values.mean()), float(low), float(high), n)
    return results


def intervals(long: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Long table (``by`` + measure + score, one score per seed) to ``by`` + measure +
    mean, ci_low, ci_high, n_seeds."""
    keys, groups = [], []
    for key, group in long.groupby([*by, "measure"], sort=False)["score"]:
        keys.append(key)
        groups.append(group.to_numpy())
    rows = [(*key, *result) for key, result in zip(keys, means_and_intervals(groups), strict=True)]
    return pd.DataFrame(rows, columns=[*by, "measure", *INTERVAL_COLUMNS])


def across_seeds(per_seed: pd.DataFrame, by: list[str], measures: list[str]) -> pd.DataFrame:
    """Wide table (a column per measure, one row per seed and group) summarised as ``intervals``."""
    long = per_seed.melt(id_vars=[*by, "seed"], value_vars=measures, var_name="measure", value_name="score")
    return intervals(long, by)


def unit_statistics(units: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Long per-unit scores (``by`` + measure + score) to long per-group statistics over
    the units with a defined score: ``<measure>_<statistic>`` for ``UNIT_STATISTICS``, and
    for the recording measures ``<measure>_identified`` and ``<measure>_units``."""
    defined = units.dropna(subset=["score"])
    grouped = defined.groupby([*by, "measure"], sort=False)["score"]
    recording = defined[defined["measure"].isin(naming.RECORDING_MEASURES)]
    counts = recording.assign(identified=recording["score"] >= IDENTIFIED_R2)
    counts = counts.groupby([*by, "measure"], sort=False)["identified"].agg(identified="sum", units="size")
    stats = pd.concat([grouped.agg(list(UNIT_STATISTICS)), counts.astype(np.float64)], axis=1)
    stacked = stats.rename_axis(columns="statistic").stack().dropna()
    long = stacked.rename("score").reset_index()
    long["measure"] = long["measure"] + "_" + long["statistic"]
    return long.drop(columns="statistic")


def has_ground_truth(neural: pd.DataFrame) -> bool:
    """Whether ``neural`` (every seed's neural table) is a simulated fly's: its units'
    contributions are known (on recorded data they are NaN)."""
    return bool(neural["contribution"].notna().any())


def contribution_ranks(neural: pd.DataFrame) -> pd.Series:
    """Per row of ``neural`` (every seed's neural table), its unit's rank by contribution
    within its seed: 1 the largest, ties in unit order; NaN without a contribution.

    Unit i of one seed's fly is unrelated to unit i of another's, so what is compared over
    seeds is the unit of each rank, which means the same in every seed."""
    units = neural.drop_duplicates(["seed", "unit"])
    ranks = units.groupby("seed")["contribution"].rank(ascending=False, method="first")
    by_unit = pd.Series(ranks.to_numpy(), index=pd.MultiIndex.from_frame(units[["seed", "unit"]]))
    keys = pd.MultiIndex.from_frame(neural[["seed", "unit"]])
    return pd.Series(by_unit.reindex(keys).to_numpy(), index=neural.index)


def primary_silencing(behavior: pd.DataFrame) -> pd.DataFrame:
    """The rows of a behaviour table (per seed, or summary/behavior) under its first
    silencing mode, the one the config lists first (``evaluate.silencing``): the statistics
    per seed and the figures compare models under one mode; summary/behavior keeps each."""
    return behavior[behavior["silencing"] == behavior["silencing"].iloc[0]] if len(behavior) else behavior


def set_ranks(behavior: pd.DataFrame, neural: pd.DataFrame) -> pd.Series:
    """Per row of ``behavior`` (every seed's behaviour table), the rank
    (``contribution_ranks``) of the unit its set silenced within its seed; 0 for the
    control set, NaN for a set that silenced no single ranked unit."""
    units = neural.assign(rank=contribution_ranks(neural)).drop_duplicates(["seed", "unit"])
    by_name = units.set_index(["seed", "unit_name"])["rank"]
    keys = pd.MultiIndex.from_arrays([behavior["seed"], behavior["silenced_units"]])
    ranks = pd.Series(by_name.reindex(keys).to_numpy(), index=behavior.index)
    return ranks.where(behavior["silenced_units"] != "", 0.0)


def ranked_units(
    behavior: pd.DataFrame, neural: pd.DataFrame, levels: pd.DataFrame | None = None
) -> pd.DataFrame:
    """On a simulated fly, per model, rank of contribution within the seed
    (``contribution_ranks``), output and measure: each per-unit measure (``UNIT_MEASURES``,
    output "") of the unit of that rank, and behaviour R² and the noise ceiling per output
    (``RANKED_BEHAVIOR_MEASURES``) of the set that silenced it (rank 0: the control set),
    as ``intervals`` over seeds, beside their ``chance_levels`` (``levels``; None: none).
    No rows on recorded data, whose units are the same neurons in every seed (see
    neural_units)."""
    columns = SUMMARY_COLUMNS["ranked"]
    if not has_ground_truth(neural):
        return pd.DataFrame({column: pd.Series(dtype=_dtype(column)) for column in columns})
    units = neural.assign(rank=contribution_ranks(neural), output="")
    sets = behavior.assign(rank=set_ranks(behavior, neural)).dropna(subset=["rank"])
    long = pd.concat(
        [
            units.melt(["seed", "model", "rank", "output"], UNIT_MEASURES, "measure", "score"),
            sets.rename(columns={"r2": "behavior_r2"}).melt(
                ["seed", "model", "rank", "output"], RANKED_BEHAVIOR_MEASURES, "measure", "score"
            ),
        ],
        ignore_index=True,
    )
    table = intervals(long.astype({"rank": np.int64}), ["model", "rank", "output"])
    order = {measure: i for i, measure in enumerate([*UNIT_MEASURES, *RANKED_BEHAVIOR_MEASURES])}
    table = table.sort_values("rank", kind="stable")
    table = table.sort_values("measure", key=lambda measures: measures.map(order), kind="stable")
    return with_chance_levels(table.reset_index(drop=True), levels)[columns]


def _dtype(column: str) -> str:
    if column in ("model", "output", "measure"):
        return "object"
    return "int64" if column == "rank" else "float64"


def seed_statistics(behavior: pd.DataFrame, neural: pd.DataFrame) -> pd.DataFrame:
    """Per seed and model (``SEED_COLUMNS``): the neural measures' statistics over the units
    that have them (the recorded ones; on simulated data every fly unit), and per
    behavioural output its R² on the control set and its mean over the silenced sets."""
    units = neural.melt(
        id_vars=["seed", "model"], value_vars=NEURAL_MEASURES, var_name="measure", value_name="score"
    )
    per_unit = unit_statistics(units, ["seed", "model"]).assign(output="")
    is_control = behavior["silenced_units"] == ""
    silenced, control = BEHAVIOR_MEASURES
    sets = behavior.assign(measure=np.where(is_control, control, silenced))
    per_output = sets.groupby(["seed", "model", "output", "measure"], sort=False)["r2"].mean()
    return pd.concat([per_unit, per_output.rename("score").reset_index()], ignore_index=True)[SEED_COLUMNS]


def differences(per_seed: pd.DataFrame, minuend: str, subtrahend: str) -> pd.DataFrame:
    """Per seed, output and measure, ``minuend`` model's value minus ``subtrahend``'s (e.g. ko - do)."""
    scores = per_seed.set_index(["seed", "output", "measure", "model"])["score"].unstack("model")
    difference = (scores[minuend] - scores[subtrahend]).rename("score").reset_index()
    return difference.assign(model=contrast_label((minuend, subtrahend)))[SEED_COLUMNS]


def chance_levels(chance: pd.DataFrame) -> pd.DataFrame:
    """Per null, model and measure: the mean and the ``CHANCE_QUANTILE`` quantile of its
    chance values. ``chance`` is every seed's eval/chance.parquet with a ``seed`` column.
    A per-unit measure (``r2``...) pools every seed's draws and recorded units (what one
    unit scores by chance); a statistic (``r2_median``...) pools every seed's draws of it
    (e.g. the median over the recorded units of one untrained network's matched R²)."""
    draws = chance[["seed", "null", "model", "draw", "measure", "score"]]
    per_draw = unit_statistics(draws, ["seed", "null", "model", "draw"])
    both = pd.concat([draws.dropna(subset=["score"]), per_draw], ignore_index=True)
    grouped = both.groupby(["null", "model", "measure"], sort=False)["score"]
    return grouped.agg(mean="mean", p95=lambda scores: scores.quantile(CHANCE_QUANTILE)).reset_index()


def with_chance(summary: pd.DataFrame, chance: pd.DataFrame | None) -> pd.DataFrame:
    """``summary`` (per model and measure) with ``CHANCE_COLUMNS`` beside each neural
    statistic that has a chance level (NaN elsewhere, and without recorded units)."""
    return with_chance_levels(summary, None if chance is None else chance_levels(chance))


def with_chance_levels(summary: pd.DataFrame, levels: pd.DataFrame | None) -> pd.DataFrame:
    """``with_chance`` from the ``chance_levels`` already computed (None: no chance)."""
    if levels is None:
        return summary.assign(**dict.fromkeys(CHANCE_COLUMNS, np.nan))
    untrained = levels[levels["null"] == "untrained"].set_index("measure")
    permuted = levels[levels["null"] == "permuted_stimuli"].set_index(["model", "measure"])
    keys = pd.MultiIndex.from_frame(summary[["model", "measure"]])
    return summary.assign(
        chance_mean=summary["measure"].map(untrained["mean"]),
        chance_p95=summary["measure"].map(untrained["p95"]),
        permuted_mean=permuted["mean"].reindex(keys).to_numpy(),
        permuted_p95=permuted["p95"].reindex(keys).to_numpy(),
    )


def replicate_summaries(
    behavior: pd.DataFrame,
    neural: pd.DataFrame,
    optimum: pd.DataFrame | None,
    chance: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The summary tables of one experiment, by name (each becomes summary/<name>.parquet):

    - behavior: per model, test set, output and silencing mode, behaviour R² (pseudo-R² for
      a binary output) and the noise ceiling; every other table is under the first mode
      (``primary_silencing``);
    - neural_units: per model and unit, every per-unit measure (on recorded data a unit is
      the same named neuron in every seed; on simulated data unit i of one seed's fly is
      not unit i of another's: see ranked), beside its chance levels;
    - ranked: on simulated data, the same per rank of contribution within the seed, and
      behaviour per rank of the unit a set silenced (``ranked_units``; no rows on recorded
      data);
    - seeds: per seed and model, the statistics of ``seed_statistics`` (each seed's
      identified units, minimum and median);
    - models: per model (and behavioural output), those statistics over seeds, beside
      their chance levels (``with_chance``; ``chance`` is None where no unit was recorded),
      and for ko (linear networks) its knockout MSE, the exact optimum's, and the gap.

    Every statistic over seeds that a figure shows is one of these (the figures draw them
    as they are).
    """
    every_mode, behavior = behavior, primary_silencing(behavior)
    per_seed = seed_statistics(behavior, neural)
    levels = None if chance is None else chance_levels(chance)
    models = with_chance_levels(intervals(per_seed, ["model", "output"]), levels)
    if optimum is not None:
        gap = across_seeds(optimum.assign(model=KNOCKOUT, output=""), ["model", "output"], GAP_MEASURES)
        models = pd.concat([models, gap], ignore_index=True)
    units = across_seeds(neural, ["model", "unit", "unit_name", "recorded", "silenced"], UNIT_MEASURES)
    return {
        "behavior": across_seeds(
            every_mode, ["model", "set", "silenced_units", "output", "silencing"], ["r2", "noise_ceiling"]
        ),
        "neural_units": with_chance_levels(units, levels),
        "ranked": ranked_units(behavior, neural, levels),
        "seeds": per_seed,
        "models": models,
    }


def read_summary(path: str | os.PathLike, name: str) -> pd.DataFrame:
    """summary/<name>.parquet as ``replicate_summaries`` wrote it (``SUMMARY_COLUMNS``)."""
    return read_table(path, SUMMARY_COLUMNS[name], SUMMARY_MAY_BE_NAN)


def contrast_label(contrast: tuple[str, str] = models.CONTRAST) -> str:
    return f"{contrast[0]} - {contrast[1]}"


def sweep_statistics(per_point: pd.DataFrame, contrast: tuple[str, str] = models.CONTRAST) -> pd.DataFrame:
    """Per swept value: the contrast pair's statistics (ko and do, from the registry) and
    their difference, each with its interval.

    ``per_point`` is ``seed_statistics`` of every point, with a ``value`` column.
    """
    tables = []
    for value, point in per_point.groupby("value", sort=False):
        point = point.drop(columns="value")
        pair = point[point["model"].isin(contrast)]
        both = pd.concat([pair, differences(point, *contrast)], ignore_index=True)
        tables.append(intervals(both, ["model", "output"]).assign(value=value))
    table = pd.concat(tables, ignore_index=True)
    return table[["value", "model", "output", "measure", *INTERVAL_COLUMNS]]
