"""One experiment's replicates summarised: per-seed statistics, means over seeds with 95 %
intervals beside their chance levels, and whether every training converged."""

from knockout import tables
from knockout.convergence import (
    Tolerances,
    convergence_table,
    read_loss_tables,
    read_optimum_gaps,
    unconverged_warnings,
)
from knockout.summary import replicate_summaries
from knockout_workflow.jobs import run_job, warn


def main(snakemake) -> None:
    seeds, tolerances = snakemake.params.seeds, Tolerances(**snakemake.params.convergence)
    behavior = tables.read_behavior_scores(snakemake.input.behavior, seeds)
    neural = tables.read_neural_scores(snakemake.input.neural, seeds)
    optimum = read_optimum_gaps(snakemake.input.knockout_loss, seeds)
    chance = tables.read_chance_scores(snakemake.input.chance, seeds, neural)
    losses = read_loss_tables(snakemake.input.losses, seeds, snakemake.params.models)
    convergence = convergence_table(losses, tolerances, optimum)
    for warning in unconverged_warnings(convergence, tolerances):
        warn(warning)
    summaries = replicate_summaries(behavior, neural, optimum, chance) | {"convergence": convergence}
    for name, summary in summaries.items():
        tables.write_table(summary, snakemake.output[name])


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
