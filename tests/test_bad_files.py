"""Damaged files in a finished run: the run stops with one line naming the file, and
nothing downstream of it is taken as complete.

Each case copies one finished tiny run, damages one file, and runs Snakemake, which
reruns the steps downstream of the changed file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from workflow_helpers import TINY_CONFIG, copy_workflow, snakemake

pytestmark = pytest.mark.slow

CONFIG = TINY_CONFIG | {"seeds": [0], "train": TINY_CONFIG["train"] | {"epochs": 5}}


class CarriesCode:
    """Pickled into a weights file: must be refused by weights_only loading."""


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop_column(path: Path) -> None:
    pd.read_parquet(path).drop(columns="x_03").to_parquet(path, index=False)


def nan_in_y(path: Path) -> None:
    table = pd.read_parquet(path)
    table.loc[0, "y"] = float("nan")
    table.to_parquet(path, index=False)


def pickle_code(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    torch.save({**state, "extra": CarriesCode()}, path)


def wrong_shape(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    torch.save({**state, "hidden.bias": torch.zeros(7)}, path)


CASES = [
    ("data/behavior.parquet", truncate, "not a readable Parquet file", "models/ko.pt"),
    ("data/behavior.parquet", drop_column, "its inputs (9: x_00, x_01, x_02 ...) differ", "models/ko.pt"),
    ("data/behavior.parquet", nan_in_y, "column y, row 0: nan (allowed: finite numbers)", "models/ko.pt"),
    ("models/ko.pt", truncate, "not a loadable weights file", "eval/behavior.parquet"),
    ("models/ko.pt", pickle_code, "files carrying pickled code are refused", "eval/behavior.parquet"),
    ("models/ko.pt", wrong_shape, "hidden.bias has shape (7,), expected (4,)", "eval/behavior.parquet"),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("finished"), CONFIG)
    snakemake(workdir)
    return workdir


@pytest.mark.parametrize(
    ("damaged", "damage", "message", "not_left"),
    CASES,
    ids=[f"{damaged}-{damage.__name__}" for damaged, damage, _, _ in CASES],
)
def test_a_damaged_file_stops_the_run_with_one_line_naming_it(
    finished_run, tmp_path, damaged, damage, message, not_left
):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    results = workdir / "results" / "seed0"
    damage(results / damaged)

    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert any(f"results/seed0/{damaged}: " in line and message in line for line in errors), errors
    assert "Traceback" not in "\n".join(errors)
    redo = snakemake(workdir, "-n")
    assert f"results/seed0/{not_left}" in redo.stdout + redo.stderr, f"{not_left} would be taken as complete"
    assert list(workdir.rglob("*.partial")) == []
