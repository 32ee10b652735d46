"""A sweep's summary figure: ko and do, and ko - do, against the swept value."""

from knockout import plotting, tables
from knockout.jobs import run_job
from knockout.summary import INTERVAL_COLUMNS


def main(snakemake) -> None:
    settings = plotting.PlotSettings(**snakemake.params.plot)
    columns = ["value", "model", "measure", *INTERVAL_COLUMNS]
    summary = tables.read_table(snakemake.input.summary, columns, may_be_nan=("ci_low", "ci_high"))
    figure = plotting.sweep_figure(summary, snakemake.params.key, snakemake.params.values, settings)
    plotting.save_figure(figure, snakemake.output[0], settings)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
