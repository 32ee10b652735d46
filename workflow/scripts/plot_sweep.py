"""A sweep's summary figure: ko and do, and ko - do, against the swept value."""

from knockout import plotting, tables
from knockout.summary import INTERVAL_COLUMNS
from knockout_workflow.captions import write_caption
from knockout_workflow.jobs import run_job


def main(snakemake) -> None:
    settings = plotting.PlotSettings(**snakemake.params.plot)
    columns = ["value", "model", "output", "measure", *INTERVAL_COLUMNS, "converged", "chance_p95"]
    # a measure undefined for a point's networks (weight cosine with an encoder) is NaN; a
    # chance level where there is none (behaviour, ko - do, no recorded unit)
    summary = tables.read_table(
        snakemake.input.summary, columns, may_be_nan=("mean", "ci_low", "ci_high", "chance_p95")
    )
    params = snakemake.params
    with plotting.plain_text():
        figure = plotting.sweep_figure(summary, params.key, params.values, params.names, settings)
        plotting.save_figure_in_formats(figure, snakemake.output.figure, settings)
    values = {
        "sweep": snakemake.wildcards.sweep,
        "key": params.key,
        "values": params.values,
        "seeds": params.seeds,
        "recorded": params.recorded,
    }
    write_caption(snakemake.output.caption, params.caption, values, params.made_with)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
