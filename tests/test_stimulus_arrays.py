"""Array stimuli (knockout.stimulus_arrays): frames.npy histories built within sessions,
stimuli.npy given directly, and every way a damaged array or index is refused with the file
and the frame, sample or row named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from knockout import stimulus_arrays
from knockout.errors import InputFileError
from knockout.stimulus_arrays import (
    ARRAY_FILES,
    check_finite,
    find_array,
    input_bytes,
    open_array,
    read_entries,
    sample_index,
)

K = 3


def frames_array(n: int = 12, frame_shape=(2, 3), dtype=np.float32) -> np.ndarray:
    """Frame i holds i + (0, 0.01, 0.02 ...): each frame is told apart by its values."""
    offsets = np.arange(np.prod(frame_shape)).reshape(frame_shape) / 100
    return (np.arange(n)[:, None, None].reshape(n, *([1] * len(frame_shape))) + offsets).astype(dtype)


def gather(array, index, chunk_bytes=stimulus_arrays.CHUNK_BYTES) -> np.ndarray:
    """Every sample's input [samples, k, *frame_shape], read from the entries it names."""
    values = read_entries(array, index.entries, chunk_bytes)
    return values.reshape(index.n_samples, index.history, *array.frame_shape)


def save(folder: Path, kind: str, values: np.ndarray, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARRAY_FILES[kind]
    np.save(path, values, **kwargs)
    return path


def frames_table() -> pd.DataFrame:
    """Two sessions, rows shuffled: session a holds frames 0..5, session b frames 6..11 (adjacent
    to a's: a history must still never reach into the other session)."""
    table = pd.DataFrame(
        {
            "set": "control",
            "session": ["b", "a", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b"],
            "frame": [8, 2, 0, 6, 5, 11, 1, 7, 3, 10, 4, 9],
            "y": np.arange(12.0),
        }
    )
    return table


def test_frames_give_histories_within_sessions_oldest_first(tmp_path):
    values = frames_array()
    array = open_array(save(tmp_path, "frames", values))
    assert (array.kind, array.shape, array.frame_shape, array.history, array.n_entries) == (
        "frames",
        (12, 2, 3),
        (2, 3),
        None,
        12,
    )
    check_finite(array)
    table = frames_table()
    index = sample_index(table, array, K, tmp_path / "behavior.parquet")
    frames = table["frame"].to_numpy()
    # the first K-1 frames of each session (0, 1 and 6, 7) are history only
    expected_rows = [row for row in range(12) if frames[row] not in (0, 1, 6, 7)]
    assert index.rows.tolist() == expected_rows
    assert index.entries.tolist() == [[f - 2, f - 1, f] for f in frames[expected_rows]]
    assert index.entries.min() >= 0 and not any(set(e) & {5} and set(e) & {6} for e in index.entries.tolist())
    assert [(s.session, s.first_row, s.rows, s.history_only) for s in index.sessions] == [
        ("b", 0, 6, 2),
        ("a", 1, 6, 2),
    ]
    assert index.n_history_only == 4 and index.short_sessions == ()
    inputs = gather(array, index)
    assert inputs.dtype == np.float32 and inputs.shape == (8, K, 2, 3)
    for sample, row in enumerate(expected_rows):
        frame = frames[row]
        np.testing.assert_array_equal(inputs[sample], values[[frame - 2, frame - 1, frame]])
    np.testing.assert_array_equal(gather(array, index, chunk_bytes=1), inputs)  # one frame at a time


def test_adjacent_frame_numbers_of_two_sessions_are_never_one_history(tmp_path):
    array = open_array(save(tmp_path, "frames", frames_array(6, (4,))))
    table = pd.DataFrame({"session": [1, 1, 1, 2, 2, 2], "frame": [0, 1, 2, 3, 4, 5]})
    index = sample_index(table, array, 2, tmp_path / "behavior.csv")
    assert index.rows.tolist() == [1, 2, 4, 5]
    assert index.entries.tolist() == [[0, 1], [1, 2], [3, 4], [4, 5]]
    assert [s.session for s in index.sessions] == [1, 2]  # Python ints, as a message shows them


def test_a_session_shorter_than_the_history_gives_no_sample_and_is_named(tmp_path):
    array = open_array(save(tmp_path, "frames", frames_array(10, (2,))))
    table = pd.DataFrame({"session": ["a"] * 8 + ["short"] * 2, "frame": [*range(8), 0, 1]})
    index = sample_index(table, array, K, tmp_path / "behavior.parquet")
    assert [s.session for s in index.short_sessions] == ["short"]
    assert index.n_samples == 6 and index.n_history_only == 4
    assert "session 'short' (row 8, 2 rows)" in index.summary()


def test_history_one_makes_every_row_a_sample(tmp_path):
    array = open_array(save(tmp_path, "frames", frames_array(4, (2,))))
    table = pd.DataFrame({"session": ["a", "a", "b", "b"], "frame": [3, 2, 0, 1]})
    index = sample_index(table, array, 1, tmp_path / "behavior.parquet")
    assert index.rows.tolist() == [0, 1, 2, 3] and index.entries.tolist() == [[3], [2], [0], [1]]
    assert index.n_history_only == 0


def test_stimuli_are_histories_given_directly(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 4, 2, 2))
    array = open_array(save(tmp_path, "stimuli", values))
    assert (array.history, array.frame_shape, array.n_entries) == (4, (2, 2), 5)
    check_finite(array)
    table = pd.DataFrame({"sample": [4, 0, 0, 2]})  # one stimulus may be shown to several sets
    index = sample_index(table, array, history=1, path=tmp_path / "behavior.csv")  # k from the array
    assert index.history == 4 and index.rows.tolist() == [0, 1, 2, 3] and index.sessions == ()
    inputs = gather(array, index)
    assert inputs.shape == (4, 4, 2, 2) and inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs, values[[4, 0, 0, 2]].astype(np.float32))


def test_uint8_is_read_as_value_over_255(tmp_path):
    values = np.array([[0, 51, 255], [1, 2, 3]], dtype=np.uint8)
    array = open_array(save(tmp_path, "frames", values))
    check_finite(array)
    table = pd.DataFrame({"session": ["a", "a"], "frame": [0, 1]})
    inputs = gather(array, sample_index(table, array, 1, tmp_path / "behavior.csv"))
    np.testing.assert_array_equal(inputs[:, 0], values.astype(np.float32) / 255)
    assert inputs[0, 0].tolist() == [0.0, pytest.approx(0.2), 1.0]


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_widths_are_read_as_float32(tmp_path, dtype):
    values = frames_array(3, (2,), dtype)
    array = open_array(save(tmp_path, "frames", values))
    table = pd.DataFrame({"session": ["a"] * 3, "frame": [0, 1, 2]})
    inputs = gather(array, sample_index(table, array, 1, tmp_path / "behavior.csv"))
    np.testing.assert_array_equal(inputs[:, 0], values.astype(np.float32))


def test_fortran_order_is_read_as_c_order(tmp_path):
    values = frames_array(6, (2, 3))
    array = open_array(save(tmp_path, "frames", np.asfortranarray(values)))
    assert array.fortran_order
    check_finite(array, chunk_bytes=8)
    table = pd.DataFrame({"session": ["a"] * 6, "frame": range(6)})
    inputs = gather(array, sample_index(table, array, 2, tmp_path / "behavior.csv"))
    np.testing.assert_array_equal(inputs[:, 1], values[1:])
    np.testing.assert_array_equal(inputs[:, 0], values[:-1])


def test_big_endian_arrays_and_other_integer_columns_are_read(tmp_path):
    values = frames_array(4, (3,)).astype(">f4")
    array = open_array(save(tmp_path, "frames", values))
    check_finite(array)
    table = pd.DataFrame({"session": [7, 7, 7, 7], "frame": pd.Series([0, 1, 2, 3], dtype="Int64")})
    inputs = gather(array, sample_index(table, array, 2, tmp_path / "behavior.parquet"))
    np.testing.assert_array_equal(inputs[:, 1], values[1:].astype(np.float32))
    table["frame"] = np.array([0, 1, 2, 2**63 + 5], dtype=np.uint64)
    with pytest.raises(InputFileError, match=r"row 3: 9223372036854775813 is past the end"):
        sample_index(table, array, 2, tmp_path / "behavior.parquet")


def test_an_empty_table_gives_no_sample(tmp_path):
    array = open_array(save(tmp_path, "frames", frames_array(4, (3,))))
    table = pd.DataFrame({"session": pd.Series([], dtype=str), "frame": pd.Series([], dtype=np.int64)})
    index = sample_index(table, array, K, tmp_path / "behavior.parquet")
    assert index.n_samples == 0 and index.entries.shape == (0, K) and index.sessions == ()
    assert gather(array, index).shape == (0, K, 3)


def test_input_bytes_are_float32_entries(tmp_path):
    frames = open_array(save(tmp_path / "frames", "frames", np.zeros((4, 64, 64), np.uint8)))
    assert input_bytes(1000, frames) == 1000 * 64 * 64 * 4
    assert input_bytes(10**8, frames) == 10**8 * 64 * 64 * 4  # no overflow
    stimuli = open_array(save(tmp_path / "stimuli", "stimuli", np.zeros((4, 3, 8, 8), np.float16)))
    assert input_bytes(1000, stimuli) == 1000 * 3 * 8 * 8 * 4  # an entry is a whole history


# ------------------------------------------------------------------------------------ the folder


def test_find_array_says_which_file_a_folder_holds(tmp_path):
    assert find_array(tmp_path) is None
    path = save(tmp_path, "stimuli", np.zeros((1, 1, 1)))
    assert find_array(tmp_path) == path


def test_both_arrays_are_refused(tmp_path):
    save(tmp_path, "frames", np.zeros((2, 2)))
    save(tmp_path, "stimuli", np.zeros((2, 1, 2)))
    with pytest.raises(InputFileError, match=r"both frames\.npy and stimuli\.npy; keep one"):
        find_array(tmp_path)


def test_an_array_that_is_a_directory_is_named(tmp_path):
    (tmp_path / "frames.npy").mkdir()
    with pytest.raises(InputFileError, match=r"frames\.npy: a directory, not a file"):
        find_array(tmp_path)


def test_a_broken_link_is_named(tmp_path):
    (tmp_path / "stimuli.npy").symlink_to(tmp_path / "gone.npy")
    with pytest.raises(InputFileError, match=r"stimuli\.npy: a broken symbolic link"):
        find_array(tmp_path)


# ------------------------------------------------------------------------------------ the array


@pytest.mark.parametrize(
    ("kind", "shape", "needs"),
    [
        ("frames", (5,), "2 \\(\\[n_frames, F\\]\\)"),
        ("frames", (2, 2, 2, 2), "or 3"),
        ("stimuli", (4, 3), "3 "),
    ],
)
def test_wrong_number_of_axes_is_refused(tmp_path, kind, shape, needs):
    path = save(tmp_path, kind, np.zeros(shape, dtype=np.float32))
    with pytest.raises(
        InputFileError, match=rf"{ARRAY_FILES[kind]}: shape .* has {len(shape)} axes; .*{needs}"
    ):
        open_array(path)


def test_an_empty_axis_is_refused(tmp_path):
    path = save(tmp_path, "frames", np.zeros((4, 0), dtype=np.float32))
    with pytest.raises(InputFileError, match=r"frames\.npy: shape \(4, 0\): axis 1 is empty"):
        open_array(path)


def test_a_nan_frame_is_named(tmp_path):
    values = frames_array(40, (3, 3))
    values[17, 2, 1] = np.nan
    values[30, 0, 0] = np.nan
    array = open_array(save(tmp_path, "frames", values))
    for chunk_bytes in (stimulus_arrays.CHUNK_BYTES, 100, 4):  # the first bad frame, whatever the chunks
        with pytest.raises(InputFileError, match=r"frames\.npy: frame 17 holds nan \(at \[17, 2, 1\]\)"):
            check_finite(array, chunk_bytes=chunk_bytes)


def test_a_nan_frame_is_named_in_fortran_order(tmp_path):
    values = frames_array(40, (3, 3))
    values[30, 0, 0] = np.nan  # stored before frame 17's bad value
    values[17, 2, 1] = np.nan
    array = open_array(save(tmp_path, "frames", np.asfortranarray(values)))
    for chunk_bytes in (stimulus_arrays.CHUNK_BYTES, 100, 4):
        with pytest.raises(InputFileError, match=r"frames\.npy: frame 17 holds nan \(at \[17, 2, 1\]\)"):
            check_finite(array, chunk_bytes=chunk_bytes)


def test_an_infinite_sample_is_named(tmp_path):
    values = np.zeros((6, 2, 4), dtype=np.float16)
    values[4, 1, 3] = -np.inf
    with pytest.raises(InputFileError, match=r"stimuli\.npy: sample 4 holds -inf \(at \[4, 1, 3\]\)"):
        check_finite(open_array(save(tmp_path, "stimuli", values)), chunk_bytes=6)


def test_a_float64_beyond_float32_is_named(tmp_path):
    values = np.zeros((5, 2))
    values[3, 1] = 1e39
    with pytest.raises(InputFileError, match=r"frames\.npy: frame 3 holds 1e\+39 .*float32"):
        check_finite(open_array(save(tmp_path, "frames", values)))


def test_a_truncated_file_is_refused(tmp_path):
    path = save(tmp_path, "frames", np.zeros((10, 4), dtype=np.float32))
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.raises(
        InputFileError, match=r"frames\.npy: truncated: .*\(10, 4\) of float32 needs 160 bytes.*155"
    ):
        open_array(path)


def test_a_file_cut_inside_its_header_is_not_a_valid_npy(tmp_path):
    path = save(tmp_path, "frames", np.zeros((10, 4), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(InputFileError, match=r"frames\.npy: not a valid \.npy file \(EOF"):
        open_array(path)


def test_a_file_that_is_not_npy_is_refused(tmp_path):
    path = tmp_path / "stimuli.npy"
    pd.DataFrame({"a": [1, 2]}).to_csv(path)
    with pytest.raises(InputFileError, match=r"stimuli\.npy: not a valid \.npy file \(the magic string"):
        open_array(path)


def test_object_dtype_is_refused_unread(tmp_path):
    values = np.empty((2, 2), dtype=object)
    values[:] = [[1, 2], [3, 4]]
    path = save(tmp_path, "frames", values, allow_pickle=True)
    with pytest.raises(InputFileError, match=r"frames\.npy: dtype object \(pickled .* never unpickled"):
        open_array(path)


@pytest.mark.parametrize("dtype", [np.int32, np.complex64, np.bool_, np.dtype([("a", "f4"), ("b", "f4")])])
def test_other_dtypes_are_refused(tmp_path, dtype):
    path = save(tmp_path, "frames", np.zeros((3, 2), dtype=dtype))
    with pytest.raises(InputFileError, match=r"frames\.npy: dtype .* not allowed \(allowed: float16"):
        open_array(path)


# ------------------------------------------------------------------------------------ the index


@pytest.fixture
def frames(tmp_path):
    return open_array(save(tmp_path, "frames", frames_array(12, (2,))))


def refused(table: pd.DataFrame, array, history: int = K) -> str:
    with pytest.raises(InputFileError) as caught:
        sample_index(table, array, history, Path("data/behavior.parquet"))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("data/behavior.parquet: ")
    return message


def test_an_index_past_the_end_names_row_and_index(frames):
    table = frames_table()
    table.loc[5, "frame"] = 12
    assert refused(table, frames) == (
        "data/behavior.parquet: column frame, row 5: 12 is past the end of frames.npy, which holds 12 "
        "frames (0..11)"
    )


def test_a_negative_index_names_row_and_index(frames):
    table = frames_table()
    table.loc[3, "frame"] = -1
    assert "column frame, row 3: -1 is negative" in refused(table, frames)


def test_a_sample_past_the_end_names_row_and_index(tmp_path):
    array = open_array(save(tmp_path, "stimuli", np.zeros((3, 2, 2))))
    message = refused(pd.DataFrame({"sample": [0, 2, 3]}), array)
    assert "column sample, row 2: 3 is past the end of stimuli.npy, which holds 3 samples (0..2)" in message


def test_a_float_index_column_is_refused(frames):
    table = frames_table()
    table["frame"] = table["frame"].astype(float)
    assert "column frame: type float64, not integer" in refused(table, frames)
    table.loc[4, "frame"] = 2.5
    assert "column frame, row 4: 2.5: type float64, not integer" in refused(table, frames)


def test_a_text_index_column_names_the_first_bad_row(frames):
    table = frames_table()
    table["frame"] = table["frame"].astype(str)
    table.loc[6, "frame"] = "first"
    assert "column frame, row 6: 'first': type" in refused(table, frames)


def test_a_missing_index_value_is_named(frames):
    table = frames_table()
    table["frame"] = table["frame"].astype("Int64")
    table.loc[7, "frame"] = pd.NA
    assert "column frame, row 7: no value" in refused(table, frames)


def test_a_missing_index_column_is_refused(frames):
    table = frames_table().drop(columns="frame")
    assert "column frame missing (required with frames.npy" in refused(table, frames)


def test_a_repeated_frame_in_a_session_names_both_rows(frames):
    table = frames_table()
    table.loc[9, "frame"] = 11  # session b's frame 11 is on row 5 too
    assert "column frame, row 9: frame 11 appears twice in session 'b' (also row 5)" in refused(table, frames)


def test_the_same_frame_in_two_sessions_is_allowed(frames):
    table = pd.DataFrame({"session": ["a", "a", "b", "b"], "frame": [0, 1, 0, 1]})
    index = sample_index(table, frames, 2, "behavior.csv")
    assert index.entries.tolist() == [[0, 1], [0, 1]]


def test_frames_without_session_are_refused_where_a_history_is_built(frames):
    table = frames_table().drop(columns="session")
    assert "column session missing (required with frames.npy and data.history = 3" in refused(table, frames)
    single = sample_index(table, frames, 1, "behavior.csv")  # one frame a sample: no history to build
    assert single.entries[:, 0].tolist() == table["frame"].tolist() and single.history == 1


def test_a_row_without_session_is_named(frames):
    table = frames_table()
    table.loc[2, "session"] = None
    assert "column session, row 2: no value" in refused(table, frames)


def test_an_array_with_input_columns_is_refused(frames):
    table = frames_table().assign(x_00=0.0)
    assert "column x_00 with frames.npy in the folder" in refused(table, frames)


@pytest.mark.parametrize("history", [0, -1, 1.5, True])
def test_a_history_that_is_not_a_positive_integer_is_refused(frames, history):
    with pytest.raises(InputFileError, match=r"^data\.history: "):
        sample_index(frames_table(), frames, history, "behavior.csv")
