"""Neural R² of each model unit against the matching fly unit, and each unit's contribution."""

from knockout import naming, tables, weights
from knockout.jobs import run_job
from knockout.metrics import neural_scores


def main(snakemake) -> None:
    model_paths = dict(zip(snakemake.params.models, snakemake.input.models, strict=True))
    fly, models = weights.load_fly_and_models(snakemake.input.fly, model_paths)
    columns = naming.probe_columns(fly.hidden.in_features, fly.n_hidden)
    probe = tables.read_table(snakemake.input.probe, columns)
    tables.write_table(neural_scores(fly, models, probe), snakemake.output[0])


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
