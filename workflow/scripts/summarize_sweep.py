"""One sweep summarised: ko's and do's statistics, and ko - do, per swept value, each
marked converged or not (that model's training in every seed, against the point's
train.convergence) and beside its chance level (untrained networks of the point's shape);
the convergence of every network beside it."""

import pandas as pd

from knockout import tables
from knockout.convergence import (
    Tolerances,
    convergence_table,
    read_loss_tables,
    read_optimum_gaps,
    unconverged_warnings,
)
from knockout.models import CONTRAST
from knockout.summary import CHANCE_COLUMNS, contrast_label, seed_statistics, sweep_statistics, with_chance
from knockout_workflow.jobs import run_job, warn


def converged_rows(summary: pd.DataFrame, convergence: pd.DataFrame) -> pd.Series:
    """Per row of a sweep summary, 1 if that model's training converged in every seed at
    that value (for the contrast, both models'), else 0."""
    per_model = convergence.groupby(["value", "model"])["converged"].min()
    both = convergence[convergence["model"].isin(CONTRAST)].groupby("value")["converged"].min()
    return pd.Series(
        [
            both[row.value] if row.model == contrast_label() else per_model[row.value, row.model]
            for row in summary.itertuples()
        ],
        index=summary.index,
    )


def main(snakemake) -> None:
    values, seeds, models = snakemake.params.values, snakemake.params.seeds, snakemake.params.models
    inputs = snakemake.input
    points, convergence, chance = [], [], []
    for index, (value, settings) in enumerate(zip(values, snakemake.params.convergence, strict=True)):
        per_seed = slice(index * len(seeds), (index + 1) * len(seeds))
        per_network = slice(index * len(seeds) * len(models), (index + 1) * len(seeds) * len(models))
        behavior = tables.read_behavior_scores(inputs.behavior[per_seed], seeds)
        neural = tables.read_neural_scores(inputs.neural[per_seed], seeds)
        points.append(seed_statistics(behavior, neural).assign(value=value))
        chance.append(tables.read_chance_scores(inputs.chance[per_seed], seeds, neural))
        losses = read_loss_tables(inputs.losses[per_network], seeds, models)
        tolerances = Tolerances(**settings)
        table = convergence_table(
            losses, tolerances, read_optimum_gaps(inputs.knockout_loss[per_seed], seeds)
        )
        for warning in unconverged_warnings(table, tolerances):
            warn(f"sweep {snakemake.wildcards.sweep} = {value}: {warning}")
        convergence.append(table.assign(value=value))
    convergence = pd.concat(convergence, ignore_index=True)
    summary = sweep_statistics(pd.concat(points, ignore_index=True))
    summary = pd.concat(
        [
            with_chance(summary[summary["value"] == value], levels)
            for value, levels in zip(values, chance, strict=True)
        ]
    )
    summary.loc[summary["model"] == contrast_label(), CHANCE_COLUMNS] = float("nan")  # a difference has none
    summary = summary.assign(key=snakemake.params.key, converged=converged_rows(summary, convergence))
    tables.write_table(summary, snakemake.output.summary)
    tables.write_table(convergence, snakemake.output.convergence)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
