"""Per model and fly unit: neural R² three ways, weight cosine, silencing effect, contribution."""

from knockout import naming, tables, weights
from knockout.jobs import run_job
from knockout.metrics import DataDesign, neural_scores
from knockout.network import Architecture


def main(snakemake) -> None:
    model_paths = dict(zip(snakemake.params.models, snakemake.input.models, strict=True))
    fly_architecture, model_architecture = (
        Architecture(**snakemake.params.architectures[network]) for network in ("fly", "model")
    )
    fly, models = weights.load_fly_and_models(
        snakemake.input.fly, model_paths, fly_architecture, model_architecture
    )
    columns = naming.probe_columns(fly_architecture.n_inputs, fly_architecture.n_hidden)
    probe = tables.read_table(snakemake.input.probe, columns)
    n_silenced = snakemake.params.data_shape["n_silenced"]
    scores = neural_scores(fly, models, probe, n_silenced, DataDesign(**snakemake.params.design))
    tables.write_table(scores, snakemake.output[0])


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
