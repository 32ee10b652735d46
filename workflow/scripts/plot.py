"""The behaviour and neural R² figures over all seeds."""

import pandas as pd

from knockout import naming, tables
from knockout.jobs import run_job
from knockout.plotting import PlotSettings, behavior_figure, neural_figure, save_figure


def read_all_seeds(paths: list[str], seeds: list[int], columns: list[str]) -> pd.DataFrame:
    return pd.concat(
        [tables.read_table(path, columns).assign(seed=seed) for path, seed in zip(paths, seeds, strict=True)],
        ignore_index=True,
    )


def main(snakemake) -> None:
    settings = PlotSettings(**snakemake.params.plot)
    seeds = snakemake.params.seeds
    behavior = read_all_seeds(snakemake.input.behavior, seeds, naming.BEHAVIOR_SCORE_COLUMNS)
    neural = read_all_seeds(snakemake.input.neural, seeds, naming.NEURAL_SCORE_COLUMNS)
    save_figure(behavior_figure(behavior, settings), snakemake.output.behavior, settings)
    save_figure(neural_figure(neural, snakemake.params.noise_sd, settings), snakemake.output.neural, settings)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
