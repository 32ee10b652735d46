"""Replicates summarised: per-seed statistics, then their mean and 95 % confidence interval.

A seed is one replicate (a new fly, new data, new initial weights), so seeds are the
independent samples: every interval here is a t-interval over per-seed values, never
over units or test sets of the same seed (those share a fly and are not independent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # the t quantile; scipy.stats takes ~1 s to import

from knockout import models
from knockout.convergence import GAP_MEASURES

CONFIDENCE = 0.95
NEURAL_MEASURES = ["r2", "r2_matched", "r2_decoded", "weight_cosine"]
"""Per-unit neural measures summarised per model (see ``metrics.neural_scores``)."""
UNIT_MEASURES = [*NEURAL_MEASURES, "r2_predicted", "silencing_effect", "fly_silencing_effect", "contribution"]
SEED_MEASURES = [
    *[f"{m}_{s}" for m in NEURAL_MEASURES for s in ("median", "mean")],
    "behavior_r2_silenced",
    "behavior_r2_control",
]
"""Per seed and model: the neural measures' median and mean over units, and behaviour."""
INTERVAL_COLUMNS = ["mean", "ci_low", "ci_high", "n_seeds"]


def mean_and_interval(values) -> tuple[float, float, float, int]:
    """Mean, the 95 % t-interval's ends (NaN with one value) and the count."""
    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan, len(values)
    standard_error = values.std(ddof=1) / np.sqrt(len(values))
    half_width = stdtrit(len(values) - 1, 0.5 + CONFIDENCE / 2) * standard_error
    return mean, mean - half_width, mean + half_width, len(values)


def across_seeds(per_seed: pd.DataFrame, by: list[str], measures: list[str]) -> pd.DataFrame:
    """Long table: ``by`` + measure + mean, ci_low, ci_high, n_seeds (one value per seed each)."""
    long = per_seed.melt(id_vars=[*by, "seed"], value_vars=measures, var_name="measure")
    rows = [
        (*keys, *mean_and_interval(group["value"]))
        for keys, group in long.groupby([*by, "measure"], sort=False)
    ]
    return pd.DataFrame(rows, columns=[*by, "measure", *INTERVAL_COLUMNS])


def seed_statistics(behavior: pd.DataFrame, neural: pd.DataFrame) -> pd.DataFrame:
    """One row per seed and model: neural measures' median and mean over the units that
    have them (the recorded ones; on simulated data, every fly unit),
    behaviour R² on the control set and its mean over the silenced sets (each averaged
    over the behavioural outputs)."""
    by_unit = neural.groupby(["seed", "model"], sort=False)[NEURAL_MEASURES]
    medians = by_unit.median().add_suffix("_median")
    means = by_unit.mean().add_suffix("_mean")
    is_control = behavior["silenced_units"] == ""
    silenced = behavior[~is_control].groupby(["seed", "model"], sort=False)["r2"].mean()
    control = behavior[is_control].groupby(["seed", "model"], sort=False)["r2"].mean()
    table = pd.concat(
        [medians, means, silenced.rename("behavior_r2_silenced"), control.rename("behavior_r2_control")],
        axis=1,
    )
    return table.reset_index()


def differences(per_seed: pd.DataFrame, minuend: str, subtrahend: str) -> pd.DataFrame:
    """Per seed, ``minuend`` model's statistics minus ``subtrahend``'s (e.g. ko - do)."""
    indexed = per_seed.set_index(["seed", "model"])[SEED_MEASURES]
    difference = indexed.xs(minuend, level="model") - indexed.xs(subtrahend, level="model")
    return difference.reset_index()


def replicate_summaries(
    behavior: pd.DataFrame, neural: pd.DataFrame, optimum: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """The summary tables of one experiment, by name (each becomes summary/<name>.parquet):

    - behavior: per model, test set and output, behaviour R² and the noise ceiling;
    - neural_units: per model and unit, every per-unit measure (on recorded data a unit is
      the same named neuron in every seed; on simulated data unit i of one seed's fly is
      not unit i of another's);
    - models: per model, the per-seed statistics of ``seed_statistics``, and for ko
      (linear networks) its knockout MSE, the exact optimum's, and the gap.
    """
    models = across_seeds(seed_statistics(behavior, neural), ["model"], SEED_MEASURES)
    if optimum is not None:
        gap = across_seeds(optimum.assign(model="ko"), ["model"], GAP_MEASURES)
        models = pd.concat([models, gap], ignore_index=True)
    return {
        "behavior": across_seeds(
            behavior, ["model", "set", "silenced_units", "output"], ["r2", "noise_ceiling"]
        ),
        "neural_units": across_seeds(
            neural, ["model", "unit", "unit_name", "recorded", "silenced"], UNIT_MEASURES
        ),
        "models": models,
    }


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
        difference = differences(point, *contrast).assign(model=contrast_label(contrast))
        pair = point[point["model"].isin(contrast)]
        both = pd.concat([pair, difference], ignore_index=True)
        tables.append(across_seeds(both, ["model"], SEED_MEASURES).assign(value=value))
    table = pd.concat(tables, ignore_index=True)
    return table[["value", "model", "measure", *INTERVAL_COLUMNS]]
