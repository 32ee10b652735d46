"""Reading a data folder's files (knockout.data_folder.find_file / read_file): anything that
exists but cannot be read is named, any valid Parquet or comma-separated file is read
the same way, and values or names training cannot hold are refused at the check."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_data_folder import UNITS, behavior_table, neurons_table, write_folder

from knockout import data_folder
from knockout.data_folder import load, read_file
from knockout.errors import InputFileError

# ------------------------------------------------------------------- exists but cannot be read


def broken_link(path: Path) -> None:
    path.symlink_to(path.parent / "moved_away.parquet")


UNREADABLE = [
    ("broken link", broken_link, "a broken symbolic link (to "),
    ("FIFO", lambda path: os.mkfifo(path), "a FIFO (named pipe), not a regular file"),
    ("directory", lambda path: path.mkdir(), "a directory, not a file"),
]


@pytest.mark.parametrize("stem", ["behavior", "neurons"])
@pytest.mark.parametrize(("make", "message"), [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_a_file_that_exists_but_cannot_be_read_is_named_not_taken_as_absent(tmp_path, stem, make, message):
    folder = write_folder(tmp_path, behavior_table(), None)
    if stem == "behavior":
        (folder / "behavior.parquet").unlink()
    make(folder / f"{stem}.csv")  # a FIFO is never opened: this test would hang if it were
    with pytest.raises(InputFileError) as error:
        load(folder, UNITS)
    assert str(error.value).startswith(f"{folder / f'{stem}.csv'}: {message}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_named(tmp_path):
    folder = write_folder(tmp_path, behavior_table(), neurons_table())
    (folder / "neurons.parquet").chmod(0)
    with pytest.raises(InputFileError, match=r"neurons\.parquet: not readable \(permission denied"):
        load(folder, UNITS)


def test_two_files_for_one_stem_is_one_line_naming_both(tmp_path):
    folder = write_folder(tmp_path, behavior_table(), neurons_table())
    neurons_table().to_csv(folder / "neurons.csv", index=False)
    with pytest.raises(InputFileError, match=r"^.*: both neurons\.parquet and neurons\.csv; keep one$"):
        load(folder, UNITS)


# ---------------------------------------------------------------- any valid Parquet or CSV


def plain(table: pd.DataFrame) -> pd.DataFrame:
    """A table as the check compares it: columns in a fixed order, numbers as float, text as
    Python strings."""
    kinds = {c: float if c.startswith(("x_", "y_")) else object for c in table.columns}
    return table[sorted(table.columns)].astype(kinds)


PARQUET_INDEXES = {
    "set as index": lambda t: t.set_index("set"),
    "an input as index": lambda t: t.set_index("x_01"),
    "set and silenced as index": lambda t: t.set_index(["set", "silenced"]),
    "a named text index": lambda t: t.set_index(pd.Index([f"trial{i}" for i in range(len(t))], name="trial")),
    "an unnamed text index": lambda t: t.set_index(pd.Index([f"t{i}" for i in range(len(t))])),
    "a range index from 5": lambda t: t.set_index(pd.RangeIndex(5, 5 + len(t))),
}


@pytest.mark.parametrize("indexed", PARQUET_INDEXES.values(), ids=PARQUET_INDEXES.keys())
def test_a_parquet_file_saved_with_any_pandas_index_reads_as_its_columns(tmp_path, indexed):
    table = behavior_table()
    tmp_path.mkdir(exist_ok=True)
    indexed(table).to_parquet(tmp_path / "behavior.parquet")  # the index saved, as pandas does by default
    loaded = load(tmp_path, UNITS)
    pd.testing.assert_frame_equal(plain(loaded.behavior), plain(table))
    assert loaded.behavior.index.equals(pd.RangeIndex(len(table)))  # rows counted in file order


def csv_text(table: pd.DataFrame) -> str:
    return table.to_csv(index=False, lineterminator="\n")


CSV_DIALECTS = {
    "a trailing comma on every row": lambda text: "\n".join(f"{line}," for line in text.splitlines()) + "\n",
    "a trailing comma on the rows only": lambda text: (
        "\n".join(line + ("," * (number > 0)) for number, line in enumerate(text.splitlines())) + "\n"
    ),
    "every field quoted": lambda text: (
        "\n".join(",".join(f'"{field}"' for field in line.split(",")) for line in text.splitlines()) + "\n"
    ),
    "a byte-order mark": lambda text: "\ufeff" + text,
    "CRLF line ends": lambda text: text.replace("\n", "\r\n"),
}


@pytest.mark.parametrize("dialect", CSV_DIALECTS.values(), ids=CSV_DIALECTS.keys())
def test_a_csv_in_any_common_dialect_reads_as_the_plain_one(tmp_path, dialect):
    table = behavior_table()
    (tmp_path / "behavior.csv").write_text(dialect(csv_text(table)), encoding="utf-8", newline="")
    loaded = load(tmp_path, UNITS)
    pd.testing.assert_frame_equal(plain(loaded.behavior), plain(read_file(write_plain(tmp_path, table))))


def write_plain(tmp_path: Path, table: pd.DataFrame) -> Path:
    path = tmp_path / "plain" / "behavior.csv"
    path.parent.mkdir()
    table.to_csv(path, index=False)
    return path


def test_a_quoted_comma_stays_inside_its_field(tmp_path):
    table = behavior_table().replace({"set": {"A": "line A, strong"}})
    table.to_csv(tmp_path / "behavior.csv", index=False)
    assert "line A, strong" in load(tmp_path, UNITS).behavior["set"].tolist()


def with_lines(text: str, added: dict[int, str]) -> str:
    """The CSV ``text`` with ``added[n]`` appended to line ``n`` (0: the header)."""
    lines = text.splitlines()
    return "\n".join(line + added.get(number, "") for number, line in enumerate(lines)) + "\n"


CSV_REFUSED = {
    "a repeated column name": (
        lambda text: text.replace("x_02", "x_01", 1),
        "behavior.csv: column x_01 appears twice in the header (column names must be unique)",
    ),
    "semicolons": (
        lambda text: text.replace(",", ";"),
        "behavior.csv: the file must be comma-separated; its header looks semicolon (;)-separated",
    ),
    "tabs": (
        lambda text: text.replace(",", "\t"),
        "behavior.csv: the file must be comma-separated; its header looks tab-separated",
    ),
    "a header name missing": (
        lambda text: text.replace("silenced,", ",", 1),
        "behavior.csv: column 2 of the header has no name",
    ),
    "a first row with an extra field": (
        lambda text: with_lines(text, {1: ",7"}),
        "behavior.csv: row 0 has more fields than the header's 7",
    ),
    "a later row with an extra field, after trailing commas": (
        lambda text: with_lines(text, dict.fromkeys(range(19), ",") | {4: ",9"}),
        "behavior.csv: row 3 has more fields than the header's 7",
    ),
}


@pytest.mark.parametrize(("damage", "message"), CSV_REFUSED.values(), ids=CSV_REFUSED.keys())
def test_a_csv_pandas_would_misread_is_refused_in_one_line(tmp_path, damage, message):
    (tmp_path / "behavior.csv").write_text(damage(csv_text(behavior_table())))
    with pytest.raises(InputFileError) as error:
        load(tmp_path, UNITS)
    assert str(error.value) == f"{tmp_path}/{message}"


# ------------------------------------------------------------------ what training can hold


@pytest.mark.parametrize(("column", "value"), [("y_01", 1e39), ("x_00", -3.5e38)])
def test_a_value_beyond_float32_is_refused_naming_column_and_row(tmp_path, column, value):
    table = behavior_table()
    table.loc[7, column] = value
    with pytest.raises(InputFileError) as error:
        load(write_folder(tmp_path, table, None), UNITS)
    assert str(error.value) == (
        f"{tmp_path}/behavior.parquet: column {column}, row 7: {value:g} is outside what training can "
        f"represent (|value| <= 3.4e+38, float32)"
    )


def test_the_largest_float32_value_is_accepted(tmp_path):
    table = behavior_table()
    table.loc[7, "y_01"] = float(np.finfo(np.float32).max)
    load(write_folder(tmp_path, table, None), UNITS)


def test_a_recorded_response_beyond_float32_is_refused(tmp_path):
    neurons = neurons_table()
    neurons.loc[4, "r_A"] = 2e40
    with pytest.raises(InputFileError, match=r"neurons\.parquet: column r_A, row 4: 2e\+40 is outside"):
        load(write_folder(tmp_path, behavior_table(), neurons), UNITS)


def test_a_set_name_too_long_to_show_is_refused(tmp_path):
    table = behavior_table().replace({"set": {"A": "A" * 201}})
    with pytest.raises(InputFileError, match=r"column set, row 6: a name of 201 characters \(at most 200\)"):
        load(write_folder(tmp_path, table, None), UNITS)


# ---------------------------------------------------------------------- limits.memory_gb


def many_rows(rows: int) -> pd.DataFrame:
    """A behaviour table of ``rows`` repeated rows: a few kB on disk, not in memory."""
    repeat = np.arange(rows) % 2
    return pd.DataFrame(
        {
            "set": np.where(repeat, "A", "control"),
            "silenced": np.where(repeat, "A", ""),
            "x_00": np.zeros(rows, np.float32),
            "y_00": repeat.astype(np.float32),
        }
    )


def test_a_folder_over_the_memory_limit_is_refused_before_its_rows_are_read(tmp_path, monkeypatch):
    many_rows(2_000_000).to_parquet(tmp_path / "behavior.parquet", index=False)
    assert (tmp_path / "behavior.parquet").stat().st_size < 100_000
    monkeypatch.setattr(data_folder, "read_file", lambda path: pytest.fail(f"{path} was read"))
    with pytest.raises(InputFileError) as error:
        load(tmp_path, UNITS, memory_gb=0.5)
    assert str(error.value) == (
        f"{tmp_path}/behavior.parquet: 2000000 rows x 4 columns would take about 0.7 GB to read, check "
        f"and split, over limits.memory_gb = 0.5; raise limits.memory_gb if the machine has the memory, or "
        f"split the experiment into smaller folders"
    )


def test_the_neurons_file_counts_towards_the_limit(tmp_path):
    folder = write_folder(tmp_path, behavior_table(), neurons_table())
    load(folder, UNITS, memory_gb=0.5)
    small = neurons_table()
    big = small.iloc[np.tile(np.arange(len(small)), 200_000)].reset_index(drop=True)  # 10 x concat's speed
    big.to_parquet(folder / "neurons.parquet", index=False)
    with pytest.raises(InputFileError, match=r"neurons\.parquet: 2000000 rows x 5 columns would take about"):
        load(folder, UNITS, memory_gb=0.5)


def test_a_csv_is_sized_from_its_first_lines_without_reading_it(tmp_path):
    table = many_rows(300_000).assign(x_00=np.random.default_rng(0).normal(size=300_000))
    table.to_csv(tmp_path / "behavior.csv", index=False)
    rows, numeric, text, _ = data_folder._csv_shape(tmp_path / "behavior.csv")
    assert (numeric, text) == (2, 2)
    assert abs(rows - 300_000) < 0.02 * 300_000


@pytest.mark.parametrize(
    "content",
    [
        b"set,x_00,y\n" + b"a" * 200_000 + b"\n",
        bytes(range(256)) * 20,
        b"",
        b"\xff\xfe" + "set,x".encode("utf-16"),
    ],
    ids=["a field beyond the CSV limit", "binary", "empty", "UTF-16"],
)
def test_a_file_that_is_no_csv_is_refused_in_one_line_even_under_a_memory_limit(tmp_path, content):
    (tmp_path / "behavior.csv").write_bytes(content)
    with pytest.raises(InputFileError, match=r"^\S*behavior\.csv: "):
        load(tmp_path, UNITS, memory_gb=8)


def damaged_copies(good: bytes, seed: int, count: int, inserts: tuple[bytes, ...]):
    """``count`` copies of ``good`` with a few bytes overwritten, deleted or inserted."""
    rng = random.Random(seed)
    for _ in range(count):
        damaged = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            position, choice = rng.randrange(len(damaged)), rng.random()
            if choice < 0.5:
                damaged[position] = rng.randrange(256)
            elif choice < 0.75:
                del damaged[position : position + rng.randint(1, 5)]
            else:
                damaged[position:position] = rng.choice(inserts)
        yield bytes(damaged)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_damaged_file_is_one_line_or_a_table_never_a_traceback(tmp_path, suffix):
    table = behavior_table().assign(session=[f"s{row % 4}" for row in range(18)])
    good = write_folder(tmp_path / "good", table, None, suffix) / f"behavior{suffix}"
    inserts = (b",", b'"', b"\n", b"\r", b";", b"\t", b"1e40", b"\xff", b"\x00", b"\xef\xbb\xbf")
    for number, damaged in enumerate(damaged_copies(good.read_bytes(), 1, 300, inserts)):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / f"behavior{suffix}").write_bytes(damaged)
        try:
            load(folder, UNITS, memory_gb=8)
        except InputFileError as error:
            assert "\n" not in str(error)
