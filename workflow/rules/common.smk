import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, f"{workflow.basedir}/src")
from knockout.config_checks import config_problems, model_train_settings
from knockout.sources import core_files

validate(config, "../schemas/config.schema.yaml")
if problems := config_problems(config):
    raise WorkflowError("invalid config:\n" + "\n".join(f"  {p}" for p in problems))

SEEDS = config["seeds"]
MODELS = config["models"]
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


wildcard_constraints:
    seed=r"\d+",
    model="|".join(MODELS),


def core_modules(script):
    """The core's source files ``script`` uses, directly or through other core modules.

    Snakemake reruns a ``script:`` rule when the script changes, not when a module it
    imports does; listing these as inputs makes editing training code retrain, and
    editing plotting code only replot.
    """
    # relative paths: a project folder moved or copied elsewhere keeps the same inputs
    return [os.path.relpath(path) for path in core_files(SCRIPTS / script)]


ONE_TRAIN_JOB_PER_MODEL = config["train"]["one_job_per"] == "model"
TRAIN_JOB = "seed{seed}_{model}" if ONE_TRAIN_JOB_PER_MODEL else "seed{seed}"


def trained_models(wildcards):
    """The models one train_model job fits: its own, or every model of the seed."""
    return [wildcards.model] if ONE_TRAIN_JOB_PER_MODEL else MODELS


def train_settings(wildcards):
    """Each trained model's settings (its slice of ``train``, with its overrides)."""
    return {
        model: model_train_settings(config["train"], model) for model in trained_models(wildcards)
    }


def train_job_files(pattern):
    """``pattern`` for the model of a per-model job, or expanded over every model."""
    if ONE_TRAIN_JOB_PER_MODEL:
        return [pattern]
    return expand(pattern, model=MODELS, allow_missing=True)


def fly_shape():
    return {key: config["fly"][key] for key in ("n_inputs", "n_hidden")}


def model_files(wildcards):
    return expand("results/seed{seed}/models/{model}.pt", seed=wildcards.seed, model=MODELS)


def final_outputs():
    return [
        *expand(
            "results/seed{seed}/eval/{table}.parquet",
            seed=SEEDS,
            table=["behavior", "neural"],
        ),
        "results/figures/behavior_r2.png",
        "results/figures/neural_r2.png",
    ]
