"""Behaviour R² of every model on every test set and output of one replicate, with the noise ceiling."""

from knockout import tables, weights
from knockout.jobs import run_job
from knockout.metrics import behavior_scores
from knockout.network import Architecture


def main(snakemake) -> None:
    model_paths = dict(zip(snakemake.params.models, snakemake.input.models, strict=True))
    fly_architecture, model_architecture = (
        Architecture(**snakemake.params.architectures[network]) for network in ("fly", "model")
    )
    fly, models = weights.load_fly_and_models(
        snakemake.input.fly, model_paths, fly_architecture, model_architecture
    )
    test = tables.read_behavior_table(snakemake.input.test, **snakemake.params.data_shape)
    scores = behavior_scores(fly, models, test, snakemake.params.silenced_activity)
    tables.write_table(scores, snakemake.output[0])


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
