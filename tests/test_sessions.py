"""Sessions (the optional ``session`` column): rows of one session (an animal, a trial, a
recording) are frames that belong together, so the seeded split keeps each whole, and a
given split that cuts one is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from knockout import data_folder
from knockout.data_folder import Layout, load, split
from knockout.errors import InputFileError

UNITS = ["A", "B"]


def session_table(sizes: dict[str, list[int]], seed: int = 0) -> pd.DataFrame:
    """Per set, sessions of the given row counts (named ``<set>-s<k>``), rows of a set's
    sessions interleaved as a recording's frames might be stored."""
    rng = np.random.default_rng(seed)
    blocks = []
    for name, counts in sizes.items():
        session = np.repeat([f"{name}-s{k}" for k in range(len(counts))], counts)
        block = pd.DataFrame(rng.normal(size=(len(session), 2)), columns=["x_00", "x_01"])
        block["y"] = rng.normal(size=len(session))
        block.insert(0, "session", rng.permutation(session))
        block.insert(0, "silenced", "" if name == "control" else name)
        block.insert(0, "set", name)
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def layout_of(table: pd.DataFrame) -> Layout:
    return data_folder.check_behavior(table, "behavior.parquet", UNITS)


def assert_sessions_whole(train: pd.DataFrame, test: pd.DataFrame) -> None:
    shared = set(train["session"]) & set(test["session"])
    assert not shared, f"sessions cut by the split: {sorted(shared)}"


SIZES = {"control": [30, 25, 40, 12, 8, 50], "A": [3, 1, 1, 20, 2], "B": [2, 2, 2, 2]}


def test_the_layout_records_sessions_and_passes_them_to_behaviour_only_steps():
    layout = layout_of(session_table(SIZES))
    assert layout.has_sessions
    assert Layout.from_dict(layout.as_dict(behavior_only=True)).has_sessions
    assert not layout_of(session_table(SIZES).drop(columns="session")).has_sessions


@pytest.mark.parametrize("test_fraction", [0.05, 0.2, 0.5, 0.9])
def test_no_seed_draws_a_split_that_cuts_a_session(test_fraction):
    table = session_table(SIZES)
    layout = layout_of(table)
    draws = set()
    for seed in range(60):
        train, test = split(table, layout, test_fraction, seed)
        assert_sessions_whole(train, test)
        for name in SIZES:
            assert (train["set"] == name).sum() >= 2 and (test["set"] == name).sum() >= 2
        assert len(train) + len(test) == len(table)
        draws.add(tuple(test.index))
    assert len(draws) > 10  # the seed draws a new split


def test_the_test_part_is_about_the_test_fraction_of_each_set():
    sizes = {name: [10] * 20 for name in ("control", "A", "B")}
    table = session_table(sizes)
    _, test = split(table, layout_of(table), 0.2, seed=3)
    assert test.groupby("set").size().to_dict() == {"control": 40, "A": 40, "B": 40}


def test_the_same_seed_draws_the_same_split():
    table = session_table(SIZES)
    layout = layout_of(table)
    first, again = split(table, layout, 0.2, seed=7), split(table, layout, 0.2, seed=7)
    assert first[1].index.equals(again[1].index)


@pytest.mark.parametrize("seed", range(5))
def test_integer_sessions_split_like_named_ones(seed):
    table = session_table(SIZES)
    numbered = table.assign(session=pd.factorize(table["session"])[0])
    named_test = split(table, layout_of(table), 0.2, seed)[1].index
    assert split(numbered, layout_of(numbered), 0.2, seed)[1].index.equals(named_test)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        (
            {"control": [10, 10], "A": [6], "B": [2, 2]},
            "set 'A' (row 20) has 1 session, and session 'A-s0' holds 6 of its 6 rows; whole sessions must "
            "leave at least 2 rows to train and 2 to test (add sessions, or give a split column)",
        ),
        (
            {"control": [10, 10], "A": [1, 9], "B": [2, 2]},
            "set 'A' (row 20) has 2 sessions, and session 'A-s1'",
        ),
    ],
    ids=["one session", "one session holds all rows but one"],
)
def test_a_set_whose_sessions_cannot_be_split_is_refused_in_one_line(sizes, message):
    with pytest.raises(InputFileError) as error:
        layout_of(session_table(sizes))
    assert str(error.value).startswith(f"behavior.parquet: {message}")


def test_a_given_split_that_cuts_a_session_is_refused_naming_it_and_the_row():
    table = session_table({"control": [4, 4], "A": [4, 4], "B": [4, 4]}).sort_values(["set", "session"])
    table = table.reset_index(drop=True)
    table["split"] = np.where(table["session"].str.endswith("s0"), "train", "test")
    layout_of(table)  # sessions whole: fine
    table.loc[13, "split"] = "train"  # a row of a test session, in train
    with pytest.raises(InputFileError) as error:
        layout_of(table)
    assert str(error.value) == (
        f"behavior.parquet: column split, row 13: session {table.loc[13, 'session']!r} of set "
        f"{table.loc[13, 'set']!r} is in both train and test (a session must lie on one side)"
    )


def numbered(value: float):
    """Sessions numbered as floats (as pandas stores integers beside a NaN), one set to ``value``."""

    def change(table: pd.DataFrame) -> pd.DataFrame:
        table["session"] = pd.factorize(table["session"])[0].astype(float)
        table.loc[5, "session"] = value
        return table

    return change


def named(value):
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table["session"] = table["session"].astype(object)
        table.loc[5, "session"] = value
        return table

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            numbered(np.nan),
            "column session, row 5: nan (allowed: a session's name, or an integer, on every row)",
        ),
        (
            numbered(1.5),
            "column session, row 5: 1.5 (allowed: a session's name, or an integer, on every row)",
        ),
        (named(None), "column session, row 5: no value (text required)"),
        (named("s" * 201), "column session, row 5: a name of 201 characters (at most 200)"),
    ],
    ids=["NaN among numbers", "fractional numbers", "missing name", "long name"],
)
def test_a_bad_session_value_is_refused_naming_the_row(tmp_path, change, message):
    change(session_table({"control": [4, 4], "A": [4, 4], "B": [4, 4]})).to_parquet(
        tmp_path / "behavior.parquet", index=False
    )
    with pytest.raises(InputFileError) as error:
        load(tmp_path, UNITS)
    assert str(error.value) == f"{tmp_path}/behavior.parquet: {message}"


def test_sessions_read_from_csv_split_as_from_parquet(tmp_path):
    table = session_table(SIZES)
    table.to_csv(tmp_path / "behavior.csv", index=False)
    loaded = load(tmp_path, UNITS)
    train, test = split(loaded.behavior, loaded.layout, 0.2, seed=1)
    assert_sessions_whole(train, test)
    assert test.index.equals(split(table, layout_of(table), 0.2, seed=1)[1].index)


def test_a_file_that_gained_a_session_column_after_planning_is_refused(tmp_path):
    table = session_table(SIZES)
    table.drop(columns="session").to_parquet(tmp_path / "behavior.parquet", index=False)
    planned = load(tmp_path, UNITS).layout
    table.to_parquet(tmp_path / "behavior.parquet", index=False)
    with pytest.raises(InputFileError, match=r"its session column \(present\) differ"):
        data_folder.read_job_folder(tmp_path / "behavior.parquet", planned)


def test_numbered_sessions_are_named_as_numbers_in_a_message():
    table = session_table({"control": [10, 10], "A": [6], "B": [2, 2]})
    table["session"] = pd.factorize(table["session"])[0]
    with pytest.raises(InputFileError, match=r"has 1 session, and session 2 holds 6 of its 6 rows"):
        layout_of(table)


@pytest.mark.parametrize("kind", [np.int32, np.uint64, np.float16, np.float64])
def test_whole_numbers_of_any_width_are_sessions(tmp_path, kind):
    table = session_table(SIZES)
    table["session"] = pd.factorize(table["session"])[0].astype(kind)
    table.to_parquet(tmp_path / "behavior.parquet", index=False)
    loaded = load(tmp_path, UNITS)
    assert_sessions_whole(*split(loaded.behavior, loaded.layout, 0.2, seed=0))
