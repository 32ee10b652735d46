# The data source (the seam): which files an experiment's steps read, and what they hold.
import functools

from knockout import dataset
from knockout.errors import InputFileError
from knockout_workflow.sources import file_digest

# An experiment's data are the import contract's files (knockout.dataset): a user's folder
# (data.source), or the simulated fly's, which generate_fly_data writes per seed. Every
# rule that reads data gets its files from data_files and its layout from data_layout;
# adding a source means a rule that writes the contract's files and a branch in both.
SIMULATED_FILES = {
    "behavior": "results/{experiment}seed{seed}/data/behavior.parquet",
    "neurons": "results/{experiment}seed{seed}/data/neurons.parquet",
    "fly": "results/{experiment}seed{seed}/fly.pt",
}


def is_simulated(experiment):
    return EXPERIMENTS[experiment]["data"]["source"] == SIMULATED


@functools.cache  # a folder is read and checked once per workflow start, for every experiment
def _folder_layout(folder, units, memory_gb):
    try:
        return dataset.load(folder, list(units), memory_gb).layout
    except InputFileError as error:
        raise WorkflowError(f"data.source: {error}") from None


def data_layout(experiment):
    """What the experiment's files hold (knockout.dataset.Layout), before any job runs:
    from the config for the simulated fly, from the checked files for a folder."""
    settings = EXPERIMENTS[experiment]
    if is_simulated(experiment):
        fly, data = settings["fly"], settings["data"]
        return dataset.simulated_layout(
            fly["n_inputs"], fly["n_hidden"], fly["n_outputs"], data["n_silenced"]
        )
    return _folder_layout(
        settings["data"]["source"],
        tuple(settings["data"]["units"]),
        settings["limits"]["memory_gb"],
    )


for _experiment in EXPERIMENTS:  # bad files stop the run here, before any job
    data_layout(_experiment)


def data_files(*kinds):
    """An input function: per kind (behavior, neurons, fly) that exists for the experiment's
    source, its files for the job's seeds (for ``unpack``): one per seed of the simulated
    fly, or the data folder's one file, which every seed splits anew."""

    def files(wildcards):
        if is_simulated(wildcards.experiment):
            return {
                kind: [
                    SIMULATED_FILES[kind].format(experiment=wildcards.experiment, seed=seed)
                    for seed in job_seeds(wildcards)
                ]
                for kind in kinds
            }
        folder = experiment_config(wildcards)["data"]["source"]
        found = {
            kind: dataset.find_file(folder, kind, required=kind == dataset.BEHAVIOR)
            for kind in kinds
            if kind != "fly"
        }
        return {kind: [str(path)] for kind, path in found.items() if path is not None}

    return files


@functools.cache  # hashed once per workflow start, whatever the number of jobs reading it
def _planned_digest(path):
    return file_digest(path)


def data_digests(*kinds):
    """A ``params`` function: the content digests of a data folder's files of ``kinds`` that
    a job reads ({} for the simulated fly, whose files the workflow writes). A file
    rewritten after planning then reruns exactly the jobs that read it, on the next run
    (their parameters changed), and a job that reads it mid-run stops
    (knockout_workflow.jobs.expect_planned_content) instead of mixing two versions of the data."""

    def digests(wildcards):
        if is_simulated(wildcards.experiment):
            return {}
        files = data_files(*kinds)(wildcards)
        return {path: _planned_digest(path) for paths in files.values() for path in paths}

    return digests


def behavior_reading(wildcards):
    """What a step reading the behaviour file needs: its layout (without the neurons
    file's part, so that editing that file does not rerun training) and, for data without
    a split column, the test fraction the seeded split uses."""
    layout = data_layout(wildcards.experiment)
    test_fraction = experiment_config(wildcards)["data"]["test_fraction"]
    return {
        "layout": layout.as_dict(behavior_only=True),
        "test_fraction": None if layout.has_split else test_fraction,
    }


def fly_design(wildcards):
    """The simulated experiment's design (metrics.DataDesign fields); None on recorded data,
    so that the fly's keys do not touch its steps."""
    if not is_simulated(wildcards.experiment):
        return None
    settings = experiment_config(wildcards)
    return {
        "noise_sd": settings["fly"]["noise_sd"],
        "n_train": settings["data"]["n_train"],
        "silenced_activity": settings["fly"]["silenced_activity"],
    }


ARCHITECTURE_KEYS = ["n_inputs", "n_hidden", "encoder", "decoder", "n_outputs", "activation"]
MODEL_ARCHITECTURE_KEYS = ["n_hidden", "encoder", "decoder", "activation"]
"""What the config's model section may change; inputs and outputs are the data's."""


def architectures_of(experiment):
    """The fly's (None for recorded data) and the fitted models' architectures
    (knockout.network.Architecture fields). A model key left null takes the fly's value;
    on recorded data the inputs, outputs and units (data.units) are the files'."""
    fly, model = EXPERIMENTS[experiment]["fly"], EXPERIMENTS[experiment]["model"]
    fly_architecture = {key: fly[key] for key in ARCHITECTURE_KEYS}
    if not is_simulated(experiment):
        layout = data_layout(experiment)
        fly_architecture |= {
            "n_inputs": len(layout.inputs),
            "n_outputs": len(layout.outputs),
            "n_hidden": len(layout.units),
        }
    overrides = {key: model[key] for key in MODEL_ARCHITECTURE_KEYS if model[key] is not None}
    true_network = fly_architecture if is_simulated(experiment) else None
    return {"fly": true_network, "model": fly_architecture | overrides}


def architectures(wildcards):
    return architectures_of(wildcards.experiment)


def has_knockout_optimum(experiment):
    """The knockout objective has a closed-form optimum for linear two-layer networks with
    one output; it is compared with trained ko, so it is computed where ko is trained (on
    simulated data, where the optimum's units can be scored against the fly's)."""
    networks = [network for network in architectures_of(experiment).values() if network]
    simple = all(
        network["activation"] == "linear"
        and not network["encoder"]
        and not network["decoder"]
        and network["n_outputs"] == 1
        for network in networks
    )
    return (
        EXPERIMENTS[experiment]["optimum"]
        and KNOCKOUT in MODELS
        and simple
        and is_simulated(experiment)
    )
