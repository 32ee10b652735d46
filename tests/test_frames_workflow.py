"""Frames over time end to end: a folder of frames (the visual fly's), its sessions, a
binary output and recorded units runs through the workflow with a frame encoder and
batch normalisation, scored as binary where it is and under both silencing modes; a
damaged array stops the run before any job, in one line naming the file and the frame."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from workflow_helpers import TINY_CONFIG, copy_workflow, snakemake

from knockout import naming
from knockout.visual_fly import VisualFlySettings, write_visual_fly

pytestmark = pytest.mark.slow

SETTINGS = VisualFlySettings(
    height=8, width=20, n_units=3, history=3, sessions_per_set=4, frames_per_session=40, neuron_sessions=1
)
UNITS = naming.unit_names(3)
RESULTS = "results/data/experiment"


def frames_config() -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    del config["fly"]
    config["seeds"] = [0]
    config["data"] = {"source": "experiment", "units": UNITS, "history": 3}
    config["model"] = {
        "activation": "relu",
        "conv": [[4, 3, 2]],
        "frame_features": 4,
        "encoder": [8],
        "batch_norm": True,
    }
    config["train"] |= {"epochs": 4, "min_steps": 0, "lr": 0.003}
    return config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("frames"), frames_config())
    write_visual_fly(workdir / "experiment", SETTINGS, seed=0)
    snakemake(workdir)
    return workdir


def test_a_frames_folder_runs_end_to_end_with_a_frame_encoder(finished_run):
    state = torch.load(finished_run / f"{RESULTS}/seed0/models/ko.pt", weights_only=True)
    assert state["conv.0.weight"].shape == (4, 1, 3, 3) and state["frame_features.weight"].shape == (
        4,
        4 * 4 * 10,
    )
    assert state["encoder.0.weight"].shape == (8, 3 * 4)  # three frames' features side by side
    assert state["input_scale"].unique().numel() == 1  # frames: standardized (auto), one scale
    for layer in ("conv_0", "frame_features", "encoder_0", "hidden"):  # batch-normalised, statistics kept
        assert not torch.equal(
            state[f"norms.{layer}.running_var"], torch.ones(state[f"norms.{layer}.running_var"].shape)
        )
    behavior = pd.read_parquet(finished_run / f"{RESULTS}/seed0/eval/behavior.parquet")
    assert set(behavior["silencing"]) == {"zero", "centered"}
    kinds = behavior.drop_duplicates("output").set_index("output")["kind"].to_dict()
    assert kinds == {"y_00": "continuous", "y_01": "continuous", "b_song": "binary"}
    song = behavior[behavior["output"] == "b_song"]
    assert song[["auc", "log_likelihood"]].notna().all().all() and song["auc"].between(0, 1).all()
    neural = pd.read_parquet(finished_run / f"{RESULTS}/seed0/eval/neural.parquet")
    assert neural["recorded"].all() and neural["r2"].notna().all()
    summary = pd.read_parquet(finished_run / f"{RESULTS}/summary/behavior.parquet")
    assert set(summary["silencing"]) == {"zero", "centered"}
    assert (finished_run / f"{RESULTS}/figures/behavior_r2.png").stat().st_size > 1000


def test_a_damaged_array_stops_the_run_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path, frames_config())
    write_visual_fly(workdir / "experiment", SETTINGS, seed=0)
    frames = np.load(workdir / "experiment/frames.npy")
    frames[41, 3, 5] = np.inf
    np.save(workdir / "experiment/frames.npy", frames)
    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "frames.npy: frame 41" in line]
    assert lines and "holds inf" in lines[0], result.stdout + result.stderr
    assert not (workdir / "results").exists() or not any((workdir / "results").rglob("*.pt"))


def test_a_frame_encoder_on_data_without_frames_is_refused_before_any_job(tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["model"] = {"frame_features": 4}
    result = snakemake(copy_workflow(tmp_path, config), "-n", check=False)
    assert result.returncode != 0
    assert "model.frame_features (and conv) need stimuli over time" in result.stdout + result.stderr


def as_given_histories(folder, history: int) -> None:
    """Rewrite a frames folder as an outside lab might hand it over: each sample's history
    given directly in ``stimuli.npy`` [samples, history, H, W] as uint8, rows matched by a
    ``sample`` column, the behaviour as CSV; the rows of a session without a full history
    dropped (they have no stimulus)."""
    frames = np.load(folder / "frames.npy")
    stacks = []

    def with_samples(table: pd.DataFrame) -> pd.DataFrame:
        kept = []
        for _, rows in table.groupby("session", sort=False):
            for position in range(history - 1, len(rows)):
                stacks.append(frames[rows["frame"].to_numpy()[position - history + 1 : position + 1]])
                kept.append(rows.index[position])
        out = table.loc[kept].drop(columns="frame")
        out.insert(0, "sample", np.arange(len(stacks) - len(kept), len(stacks)))
        return out

    behavior = with_samples(pd.read_parquet(folder / "behavior.parquet"))
    neurons = with_samples(pd.read_parquet(folder / "neurons.parquet"))
    np.save(folder / "stimuli.npy", np.round(np.stack(stacks) * 255).astype(np.uint8))
    (folder / "frames.npy").unlink()
    (folder / "behavior.parquet").unlink()
    behavior.to_csv(folder / "behavior.csv", index=False)
    neurons.to_parquet(folder / "neurons.parquet", index=False)


def test_histories_given_directly_as_uint8_with_a_csv_behaviour_table_run_end_to_end(tmp_path):
    """The other array contract: stimuli.npy (no data.history: the array gives it), uint8,
    beside a CSV table; trained and scored as the frames folder is."""
    config = frames_config()
    del config["data"]["history"]
    workdir = copy_workflow(tmp_path, config)
    write_visual_fly(workdir / "experiment", SETTINGS, seed=0)
    as_given_histories(workdir / "experiment", SETTINGS.history)
    snakemake(workdir)
    state = torch.load(workdir / f"{RESULTS}/seed0/models/ko.pt", weights_only=True)
    assert state["encoder.0.weight"].shape == (8, 3 * 4)  # three given frames' features side by side
    neural = pd.read_parquet(workdir / f"{RESULTS}/seed0/eval/neural.parquet")
    assert neural["recorded"].all() and neural["r2"].notna().all()
    behavior = pd.read_parquet(workdir / f"{RESULTS}/seed0/eval/behavior.parquet")
    assert set(behavior.loc[behavior["output"] == "b_song", "kind"]) == {"binary"}
