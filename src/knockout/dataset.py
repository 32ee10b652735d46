"""The import contract: an experiment's behaviour (and neural recordings) as files.

A data folder holds

- ``behavior.parquet`` (or ``.csv``): one row per sample; ``set`` (``control`` or the
  silenced set's name), ``silenced`` (the silenced units joined by ``+``, empty for
  control), inputs ``x_*``, behavioural outputs ``y`` or ``y_*``, optional ``split``
  (``train`` / ``test``);
- ``neurons.parquet`` (or ``.csv``, optional): stimuli ``x_*`` (the same inputs) and
  recorded responses ``r_<unit>`` for any of the units (NaN where a neuron was not
  recorded on a stimulus).

The simulated fly writes the same files, so one code path trains and evaluates both.
Every check names the file, the column and the first bad row (0-based, as pandas
counts), so a bad file is refused before anything runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from knockout import naming, tables
from knockout.errors import InputFileError

BEHAVIOR, NEURONS = "behavior", "neurons"
SUFFIXES = (".parquet", ".csv")
TEXT_COLUMNS = ("set", "silenced", "split")
MIN_ROWS_PER_SPLIT = 2
"""Each set needs this many training and this many test rows (R² needs two)."""
MIN_RECORDED = 3
"""A recorded neuron needs this many finite responses (a correlation needs three to mean anything)."""
UNIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""Unit names: a letter or digit, then letters, digits, ``_``, ``.`` or ``-`` (``+`` joins them)."""


@dataclass(frozen=True)
class Layout:
    """What an experiment's files hold, known before any job runs.

    ``sets`` is (name, indices into ``units`` it silences) per set, in the order training
    and tables use: control first, then by the units they silence. ``recorded`` are the
    units with a recorded response (empty without a neurons file).
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    units: tuple[str, ...]
    sets: tuple[tuple[str, tuple[int, ...]], ...]
    has_split: bool
    recorded: tuple[str, ...] = ()
    has_neurons: bool = False

    @classmethod
    def from_dict(cls, values: dict) -> Layout:
        """From the plain form rules pass as ``params`` (lists for tuples)."""
        sets = tuple((name, tuple(units)) for name, units in values["sets"])
        fields = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        return cls(**(fields | {"sets": sets}))

    def as_dict(self, behavior_only: bool = False) -> dict:
        """The plain form; ``behavior_only`` leaves out what the neurons file says, so that
        editing it does not change the params of a step that reads behaviour only."""
        values = {
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "units": list(self.units),
            "sets": [[name, list(units)] for name, units in self.sets],
            "has_split": self.has_split,
        }
        if not behavior_only:
            values |= {"recorded": list(self.recorded), "has_neurons": self.has_neurons}
        return values

    @property
    def silenced(self) -> list[bool]:
        """Per unit, whether some set silences it."""
        hit = {unit for _, units in self.sets for unit in units}
        return [unit in hit for unit in range(len(self.units))]


def simulated_layout(n_inputs: int, n_hidden: int, n_outputs: int, n_silenced: int | None) -> Layout:
    """The layout of the files the simulated fly writes (every unit recorded)."""
    units = naming.unit_names(n_hidden)
    names = naming.dataset_names(n_hidden, n_silenced)
    sets = ((names[0], ()), *((name, (unit,)) for unit, name in enumerate(names[1:])))
    return Layout(
        inputs=tuple(naming.input_columns(n_inputs)),
        outputs=tuple(naming.output_columns(n_outputs)),
        units=tuple(units),
        sets=sets,
        has_split=True,
        recorded=tuple(units),
        has_neurons=True,
    )


def find_file(folder: str | os.PathLike, stem: str, required: bool) -> Path | None:
    """``<folder>/<stem>.parquet`` or ``.csv``; both, or neither when ``required``, is an error."""
    found = [
        Path(folder) / f"{stem}{suffix}"
        for suffix in SUFFIXES
        if (Path(folder) / f"{stem}{suffix}").is_file()
    ]
    if len(found) > 1:
        raise InputFileError(f"{folder}: both {found[0].name} and {found[1].name}; keep one")
    if not found and required:
        if not Path(folder).is_dir():
            raise InputFileError(f"data.source {folder}: no such folder (a folder holding behavior.parquet)")
        raise InputFileError(
            f"{folder}: no {stem}.parquet or {stem}.csv (data.source's folder must hold one)"
        )
    return found[0] if found else None


def read_file(path: str | os.PathLike) -> pd.DataFrame:
    """A Parquet or CSV table; text columns stay text (an empty ``silenced`` is "")."""
    path = Path(path)
    if path.suffix == ".csv" and path.is_file() and path.stat().st_size > tables.MAX_TABLE_BYTES // 2:
        raise InputFileError(
            f"{path}: {path.stat().st_size / 2**30:.1f} GiB of CSV; at most "
            f"{tables.MAX_TABLE_BYTES / 2**31:.0f} GiB (convert it to Parquet, which is read column-wise)"
        )
    if path.suffix != ".csv" and path.is_file():
        tables.check_parquet_size(path)
    try:
        if path.suffix == ".csv":
            table = pd.read_csv(path, dtype={column: str for column in TEXT_COLUMNS}, keep_default_na=True)
            return _plain_text(table)
        return _plain_text(pd.read_parquet(path, engine="pyarrow"))
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except Exception as error:  # pyarrow and the CSV parser raise many types for damaged files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        kind = "CSV" if path.suffix == ".csv" else "Parquet"
        raise InputFileError(f"{path}: not a readable {kind} file ({reason})") from None


def _plain_text(table: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings (a categorical or Arrow string column too); a
    missing ``silenced`` value is the empty string (control silences nothing)."""
    for column in TEXT_COLUMNS:
        if column in table and not pd.api.types.is_numeric_dtype(table[column]):
            values = table[column].astype(object)
            missing = values.isna()
            if column == "silenced":
                values = values.where(~missing, "")
            table[column] = values
    return table


def _first_row(table: pd.DataFrame, bad: np.ndarray) -> int:
    return int(table.index[np.flatnonzero(bad)[0]])


def _numbered_columns(columns: list[str], prefix: str) -> list[str]:
    return [column for column in columns if column.startswith(prefix)]


def _check_numeric(path: Path, table: pd.DataFrame, columns: list[str], nan_allowed: bool) -> None:
    for column in columns:
        if not pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(table[column]):
            values = pd.to_numeric(table[column], errors="coerce")
            bad = values.isna().to_numpy() & table[column].notna().to_numpy()
            row = (
                f", row {_first_row(table, bad)} ({table[column].iloc[np.flatnonzero(bad)[0]]!r})"
                if bad.any()
                else ""
            )
            raise InputFileError(f"{path}: column {column}{row}: not a number (type {table[column].dtype})")
        values = table[column].to_numpy(np.float64)
        bad = np.isinf(values) if nan_allowed else ~np.isfinite(values)
        if bad.any():
            allowed = "finite numbers or NaN (not recorded)" if nan_allowed else "finite numbers"
            value = values[np.flatnonzero(bad)[0]]
            raise InputFileError(
                f"{path}: column {column}, row {_first_row(table, bad)}: {value} (allowed: {allowed})"
            )


def _check_text(path: Path, table: pd.DataFrame, column: str) -> pd.Series:
    values = table[column]
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values  # every value is text (one pass in C; the search below finds the first that is not)
    bad = ~values.map(lambda value: isinstance(value, str)).to_numpy()
    if bad.any():
        value = values.iloc[np.flatnonzero(bad)[0]]
        problem = "no value (text required)" if pd.isna(value) else f"{value} is not text"
        raise InputFileError(f"{path}: column {column}, row {_first_row(table, bad)}: {problem}")
    return values


def _check_units(units: list[str]) -> None:
    if not units:
        raise InputFileError("data.units: empty; list the model's silenceable units, in order")
    for unit in units:
        if not isinstance(unit, str) or not UNIT_NAME.match(unit):
            raise InputFileError(
                f"data.units: {unit!r} is not a unit name (a letter or digit, then letters, digits, _ . -)"
            )
    if len(set(units)) != len(units):
        raise InputFileError("data.units: names must be unique")


def check_behavior(table: pd.DataFrame, path: str | os.PathLike, units: list[str]) -> Layout:
    """The layout of a behaviour table, or :class:`InputFileError` naming what is wrong."""
    path = Path(path)
    _check_units(units)
    columns = [str(column) for column in table.columns]
    inputs = _numbered_columns(columns, "x_")
    outputs = ["y"] if "y" in columns else _numbered_columns(columns, "y_")
    for required in ("set", "silenced"):
        if required not in columns:
            raise InputFileError(f"{path}: column {required} missing (required: set, silenced, x_*, y_*)")
    if not inputs:
        raise InputFileError(f"{path}: no input columns x_* (at least one is required)")
    if not outputs:
        raise InputFileError(f"{path}: no output columns y_* (at least one behavioural variable)")
    if "y" in columns and _numbered_columns(columns, "y_"):
        raise InputFileError(f"{path}: both y and y_* columns; name one output y, several y_00, y_01 ...")
    allowed = {"set", "silenced", "split", *inputs, *outputs}
    if extra := [column for column in columns if column not in allowed]:
        raise InputFileError(
            f"{path}: column {extra[0]} not allowed (allowed: set, silenced, split, x_*, y_*)"
        )
    if table.empty:
        raise InputFileError(f"{path}: the table has no rows")
    set_names = _check_text(path, table, "set")
    silenced = _check_text(path, table, "silenced")
    _check_numeric(path, table, [*inputs, *outputs], nan_allowed=False)
    known = {unit: index for index, unit in enumerate(units)}
    for row, joined in silenced.drop_duplicates().items():
        if unknown := [unit for unit in joined.split(naming.UNIT_SEPARATOR) if joined and unit not in known]:
            raise InputFileError(
                f"{path}: column silenced, row {row}: unit {unknown[0]!r} is not in data.units "
                f"({', '.join(units[:6])}{' ...' if len(units) > 6 else ''})"
            )
    silenced_of: dict[str, tuple[int, ...]] = {}
    first_row_of: dict[str, int] = {}
    for row, (name, joined) in enumerate(zip(set_names.to_numpy(), silenced.to_numpy(), strict=True)):
        if name in silenced_of:
            continue
        label = int(table.index[row])
        if not name:
            raise InputFileError(f"{path}: column set, row {label}: empty (a set's name, or control)")
        names = joined.split(naming.UNIT_SEPARATOR) if joined else []
        if len(set(names)) != len(names):
            raise InputFileError(f"{path}: column silenced, row {label}: {joined!r} names a unit twice")
        if (name == naming.CONTROL) != (not names):
            raise InputFileError(
                f"{path}: column silenced, row {label}: set {name!r} silences {joined!r}; the "
                f"{naming.CONTROL} set (and only it) silences nothing"
            )
        silenced_of[name] = tuple(known[unit] for unit in names)
        first_row_of[name] = label
    joined_of = {
        name: naming.UNIT_SEPARATOR.join(units[u] for u in unit_list)
        for name, unit_list in silenced_of.items()
    }
    mismatch = silenced.to_numpy() != set_names.map(joined_of).to_numpy()
    if mismatch.any():
        row = np.flatnonzero(mismatch)[0]
        raise InputFileError(
            f"{path}: column silenced, row {int(table.index[row])}: set {set_names.iloc[row]!r} silences "
            f"{joined_of[set_names.iloc[row]]!r} on row {first_row_of[set_names.iloc[row]]}, "
            f"{silenced.iloc[row]!r} here (one set, one silencing)"
        )
    if naming.CONTROL not in silenced_of:
        raise InputFileError(f"{path}: column set: no {naming.CONTROL!r} rows (the unsilenced animals)")
    has_split = "split" in columns
    if has_split:
        split = _check_text(path, table, "split")
        bad = ~split.isin(naming.SPLITS).to_numpy()
        if bad.any():
            raise InputFileError(
                f"{path}: column split, row {_first_row(table, bad)}: {split.iloc[np.flatnonzero(bad)[0]]!r} "
                f"(allowed: {', '.join(naming.SPLITS)})"
            )
    need = f"{MIN_ROWS_PER_SPLIT} to train and {MIN_ROWS_PER_SPLIT} to test"
    if has_split:
        counts = table.groupby(["set", "split"]).size().unstack(fill_value=0)
        for name in counts.index:
            have = {part: int(counts.loc[name].get(part, 0)) for part in naming.SPLITS}
            if min(have.values()) < MIN_ROWS_PER_SPLIT:
                raise InputFileError(
                    f"{path}: set {name!r} (row {first_row_of[name]}) has {have['train']} train and "
                    f"{have['test']} test rows; each set needs at least {need}"
                )
    else:
        for name, count in table.groupby("set").size().items():
            if count < 2 * MIN_ROWS_PER_SPLIT:
                raise InputFileError(
                    f"{path}: set {name!r} (row {first_row_of[name]}) has {count} row{'s' * (count != 1)}; "
                    f"each set needs at least {2 * MIN_ROWS_PER_SPLIT} ({need})"
                )
    order = sorted(silenced_of, key=lambda name: (silenced_of[name], name))
    return Layout(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        units=tuple(units),
        sets=tuple((name, silenced_of[name]) for name in order),
        has_split=has_split,
    )


def check_neurons(table: pd.DataFrame, path: str | os.PathLike, layout: Layout) -> Layout:
    """The behaviour ``layout`` with the recorded units of a neurons table added."""
    path = Path(path)
    columns = [str(column) for column in table.columns]
    inputs = _numbered_columns(columns, "x_")
    if set(inputs) != set(layout.inputs):
        missing = sorted(set(layout.inputs) - set(inputs))
        extra = sorted(set(inputs) - set(layout.inputs))
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"extra {', '.join(extra[:3])}" if extra else "",
            )
            if part
        )
        raise InputFileError(f"{path}: inputs x_* differ from the behaviour file's ({detail})")
    responses = _numbered_columns(columns, "r_")
    if extra := [column for column in columns if column not in inputs and column not in responses]:
        raise InputFileError(f"{path}: column {extra[0]} not allowed (allowed: x_*, r_<unit>)")
    known = set(layout.units)
    for column in responses:
        if column.removeprefix("r_") not in known:
            raise InputFileError(
                f"{path}: column {column}: unit {column.removeprefix('r_')!r} is not in data.units "
                f"({', '.join(layout.units[:6])}{' ...' if len(layout.units) > 6 else ''})"
            )
    if table.empty:
        raise InputFileError(f"{path}: the table has no rows")
    _check_numeric(path, table, inputs, nan_allowed=False)
    _check_numeric(path, table, responses, nan_allowed=True)
    for column in responses:
        finite = int(np.isfinite(table[column].to_numpy(np.float64)).sum())
        if finite < MIN_RECORDED:
            raise InputFileError(
                f"{path}: column {column} holds {finite} recorded values; a neuron needs {MIN_RECORDED}"
            )
    recorded = tuple(unit for unit in layout.units if naming.response_column(unit) in responses)
    return Layout(**(layout.__dict__ | {"recorded": recorded, "has_neurons": True}))


@dataclass(frozen=True)
class Dataset:
    """An experiment's validated files: behaviour, and the neurons table or None."""

    layout: Layout
    behavior: pd.DataFrame
    neurons: pd.DataFrame | None


def read_behavior(path: str | os.PathLike, units: list[str]) -> tuple[pd.DataFrame, Layout]:
    """A behaviour file, checked against the contract."""
    table = read_file(path)
    return table, check_behavior(table, path, list(units))


def read_neurons(path: str | os.PathLike, layout: Layout) -> tuple[pd.DataFrame, Layout]:
    """A neurons file, checked against the contract and the behaviour file's ``layout``."""
    table = read_file(path)
    return table, check_neurons(table, path, layout)


def load(folder: str | os.PathLike, units: list[str]) -> Dataset:
    """A data folder's files, checked; :class:`InputFileError` names the first problem."""
    behavior, layout = read_behavior(find_file(folder, BEHAVIOR, required=True), units)
    neurons = None
    if (neurons_path := find_file(folder, NEURONS, required=False)) is not None:
        neurons, layout = read_neurons(neurons_path, layout)
    return Dataset(layout, behavior, neurons)


def expect_layout(path: str | os.PathLike, found: Layout, expected: Layout) -> None:
    """A job's file must hold what the workflow planned the run for (from the config, or
    from the files as they were when it started)."""
    for field, what in (
        ("inputs", "inputs"),
        ("outputs", "outputs"),
        ("sets", "sets"),
        ("has_split", "split column"),
        ("recorded", "recorded units"),
    ):
        have, want = getattr(found, field), getattr(expected, field)
        if have != want:
            raise InputFileError(
                f"{path}: its {what} ({_shown(have)}) differ from those the run was planned for "
                f"({_shown(want)}); does the file match the config? (a file edited during a run: "
                f"run snakemake again)"
            )


def _shown(values) -> str:
    if isinstance(values, bool):
        return "present" if values else "absent"
    values = [name if isinstance(name, str) else name[0] for name in values]
    return f"{len(values)}: {', '.join(values[:3])}{' ...' if len(values) > 3 else ''}"


def read_rows(
    path: str | os.PathLike, layout: Layout, test_fraction: float | None, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A job's behaviour file, checked against the planned ``layout``, as (train, test) rows."""
    table, found = read_behavior(path, layout.units)
    expect_layout(path, found, layout)
    return split(table, layout, test_fraction, seed)


def split(
    table: pd.DataFrame, layout: Layout, test_fraction: float | None, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and test rows (in file order): the ``split`` column when there is one,
    else per set a seeded draw of ``test_fraction`` of its rows (at least 2, leaving at
    least 2), so that each replicate seed also draws a new split."""
    if layout.has_split:
        is_test = (table["split"] == "test").to_numpy()
    elif test_fraction is None:
        raise ValueError("the data have no split column: a test_fraction is needed")
    else:
        # imported here: PyTorch takes over a second to import, and the workflow imports this
        # module at every start (for the layout), where no split is drawn
        import torch

        from knockout import seeding

        is_test = np.zeros(len(table), dtype=bool)
        generator = seeding.generator(seed, "split")
        set_names = table["set"].to_numpy()
        for name, _ in layout.sets:
            rows = np.flatnonzero(set_names == name)
            n_test = min(
                max(round(test_fraction * len(rows)), MIN_ROWS_PER_SPLIT), len(rows) - MIN_ROWS_PER_SPLIT
            )
            chosen = torch.randperm(len(rows), generator=generator)[:n_test].numpy()
            is_test[rows[chosen]] = True
    return table[~is_test], table[is_test]
