"""Each experiment in a folder of its own, and data pinned by content.

A data folder's results go to results/data/<folder name>/, apart from the simulated fly's
(results/) and from each other; the jobs that read a data folder's files carry the files'
content digests, so a job that reads a file rewritten mid-run stops (that a rewrite of
any date reruns exactly the jobs that read it: test_recorded_data).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from test_recorded_data import recorded_config, write_experiment
from workflow_helpers import TINY_CONFIG, copy_workflow, snakemake

from knockout.errors import InputFileError
from knockout_workflow.jobs import expect_planned_content
from knockout_workflow.sources import file_digest

RESULTS = "results/data/experiment"
"""Where the data folder ``experiment``'s results go."""


def small_recorded_config() -> dict:
    config = recorded_config() | {"seeds": [0]}
    config["train"] = config["train"] | {"epochs": 5, "min_steps": 200, "restarts": 1}
    return config


def files_and_digests(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(path.relative_to(folder)): (file_digest(path), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_file_that_is_not_what_was_planned_stops_the_job_with_one_line(tmp_path):
    data = tmp_path / "behavior.parquet"
    data.write_bytes(b"planned")
    planned = {str(data): file_digest(data)}
    expect_planned_content(planned)  # unchanged: nothing to say
    data.write_bytes(b"rewritten")
    with pytest.raises(InputFileError, match=r"behavior.parquet changed since this run started"):
        expect_planned_content(planned)


@pytest.mark.slow
def test_the_fly_and_a_data_folder_run_from_one_folder_leave_each_other_alone(tmp_path):
    fly_config = TINY_CONFIG | {"seeds": [0], "sweeps": None}
    workdir = copy_workflow(tmp_path, fly_config)
    write_experiment(workdir / "experiment")
    (workdir / "own.yaml").write_text(yaml.safe_dump(small_recorded_config() | {"sweeps": None}))
    snakemake(workdir)
    fly_results = files_and_digests(workdir / "results")
    snakemake(workdir, "--configfile", "own.yaml")
    after = files_and_digests(workdir / "results")
    assert {name: after[name] for name in fly_results} == fly_results  # not one byte or time changed
    own = sorted(name for name in after if name not in fly_results)
    assert own and all(name.startswith("data/experiment/") for name in own), own
    assert (workdir / RESULTS / "summary/models.parquet").exists()
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout  # the fly's run is still complete
    assert "Nothing to be done" in snakemake(workdir, "-n", "--configfile", "own.yaml").stdout

    # another folder of the same name would land in the same results folder: refused
    other = copy.deepcopy(small_recorded_config())
    other["data"]["source"] = "elsewhere/experiment"
    write_experiment(workdir / "elsewhere/experiment")
    (workdir / "other.yaml").write_text(yaml.safe_dump(other | {"sweeps": None}))
    refused = snakemake(workdir, "-n", "--configfile", "other.yaml", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Traceback" not in output
    assert "results/data/experiment/ holds the results of another folder of the same name" in output
