"""End-to-end helpers: a throw-away copy of the workflow, running Snakemake in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
MODELS = ["control", "noko", "ko", "do"]
SEEDS = [0, 1]
N_INPUTS, N_HIDDEN = 10, 4
FIGURES = [
    "behavior_r2",
    "neural_r2",
    "neural_r2_three_ways",
    "r2_vs_contribution",
    "silencing_effect",
    "weight_cosine",
    "loss_curves",
]
"""The main experiment's figures, results/figures/<name>.png."""
TINY_CONFIG = {
    "seeds": SEEDS,
    "models": MODELS,
    "fly": {"n_inputs": N_INPUTS, "n_hidden": N_HIDDEN, "init": "glorot", "noise_sd": 0.05},
    "data": {"n_train": 400, "n_test": 200, "n_probe": 400},
    "train": {"lr": 0.01, "batch_size": 32, "epochs": 40, "per_model": {}},
    "plot": {"dpi": 60},
}


def copy_workflow(destination: Path, config: dict) -> Path:
    """The workflow's own files (no results, logs or virtualenv) with ``config`` as its config."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ["Snakefile", "workflow", "src", "config", "envs", "profiles"]:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source,
                destination / name,
                symlinks=True,
                copy_function=shutil.copy,  # fresh mtimes, as in a clone
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            shutil.copy(source, destination / name)
    (destination / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return destination


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def scheduled_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Jobs per rule that ``snakemake -n`` would run now (from its "Job stats" table)."""
    result = snakemake(workdir, "-n", *args)
    counts = {}
    for line in (result.stdout + result.stderr).split("Job stats:")[-1].splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit() and fields[0] != "total":
            counts[fields[0]] = int(fields[1])
    return counts
