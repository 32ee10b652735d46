"""Only stale steps rerun: each config or code edit schedules exactly the jobs it affects,
under each way of cutting the work into jobs (``train.one_job_per``).

One tiny run is finished once per layout; each test edits the config or a core module of
that copy, asks ``snakemake -n`` what it would run, and puts the edit back. Counts are per
rule for 2 seeds x 4 models. The README's "Rerunning after a change" states each row.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml
from workflow_helpers import MODELS, SEEDS, TINY_CONFIG, copy_workflow, scheduled_jobs, snakemake

pytestmark = pytest.mark.slow

N_SEEDS, N_MODELS = len(SEEDS), len(MODELS)
LAYOUTS = ["experiment", "seed", "model"]
PLOT_ONLY = {"plot": 1, "all": 1}
SUMMARY = {"summarize": 1, **PLOT_ONLY}
EVALUATION = "evaluate_models_with_optimum"
"""The tiny run's networks are linear and simulated: its evaluation also fits the optimum."""


def jobs(layout: str, *steps: str, seeds: int = N_SEEDS) -> dict[str, int]:
    """The jobs of ``steps`` for ``seeds`` seeds of the main run, under ``layout``, then
    everything downstream of the last step (evaluation, summarize, plot)."""
    per_experiment = layout == "experiment"
    count = {
        "generate_fly_data": 1 if per_experiment else seeds,
        "train_models": 1 if per_experiment else seeds * (N_MODELS if layout == "model" else 1),
    }
    return {step: count[step] for step in steps} | {EVALUATION: 1 if per_experiment else seeds, **SUMMARY}


def retrain_all(layout):
    return jobs(layout, "train_models")


def everything(layout):
    return jobs(layout, "generate_fly_data", "train_models")


@pytest.fixture(scope="module", params=LAYOUTS)
def layout(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, layout) -> Path:
    folder = tmp_path_factory.mktemp(f"rebuild_{layout}")
    workdir = copy_workflow(folder, layout_config(layout), extra=("src",))  # its own core, to edit
    snakemake(workdir)
    return workdir


def layout_config(layout: str, change=None) -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    config["train"]["one_job_per"] = layout
    if change:
        change(config)
    return config


@pytest.fixture
def edit_config(finished_run, layout):
    """Replace keys of the finished run's config for one test; the original comes back after."""
    path = finished_run / "config" / "config.yaml"
    original = path.read_text()

    def edit(change) -> None:
        path.write_text(yaml.safe_dump(layout_config(layout, change)))

    yield edit
    path.write_text(original)


@pytest.fixture
def edit_source(finished_run):
    """Append a line to a core module for one test; the original comes back after.

    The content must change: Snakemake ignores a newer mtime when the checksum is the same.
    """
    originals = {}

    def edit(module: str) -> None:
        path = finished_run / "src" / "knockout" / module
        originals[path] = path.read_text()
        path.write_text(originals[path] + "# edited by a test\n")

    yield edit
    for path, text in originals.items():
        path.write_text(text)


def test_nothing_changed_nothing_runs(finished_run):
    assert scheduled_jobs(finished_run) == {}


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["plot"].update(dpi=80),
        lambda c: c["plot"].update(width=8),
        lambda c: c["plot"].update(colors={"ko": "black"}),
    ],
    ids=["dpi", "width", "colors"],
)
def test_a_plot_key_only_replots(finished_run, edit_config, change):
    edit_config(change)
    assert scheduled_jobs(finished_run) == PLOT_ONLY


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["train"].update(lr=0.02),
        lambda c: c["train"].update(epochs=41),
        lambda c: c["train"].update(batch_size=16),
        lambda c: c["train"].update(lr_schedule="constant"),
        lambda c: c["train"].update(min_steps=2000),
    ],
    ids=["lr", "epochs", "batch_size", "lr_schedule", "min_steps"],
)
def test_a_training_key_retrains_every_model_and_keeps_the_data(finished_run, edit_config, layout, change):
    edit_config(change)
    assert scheduled_jobs(finished_run) == retrain_all(layout)


def test_a_convergence_tolerance_is_judged_in_the_summaries_and_retrains_nothing(finished_run, edit_config):
    edit_config(lambda c: c["train"].update(convergence={"late_improvement": 0.2, "optimum_gap": 0.02}))
    assert scheduled_jobs(finished_run) == SUMMARY


def test_a_per_model_training_key_retrains_that_model_or_its_job(finished_run, edit_config, layout):
    edit_config(lambda c: c["train"].update(per_model={"ko": {"epochs": 30}}))
    if layout == "model":
        assert scheduled_jobs(finished_run) == {"train_models": N_SEEDS, **jobs(layout)}
        dry_run = snakemake(finished_run, "-n")
        outputs = [line for line in (dry_run.stdout + dry_run.stderr).splitlines() if "output:" in line]
        written = {model for line in outputs for model in re.findall(r"models/(\w+)\.pt", line)}
        assert written == {"ko", "optimum"}  # the evaluations, rerun, fit the optimum again
    else:  # the job that trains ko trains the other models too
        assert scheduled_jobs(finished_run) == retrain_all(layout)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["fly"].update(noise_sd=0.1),
        lambda c: c["fly"].update(init="pytorch"),
        lambda c: c["fly"].update(n_hidden=3),
        lambda c: c["data"].update(n_train=300),
        lambda c: c["data"].update(n_test=150),
    ],
    ids=["noise_sd", "fly_init", "n_hidden", "n_train", "n_test"],
)
def test_a_fly_or_data_key_reruns_everything_for_every_seed(finished_run, edit_config, layout, change):
    edit_config(change)
    assert scheduled_jobs(finished_run) == everything(layout)


def test_an_appended_seed_runs_that_seed_or_its_experiment(finished_run, edit_config, layout):
    edit_config(lambda c: c.update(seeds=[*SEEDS, 7]))
    if layout == "experiment":  # the experiment's jobs now have one more seed: they all rerun
        assert scheduled_jobs(finished_run) == everything(layout)
    else:
        assert scheduled_jobs(finished_run) == jobs(layout, "generate_fly_data", "train_models", seeds=1)
    dry_run = snakemake(finished_run, "-n")
    assert "results/seed7/fly.pt" in dry_run.stdout + dry_run.stderr


@pytest.mark.parametrize(
    ("module", "steps"),
    [
        ("plotting.py", "plot"),
        ("figures.py", "plot"),
        ("summary.py", "summarize"),
        ("metrics.py", ()),
        ("identifiability.py", ()),
        ("training/plan.py", ("train_models",)),
        ("training/engine.py", ("train_models",)),
        ("simulation.py", ("generate_fly_data", "train_models")),
    ],
)
def test_editing_a_core_module_reruns_exactly_what_uses_it(finished_run, edit_source, layout, module, steps):
    edit_source(module)
    expected = {"plot": PLOT_ONLY, "summarize": SUMMARY}.get(steps) or jobs(layout, *steps)
    assert scheduled_jobs(finished_run) == expected


def test_the_conda_env_choice_reruns_nothing_without_conda(finished_run, edit_config):
    """train.cuda_env picks train_models' conda env; it changes no network, nor a caption."""
    edit_config(lambda c: c["train"].update(cuda_env=True))
    assert scheduled_jobs(finished_run) == {}


def test_editing_a_caption_template_redraws_only_the_figures(finished_run):
    path = finished_run / "workflow" / "report" / "neural_r2.rst"
    original = path.read_text()
    path.write_text(original + "\nEdited by a test.\n")
    try:
        assert scheduled_jobs(finished_run) == PLOT_ONLY
    finally:
        path.write_text(original)


def sweep_jobs(layout: str, points: int, with_optimum: int) -> dict[str, int]:
    """Jobs of a sweep of ``points`` new points of one seed each; ``with_optimum`` of them
    linear (their evaluation fits the optimum). Under one job per experiment, the sweep
    points' copies of the rules run them."""
    suffix = "_sweep" if layout == "experiment" else ""
    per_point = {
        "generate_fly_data": points,
        "train_models": points * (N_MODELS if layout == "model" else 1),
        "evaluate_models": points - with_optimum,
        "evaluate_models_with_optimum": with_optimum,
    }
    counts = {f"{rule}{suffix}": count for rule, count in per_point.items() if count}
    return {**counts, "summarize_sweep": 1, "plot_sweep": 1, "sweeps": 1}


def test_a_sweep_runs_its_own_points_and_leaves_the_main_results_alone(finished_run, edit_config, layout):
    sweeps = {
        "noise": {"key": "fly.noise_sd", "values": [0.05, 0.1]},
        "activation": {"key": "fly.activation", "values": ["linear", "relu"]},
    }
    edit_config(lambda c: c.update(sweep_seeds=[0], sweeps=sweeps))
    assert scheduled_jobs(finished_run) == {}
    # activation's linear point is the default config, as is noise's 0.05: it is run once,
    # in the folder of the sweep the config file lists first (activation: the file's keys
    # are sorted); the relu point has no optimum
    activation = sweep_jobs(layout, 2, with_optimum=1)
    noise = sweep_jobs(layout, 1, with_optimum=1)
    both = {rule: noise.get(rule, 0) + activation.get(rule, 0) for rule in noise | activation}
    assert scheduled_jobs(finished_run, "sweeps") == both | {"sweeps": 1}
    assert scheduled_jobs(finished_run, "results/sweeps/activation/ko_minus_do.png") == {
        rule: count for rule, count in activation.items() if rule != "sweeps"
    }
    dry_run = snakemake(finished_run, "-n", "sweeps")
    assert "results/sweeps/activation/relu/seed0/models/ko.pt" in dry_run.stdout
    assert "results/sweeps/activation/relu/seed0/models/optimum.pt" not in dry_run.stdout
    assert "results/sweeps/noise/0.05/" not in dry_run.stdout  # read from activation/linear/


@pytest.mark.parametrize(
    "runtime_flags",
    [
        ["--cores", "1"],
        ["--resources", "gpu=1"],
        ["--set-threads", "train_models=2"],
        ["--default-resources", "mem_mb=500"],
    ],
    ids=["cores", "gpu_limit", "threads", "memory"],
)
def test_runtime_settings_rerun_nothing(finished_run, runtime_flags):
    assert scheduled_jobs(finished_run, *runtime_flags) == {}


def test_hiding_or_showing_gpus_reruns_nothing(finished_run, monkeypatch):
    """The device is chosen when a job runs, so CPU and GPU results are the same targets."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert scheduled_jobs(finished_run) == {}


def test_a_moved_project_folder_reruns_nothing(finished_run, tmp_path):
    """Inputs are recorded relative to the project, so copying it elsewhere (to a cluster,
    a backup) keeps every result up to date."""
    moved = tmp_path / "moved"
    shutil.copytree(finished_run, moved, symlinks=True)
    assert scheduled_jobs(moved) == {}
