"""The benchmark (``make bench``) runs end to end, and its baseline is a fair one.

These tests check what is measured and written, never how fast anything was.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, TINY_CONFIG

from knockout import models


@pytest.mark.slow
def test_benchmark_writes_its_tables_and_figure(tmp_path):
    config = tmp_path / "config.yaml"
    tiny = copy.deepcopy(TINY_CONFIG) | {"seeds": [0], "sweep_seeds": [0]}
    tiny["sweeps"] = {"noise": {"key": "fly.noise_sd", "values": [0.1]}}
    config.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "bench"
    command = [sys.executable, "bench/benchmark.py", "--config", str(config), "--out", str(out)]
    command += ["--batch-sizes", "1", "3"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr

    # The baseline trains what the project's trainer trains: same weights, both trained.
    baseline = pd.read_parquet(out / "baseline.parquet").set_index("model")
    assert list(baseline.index) == list(models.TRAINED)
    assert (baseline["largest_weight_difference"] <= 1e-5).all()
    assert (baseline["largest_weight_change"] > 0.01).all()

    batches = pd.read_parquet(out / "batches.parquet")
    assert batches[["kind", "networks"]].values.tolist() == [
        [kind, size]
        for kind in ["linear, closed form", "linear, autograd", "ReLU, autograd"]
        for size in (1, 3)
    ]
    assert (batches["us_per_step"] > 0).all() and (batches["device"] == "cpu").all()
    study = pd.read_parquet(out / "study.parquet").set_index("trainer")
    n_models = len(TINY_CONFIG["models"])
    assert study["networks"].tolist() == [n_models, 1]  # one seed's models; the plain loop's ko
    r2 = study["ko_median_neural_r2_seed0"]
    assert abs(r2.iloc[0] - r2.iloc[1]) < 0.01  # the same network, trained both ways

    pipeline = pd.read_parquet(out / "pipeline.parquet")
    assert pipeline[["one_job_per", "scenario"]].values.tolist() == [
        [layout, scenario]
        for layout in ["experiment", "seed", "model"]
        for scenario in ["full run", "no-op rerun", "plot-only rerun"]
    ]
    # 1 seed: data, training (1 job, or one per model), the evaluation (with the optimum), the
    # summary, plot; nothing to redo; the plot alone.
    assert pipeline["jobs"].tolist() == [5, 0, 1, 5, 0, 1, 4 + n_models, 0, 1]
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert jobs.groupby(["one_job_per", "rule"]).size().to_dict() == {
        (layout, rule): count
        for layout, train_jobs in [("experiment", 1), ("seed", 1), ("model", n_models)]
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
