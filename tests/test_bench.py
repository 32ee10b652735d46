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
    settings = TrainSettings(lr=0.01, batch_size=8, epochs=3, min_steps=0)
    project = train(model, data, Architecture(6, 4), settings, seed=1).network
    plain = train_plain_loop(model, data, Architecture(6, 4), settings, seed=1)
    for key, value in project.state_dict().items():
        torch.testing.assert_close(value, plain.state_dict()[key], rtol=0, atol=1e-5)
    initial = train_plain_loop(
        model, data, Architecture(6, 4), TrainSettings(lr=1e-12, batch_size=8, epochs=1, min_steps=0), seed=1
    )
    assert (project.hidden.weight - initial.hidden.weight).abs().max() > 0.01  # both trained


@pytest.mark.slow
def test_benchmark_writes_its_tables_and_figure(tmp_path):
    config = tmp_path / "config.yaml"
    tiny = copy.deepcopy(TINY_CONFIG) | {"seeds": [0], "sweep_seeds": [0]}
    tiny["sweeps"] = {"noise": {"key": "fly.noise_sd", "values": [0.1]}}
    config.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "bench"
    command = [sys.executable, "bench/benchmark.py", "--config", str(config), "--out", str(out)]
    command += ["--batch-sizes", "1", "3"]
    env = {**os.environ, "PYTHONPATH": "src:tests"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr

    batches = pd.read_parquet(out / "batches.parquet")
    assert batches[["kind", "networks"]].values.tolist() == [
        [kind, size]
        for kind in ["linear, closed form", "linear, autograd", "ReLU, autograd"]
        for size in (1, 3)
    ]
    assert (batches["us_per_step"] > 0).all() and (batches["device"] == "cpu").all()
    study = pd.read_parquet(out / "study.parquet").set_index("trainer")
    assert study["networks"].tolist() == [4, 1]  # one seed's four models; the plain loop's ko
    r2 = study["ko_median_neural_r2_seed0"]
    assert abs(r2.iloc[0] - r2.iloc[1]) < 0.01  # the same network, trained both ways

    pipeline = pd.read_parquet(out / "pipeline.parquet")
    assert pipeline[["one_job_per", "scenario"]].values.tolist() == [
        [layout, scenario]
        for layout in ["experiment", "seed", "model"]
        for scenario in ["full run", "no-op rerun", "plot-only rerun"]
    ]
    # 1 seed: data, training (1 job, or 4 per model), the evaluation (with the optimum), the
    # summary, plot; nothing to redo; the plot alone.
    assert pipeline["jobs"].tolist() == [5, 0, 1, 5, 0, 1, 8, 0, 1]
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert jobs.groupby(["one_job_per", "rule"]).size().to_dict() == {
        (layout, rule): count
        for layout, train_jobs in [("experiment", 1), ("seed", 1), ("model", 4)]
        for rule, count in [
            ("evaluate_models_with_optimum", 1),
            ("generate_fly_data", 1),
            ("plot", 1),
            ("summarize", 1),
            ("train_models", train_jobs),
        ]
    }
    assert (jobs["work_s"] > 0).all() and (jobs["startup_s"] > 0).all()
    sweeps = pd.read_parquet(out / "sweeps.parquet")
    assert sweeps["jobs"].tolist() == [5]  # data, training, evaluation; its summary, figure
    imports = pd.read_parquet(out / "imports.parquet")
    assert {"torch", "pandas"} <= set(imports["module"])
    assert (out / "benchmark.png").stat().st_size > 10_000
    assert "| cpu | linear, closed form |" in result.stdout
