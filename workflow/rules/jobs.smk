# How the work is cut into jobs, and what each job is given: its code's digests, its
# conda env, its seeds and models, its inputs and its slice of the config.
from knockout.memory import GIB, RUNTIME_BYTES
from knockout.models import CONTRAST
from knockout_workflow.step_settings import model_train_settings
from knockout_workflow.sources import core_files, digests


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
    limit = EXPERIMENTS[wildcards.experiment]["limits"]["memory_gb"] * GIB
    estimate = SOURCES[wildcards.experiment].training_estimate()
    most = limit if estimate is None else RUNTIME_BYTES + estimate
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
