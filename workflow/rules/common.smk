import ast
from pathlib import Path

from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

SEEDS = config["seeds"]
MODELS = config["models"]
CORE = Path(workflow.basedir) / "src" / "knockout"
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


wildcard_constraints:
    seed=r"\d+",
    model="|".join(MODELS),


def _imported_core_modules(source):
    """Names of the core modules one Python file imports (``from knockout import x``, ...)."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.ImportFrom) and node.module == "knockout":
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("knockout."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("knockout."))
    return names


def core_modules(script):
    """The core's source files ``script`` uses, directly or through other core modules.

    Snakemake reruns a ``script:`` rule when the script changes, not when a module it
    imports does; listing these as inputs makes editing training code retrain, and
    editing plotting code only replot.
    """
    found, pending = set(), [SCRIPTS / script]
    while pending:
        for name in _imported_core_modules(pending.pop()):
            path = CORE / f"{name}.py"
            if path not in found:
                found.add(path)
                pending.append(path)
    return sorted(str(path) for path in found)


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
