"""The figures of the main experiment, over all its seeds."""

from knockout import naming, plotting, tables
from knockout.convergence import read_loss_tables
from knockout.jobs import run_job


def main(snakemake) -> None:
    settings = plotting.PlotSettings(**snakemake.params.plot)
    seeds, noise_sd = snakemake.params.seeds, snakemake.params.noise_sd
    behavior = tables.read_seed_tables(snakemake.input.behavior, seeds, naming.BEHAVIOR_SCORE_COLUMNS)
    neural = tables.read_neural_scores(snakemake.input.neural, seeds)
    losses = read_loss_tables(snakemake.input.losses, seeds, snakemake.params.models)
    figures = {
        "behavior_r2": plotting.behavior_figure(behavior, settings),
        "neural_r2": plotting.neural_figure(neural, noise_sd, settings),
        "neural_r2_three_ways": plotting.three_ways_figure(behavior, neural, settings),
        "r2_vs_contribution": plotting.contribution_figure(neural, noise_sd, settings),
        "silencing_effect": plotting.silencing_effect_figure(neural, settings),
        "weight_cosine": plotting.weight_cosine_figure(neural, settings),
        "loss_curves": plotting.loss_curve_figure(losses, settings),
    }
    for name, figure in figures.items():
        plotting.save_figure(figure, snakemake.output[name], settings)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
