"""The plan's figure (units × designs, one panel per pilot) and its caption."""

import pandas as pd

from knockout import plotting
from knockout_workflow.captions import write_caption
from knockout_workflow.jobs import run_job


def main(snakemake) -> None:
    params = snakemake.params
    settings = plotting.PlotSettings(**params.plot)
    planned, smallest = pd.read_parquet(snakemake.input.plan), pd.read_parquet(snakemake.input.min_n)
    with plotting.plain_text():
        figure = plotting.plan_figure(planned, smallest, params.target_r2, params.probability, settings)
        plotting.save_figure_in_formats(figure, snakemake.output.figure, settings)
    values = plotting.plan_caption_values(planned, smallest, params.target_r2, params.probability)
    write_caption(snakemake.output.caption, params.caption, values, params.made_with)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
