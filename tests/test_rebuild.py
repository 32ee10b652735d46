"""Only stale steps rerun: each config or code edit schedules exactly the jobs it affects.

One tiny run is finished once; each test edits the config or a core module of that
copy, asks ``snakemake -n`` what it would run, and puts the edit back. Counts are per
rule for 2 seeds x 4 models.
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
PLOT_ONLY = {"plot": 1, "all": 1}
SUMMARY = {"summarize": 1, **PLOT_ONLY}
EVALUATION = {"evaluate_behavior": N_SEEDS, "evaluate_neural": N_SEEDS, **SUMMARY}
RETRAIN_ALL = {"train_model": N_SEEDS * N_MODELS, "fit_knockout_optimum": N_SEEDS, **EVALUATION}
EVERYTHING = {"generate_fly_data": N_SEEDS, **RETRAIN_ALL}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("rebuild"), TINY_CONFIG)
    snakemake(workdir)
    return workdir


@pytest.fixture
def edit_config(finished_run):
    """Replace keys of the finished run's config for one test; the original comes back after."""
    path = finished_run / "config" / "config.yaml"
    original = path.read_text()

    def edit(change) -> None:
        config = copy.deepcopy(TINY_CONFIG)
        change(config)
        path.write_text(yaml.safe_dump(config))

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
    ],
    ids=["lr", "epochs", "batch_size", "lr_schedule"],
)
def test_a_training_key_retrains_every_model_but_keeps_the_data(finished_run, edit_config, change):
    edit_config(change)
    assert scheduled_jobs(finished_run) == RETRAIN_ALL


def test_a_per_model_training_key_retrains_only_that_model(finished_run, edit_config):
    edit_config(lambda c: c["train"].update(per_model={"ko": {"epochs": 30}}))
    assert scheduled_jobs(finished_run) == {
        "train_model": N_SEEDS,
        "fit_knockout_optimum": N_SEEDS,
        **EVALUATION,
    }
    dry_run = snakemake(finished_run, "-n")
    outputs = [line for line in (dry_run.stdout + dry_run.stderr).splitlines() if "output:" in line]
    # ko, and the knockout optimum, whose table holds ko's optimisation gap
    assert {model for line in outputs for model in re.findall(r"models/(\w+)\.pt", line)} == {"ko", "optimum"}


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
def test_a_fly_or_data_key_reruns_everything_for_every_seed(finished_run, edit_config, change):
    edit_config(change)
    assert scheduled_jobs(finished_run) == EVERYTHING


def test_an_appended_seed_runs_only_that_seed_and_the_summaries(finished_run, edit_config):
    edit_config(lambda c: c.update(seeds=[*SEEDS, 7]))
    assert scheduled_jobs(finished_run) == {
        "generate_fly_data": 1,
        "train_model": N_MODELS,
        "fit_knockout_optimum": 1,
        "evaluate_behavior": 1,
        "evaluate_neural": 1,
        **SUMMARY,
    }
    dry_run = snakemake(finished_run, "-n")
    assert "results/seed7/fly.pt" in dry_run.stdout + dry_run.stderr


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("plotting.py", PLOT_ONLY),
        ("summary.py", SUMMARY),
        ("metrics.py", EVALUATION),
        ("identifiability.py", {"fit_knockout_optimum": N_SEEDS, **EVALUATION}),
        ("training.py", RETRAIN_ALL),
        ("simulation.py", EVERYTHING),
    ],
)
def test_editing_a_core_module_reruns_exactly_what_uses_it(finished_run, edit_source, module, expected):
    edit_source(module)
    assert scheduled_jobs(finished_run) == expected


def test_the_conda_env_choice_reruns_nothing_without_conda(finished_run, edit_config):
    """train.cuda_env picks train_model's conda env; it changes no network, nor a caption."""
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


def sweep_jobs(points: int, with_optimum: int) -> dict[str, int]:
    """Jobs of a sweep of ``points`` new points of one seed each; ``with_optimum`` of them linear."""
    per_point = {
        "generate_fly_data": 1,
        "train_model": N_MODELS,
        "evaluate_behavior": 1,
        "evaluate_neural": 1,
    }
    jobs = {rule: count * points for rule, count in per_point.items()}
    optimum = {"fit_knockout_optimum": with_optimum} if with_optimum else {}
    return {**jobs, **optimum, "summarize_sweep": 1, "plot_sweep": 1, "sweeps": 1}


def test_a_sweep_runs_its_own_points_and_leaves_the_main_results_alone(finished_run, edit_config):
    sweeps = {
        "noise": {"key": "fly.noise_sd", "values": [0.05, 0.1]},
        "activation": {"key": "fly.activation", "values": ["linear", "relu"]},
    }
    edit_config(lambda c: c.update(sweep_seeds=[0], sweeps=sweeps))
    assert scheduled_jobs(finished_run) == {}
    noise, activation = sweep_jobs(2, with_optimum=2), sweep_jobs(2, with_optimum=1)  # no optimum for ReLU
    both = {rule: noise.get(rule, 0) + activation.get(rule, 0) for rule in noise | activation}
    assert scheduled_jobs(finished_run, "sweeps") == both | {"sweeps": 1}
    assert scheduled_jobs(finished_run, "results/sweeps/noise/ko_minus_do.png") == {
        rule: count for rule, count in noise.items() if rule != "sweeps"
    }
    dry_run = snakemake(finished_run, "-n", "sweeps")
    assert "results/sweeps/activation/relu/seed0/models/ko.pt" in dry_run.stdout
    assert "results/sweeps/activation/relu/seed0/models/optimum.pt" not in dry_run.stdout


@pytest.mark.parametrize(
    "runtime_flags",
    [
        ["--cores", "1"],
        ["--resources", "gpu=1"],
        ["--set-threads", "train_model=2"],
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
