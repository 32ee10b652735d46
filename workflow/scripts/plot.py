"""The figures of the main experiment, over all its seeds."""

from knockout import plotting, tables
from knockout.convergence import read_loss_tables
from knockout.summary import chance_levels
from knockout_workflow.captions import write_caption
from knockout_workflow.jobs import run_job


def main(snakemake) -> None:
    settings = plotting.PlotSettings(**snakemake.params.plot)
    seeds, noise_sd = snakemake.params.seeds, snakemake.params.noise_sd
    behavior = tables.read_behavior_scores(snakemake.input.behavior, seeds)
    neural = tables.read_neural_scores(snakemake.input.neural, seeds)
    losses = read_loss_tables(snakemake.input.losses, seeds, snakemake.params.models)
    scores = tables.read_chance_scores(snakemake.input.chance, seeds, neural)
    chance = None if scores is None else chance_levels(scores)
    draw = {
        "behavior_r2": lambda: plotting.behavior_figure(behavior, settings, neural),
        "neural_r2": lambda: plotting.neural_figure(neural, noise_sd, settings, chance),
        "neural_r2_three_ways": lambda: plotting.three_ways_figure(behavior, neural, settings, chance),
        "r2_vs_contribution": lambda: plotting.contribution_figure(neural, noise_sd, settings),
        "silencing_effect": lambda: plotting.silencing_effect_figure(neural, settings),
        "weight_cosine": lambda: plotting.weight_cosine_figure(neural, settings),
        "loss_curves": lambda: plotting.loss_curve_figure(losses, settings),
    }
    caption_values = {
        "seeds": seeds,
        "noise_sd": noise_sd,
        "recorded": not plotting.ranked_by_contribution(neural),
        "three_ways": plotting.three_ways_numbers(behavior, neural, chance),
        "chance": plotting.CHANCE_LABEL,
    }
    for name in draw:
        if name not in snakemake.output.keys():  # noqa: SIM118 (the ground-truth ones need a fly)
            continue
        with plotting.plain_text():
            plotting.save_figure_in_formats(draw[name](), snakemake.output[name], settings)
        write_caption(
            snakemake.output[f"{name}_caption"],
            snakemake.params.captions[name],
            caption_values,
            snakemake.params.made_with,
        )


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
