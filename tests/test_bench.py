"""The benchmark (``make bench``): its baseline is a fair one, and it runs end to end.

These tests check what is measured and written, never how fast anything was.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from nets import simulated_data
from plain_loop import train_plain_loop
from workflow_helpers import REPO, TINY_CONFIG

from knockout.network import Architecture
from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.training import TrainSettings, train


@pytest.mark.parametrize("model", ["control", "noko", "ko", "do"])
def test_plain_loop_trains_the_same_network_as_the_project_trainer(model):
    """Same batches, masks, schedule and optimizer: only the mechanics of a step differ."""
    _, train_table, _, _ = simulate(FlySettings(n_inputs=6, n_hidden=4), DataSettings(40, 2, 2), seed=0)
    data = simulated_data(train_table, 6, 4)
    settings = TrainSettings(lr=0.01, batch_size=8, epochs=3)
    project = train(model, data, Architecture(6, 4), settings, seed=1).network
    plain = train_plain_loop(model, data, Architecture(6, 4), settings, seed=1)
    for key, value in project.state_dict().items():
        torch.testing.assert_close(value, plain.state_dict()[key], rtol=0, atol=1e-5)
    initial = train_plain_loop(
        model, data, Architecture(6, 4), TrainSettings(lr=1e-12, batch_size=8, epochs=1), seed=1
    )
    assert (project.hidden.weight - initial.hidden.weight).abs().max() > 0.01  # both trained


@pytest.mark.slow
def test_benchmark_writes_its_tables_and_figure(tmp_path):
    config = tmp_path / "config.yaml"
    tiny = copy.deepcopy(TINY_CONFIG)
    tiny["train"] |= {"one_job_per": "model", "per_model": {"ko": {"epochs": 30}}}
    config.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "bench"
    command = [sys.executable, "bench/benchmark.py", "--config", str(config), "--out", str(out)]
    command += ["--trainer-seeds", "1", "--seed-counts", "1"]
    env = {**os.environ, "PYTHONPATH": "src:tests"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr

    trainer = pd.read_parquet(out / "trainer.parquet")
    assert sorted(trainer["trainer"]) == ["arithmetic_floor", "autograd", "plain_loop", "project"]
    assert (trainer["seconds"] > 0).all()
    # ko's own epochs (its per_model override) are the ones timed
    n_batches = 5 * -(-400 // 32)  # 5 sets of 400 rows in batches of 32
    assert (trainer["steps"] == 30 * n_batches).all()
    r2 = trainer.set_index("trainer")["median_neural_r2"]
    assert abs(r2["project"] - r2["plain_loop"]) < 0.01

    pipeline = pd.read_parquet(out / "pipeline.parquet")
    assert pipeline[["one_job_per", "scenario"]].values.tolist() == [
        [layout, scenario]
        for layout in ["model", "seed"]
        for scenario in ["full run", "no-op rerun", "plot-only rerun"]
    ]
    # 1 seed: data, 4 models (or 1 job for all), the knockout optimum, 2 evaluations, the summary,
    # plot; nothing to redo; the plot alone.
    assert pipeline["jobs"].tolist() == [10, 0, 1, 7, 0, 1]

    jobs = pd.read_parquet(out / "jobs.parquet")
    assert jobs.groupby(["one_job_per", "rule"]).size().to_dict() == {
        (layout, rule): count
        for layout, train_jobs in [("model", 4), ("seed", 1)]
        for rule, count in [
            ("evaluate_behavior", 1),
            ("evaluate_neural", 1),
            ("fit_knockout_optimum", 1),
            ("generate_fly_data", 1),
            ("plot", 1),
            ("summarize", 1),
            ("train_model", train_jobs),
        ]
    }
    assert (jobs["work_s"] > 0).all() and (jobs["startup_s"] > 0).all()
    imports = pd.read_parquet(out / "imports.parquet")
    assert {"torch", "pandas"} <= set(imports["module"])
    assert (out / "benchmark.png").stat().st_size > 10_000
    assert "| project |" in result.stdout
