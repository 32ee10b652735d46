"""The figures of the main experiment, over all its seeds: each registered figure
(knockout.figures) drawn from the tables it reads, with its caption."""

from knockout import figures, plotting
from knockout_workflow.captions import write_caption
from knockout_workflow.jobs import run_job


def main(snakemake) -> None:
    params = snakemake.params
    settings = plotting.PlotSettings(**params.plot)
    data = figures.FigureData.from_files(
        dict(snakemake.input.items()), params.seeds, params.models, params.noise_sd, params.has_ground_truth
    )
    for name in params.captions:  # this run's figures
        figure = figures.spec(name)
        view = data.for_figure(figure)
        with plotting.plain_text():
            plotting.save_figure_in_formats(figure.draw(view, settings), snakemake.output[name], settings)
        write_caption(
            snakemake.output[f"{name}_caption"],
            params.captions[name],
            view.caption_values() | figure.caption_values(view),
            params.made_with,
        )


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
