import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, f"{workflow.basedir}/src")
from knockout.models import CONTRAST, OPTIMUM
from knockout.config_checks import config_problems, model_train_settings, sweep_points
from knockout.sources import core_files

SCHEMA = "../schemas/config.schema.yaml"
validate(config, SCHEMA)
if problems := config_problems(config):
    raise WorkflowError("invalid config:\n" + "\n".join(f"  {p}" for p in problems))

MODELS = config["models"]
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def _sweep_point_config(where, point):
    """A sweep point's config, checked as a whole (schema, then cross-key rules)."""
    try:
        validate(point, SCHEMA)
    except WorkflowError as error:
        raise WorkflowError(f"invalid config for {where}: {error}") from None
    if problems := config_problems(point):
        raise WorkflowError(
            f"invalid config for {where}:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return point


# Every experiment by its folder under results/: "" is config/config.yaml itself; a sweep
# point "sweeps/<sweep>/<value>/" is the same config with one key set to the value.
EXPERIMENTS = {"": config}
SWEEP_VALUES = {}
for sweep, value, where, point in sweep_points(config):
    EXPERIMENTS[f"sweeps/{sweep}/{value}/"] = _sweep_point_config(where, point)
    SWEEP_VALUES.setdefault(sweep, []).append(value)


wildcard_constraints:
    experiment="(?:{})".format("|".join(re.escape(folder) for folder in EXPERIMENTS)),
    sweep="|".join(re.escape(sweep) for sweep in SWEEP_VALUES) or "(?!)",
    seed=r"\d+",
    model="|".join(MODELS),


def experiment_config(wildcards):
    return EXPERIMENTS[wildcards.experiment]


def experiment_seeds(experiment):
    """Replicates of an experiment: ``seeds``, or ``sweep_seeds`` for a sweep point."""
    return config["seeds"] if experiment == "" else config["sweep_seeds"]


def config_slice(section):
    """A rule's ``params`` function: one section of its experiment's config."""
    return lambda wildcards: experiment_config(wildcards)[section]


ARCHITECTURE_KEYS = ["n_inputs", "n_hidden", "encoder", "decoder", "n_outputs", "activation"]
MODEL_ARCHITECTURE_KEYS = ["n_hidden", "encoder", "decoder", "activation"]
"""What the config's model section may change; inputs and outputs are the data's."""


def architectures_of(experiment):
    """The fly's and the fitted models' architectures (knockout.network.Architecture
    fields); a model key left null takes the fly's value."""
    fly, model = EXPERIMENTS[experiment]["fly"], EXPERIMENTS[experiment]["model"]
    fly_architecture = {key: fly[key] for key in ARCHITECTURE_KEYS}
    overrides = {key: model[key] for key in MODEL_ARCHITECTURE_KEYS if model[key] is not None}
    return {"fly": fly_architecture, "model": fly_architecture | overrides}


def architectures(wildcards):
    return architectures_of(wildcards.experiment)


def data_shape(wildcards):
    """What a behaviour table of this experiment holds: inputs, fly units, silenced sets, outputs."""
    settings = experiment_config(wildcards)
    return {
        "n_inputs": settings["fly"]["n_inputs"],
        "n_hidden": settings["fly"]["n_hidden"],
        "n_silenced": settings["data"]["n_silenced"],
        "n_outputs": settings["fly"]["n_outputs"],
    }


def has_knockout_optimum(experiment):
    """The knockout objective has a closed-form optimum for linear two-layer networks with
    one output; it is compared with trained ko, so it is computed where ko is trained."""
    networks = architectures_of(experiment)
    simple = all(
        network["activation"] == "linear"
        and not network["encoder"]
        and not network["decoder"]
        and network["n_outputs"] == 1
        for network in networks.values()
    )
    return "ko" in MODELS and simple


def core_modules(script):
    """The core's source files ``script`` uses, directly or through other core modules.

    Snakemake reruns a ``script:`` rule when the script changes, not when a module it
    imports does; listing these as inputs makes editing training code retrain, and
    editing plotting code only replot.
    """
    # relative paths: a project folder moved or copied elsewhere keeps the same inputs
    return [os.path.relpath(path) for path in core_files(SCRIPTS / script)]


ONE_TRAIN_JOB_PER_MODEL = config["train"]["one_job_per"] == "model"
TRAIN_JOB = (
    "{experiment}seed{seed}_{model}" if ONE_TRAIN_JOB_PER_MODEL else "{experiment}seed{seed}"
)


def trained_models(wildcards):
    """The models one train_model job fits: its own, or every model of the seed."""
    return [wildcards.model] if ONE_TRAIN_JOB_PER_MODEL else MODELS


def train_settings(wildcards):
    """Each trained model's settings (its slice of ``train``, with its overrides)."""
    train = experiment_config(wildcards)["train"]
    return {model: model_train_settings(train, model) for model in trained_models(wildcards)}


def convergence_tolerances(wildcards):
    """The ``train.convergence`` section: when a model is reported as not converged."""
    return experiment_config(wildcards)["train"]["convergence"]


def train_job_files(pattern):
    """``pattern`` for the model of a per-model job, or expanded over every model."""
    if ONE_TRAIN_JOB_PER_MODEL:
        return [pattern]
    return expand(pattern, model=MODELS, allow_missing=True)


def evaluated_models(wildcards):
    """The trained models and, for linear networks, the knockout optimum."""
    optimum = [OPTIMUM] if has_knockout_optimum(wildcards.experiment) else []
    return [*MODELS, *optimum]


def model_files(wildcards):
    return expand(
        "results/{experiment}seed{seed}/models/{model}.pt",
        experiment=wildcards.experiment,
        seed=wildcards.seed,
        model=evaluated_models(wildcards),
    )


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
    optimum = ["optimum"] if has_knockout_optimum(wildcards.experiment) else []
    tables = {
        kind: seed_tables(kind, wildcards.experiment) for kind in ["behavior", "neural", *optimum]
    }
    return tables | {"losses": loss_tables(wildcards.experiment)}


def sweep_tables(wildcards):
    """Every seed's evaluation tables of every point of one sweep, by kind."""
    if missing := [model for model in CONTRAST if model not in MODELS]:
        raise WorkflowError(
            f"sweep {wildcards.sweep} compares {' with '.join(CONTRAST)}, but models "
            f"({', '.join(MODELS)}) lacks {' and '.join(missing)}; add it to models to run the sweeps"
        )
    points = [f"sweeps/{wildcards.sweep}/{value}/" for value in SWEEP_VALUES[wildcards.sweep]]
    return {
        kind: [path for point in points for path in seed_tables(kind, point)]
        for kind in ("behavior", "neural")
    }


SUMMARY_TABLES = ["behavior", "neural_units", "models", "convergence"]
FIGURES = {
    "behavior_r2": "behaviour R² per test set",
    "neural_r2": "neural R² per unit",
    "neural_r2_three_ways": "neural R² three ways",
    "r2_vs_contribution": "neural R² vs contribution",
    "silencing_effect": "silencing effect, fly vs model",
    "weight_cosine": "weight recovery",
    "loss_curves": "training loss per epoch",
}
"""The main experiment's figures (results/figures/<name>.png), with their report labels."""


def final_outputs():
    return [
        *seed_tables("behavior", ""),
        *seed_tables("neural", ""),
        *expand("results/summary/{table}.parquet", table=SUMMARY_TABLES),
        *expand("results/figures/{figure}.png", figure=FIGURES),
    ]


def sweep_outputs():
    return expand("results/sweeps/{sweep}/ko_minus_do.png", sweep=SWEEP_VALUES)
