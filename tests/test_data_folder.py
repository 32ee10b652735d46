"""The import contract (knockout.data_folder): what a data folder may hold, and every way a
damaged one is refused with the file, the column and the first bad row named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from knockout import data_folder
from knockout.data_folder import Layout, load, simulated_layout, split
from knockout.errors import InputFileError
from knockout.simulation import DataSettings, FlySettings, behavior_file, simulate

UNITS = ["A", "B", "C"]
SETS = {"control": "", "A": "A", "B+C": "B+C"}
ROWS_PER_SET = 6


def behavior_table() -> pd.DataFrame:
    """Three sets of six rows (control, A silenced, B and C silenced together), two outputs."""
    rng = np.random.default_rng(0)
    blocks = []
    for name, silenced in SETS.items():
        block = pd.DataFrame(rng.normal(size=(ROWS_PER_SET, 3)), columns=["x_00", "x_01", "x_02"])
        block[["y_00", "y_01"]] = rng.normal(size=(ROWS_PER_SET, 2))
        block.insert(0, "silenced", silenced)
        block.insert(0, "set", name)
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def neurons_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.normal(size=(10, 3)), columns=["x_00", "x_01", "x_02"])
    table["r_A"] = rng.normal(size=10)
    table["r_C"] = rng.normal(size=10)
    table.loc[[2, 5], "r_C"] = np.nan  # not recorded on those stimuli
    return table


def write_folder(folder: Path, behavior: pd.DataFrame, neurons: pd.DataFrame | None, suffix=".parquet"):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, table in (("behavior", behavior), ("neurons", neurons)):
        if table is None:
            continue
        if suffix == ".csv":
            table.to_csv(folder / f"{stem}.csv", index=False)
        else:
            table.to_parquet(folder / f"{stem}.parquet", index=False)
    return folder


# ------------------------------------------------------------------------------------ a valid folder


def test_a_valid_folder_loads_with_its_layout(tmp_path):
    loaded = load(write_folder(tmp_path, behavior_table(), neurons_table()), UNITS)
    layout = loaded.layout
    assert layout.inputs == ("x_00", "x_01", "x_02") and layout.outputs == ("y_00", "y_01")
    assert layout.units == tuple(UNITS)
    assert layout.sets == (("control", ()), ("A", (0,)), ("B+C", (1, 2)))
    assert layout.recorded == ("A", "C") and layout.has_neurons and not layout.has_split
    assert layout.silenced == [True, True, True]
    assert Layout.from_dict(layout.as_dict()) == layout
    behavior_only = Layout.from_dict(layout.as_dict(behavior_only=True))
    assert behavior_only.recorded == () and behavior_only.sets == layout.sets


def test_csv_gives_the_same_layout_as_parquet(tmp_path):
    parquet = load(write_folder(tmp_path / "p", behavior_table(), neurons_table()), UNITS)
    csv = load(write_folder(tmp_path / "c", behavior_table(), neurons_table(), suffix=".csv"), UNITS)
    assert csv.layout == parquet.layout
    assert csv.behavior["silenced"].tolist() == parquet.behavior["silenced"].tolist()  # "" for control


def test_set_order_follows_the_units_not_the_rows(tmp_path):
    shuffled = behavior_table().sample(frac=1.0, random_state=3)
    layout = load(write_folder(tmp_path, shuffled, None), ["B", "C", "A"]).layout
    assert [name for name, _ in layout.sets] == ["control", "B+C", "A"]
    assert layout.sets[1] == ("B+C", (0, 1))


def test_a_unit_never_silenced_is_allowed_and_reported(tmp_path):
    layout = load(write_folder(tmp_path, behavior_table(), None), [*UNITS, "D"]).layout
    assert layout.silenced == [True, True, True, False]
    assert layout.recorded == () and not layout.has_neurons


def test_the_simulated_fly_writes_the_contract(tmp_path):
    _, train, test, neurons = simulate(FlySettings(n_inputs=5, n_hidden=3), DataSettings(4, 3, 6), seed=0)
    write_folder(tmp_path, behavior_file(train, test), neurons)
    units = ["unit_00", "unit_01", "unit_02"]
    assert load(tmp_path, units).layout == simulated_layout(5, 3, 1, None)


# ------------------------------------------------------------------------------------------- the split


def test_the_split_column_is_used_as_given(tmp_path):
    table = behavior_table()
    table.insert(
        2, "split", ["train"] * 4 + ["test"] * 2 + ["test", "train"] * 3 + ["train"] * 4 + ["test"] * 2
    )
    layout = load(write_folder(tmp_path, table, None), UNITS).layout
    train, test = split(table, layout, None, seed=0)
    assert train.index.tolist() == table.index[table["split"] == "train"].tolist()
    assert len(test) == 7


def test_without_a_split_column_each_set_is_split_by_a_seeded_draw():
    table = behavior_table()
    layout = data_folder.check_behavior(table, "behavior.parquet", UNITS)
    train, test = split(table, layout, 0.3, seed=4)
    assert test.groupby("set").size().to_dict() == dict.fromkeys(SETS, 2)  # round(0.3 * 6) = 2
    assert list(train.index) == sorted(train.index)  # file order kept
    again, _ = split(table, layout, 0.3, seed=4)
    other, _ = split(table, layout, 0.3, seed=5)
    assert train.index.equals(again.index) and not train.index.equals(other.index)
    # at least two rows on each side, whatever the fraction
    assert (split(table, layout, 0.01, 0)[1].groupby("set").size() == 2).all()
    assert (split(table, layout, 0.99, 0)[0].groupby("set").size() == 2).all()


# -------------------------------------------------------------------------------- damaged folders


def edit(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table = table.astype({column: str}) if isinstance(value, str) else table
        table.loc[row, column] = value
        return table

    return change


def drop(column: str):
    return lambda table: table.drop(columns=column)


def add(column: str, value=0.0):
    return lambda table: table.assign(**{column: value})


def only_rows(rows):
    return lambda table: table.drop(index=[i for i in table.index if i not in rows]).reset_index(drop=True)


def with_split(values):
    return lambda table: table.assign(split=values)


BEHAVIOR_CASES = [
    ("missing set", drop("set"), "behavior.parquet: column set missing"),
    ("missing silenced", drop("silenced"), "behavior.parquet: column silenced missing"),
    ("no inputs", lambda t: t.drop(columns=["x_00", "x_01", "x_02"]), "no input columns x_*"),
    ("no outputs", lambda t: t.drop(columns=["y_00", "y_01"]), "no output columns y_*"),
    ("extra column", add("speed"), "column speed not allowed"),
    ("y and y_*", add("y"), "both y and y_* columns"),
    ("unknown unit", edit("silenced", 7, "Z"), "column silenced, row 7: unit 'Z' is not in data.units"),
    ("unit twice", edit("silenced", 6, "A+A"), "column silenced, row 6: 'A+A' names a unit twice"),
    ("NaN input", edit("x_01", 4, np.nan), "column x_01, row 4: nan (allowed: finite numbers)"),
    ("infinite output", edit("y_01", 9, np.inf), "column y_01, row 9: inf"),
    ("text input", edit("x_02", 3, "abc"), "column x_02, row 3 ('abc'): not a number"),
    ("empty set name", edit("set", 2, ""), "column set, row 2: empty"),
    ("missing set name", edit("set", 5, None), "column set, row 5: no value (text required)"),
    ("numbers as set names", lambda t: t.assign(set=range(len(t))), "column set, row 0: 0 is not text"),
    ("control silences", edit("silenced", 0, "A"), "row 0: set 'control' silences 'A'"),
    (
        "set silences nothing",
        lambda t: t.assign(silenced=t["silenced"].where(t["set"] != "A", "")),
        "row 6: set 'A'",
    ),
    (
        "two silencings in a set",
        edit("silenced", 8, "B"),
        "column silenced, row 8: set 'A' silences 'A' on row 6",
    ),
    ("no control", lambda t: t[t["set"] != "control"].reset_index(drop=True), "no 'control' rows"),
    (
        "a set of one row",
        only_rows([*range(6), 6, *range(12, 18)]),
        "set 'A' (row 6) has 1 row; each set needs",
    ),
    ("a set of three rows", only_rows([*range(6), 6, 7, 8, *range(12, 18)]), "set 'A' (row 6) has 3 rows"),
    (
        "bad split",
        with_split(["train", "test", "dev"] * 6),
        "column split, row 2: 'dev' (allowed: train, test)",
    ),
    ("one test row", with_split((["train"] * 5 + ["test"]) * 3), "has 5 train and 1 test rows"),
    ("no rows", lambda t: t.iloc[:0], "the table has no rows"),
]


@pytest.mark.parametrize(
    ("damage", "message"), [c[1:] for c in BEHAVIOR_CASES], ids=[c[0] for c in BEHAVIOR_CASES]
)
def test_a_damaged_behavior_file_is_refused_naming_file_column_and_row(tmp_path, damage, message):
    folder = write_folder(tmp_path, damage(behavior_table()), neurons_table())
    with pytest.raises(InputFileError) as error:
        load(folder, UNITS)
    assert message in str(error.value)


NEURONS_CASES = [
    (
        "missing input",
        drop("x_02"),
        "neurons.parquet: inputs x_* differ from the behaviour file's (missing x_02)",
    ),
    ("extra input", add("x_03"), "(extra x_03)"),
    ("unknown unit", add("r_Z"), "column r_Z: unit 'Z' is not in data.units"),
    ("extra column", add("time"), "column time not allowed (allowed: x_*, r_<unit>)"),
    ("NaN stimulus", edit("x_00", 3, np.nan), "column x_00, row 3: nan (allowed: finite numbers)"),
    ("infinite response", edit("r_A", 5, -np.inf), "column r_A, row 5: -inf (allowed: finite numbers or NaN"),
    ("two recorded values", lambda t: t.assign(r_A=[1.0, 2.0] + [np.nan] * 8), "column r_A holds 2 recorded"),
    ("text response", edit("r_C", 1, "high"), "column r_C, row 1 ('high'): not a number"),
]


@pytest.mark.parametrize(
    ("damage", "message"), [c[1:] for c in NEURONS_CASES], ids=[c[0] for c in NEURONS_CASES]
)
def test_a_damaged_neurons_file_is_refused_naming_file_column_and_row(tmp_path, damage, message):
    folder = write_folder(tmp_path, behavior_table(), damage(neurons_table()))
    with pytest.raises(InputFileError) as error:
        load(folder, UNITS)
    assert message in str(error.value)
    assert str(error.value).startswith(str(folder / "neurons.parquet"))


def test_every_behavior_error_names_the_behavior_file(tmp_path):
    for name, damage, _ in BEHAVIOR_CASES:
        folder = write_folder(tmp_path / name.replace(" ", "_"), damage(behavior_table()), None)
        with pytest.raises(InputFileError) as error:
            load(folder, UNITS)
        assert str(error.value).startswith(str(folder / "behavior.parquet")), (name, error.value)


def test_a_damaged_csv_row_is_named_as_pandas_counts_it(tmp_path):
    folder = write_folder(tmp_path, edit("x_01", 11, np.nan)(behavior_table()), None, suffix=".csv")
    with pytest.raises(InputFileError, match=r"behavior\.csv: column x_01, row 11: nan"):
        load(folder, UNITS)


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda folder: None, "no such folder"),
        (lambda folder: folder.mkdir(), "no behavior.parquet or behavior.csv"),
        (
            lambda folder: [write_folder(folder, behavior_table(), None, s) for s in (".parquet", ".csv")],
            "both behavior.parquet and behavior.csv; keep one",
        ),
        (
            lambda folder: (folder.mkdir(), (folder / "behavior.parquet").write_bytes(b"PAR1 half a file")),
            "behavior.parquet: not a readable Parquet file",
        ),
    ],
    ids=["no folder", "no behavior file", "parquet and csv", "not parquet"],
)
def test_a_folder_without_one_readable_behavior_file_is_refused(tmp_path, prepare, message):
    folder = tmp_path / "data"
    prepare(folder)
    with pytest.raises(InputFileError, match=message):
        load(folder, UNITS)


@pytest.mark.parametrize(
    ("units", "message"),
    [([], "data.units: empty"), (["A", "A", "B", "C"], "must be unique"), (["A", "B+C"], "not a unit name")],
)
def test_data_units_must_be_unique_plain_names(tmp_path, units, message):
    with pytest.raises(InputFileError, match=message):
        load(write_folder(tmp_path, behavior_table(), None), units)


def test_a_file_changed_after_planning_is_refused_naming_what_changed(tmp_path):
    folder = write_folder(tmp_path, behavior_table(), None)
    planned = load(folder, UNITS).layout
    drop("x_02")(behavior_table()).to_parquet(folder / "behavior.parquet", index=False)
    with pytest.raises(
        InputFileError, match=r"its inputs \(2: x_00, x_01\) differ .* \(3: x_00, x_01, x_02\)"
    ):
        data_folder.read_job_folder(folder / "behavior.parquet", planned)


def test_text_columns_may_be_categorical_and_a_missing_silenced_value_is_control(tmp_path):
    table = behavior_table()
    table["set"] = table["set"].astype("category")
    table["silenced"] = table["silenced"].where(table["set"] != "control", None)
    layout = load(write_folder(tmp_path, table, None), UNITS).layout
    assert layout.sets == (("control", ()), ("A", (0,)), ("B+C", (1, 2)))
