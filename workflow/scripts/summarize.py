"""One experiment's replicates summarised: means over seeds with 95 % confidence intervals."""

from knockout import naming, tables
from knockout.jobs import run_job
from knockout.summary import OPTIMUM_MEASURES, replicate_summaries


def main(snakemake) -> None:
    seeds = snakemake.params.seeds
    behavior = tables.read_seed_tables(snakemake.input.behavior, seeds, naming.BEHAVIOR_SCORE_COLUMNS)
    neural = tables.read_seed_tables(snakemake.input.neural, seeds, naming.NEURAL_SCORE_COLUMNS)
    optimum = None
    if hasattr(snakemake.input, "optimum"):  # linear networks only
        optimum = tables.read_seed_tables(snakemake.input.optimum, seeds, OPTIMUM_MEASURES)
    for name, summary in replicate_summaries(behavior, neural, optimum).items():
        tables.write_table(summary, snakemake.output[name])


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
