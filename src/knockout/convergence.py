"""Has training converged? Two checks, each a number and a verdict against a tolerance,
judged where they are reported (the summaries), so a tolerance edit retrains nothing.

- For linear two-layer networks: trained ko's gap to the knockout objective's exact
  optimum, relative to the optimum's loss: the sharp check, which decides where it exists.
- Elsewhere: how much the loss still fell over the last tenth of the epochs, relative to
  the final loss. A run stopped while the loss is still falling is not a result. It is a
  coarse check: under a cosine schedule the loss falls at the end by design (the steps'
  jitter shrinks with the rate), so its tolerance is loose; at low noise the loss is so
  small that its last fall exceeds any fixed share of it (measured at fly.noise_sd 0.0125:
  16-19 % over the last tenth, with ko within 0.5 % of the exact optimum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from knockout import naming
from knockout.models import KNOCKOUT, OPTIMUM
from knockout.tables import read_seed_tables, read_table

LAST_FRACTION = 0.1
LOSS_COLUMNS = ["epoch", "step", "restart", "train_mse", "chosen"]
"""A training job's loss table: every restart's mean training loss per epoch, and the Adam
steps taken by the end of that epoch; ``chosen`` is 1 on the rows of the restart kept."""
GAP_MEASURES = ["knockout_mse_ko", "knockout_mse_optimum", "gap"]
"""Trained ko's knockout objective on its training rows, the exact optimum's, and ko's
distance to it (ko minus optimum)."""
GAP_COLUMNS = ["seed", *GAP_MEASURES]
CONVERGENCE_COLUMNS = ["seed", "model", "final_mse", "late_improvement", "relative_gap", "converged"]
"""summary/convergence.parquet: per seed and model; relative_gap is ko's gap to the exact
optimum over the optimum's loss (NaN where there is none)."""


@dataclass(frozen=True)
class Tolerances:
    """The ``train.convergence`` config section."""

    late_improvement: float
    optimum_gap: float


def late_improvement(losses: list[float]) -> float:
    """(loss at the start of the last tenth of the epochs - final loss) / final loss.

    The last tenth is at least one epoch; with a single epoch nothing can be told (inf).
    """
    if len(losses) < 2:
        return math.inf
    back = max(1, math.ceil(LAST_FRACTION * len(losses)))
    final = losses[-1]
    return (losses[-1 - back] - final) / final if final > 0 else 0.0


def read_loss_tables(paths: list, seeds: list[int], models: list[str]) -> pd.DataFrame:
    """Every seed's and model's loss table, with seed and model columns (``paths`` seed-major:
    every model of the first seed, then of the next)."""
    keys = [(seed, model) for seed in seeds for model in models]
    return pd.concat(
        [
            read_table(path, LOSS_COLUMNS).assign(seed=seed, model=model)
            for path, (seed, model) in zip(paths, keys, strict=True)
        ],
        ignore_index=True,
    )


def optimum_gaps(knockout_losses: pd.DataFrame) -> pd.DataFrame | None:
    """ko's gap to the exact optimum per seed (:data:`GAP_COLUMNS`), from every seed's
    ``metrics.knockout_losses`` (with a seed column); None where there is no optimum or no ko
    (the registry's :data:`~knockout.models.OPTIMUM` and the model it is the optimum of)."""
    by_model = knockout_losses.pivot(index="seed", columns="model", values="knockout_mse")
    if KNOCKOUT not in by_model or OPTIMUM not in by_model:
        return None
    ko, optimum = by_model[KNOCKOUT], by_model[OPTIMUM]
    table = pd.DataFrame({"knockout_mse_ko": ko, "knockout_mse_optimum": optimum, "gap": ko - optimum})
    return table.reset_index()[GAP_COLUMNS]


def read_optimum_gaps(paths: list, seeds: list[int]) -> pd.DataFrame | None:
    """:func:`optimum_gaps` from every seed's ``eval/knockout_loss.parquet``."""
    return optimum_gaps(read_seed_tables(paths, seeds, naming.KNOCKOUT_LOSS_COLUMNS))


def chosen_losses(table: pd.DataFrame) -> list[float]:
    """The kept restart's loss per epoch, from a loss table."""
    return table[table["chosen"] == 1].sort_values("epoch")["train_mse"].tolist()


def convergence_table(
    losses: pd.DataFrame, tolerances: Tolerances, optimum: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per seed and model (``losses`` has seed and model columns): final loss, late
    improvement, ko's relative gap to the exact optimum (``optimum``: :func:`optimum_gaps`)
    and whether training converged: by the gap where there is one (the sharp check), else
    by the late improvement."""
    gaps = {}
    if optimum is not None:
        gaps = dict(zip(optimum["seed"], optimum["gap"] / optimum["knockout_mse_optimum"], strict=True))
    rows = []
    for (seed, model), table in losses.groupby(["seed", "model"], sort=False):
        curve = chosen_losses(table)
        improvement = late_improvement(curve)
        gap = gaps.get(seed, math.nan) if model == KNOCKOUT else math.nan
        if math.isnan(gap):
            converged = improvement <= tolerances.late_improvement
        else:
            converged = gap <= tolerances.optimum_gap
        rows.append((seed, model, curve[-1], improvement, gap, int(converged)))
    return pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)


def unconverged_warnings(table: pd.DataFrame, tolerances: Tolerances) -> list[str]:
    """One sentence per row of a ``convergence_table`` that is not converged."""
    warnings = []
    for row in table.itertuples():
        if row.converged:
            continue
        if math.isnan(row.relative_gap):
            why = (
                f"its loss still fell by {row.late_improvement:.1%} over the last {LAST_FRACTION:.0%} of "
                f"its epochs (train.convergence.late_improvement {tolerances.late_improvement:.1%})"
            )
        else:
            why = (
                f"its training loss is {row.relative_gap:.1%} above the exact optimum's "
                f"(train.convergence.optimum_gap {tolerances.optimum_gap:.1%})"
            )
        warnings.append(
            f"seed {row.seed}, model {row.model!r} has not converged: {why}; raise train.min_steps "
            f"or train.epochs, lower train.lr, or read its numbers as unfinished"
        )
    return warnings
