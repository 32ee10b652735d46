"""What both planning methods share: the plan's rows from draws, the reasons a unit gets
no number, the choice of method, and the smallest design that reaches the target (the
tables' vocabulary is knockout.plan_table's)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from knockout.plan_table import (
    INTERVAL,
    MIN_N_COLUMNS,
    NARROWER_MODEL,
    NEVER_SILENCED,
    NOT_ALONE,
    PLAN_COLUMNS,
)

FEW_DRAWS = 40
"""Below this many draws (the simulation's few experiments per design), the interval and
``p_identified`` come from Student's t rather than from the draws' own quantiles."""


def unit_reasons(
    set_units: Sequence[tuple[int, ...]], n_units: int, model_units: int | None = None
) -> list[str]:
    """Per unit of the data, why the pilot cannot speak for it ("" where it can): it was
    never silenced, only together with others, or the model has no unit for it."""
    alone = {units[0] for units in set_units if len(units) == 1}
    together = {unit for units in set_units if len(units) > 1 for unit in units}
    reasons = []
    for unit in range(n_units):
        if model_units is not None and unit >= model_units:
            reasons.append(NARROWER_MODEL)
        elif unit in alone:
            reasons.append("")
        else:
            reasons.append(NOT_ALONE if unit in together else NEVER_SILENCED)
    return reasons


def design_rows(
    n_per_set: int,
    draws: np.ndarray,
    reasons: Sequence[str],
    unit_names: Sequence[str],
    target_r2: float,
    method: str,
    shortfall: np.ndarray | None = None,
) -> list[tuple]:
    """The plan's rows of one design from ``draws`` [draw, unit] of the R² one experiment
    at that design reaches (NaN: a draw a unit has not): per unit the median (the number
    with the least expected absolute error), the central ``INTERVAL`` of the draws, and
    the share that reach ``target_r2`` (all 0 for a unit with no draw); a unit with a
    reason gets it instead of numbers. ``shortfall`` (per unit; None: not checked) is
    recorded beside them."""
    shortfall = np.full(len(unit_names), np.nan) if shortfall is None else shortfall
    kept = np.isfinite(draws)
    filled = np.where(kept.any(axis=0), draws, 0.0)  # a unit without a draw: R² 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are filled
        point = np.nanmedian(filled, axis=0)
        if len(draws) < FEW_DRAWS:
            low, high, reached = _predictive(filled, target_r2)
        else:
            low, high = np.nanquantile(filled, [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2], axis=0)
            reached = np.nansum(filled >= target_r2, axis=0) / np.maximum(np.isfinite(filled).sum(axis=0), 1)
    rows = []
    for unit, (name, reason) in enumerate(zip(unit_names, reasons, strict=True)):
        if reason:
            rows.append((name, n_per_set, np.nan, np.nan, np.nan, np.nan, method, reason, np.nan))
        else:
            numbers = (point[unit], low[unit], high[unit], reached[unit])
            clipped = (float(np.clip(v, 0.0, 1.0)) for v in numbers)
            rows.append((name, n_per_set, *clipped, method, "", float(shortfall[unit])))
    return rows


def _predictive(draws: np.ndarray, target_r2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From a few draws per unit (the simulation's experiments): the ``INTERVAL``
    prediction interval of one more experiment and its probability of reaching
    ``target_r2``, by Student's t with the draws' mean and spread (k draws: scale
    s·sqrt(1 + 1/k), k - 1 degrees of freedom). The draws' own quantiles would be about
    their range, which holds one more draw with probability (k - 1)/(k + 1), 0.6 for 4,
    and their share reaching the target could only be 0, 1/k, ... 1."""
    from scipy.stats import t as student  # imported here: only the simulation needs it

    count = np.isfinite(draws).sum(axis=0)
    mean = np.nanmean(draws, axis=0)
    spread = np.nanstd(draws, axis=0, ddof=1) * np.sqrt(1 + 1 / np.maximum(count, 1))
    spread = np.maximum(np.nan_to_num(spread), 1e-6)  # identical draws: a step at the mean
    dof = np.maximum(count - 1, 1)
    half = student.ppf((1 + INTERVAL) / 2, dof) * spread
    reached = student.sf((target_r2 - mean) / spread, dof)
    return mean - half, mean + half, reached


def plan_table(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=PLAN_COLUMNS).astype({"n_per_set": "int64"})


def check_target(target_r2: float) -> None:
    if not 0 < target_r2 < 1:
        raise ValueError(f"target_r2 = {target_r2}: must lie strictly between 0 and 1")


def smallest_designs(planned: pd.DataFrame, probability: float = 0.8) -> pd.DataFrame:
    """Per unit, the smallest ``n_per_set`` whose probability of reaching the target is at
    least ``probability`` (null with the reason where none does)."""
    rows = []
    for unit, designs in planned.groupby("unit", sort=False):
        reached = designs[designs["p_identified"] >= probability].sort_values("n_per_set")
        if len(reached):
            rows.append((unit, int(reached["n_per_set"].iloc[0]), ""))
        else:
            reason = designs["reason"].iloc[0] or (
                f"no planned design reaches the target with probability {probability:g}"
            )
            rows.append((unit, None, reason))
    return pd.DataFrame(rows, columns=MIN_N_COLUMNS).astype({"min_n_per_set": "Int64"})
