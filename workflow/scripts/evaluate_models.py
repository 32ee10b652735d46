"""One job's evaluations (every seed of an experiment, or one seed): per model, behaviour R²
on every test set and output (with the noise ceiling where the true network is known),
each unit's silencing effect on each output, neural R² three ways against the recorded
neurons (and, where the true network is known, contribution, weight cosine and the
predicted R²), every unit's response to each neuron stimulus, the knockout objective
on the training rows (against which ko's convergence to the exact optimum is judged), and
the chance levels of the neural R² (untrained networks, permuted stimuli).

Where the rule lists the optimum's network among its outputs (linear simulated networks),
the job first fits the knockout objective's exact optimum to each seed's training data,
saves it and scores it beside the trained models."""

from knockout import tables, weights
from knockout.behavior_data import BehaviorData, NeuronData
from knockout.data_folder import Layout, job_folders
from knockout.identifiability import fitted_optimum
from knockout.metrics import (
    DataDesign,
    behavior_scores,
    chance_table,
    knockout_losses,
    neural_scores,
    response_table,
    silencing_table,
)
from knockout.models import OPTIMUM
from knockout.network import Architecture
from knockout_workflow.jobs import expect_planned_content, run_job


def main(snakemake) -> None:
    layout = Layout.from_dict(snakemake.params.layout)
    architectures, seeds, names = (
        snakemake.params.architectures,
        snakemake.params.seeds,
        snakemake.params.models,
    )
    architecture = Architecture(**architectures["model"])
    has_neurons = "neurons" in snakemake.input.keys()  # noqa: SIM118 (a Namedlist: "in" tests its values)
    has_fly = "fly" in snakemake.input.keys()  # noqa: SIM118
    neurons = snakemake.input.neurons if has_neurons else []
    folders = job_folders(snakemake.input.behavior, layout, len(seeds), neurons)
    expect_planned_content(snakemake.params.data_digests)  # a data folder's files are read by now
    model_files = iter(snakemake.input.models)
    for number, (seed, folder) in enumerate(zip(seeds, folders, strict=True)):
        paths = {name: next(model_files) for name in names}
        nets = weights.load_models(paths, architecture)
        train, test = BehaviorData.split(folder, snakemake.params.test_fraction, seed)
        fly, design = None, None
        if has_fly:
            fly = weights.load_network(snakemake.input.fly[number], Architecture(**architectures["fly"]))
            design = DataDesign(**snakemake.params.design)
        # nothing recorded: the model units' responses to the test inputs
        neurons = NeuronData.of_folder(folder) if has_neurons else NeuronData.unrecorded(test.inputs)
        output = {kind: getattr(snakemake.output, kind)[number] for kind in snakemake.output.keys()}  # noqa: SIM118
        if OPTIMUM in output:
            nets[OPTIMUM] = fitted_optimum(train, architecture)
            weights.save_network(nets[OPTIMUM], output.pop(OPTIMUM))
        tables.write_table(
            behavior_scores(
                nets,
                test,
                layout,
                fly,
                design.silenced_activity if design else 0.0,
                tuple(snakemake.params.silencing),
            ),
            output["behavior"],
        )
        tables.write_table(
            silencing_table(nets, test.inputs, list(layout.units), list(layout.outputs)), output["silencing"]
        )
        tables.write_table(neural_scores(nets, neurons, layout, fly, design), output["neural"])
        tables.write_table(response_table(nets, neurons, layout), output["responses"])
        tables.write_table(knockout_losses(nets, train), output["knockout_loss"])
        trained = {name: nets[name] for name in names}
        tables.write_table(
            chance_table(trained, neurons, layout, snakemake.params.init, seed), output["chance"]
        )


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
