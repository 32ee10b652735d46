"""Behaviour R² of every model on every test set and output of one replicate (with the
noise ceiling where the true network is known), and each model unit's silencing effect
on each output."""

from knockout import tables, weights
from knockout.behavior_data import BehaviorData
from knockout.dataset import Layout, read_rows
from knockout.jobs import run_job
from knockout.metrics import behavior_scores, silencing_table
from knockout.network import Architecture


def main(snakemake) -> None:
    behavior = snakemake.params.behavior
    layout = Layout.from_dict(behavior["layout"])
    seed = int(snakemake.wildcards.seed)
    _, test = read_rows(snakemake.input.behavior, layout, behavior["test_fraction"], seed)
    data = BehaviorData.from_table(test, layout)
    architectures = snakemake.params.architectures
    models = weights.load_models(
        dict(zip(snakemake.params.models, snakemake.input.models, strict=True)),
        Architecture(**architectures["model"]),
    )
    fly = None
    if "fly" in snakemake.input.keys():  # noqa: SIM118 (a Namedlist: "in" tests its values)
        fly = weights.load_network(snakemake.input.fly, Architecture(**architectures["fly"]))
    scores = behavior_scores(models, data, layout, fly, snakemake.params.silenced_activity)
    tables.write_table(scores, snakemake.output.behavior)
    effects = silencing_table(models, data.x, list(layout.units), list(layout.outputs))
    tables.write_table(effects, snakemake.output.silencing)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
