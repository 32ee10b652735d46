"""A run killed mid-training resumes to exactly the results of an uninterrupted run.

The whole process group is signalled, as Ctrl-C in a terminal or a scheduler's kill
would: SIGINT lets Snakemake clean up, SIGKILL gives it no chance. Either way no
output may look complete, and a rerun must give the same bytes as a run that was
never interrupted (made here with another --cores value, so that is checked too).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from workflow_helpers import SNAKEMAKE, TINY_CONFIG, copy_workflow, snakemake

pytestmark = pytest.mark.slow

CONFIG = TINY_CONFIG | {
    "seeds": [0],
    "train": TINY_CONFIG["train"] | {"epochs": 1500},  # several seconds per training job
}


def results(workdir: Path) -> dict[str, bytes]:
    """Every result file, by path relative to the workflow folder."""
    return {
        str(path.relative_to(workdir)): path.read_bytes()
        for path in sorted((workdir / "results").rglob("*"))
        if path.is_file()
    }


def outputs_to_redo(workdir: Path) -> set[str]:
    """The outputs of every job ``snakemake -n`` would run (incomplete ones included)."""
    dry_run = snakemake(workdir, "-n")
    lines = [line.strip() for line in (dry_run.stdout + dry_run.stderr).splitlines()]
    return {
        path for line in lines if line.startswith("output:") for path in line[7:].replace(",", " ").split()
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, bytes]:
    workdir = copy_workflow(tmp_path_factory.mktemp("uninterrupted"), CONFIG)
    snakemake(workdir, "--cores", "1")
    return results(workdir)


def training_has_begun(workdir: Path) -> bool:
    """A training job logged its settings, so it is past start-up and inside its loop."""
    logs = (workdir / "logs" / "train_models").glob("*.log")
    return any(re.search(r"\d+ networks of .* on \w+", log.read_text()) for log in logs)


def answer_ctrl_c() -> None:
    """Restore SIGINT's default action, as in a terminal.

    A command started in the background of a non-interactive shell (as CI runners and
    `cmd &` do) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt:
    the signal would be lost and the test would measure the launcher, not the workflow.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_during_training(workdir: Path, signal_number: int) -> None:
    """Start the workflow, wait until a training job runs, signal the whole process group.

    SIGINT is repeated, as a user presses Ctrl-C again, until Snakemake has stopped.
    """
    process = subprocess.Popen(
        [SNAKEMAKE, "--cores", "2"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=answer_ctrl_c,
    )
    deadline = time.monotonic() + 120
    while not training_has_begun(workdir):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the workflow ended or stalled before any training started")
        time.sleep(0.1)
    time.sleep(0.5)  # mid-training
    for _ in range(5):
        os.killpg(process.pid, signal_number)
        try:
            process.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    # wait for the jobs Snakemake cancelled to be gone before going on
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_run_resumes_to_identical_results(tmp_path, uninterrupted, signal_number):
    workdir = copy_workflow(tmp_path, CONFIG)
    interrupt_during_training(workdir, signal_number)
    if signal_number == signal.SIGKILL:  # no chance to release its lock: Snakemake says how
        refused = snakemake(workdir, check=False)
        assert refused.returncode != 0 and "--unlock" in refused.stderr
        snakemake(workdir, "--unlock")
    left = results(workdir)
    assert "results/figures/neural_r2.png" not in left, "the run was not interrupted"
    kept = set(left) - outputs_to_redo(workdir)
    wrong = [path for path in kept if left[path] != uninterrupted.get(path)]
    assert wrong == [], f"outputs the killed run left that would be taken as complete: {wrong}"

    snakemake(workdir, "--rerun-incomplete")
    assert results(workdir) == uninterrupted
