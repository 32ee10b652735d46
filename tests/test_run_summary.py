"""The lines a run ends with (the Snakefile's onsuccess/onerror): read from the tables the
run left, never failing on what is missing or unreadable."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from knockout.convergence import CONVERGENCE_COLUMNS
from knockout_workflow.run_summary import SHOWN_NETWORKS, error_line, run_summary

NAN = float("nan")
FIGURES = ["results/figures/behavior_r2.png", "results/figures/behavior_r2.svg"]
SWEEP_FIGURES = ["results/sweeps/lr/ko_minus_do.png"]


def convergence(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)


def write(path: str, table: pd.DataFrame | None = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if table is None:
        open(path, "w").close()
    else:
        table.to_parquet(path)


def summary(launch_dir=None, configfiles=()):
    return run_summary(
        {
            "main run": "results/summary/convergence.parquet",
            "sweep lr": "results/sweeps/lr/convergence.parquet",
        },
        {"all": FIGURES, "sweeps": SWEEP_FIGURES},
        "results/report.html",
        configfiles,
        launch_dir,
    )


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_nothing_made_nothing_said(run):
    """A run of another target, or one whose files are gone: no line, no error."""
    assert summary() == []


def test_unconverged_networks_figures_and_the_report_command(run):
    write(
        "results/summary/convergence.parquet",
        convergence(
            [
                (0, "ko", 0.1, 0.001, 0.0001, 1),
                (1, "ko", 0.1, 0.001, 0.052, 0),
                (1, "do", 0.1, 0.2, NAN, 0),
            ]
        ),
    )
    for path in FIGURES:
        write(path)
    warning, figures, report = summary()
    assert warning == (
        "WARNING: main run: 2 of 3 networks did not converge: seed 1 'ko' (loss 5.2% above the exact "
        "optimum's); seed 1 'do' (loss still fell 20% over the last 10% of epochs) "
        "(results/summary/convergence.parquet); read their numbers as unfinished"
    )
    assert figures == "Figures (all): results/figures"
    assert report == "Report: snakemake --report results/report.html all"  # the sweeps' are not there


def test_a_sweep_names_its_values_and_counts_what_it_does_not_name(run):
    rows = [(seed, "do", 0.1, 0.5, NAN, 0) for seed in range(SHOWN_NETWORKS + 2)]
    write("results/sweeps/lr/convergence.parquet", convergence(rows).assign(value="0.1"))
    write(SWEEP_FIGURES[0])
    warning, _, report = summary()
    assert warning.startswith(f"WARNING: sweep lr: {SHOWN_NETWORKS + 2} of {SHOWN_NETWORKS + 2} networks")
    assert "value 0.1, seed 0 'do'" in warning and "; and 2 more (results/sweeps/lr" in warning
    assert report == "Report: snakemake --report results/report.html sweeps"


def test_an_unreadable_table_is_named_not_raised(run):
    write("results/summary/convergence.parquet")  # empty: not Parquet
    [line] = summary()
    assert line.startswith("WARNING: main run: could not read results/summary/convergence.parquet (")


def test_a_run_in_another_directory_gets_absolute_paths_and_its_directory(run, tmp_path_factory):
    write("results/summary/convergence.parquet", convergence([(0, "ko", 0.1, 0.5, NAN, 0)]))
    for path in FIGURES:
        write(path)
    elsewhere = tmp_path_factory.mktemp("launch")
    warning, figures, report = summary(elsewhere, [str(run / "my config.yaml")])
    assert f"({run}/results/summary/convergence.parquet)" in warning
    assert figures == f"Figures (all): {run}/results/figures"
    assert report == (
        f"Report: snakemake --directory {run} --configfile '{run}/my config.yaml' "
        "--report results/report.html all"
    )
    assert summary(run, [str(run / "c.yaml")])[-1] == (
        "Report: snakemake --configfile c.yaml --report results/report.html all"
    )


def test_a_stopped_run_says_where_the_logs_are():
    line = error_line([".snakemake/log/x.snakemake.log"])
    assert "logs/<rule>/" in line and ".snakemake/log/x.snakemake.log" in line and "\n" not in line
