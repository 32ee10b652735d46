"""Data folders whose stimuli are arrays (frames over time, or histories given), read
through the import contract: the samples as the tables' contract has them, and every
damaged array refused in one line naming the file and the frame, sample or row."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from knockout import data_folder, memory, naming, stimulus_arrays
from knockout.behavior_data import table_inputs
from knockout.errors import InputFileError

UNITS = naming.unit_names(3)  # the visual_folder fixture's (conftest)


def copied(folder, tmp_path):
    target = tmp_path / "folder"
    shutil.copytree(folder, target)
    return target


def inputs_of(loaded, table) -> np.ndarray:
    """A loaded folder's table's rows' inputs, each its history flattened [rows, d]."""
    return table_inputs(table, loaded.layout, torch.from_numpy(loaded.inputs)).tensor().numpy()


def test_a_frames_folder_gives_each_sample_its_history_within_its_session(visual_folder):
    loaded = data_folder.load(visual_folder, UNITS, memory_gb=4, history=3)
    layout, behavior = loaded.layout, loaded.behavior
    assert (layout.stimulus, layout.history, layout.frame_shape) == ("frames", 3, (6, 12))
    assert layout.inputs == () and layout.n_inputs == 3 * 6 * 12
    assert layout.entry_columns == ("entry_00", "entry_01", "entry_02")
    assert layout.outputs == ("y_00", "y_01", "b_song") and layout.binary_outputs == 1
    # the first 2 rows of every session are history only
    assert behavior.groupby("set").size().tolist() == [2 * (20 - 2)] * 4
    table = pd.read_parquet(visual_folder / "behavior.parquet")
    frames = np.load(visual_folder / "frames.npy")
    session = table[table["session"] == table["session"].iloc[0]].sort_values("frame")
    first_sample = session.iloc[2]
    expected = frames[session["frame"].iloc[:3].to_numpy()].reshape(-1)  # oldest first
    row = behavior[(behavior["session"] == first_sample["session"])].iloc[0]
    np.testing.assert_array_equal(inputs_of(loaded, row.to_frame().T), expected[None])
    assert row["y_00"] == first_sample["y_00"]
    assert loaded.neurons is not None and layout.recorded == tuple(UNITS)
    assert len(loaded.neurons) == 20 - 2 and "session" not in loaded.neurons


def test_a_frame_is_held_once_however_many_histories_and_tables_name_it(visual_folder):
    loaded = data_folder.load(visual_folder, UNITS, memory_gb=4, history=3)
    frames = np.load(visual_folder / "frames.npy")
    behavior = pd.read_parquet(visual_folder / "behavior.parquet")
    neurons = pd.read_parquet(visual_folder / "neurons.parquet")
    named = np.union1d(behavior["frame"], neurons["frame"])  # history-only rows' frames too
    assert loaded.inputs.shape == (len(named), 6 * 12) and loaded.inputs.dtype == np.float32
    np.testing.assert_array_equal(loaded.inputs, frames[named].reshape(len(named), -1))
    for table in (loaded.behavior, loaded.neurons):  # histories of 3 frames, read from the frames held
        assert inputs_of(loaded, table).shape == (len(table), 3 * 6 * 12)
    assert data_folder.load(visual_folder, UNITS, memory_gb=4, history=3, gather=False).inputs is None


def test_histories_never_reach_across_sessions(visual_folder):
    loaded = data_folder.load(visual_folder, UNITS, memory_gb=4, history=3)
    frames = np.load(visual_folder / "frames.npy")
    table = pd.read_parquet(visual_folder / "behavior.parquet")
    for session, rows in table.groupby("session"):
        own = frames[np.sort(rows["frame"].to_numpy())].reshape(len(rows), -1)
        samples = loaded.behavior[loaded.behavior["session"] == session]
        x = inputs_of(loaded, samples).reshape(len(samples), 3, -1)
        own_frames = {frame.tobytes() for frame in own}
        for t in range(3):  # every frame of every history is one of the session's own
            assert all(frame.tobytes() in own_frames for frame in np.ascontiguousarray(x[:, t]))


def test_given_histories_need_no_sessions(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "given"
    folder.mkdir()
    stimuli = rng.random((40, 2, 5)).astype(np.float32)
    np.save(folder / "stimuli.npy", stimuli)
    table = pd.DataFrame(
        {
            "set": ["control"] * 20 + ["A"] * 20,
            "silenced": [""] * 20 + ["A"] * 20,
            "sample": np.arange(40)[::-1],
            "y": rng.normal(size=40),
        }
    )
    table.to_parquet(folder / "behavior.parquet")
    loaded = data_folder.load(folder, ["A"], memory_gb=4)
    assert (loaded.layout.stimulus, loaded.layout.history, loaded.layout.frame_shape) == ("stimuli", 2, (5,))
    x = inputs_of(loaded, loaded.behavior)
    np.testing.assert_array_equal(x, stimuli[::-1].reshape(40, -1))
    assert data_folder.load(folder, ["A"], memory_gb=4, history=2).layout.history == 2
    with pytest.raises(
        InputFileError, match=r"data.history = 3, but .*stimuli.npy gives each sample's history"
    ):
        data_folder.load(folder, ["A"], memory_gb=4, history=3)


def damage_nan(folder):
    frames = np.load(folder / "frames.npy")
    frames[17, 2, 3] = np.nan
    np.save(folder / "frames.npy", frames)


def damage_truncate(folder):
    path = folder / "frames.npy"
    path.write_bytes(path.read_bytes()[:-100])


def damage_shape(folder):
    frames = np.load(folder / "frames.npy")
    np.save(folder / "frames.npy", frames[:, None])


def damage_index(folder):
    table = pd.read_parquet(folder / "behavior.parquet")
    table.loc[5, "frame"] = 10_000
    table.to_parquet(folder / "behavior.parquet")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (damage_nan, r"frames.npy: frame 17 holds nan"),
        (damage_truncate, r"frames.npy: truncated"),
        (damage_shape, r"frames.npy: shape \(\d+, 1, 6, 12\) has 4 axes"),
        (damage_index, r"behavior.parquet: column frame, row 5: 10000 is past the end of frames.npy"),
    ],
)
def test_a_damaged_array_is_refused_in_one_line_naming_the_file_and_the_sample(
    visual_folder, tmp_path, damage, message
):
    folder = copied(visual_folder, tmp_path)
    damage(folder)
    with pytest.raises(InputFileError, match=message) as refused:
        data_folder.load(folder, UNITS, memory_gb=4, history=3)
    assert "\n" not in str(refused.value)


def test_inputs_that_would_not_fit_in_memory_are_refused_before_they_are_gathered(visual_folder, monkeypatch):
    table = pd.read_parquet(visual_folder / "behavior.parquet")
    array = stimulus_arrays.open_array(visual_folder / "frames.npy")
    size = stimulus_arrays.input_bytes(4 * 2 * 20, array)  # every frame: the samples' and their histories'
    limit = (memory.RUNTIME_BYTES + size // 2) / memory.GIB
    gathered = []
    monkeypatch.setattr(stimulus_arrays, "read_entries", lambda *args: gathered.append(args))
    with pytest.raises(InputFileError, match=r"frames.npy: the 160 frames its samples are made of take"):
        data_folder.array_samples(table, visual_folder / "behavior.parquet", array, 3, limit)
    assert not gathered


def test_the_memory_check_counts_the_copies_a_training_job_holds(visual_folder):
    """Inputs that fit once but not as often as a training job holds them are refused."""
    table = pd.read_parquet(visual_folder / "behavior.parquet")
    array = stimulus_arrays.open_array(visual_folder / "frames.npy")
    size = stimulus_arrays.input_bytes(4 * 2 * 20, array)
    limit = (memory.RUNTIME_BYTES + size) / memory.GIB
    with pytest.raises(InputFileError, match=f"holds them about {memory.TRAINING_INPUT_COPIES} times"):
        data_folder.array_samples(table, visual_folder / "behavior.parquet", array, 3, limit)
    enough = (memory.RUNTIME_BYTES + memory.TRAINING_INPUT_COPIES * size) / memory.GIB + 1e-6
    data_folder.array_samples(table, visual_folder / "behavior.parquet", array, 3, enough)


def test_sessions_too_short_for_the_history_give_no_samples_and_say_so(visual_folder):
    with pytest.raises(
        InputFileError, match=r"behavior.parquet: no samples: every session has at most 20 rows"
    ):
        data_folder.load(visual_folder, UNITS, memory_gb=4, history=21)


def test_planning_reads_the_layout_without_gathering_any_frame(visual_folder, monkeypatch):
    """The workflow's start (the layout, each set's samples) never holds every sample's
    frames: a paper-sized folder would not fit."""
    gathered = []
    monkeypatch.setattr(stimulus_arrays, "read_entries", lambda *args, **kwargs: gathered.append(args))
    planned = data_folder.load(visual_folder, UNITS, memory_gb=4, history=3, gather=False)
    assert not gathered and planned.inputs is None and "entry_00" in planned.behavior
    monkeypatch.undo()
    loaded = data_folder.load(visual_folder, UNITS, memory_gb=4, history=3)
    assert planned.layout == loaded.layout
    assert planned.behavior["set"].value_counts().equals(loaded.behavior["set"].value_counts())
