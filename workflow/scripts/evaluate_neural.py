"""Per model and unit: neural R² three ways against the recorded neurons, silencing effect,
and, where the true network is known, contribution, weight cosine and the predicted R²;
and every model unit's predicted response to each neuron stimulus."""

from knockout import tables, weights
from knockout.dataset import Layout, expect_layout, read_neurons, read_rows
from knockout.jobs import run_job
from knockout.metrics import DataDesign, neural_scores, response_table
from knockout.network import Architecture


def main(snakemake) -> None:
    layout = Layout.from_dict(snakemake.params.layout)
    if "neurons" in snakemake.input.keys():  # noqa: SIM118 (a Namedlist: "in" tests its values)
        neurons, found = read_neurons(snakemake.input.neurons, layout)
        expect_layout(snakemake.input.neurons, found, layout)
    else:  # nothing recorded: the model units' responses to the test inputs
        seed = int(snakemake.wildcards.seed)
        _, test = read_rows(snakemake.input.behavior, layout, snakemake.params.test_fraction, seed)
        neurons = test[list(layout.inputs)].reset_index(drop=True)
    architectures = snakemake.params.architectures
    models = weights.load_models(
        dict(zip(snakemake.params.models, snakemake.input.models, strict=True)),
        Architecture(**architectures["model"]),
    )
    fly, design = None, None
    if "fly" in snakemake.input.keys():  # noqa: SIM118 (a Namedlist: "in" tests its values)
        fly = weights.load_network(snakemake.input.fly, Architecture(**architectures["fly"]))
        design = DataDesign(**snakemake.params.design)
    tables.write_table(neural_scores(models, neurons, layout, fly, design), snakemake.output.neural)
    tables.write_table(response_table(models, neurons, layout), snakemake.output.responses)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
