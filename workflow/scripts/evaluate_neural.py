"""Per model and fly unit: neural R² three ways, weight cosine, silencing effect, contribution."""

from knockout import naming, tables, weights
from knockout.jobs import run_job
from knockout.metrics import neural_scores
from knockout.network import NetworkSettings


def main(snakemake) -> None:
    model_paths = dict(zip(snakemake.params.models, snakemake.input.models, strict=True))
    networks = NetworkSettings(**snakemake.params.networks)
    fly, models = weights.load_fly_and_models(snakemake.input.fly, model_paths, networks)
    columns = naming.probe_columns(fly.hidden.in_features, fly.n_hidden)
    probe = tables.read_table(snakemake.input.probe, columns)
    n_silenced = snakemake.params.data_shape["n_silenced"]
    tables.write_table(neural_scores(fly, models, probe, n_silenced), snakemake.output[0])


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
