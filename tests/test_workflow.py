"""End to end: run the Snakemake workflow on a tiny config in a temporary copy.

Checks the file contract other tools rely on, recomputes every R² independently
of the package (NumPy on the saved weights and Parquet files), checks that ko
recovers the fly's units where the other models do not, and that a rerun of the
same config reproduces the evaluation tables byte for byte.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from workflow_helpers import (
    MODELS,
    N_HIDDEN,
    N_INPUTS,
    SEEDS,
    TINY_CONFIG,
    copy_workflow,
    scheduled_jobs,
    snakemake,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"), TINY_CONFIG)
    snakemake(workdir)
    return workdir


def load_state(path: Path) -> dict[str, np.ndarray]:
    return {k: v.double().numpy() for k, v in torch.load(path, weights_only=True).items()}


def hidden(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return x @ state["hidden.weight"].T + state["hidden.bias"]


def predict(state: dict[str, np.ndarray], x: np.ndarray, masked_unit: int) -> np.ndarray:
    h = hidden(state, x)
    if masked_unit >= 0:
        h[:, masked_unit] = 0.0
    return h @ state["output.weight"][0] + state["output.bias"][0]


def r2(y: np.ndarray, prediction: np.ndarray) -> float:
    return 1.0 - np.sum((y - prediction) ** 2) / np.sum((y - y.mean()) ** 2)


def test_data_files_follow_the_contract(finished_run):
    inputs = [f"x_{i:02d}" for i in range(N_INPUTS)]
    names = ["control", *[f"unit_{i:02d}" for i in range(N_HIDDEN)]]
    for seed in SEEDS:
        data = finished_run / f"results/seed{seed}/data"
        for split, per_set in [("train", 400), ("test", 200)]:
            table = pd.read_parquet(data / f"{split}.parquet")
            assert list(table.columns) == ["dataset", "silenced_unit", *inputs, "y"]
            assert all(table[c].dtype == np.float32 for c in [*inputs, "y"])
            assert pd.api.types.is_integer_dtype(table["silenced_unit"])
            assert table.groupby("dataset", sort=False).size().to_dict() == dict.fromkeys(names, per_set)
            assert (
                table.groupby("dataset")["silenced_unit"].first()
                == pd.Series(range(-1, N_HIDDEN), index=names)
            ).all()
        probe = pd.read_parquet(data / "probe.parquet")
        assert list(probe.columns) == [*inputs, *[f"h_{i:02d}" for i in range(N_HIDDEN)]]
        assert len(probe) == 400


def test_weight_files_follow_the_contract(finished_run):
    shapes = {
        "hidden.weight": (N_HIDDEN, N_INPUTS),
        "hidden.bias": (N_HIDDEN,),
        "output.weight": (1, N_HIDDEN),
        "output.bias": (1,),
    }
    for seed in SEEDS:
        for path in ["fly.pt", *[f"models/{m}.pt" for m in MODELS]]:
            state = torch.load(finished_run / f"results/seed{seed}" / path, weights_only=True)
            assert {k: tuple(v.shape) for k, v in state.items()} == shapes


def test_behavior_r2_recomputed_independently(finished_run):
    for seed in SEEDS:
        run = finished_run / f"results/seed{seed}"
        test = pd.read_parquet(run / "data/test.parquet")
        table = pd.read_parquet(run / "eval/behavior.parquet")
        assert list(table.columns) == ["model", "dataset", "silenced_unit", "r2", "noise_ceiling"]
        assert len(table) == len(MODELS) * (N_HIDDEN + 1)
        fly = load_state(run / "fly.pt")
        for row in table.itertuples():
            rows = test[test["dataset"] == row.dataset]
            x = rows[[f"x_{i:02d}" for i in range(N_INPUTS)]].to_numpy(np.float64)
            y = rows["y"].to_numpy(np.float64)
            model = load_state(run / f"models/{row.model}.pt")
            masked = row.silenced_unit if row.model == "ko" else -1
            assert row.r2 == pytest.approx(r2(y, predict(model, x, masked)), abs=1e-4)
            assert row.noise_ceiling == pytest.approx(r2(y, predict(fly, x, row.silenced_unit)), abs=1e-4)


def test_neural_r2_recomputed_independently(finished_run):
    for seed in SEEDS:
        run = finished_run / f"results/seed{seed}"
        probe = pd.read_parquet(run / "data/probe.parquet")
        x = probe[[f"x_{i:02d}" for i in range(N_INPUTS)]].to_numpy(np.float64)
        fly_hidden = probe[[f"h_{i:02d}" for i in range(N_HIDDEN)]].to_numpy(np.float64)
        fly = load_state(run / "fly.pt")
        np.testing.assert_allclose(fly_hidden, hidden(fly, x), atol=1e-4)
        table = pd.read_parquet(run / "eval/neural.parquet")
        assert list(table.columns) == ["model", "unit", "r2", "contribution"]
        for row in table.itertuples():
            model_hidden = hidden(load_state(run / f"models/{row.model}.pt"), x)
            expected = np.corrcoef(fly_hidden[:, row.unit], model_hidden[:, row.unit])[0, 1] ** 2
            assert row.r2 == pytest.approx(expected, abs=1e-4)
            contribution = np.std(fly["output.weight"][0, row.unit] * fly_hidden[:, row.unit])
            assert row.contribution == pytest.approx(contribution, abs=1e-4)


def test_knockout_training_recovers_the_units_and_the_others_do_not(finished_run):
    for seed in SEEDS:
        neural = pd.read_parquet(finished_run / f"results/seed{seed}/eval/neural.parquet")
        median = neural.groupby("model")["r2"].median()
        assert median["ko"] > 0.95, median
        for other in ["control", "noko", "do"]:
            assert median[other] < median["ko"] - 0.3, median
        behavior = pd.read_parquet(finished_run / f"results/seed{seed}/eval/behavior.parquet")
        silenced = behavior[behavior["silenced_unit"] >= 0].pivot(
            index="dataset", columns="model", values="r2"
        )
        assert (silenced["ko"] > silenced["do"]).all(), silenced


def test_figures_are_written(finished_run):
    for name in ["behavior_r2.png", "neural_r2.png"]:
        path = finished_run / "results/figures" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_do_after_a_finished_run(finished_run):
    result = snakemake(finished_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_rerun_reproduces_the_tables_byte_for_byte(finished_run):
    outputs = [
        f"results/seed{s}/{kind}"
        for s in SEEDS
        for kind in ["data/train.parquet", "eval/behavior.parquet", "eval/neural.parquet", "models/ko.pt"]
    ]
    before = {p: (finished_run / p).read_bytes() for p in outputs}
    snakemake(finished_run, "--forceall", "--cores", "2")
    assert {p: (finished_run / p).read_bytes() for p in outputs} == before


def test_one_training_job_per_seed_trains_the_same_networks(finished_run, tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["train"]["one_job_per"] = "seed"
    workdir = copy_workflow(tmp_path, config)
    assert scheduled_jobs(workdir)["train_model"] == len(SEEDS)
    snakemake(workdir)
    outputs = sorted(p.relative_to(finished_run) for p in (finished_run / "results").glob("seed*/*/*"))
    assert len(outputs) == len(SEEDS) * (3 + 2 * len(MODELS) + 2)
    for path in outputs:
        assert (workdir / path).read_bytes() == (finished_run / path).read_bytes(), path

    # A per-model edit now retrains each seed's one training job, and what depends on it.
    config["train"]["per_model"] = {"ko": {"epochs": 30}}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    assert scheduled_jobs(workdir) == {
        "train_model": len(SEEDS),
        "evaluate_behavior": len(SEEDS),
        "evaluate_neural": len(SEEDS),
        "plot": 1,
        "all": 1,
    }


def test_bad_config_is_refused_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path, TINY_CONFIG | {"models": ["ko", "knockout"]})
    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    assert "knockout" in result.stderr and "models" in result.stderr
    assert not (workdir / "results").exists()
