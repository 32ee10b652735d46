import functools
import json
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from knockout.models import CONTRAST
from knockout import dataset
from knockout.memory import GIB, RUNTIME_BYTES
from knockout_workflow import config_checks
from knockout_workflow.config_checks import (
    HOW_TO_RUN_TRAINING,
    SIMULATED,
    model_train_settings,
    sweep_points,
    training_estimates,
)
from knockout.errors import InputFileError
from knockout_workflow.sources import core_files, digests, file_digest

SCHEMA = "../schemas/config.schema.yaml"


def checked_config(settings, where="config"):
    """knockout_workflow.config_checks.checked_config, its refusal as Snakemake's error."""
    try:
        return config_checks.checked_config(settings, where)
    except config_checks.ConfigError as error:
        raise WorkflowError(str(error)) from None


validate(config, SCHEMA)  # Snakemake's own check first: its messages name the config file
checked_config(config)

MODELS = config["models"]
SCRIPTS = WORKFLOW_ROOT / "workflow" / "scripts"


def main_folder(settings):
    """Where an experiment's results go under results/ (and its logs under logs/): the
    simulated fly's at the top, a data folder's in data/<the folder's name>/, so that runs
    on different data started from one working directory never write into each other's
    folders (each with its own sweeps/ inside)."""
    if settings["data"]["source"] == SIMULATED:
        return ""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(settings["data"]["source"]).resolve().name)
    return f"data/{name or 'root'}/"


MAIN = main_folder(config)
"""The main experiment's folder under results/ ("" for the simulated fly)."""
DATA_SOURCE_RECORD = f"results/{MAIN}data_source.txt"
"""A data folder's results folder names the folder it holds the results of (written when a
run starts), so that another folder of the same name is refused instead of overwriting them."""


def _data_source_name():
    """The data folder as the record names it: relative to the working directory where it
    lies inside it (moving the whole project keeps its results), else absolute."""
    source = Path(config["data"]["source"]).resolve()
    try:
        return source.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(source)


def data_source_problem():
    """One line if the main experiment's results folder holds another data folder's results."""
    if not MAIN:
        return None
    record = Path(DATA_SOURCE_RECORD)
    recorded = record.read_text(encoding="utf-8").strip() if record.is_file() else None
    if recorded is not None and recorded != _data_source_name():
        return (
            f"data.source {_data_source_name()}: results/{MAIN} holds the results of another "
            f"folder of the same name, {recorded}; rename one of the two folders, or delete "
            f"results/{MAIN} to start this one's afresh"
        )
    return None


def record_data_source():
    """At the start of a run (not a dry run): name the data folder in its results folder."""
    if MAIN:
        Path(DATA_SOURCE_RECORD).parent.mkdir(parents=True, exist_ok=True)
        Path(DATA_SOURCE_RECORD).write_text(_data_source_name() + "\n", encoding="utf-8")


if problem := data_source_problem():
    raise WorkflowError(problem)


# Every experiment by its folder under results/: MAIN is config/config.yaml itself; a sweep
# point "<MAIN>sweeps/<sweep>/<value>/" is the same config with one key set to the value. A
# point's problems stop only the sweeps target (sweep_tables), not the main run.
# A point whose whole config equals an earlier point's (the default value of several
# sweeps, or two sweeps that reach one config) is run once, in the earlier point's folder.
EXPERIMENTS = {MAIN: config}
SWEEP_VALUES = {}
SWEEP_PROBLEMS = {}
SWEEP_POINT_FOLDERS = {}
"""(sweep, value) -> the folder under results/ that holds that point's results."""
_FOLDER_OF_CONFIG = {}
for sweep, value, where, point in sweep_points(config):
    SWEEP_VALUES.setdefault(sweep, []).append(value)
    try:
        checked = checked_config(point, f"config for {where}")
    except WorkflowError as error:
        SWEEP_PROBLEMS.setdefault(sweep, str(error))
        continue
    folder = _FOLDER_OF_CONFIG.setdefault(
        json.dumps(checked, sort_keys=True), f"{MAIN}sweeps/{sweep}/{value}/"
    )
    SWEEP_POINT_FOLDERS[sweep, value] = folder
    EXPERIMENTS.setdefault(folder, checked)


wildcard_constraints:
    experiment="(?:{})".format("|".join(re.escape(folder) for folder in EXPERIMENTS)),
    sweep="|".join(re.escape(sweep) for sweep in SWEEP_VALUES) or "(?!)",
    seed=r"\d+",
    model="|".join(MODELS),


def experiment_config(wildcards):
    return EXPERIMENTS[wildcards.experiment]


def experiment_seeds(experiment):
    """Replicates of an experiment: ``seeds``, or ``sweep_seeds`` for a sweep point."""
    return config["seeds"] if experiment == MAIN else config["sweep_seeds"]


def config_slice(section):
    """A rule's ``params`` function: one section of its experiment's config."""
    return lambda wildcards: experiment_config(wildcards)[section]


# ---------------------------------------------------------------- the data source (the seam)
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
        and "ko" in MODELS
        and simple
        and is_simulated(experiment)
    )


def core_code(script):
    """The content digests of the core modules ``script`` uses, directly or through others.

    Snakemake reruns a ``script:`` rule when the script changes, not when a module it
    imports does. Given as the rule's ``code`` parameter, these make editing training
    code retrain and editing plotting code only replot (a job whose params changed
    reruns, and ``snakemake -n`` names the module), without listing every module as an
    input of every job on the console.
    """
    return digests(core_files(SCRIPTS / script))


TRAINING_ENV = (
    "../../envs/torch-cuda.yaml" if config["train"]["cuda_env"] else "../../envs/torch.yaml"
)
"""train_models' conda env (with --sdm conda): a CUDA build of pytorch for GPU nodes, or the default."""
# ---------------------------------------------------------------- how work is cut into jobs
# train.one_job_per: experiment: one job per experiment (the main run, or a sweep point)
# draws every seed's data, one fits every seed's models (all their networks as one batched
# computation), one evaluates them; seed: those jobs per seed; model: as seed, but a
# training job per seed and model. A rule's outputs are fixed patterns, so under one job
# per experiment the sweep points, whose seeds are sweep_seeds, get a copy of each such
# rule (`use rule ... as ..._sweep`), and the rule itself serves the main run only. For
# the same reason the evaluation comes in two rules: with the optimum's network among its
# outputs (experiments that have one), and without.
JOB_GRAIN = config["train"]["one_job_per"]
ONE_JOB_PER_EXPERIMENT = JOB_GRAIN == "experiment"


def experiments_pattern(experiments):
    """A wildcard constraint matching exactly these experiment folders (nothing: none)."""
    experiments = list(experiments)
    return "(?:{})".format("|".join(map(re.escape, experiments))) if experiments else "(?!)"


MAIN_EXPERIMENTS = [MAIN] if ONE_JOB_PER_EXPERIMENT else list(EXPERIMENTS)
"""The experiments each rule serves (its sweep copy serving the others), the main run or all."""
SWEEP_EXPERIMENTS = (
    [folder for folder in EXPERIMENTS if folder != MAIN] if ONE_JOB_PER_EXPERIMENT else []
)
MAIN_FOLDERS, SWEEP_FOLDERS = map(experiments_pattern, (MAIN_EXPERIMENTS, SWEEP_EXPERIMENTS))
REPLICATES_JOB = "{experiment}replicates" if ONE_JOB_PER_EXPERIMENT else "{experiment}seed{seed}"
TRAIN_JOB = REPLICATES_JOB + ("_{model}" if JOB_GRAIN == "model" else "")
"""A job's name in logs/ and benchmarks/."""


def job_seeds(wildcards):
    """The seeds one job serves: its experiment's, or its own."""
    if "seed" in wildcards.keys():
        return [int(wildcards.seed)]
    return experiment_seeds(wildcards.experiment)


def job_outputs(pattern, seeds):
    """``pattern`` (results/{experiment}seed{seed}/..., with {model} for a file per model)
    as one job's outputs, seed after seed and model after model: every seed of ``seeds``
    (the main run's or the sweep points') under one job per experiment, and every model
    unless one job per model."""
    seed_values = [str(seed) for seed in seeds] if ONE_JOB_PER_EXPERIMENT else ["{seed}"]
    model_values = MODELS if JOB_GRAIN != "model" and "{model}" in pattern else ["{model}"]
    return [
        pattern.replace("{seed}", seed).replace("{model}", model)
        for seed in seed_values
        for model in model_values
    ]


def outputs_of(patterns, seeds):
    """Every pattern of ``patterns`` (by output name) as one job's outputs (``job_outputs``)."""
    return {name: job_outputs(pattern, seeds) for name, pattern in patterns.items()}


TRAINED_FILES = {
    "models": "results/{experiment}seed{seed}/models/{model}.pt",
    "losses": "results/{experiment}seed{seed}/models/{model}_loss.parquet",
}
EVALUATION_FILES = {
    kind: f"results/{{experiment}}seed{{seed}}/eval/{kind}.parquet"
    for kind in ["behavior", "silencing", "neural", "responses", "knockout_loss", "chance"]
}
OPTIMUM_FILES = {"optimum": "results/{experiment}seed{seed}/models/optimum.pt"}
"""The exact optimum's network, fitted in the evaluation job where there is one."""


def evaluated_with_optimum(experiments, optimum):
    """A constraint matching those of ``experiments`` with the knockout optimum (``optimum``
    True: their evaluation job fits it too) or without it."""
    return experiments_pattern(
        experiment for experiment in experiments if has_knockout_optimum(experiment) == optimum
    )


def trained_models(wildcards):
    """The models one train_models job fits: its own, or every model."""
    return [wildcards.model] if JOB_GRAIN == "model" else MODELS


def training_memory_mb(wildcards):
    """train_models' memory (a resource: it changes no network): every network of the job at
    once where that fits in limits.memory_gb, else that limit, within which the trainer
    trains in turns what would not fit at once."""
    settings = EXPERIMENTS[wildcards.experiment]
    limit = settings["limits"]["memory_gb"] * GIB
    most = (
        RUNTIME_BYTES + training_estimates(settings)[1]
        if is_simulated(wildcards.experiment)
        else limit
    )
    return int(min(most, limit)) >> 20


def train_settings(wildcards):
    """Each trained model's settings (its slice of ``train``, with its overrides)."""
    train = experiment_config(wildcards)["train"]
    return {model: model_train_settings(train, model) for model in trained_models(wildcards)}


def convergence_tolerances(wildcards):
    """The ``train.convergence`` section: when a model is reported as not converged."""
    return experiment_config(wildcards)["train"]["convergence"]


def model_files(wildcards):
    """The trained networks one evaluation job scores, seed after seed and model after model."""
    return [
        f"results/{wildcards.experiment}seed{seed}/models/{model}.pt"
        for seed in job_seeds(wildcards)
        for model in MODELS
    ]


def seed_tables(kind, experiment):
    """Every seed's ``eval/<kind>.parquet`` of ``experiment``."""
    return expand(
        f"results/{{experiment}}seed{{seed}}/eval/{kind}.parquet",
        experiment=experiment,
        seed=experiment_seeds(experiment),
    )


def loss_tables(experiment):
    """Every seed's and trained model's loss table of ``experiment`` (seed-major)."""
    return expand(
        "results/{experiment}seed{seed}/models/{model}_loss.parquet",
        experiment=experiment,
        seed=experiment_seeds(experiment),
        model=MODELS,
    )


def experiment_tables(wildcards):
    """Every seed's evaluation tables of one experiment, by kind."""
    kinds = ["behavior", "neural", "knockout_loss", "chance"]
    tables = {kind: seed_tables(kind, wildcards.experiment) for kind in kinds}
    return tables | {"losses": loss_tables(wildcards.experiment)}


def sweep_tables(wildcards):
    """Every seed's evaluation tables of every point of one sweep, by kind."""
    if wildcards.sweep in SWEEP_PROBLEMS:
        raise WorkflowError(SWEEP_PROBLEMS[wildcards.sweep])
    if missing := [model for model in CONTRAST if model not in MODELS]:
        raise WorkflowError(
            f"sweep {wildcards.sweep} compares {' with '.join(CONTRAST)}, but models "
            f"({', '.join(MODELS)}) lacks {' and '.join(missing)}; add it to models to run the sweeps"
        )
    points = sweep_folders(wildcards.sweep)
    tables = {
        kind: [path for point in points for path in seed_tables(kind, point)]
        for kind in ("behavior", "neural", "knockout_loss", "chance")
    }
    return tables | {"losses": [path for point in points for path in loss_tables(point)]}


def sweep_folders(sweep):
    """The folders under results/ that hold a sweep's points, in the order of its values."""
    return [SWEEP_POINT_FOLDERS[sweep, value] for value in SWEEP_VALUES[sweep]]


SUMMARY_TABLES = ["behavior", "neural_units", "seeds", "models", "convergence"]
FIGURES = {
    "behavior_r2": "behaviour R² per test set",
    "neural_r2": "neural R² per unit",
    "neural_r2_three_ways": "neural R² three ways",
    "r2_vs_contribution": "neural R² vs contribution",
    "silencing_effect": "silencing effect, fly vs model",
    "weight_cosine": "weight recovery",
    "loss_curves": "training loss per epoch",
}
"""The main experiment's figures (results/<MAIN>figures/<name>.png), with their report labels."""
FIGURE_FOLDER = f"results/{MAIN}figures/"
VECTOR_FORMATS = [kind for kind in config["plot"]["formats"] if kind != "png"]
"""Copies of every figure besides the PNG that the report shows (plot.formats)."""
GROUND_TRUTH_FIGURES = ["r2_vs_contribution", "silencing_effect", "weight_cosine"]
"""Figures that compare with the true network: drawn for simulated data only."""
if not is_simulated(MAIN):
    FIGURES = {name: label for name, label in FIGURES.items() if name not in GROUND_TRUTH_FIGURES}


CAPTION_TEMPLATES = WORKFLOW_ROOT / "workflow" / "report"


def caption_template(name):
    """A figure's caption template (Jinja, workflow/report/<name>.rst), given to the step
    that draws it as a parameter, so that editing a caption reruns only that step."""
    return (CAPTION_TEMPLATES / f"{name}.rst").read_text(encoding="utf-8")


def report_caption(caption):
    """A caption file the step drawing the figure writes beside it (knockout_workflow.captions), as
    ``report()`` takes it: absolute, since the report resolves captions from the rules' folder."""
    return os.path.abspath(caption)


FOLDER_DATA_KEYS = ("source", "units", "test_fraction")
"""The ``data`` keys a data folder's run reads; the others describe the simulated fly's data."""


def made_with(experiment):
    """The config sections an experiment's figures were drawn from, for their captions: on
    recorded data, no key that only the simulation reads (the fly, its sample counts)."""
    settings = EXPERIMENTS[experiment]
    simulated = is_simulated(experiment)
    data = {
        key: value
        for key, value in settings["data"].items()
        if (key in FOLDER_DATA_KEYS) != simulated or key == "source"
    }
    train = {
        key: value for key, value in settings["train"].items() if key not in HOW_TO_RUN_TRAINING
    }
    fly = {"fly": settings["fly"]} if simulated else {}
    return (
        {"seeds": settings["seeds"]}
        | fly
        | {"data": data, "models": settings["models"]}
        | {"train": train}
    )


def final_outputs():
    return [
        *seed_tables("behavior", MAIN),
        *seed_tables("neural", MAIN),
        *expand(f"results/{MAIN}summary/{{table}}.parquet", table=SUMMARY_TABLES),
        *expand(
            f"{FIGURE_FOLDER}{{figure}}.{{kind}}", figure=FIGURES, kind=config["plot"]["formats"]
        ),
    ]


SWEEP_FIGURE = f"results/{MAIN}sweeps/{{sweep}}/ko_minus_do"


def sweep_outputs():
    """Every sweep's figures, the PNGs marked for the report here: a sweep's caption file
    is its own, and Snakemake takes a rule's caption as one path for all its jobs."""
    outputs = []
    for sweep in SWEEP_VALUES:
        figure = SWEEP_FIGURE.format(sweep=sweep)
        shown = report(
            f"{figure}.png",
            caption=report_caption(f"{figure}.rst"),
            category="Sweeps",
            labels={"sweep": sweep},
        )
        outputs += [shown, *(f"{figure}.{kind}" for kind in VECTOR_FORMATS)]
    return outputs
