import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, f"{workflow.basedir}/src")
from knockout.config_checks import config_problems
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


def train_settings(wildcards):
    """The shared ``train`` settings, overridden by ``train.per_model[model]``."""
    shared = {k: v for k, v in config["train"].items() if k != "per_model"}
    return shared | config["train"]["per_model"].get(wildcards.model, {})


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
