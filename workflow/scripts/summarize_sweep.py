"""One sweep summarised: ko's and do's statistics, and ko - do, per swept value."""

import pandas as pd

from knockout import tables
from knockout.jobs import run_job
from knockout.summary import seed_statistics, sweep_statistics


def main(snakemake) -> None:
    values, seeds = snakemake.params.values, snakemake.params.seeds
    points = []
    for index, value in enumerate(values):
        per_point = slice(index * len(seeds), (index + 1) * len(seeds))
        behavior = tables.read_behavior_scores(snakemake.input.behavior[per_point], seeds)
        neural = tables.read_neural_scores(snakemake.input.neural[per_point], seeds)
        points.append(seed_statistics(behavior, neural).assign(value=value))
    summary = sweep_statistics(pd.concat(points, ignore_index=True))
    tables.write_table(summary.assign(key=snakemake.params.key), snakemake.output[0])


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
