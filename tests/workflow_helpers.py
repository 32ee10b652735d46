"""End-to-end helpers: a throw-away copy of the workflow, running Snakemake in it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from knockout import models
from knockout.figures import figures_for
from knockout_workflow.copies import PROJECT as REPO
from knockout_workflow.copies import SNAKEMAKE, copy_workflow

__all__ = ["REPO", "SNAKEMAKE", "copy_workflow", "scheduled_jobs", "snakemake"]

MODELS = list(models.TRAINED)
SEEDS = [0, 1]
N_INPUTS, N_HIDDEN = 10, 4
FIGURES = [figure.name for figure in figures_for(has_ground_truth=True)]
"""The simulated fly's figures, results/figures/<name>.png: every registered figure."""
TINY_CONFIG = {
    "seeds": SEEDS,
    "models": MODELS,
    "fly": {"n_inputs": N_INPUTS, "n_hidden": N_HIDDEN, "init": "glorot", "noise_sd": 0.05},
    "data": {"n_train": 400, "n_test": 200, "n_probe": 400},
    "train": {"lr": 0.01, "batch_size": 32, "epochs": 40, "per_model": {}},
    "plot": {"dpi": 60},
}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 *args`` in ``workdir``. A copy that holds its own ``src``
    (``copy_workflow(..., extra=("src",))``) runs its own core and plumbing, ahead of the
    installed ones, so that a test can edit them."""
    env = None
    if (workdir / "src").is_dir():
        own = [workdir / "src", workdir / "workflow" / "lib"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, own))}
    result = subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args], cwd=workdir, capture_output=True, text=True, timeout=600, env=env
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
