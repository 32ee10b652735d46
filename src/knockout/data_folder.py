"""The import contract: an experiment's behaviour (and neural recordings) as files.

A data folder holds

- ``behavior.parquet`` (or ``.csv``): one row per sample; ``set`` (``control`` or the
  silenced set's name), ``silenced`` (the silenced units joined by ``+``, empty for
  control), inputs ``x_*``, behavioural outputs: continuous ``y`` or ``y_*`` and binary
  ``b_*`` (0 or 1: an event, such as a song pulse, in the sample), optional ``split``
  (``train`` / ``test``) and optional ``session`` (a name or integer grouping rows that
  belong together: an animal, a trial, a recording; a split never cuts one);
- ``neurons.parquet`` (or ``.csv``, optional): stimuli ``x_*`` (the same inputs) and
  recorded responses ``r_<unit>`` for any of the units (NaN where a neuron was not
  recorded on a stimulus).

The simulated fly writes the same files, so one code path trains and evaluates both.
Every check names the file, the column and the first bad row (0-based, as pandas
counts), so a bad file is refused before anything runs.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from knockout import memory, naming, stimulus_arrays, tables
from knockout.errors import InputFileError, one_line
from knockout.tables import FLOAT32_MAX, check_readable

LOG = logging.getLogger(__name__)
"""A job's log (knockout_workflow.jobs configures it): what an array's histories left out."""
BEHAVIOR, NEURONS = "behavior", "neurons"
SUFFIXES = (".parquet", ".csv")
TEXT_COLUMNS = ("set", "silenced", "split", "session")
MIN_ROWS_PER_SPLIT = 2
"""Each set needs this many training and this many test rows (R² needs two)."""
MIN_RECORDED = 3
"""A recorded neuron needs this many finite responses (a correlation needs three to mean anything)."""
MAX_NAME_LENGTH = 200
"""The longest set or session name, in characters."""
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
    has_sessions: bool = False
    stimulus: str | None = None
    """Where the inputs come from: None, the tables' ``x_*`` columns; ``frames`` or
    ``stimuli``, the folder's array (:mod:`knockout.stimulus_arrays`), whose entries the
    readers name in each sample's ``entry_columns`` (its history's frames, or its history)."""
    history: int = 1
    """Frames per sample (the array's; 1 without one)."""
    frame_shape: tuple[int, ...] = ()
    """One frame's shape: (H, W) images or (F,) features; () without an array."""

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
            "has_sessions": self.has_sessions,
            "stimulus": self.stimulus,
            "history": self.history,
            "frame_shape": list(self.frame_shape),
        }
        if not behavior_only:
            values |= {"recorded": list(self.recorded), "has_neurons": self.has_neurons}
        return values

    @property
    def n_inputs(self) -> int:
        """d, the values of one sample's input: its ``x_*`` columns, or its history's frames'."""
        if self.stimulus is None:
            return len(self.inputs)
        return self.history * math.prod(self.frame_shape)

    @property
    def entry_columns(self) -> tuple[str, ...]:
        """The columns by which the tables as the readers give them name a sample's input
        in the array's values (:attr:`FolderData.inputs`): one per frame of its history
        (``frames.npy``), or one (``stimuli.npy``, whose entries are histories); none
        without an array."""
        if self.stimulus is None:
            return ()
        return tuple(naming.entry_columns(self.history if self.stimulus == stimulus_arrays.FRAMES else 1))

    def standardizes(self, setting: bool | str) -> bool:
        """Whether networks fitted to these data standardize their inputs, for the config's
        ``model.standardize``: ``auto`` is on where the stimuli are frames (near one
        background value they train poorly as they are)."""
        return self.stimulus is not None if setting == "auto" else bool(setting)

    @property
    def binary_outputs(self) -> int:
        """How many outputs, the last ones, are binary (``b_*``)."""
        return sum(naming.is_binary_output(output) for output in self.outputs)

    @property
    def silenced(self) -> list[bool]:
        """Per unit, whether some set silences it."""
        hit = {unit for _, units in self.sets for unit in units}
        return [unit in hit for unit in range(len(self.units))]


def simulated_layout(
    n_inputs: int, n_hidden: int, n_outputs: int, n_silenced: int | None, binary_outputs: int = 0
) -> Layout:
    """The layout of the files the simulated fly writes (every unit recorded)."""
    units = naming.unit_names(n_hidden)
    names = naming.simulated_set_names(n_hidden, n_silenced)
    sets = ((names[0], ()), *((name, (unit,)) for unit, name in enumerate(names[1:])))
    return Layout(
        inputs=tuple(naming.input_columns(n_inputs)),
        outputs=tuple(naming.output_columns(n_outputs, binary_outputs)),
        units=tuple(units),
        sets=sets,
        has_split=True,
        recorded=tuple(units),
        has_neurons=True,
    )


def find_file(folder: str | os.PathLike, stem: str, required: bool) -> Path | None:
    """``<folder>/<stem>.parquet`` or ``.csv``; both, or neither when ``required``, is an error.

    A candidate that exists but cannot be read (a broken link, a directory, a FIFO) is an
    error naming it, never "absent": an optional neurons file that silently went missing
    would give a run without recorded units and no word about it."""
    candidates = [Path(folder) / f"{stem}{suffix}" for suffix in SUFFIXES]
    found = [path for path in candidates if os.path.lexists(path)]
    for path in found:
        check_readable(path)
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
    """A Parquet or CSV table, rows numbered 0, 1 ... in file order; text columns stay text
    (an empty ``silenced`` is "")."""
    path = Path(path)
    check_readable(path)
    if path.suffix == ".csv" and path.stat().st_size > tables.MAX_TABLE_BYTES // 2:
        raise InputFileError(
            f"{path}: {path.stat().st_size / 2**30:.1f} GiB of CSV; at most "
            f"{tables.MAX_TABLE_BYTES / 2**31:.0f} GiB (convert it to Parquet, which is read column-wise)"
        )
    read = _read_csv if path.suffix == ".csv" else _read_parquet
    try:
        if path.suffix != ".csv":
            tables.check_parquet_size(path)
        table = read(path)
    except InputFileError:
        raise
    except Exception as error:  # pyarrow and the CSV parser raise many types for damaged files
        kind = "CSV" if path.suffix == ".csv" else "Parquet"
        raise InputFileError(f"{path}: not a readable {kind} file ({one_line(error)})") from None
    if duplicated := sorted({str(c) for c in table.columns[table.columns.duplicated()]}):
        raise InputFileError(f"{path}: column {duplicated[0]} appears twice (column names must be unique)")
    return _plain_text(table)


def _is_contract_column(name) -> bool:
    return isinstance(name, str) and (name in TEXT_COLUMNS or name == "y" or name[:2] in ("x_", "y_", "r_"))


def _read_parquet(path: Path) -> pd.DataFrame:
    """The file's columns; a pandas index saved with it (``df.set_index("set")``) is a column
    again where it is one of the contract's, and row labels (dropped) otherwise. Text columns
    are read as dictionaries: a long name repeated on every row is held once, not per row."""
    import pyarrow.parquet

    names = pyarrow.parquet.read_schema(path).names
    table = pyarrow.parquet.read_table(path, read_dictionary=[c for c in TEXT_COLUMNS if c in names])
    frame = table.to_pandas()
    restore = [name for name in frame.index.names if _is_contract_column(name) and name not in frame.columns]
    return (frame.reset_index(level=restore) if restore else frame).reset_index(drop=True)


def _read_csv(path: Path) -> pd.DataFrame:
    """A comma-separated file (quoted fields, a UTF-8 byte-order mark, CRLF line ends; a
    trailing comma on every line is not an extra column). Its header is checked first:
    pandas would silently rename a repeated name (``x_1`` to ``x_1.1``) and read a
    ``;``-separated file as one column."""
    header, first = _csv_head(path)
    if len(header) == 1 and (delimiter := _other_delimiter(header[0])):
        raise InputFileError(
            f"{path}: the file must be comma-separated; its header looks {delimiter}-separated"
        )
    named = header[:-1] if len(header) > 1 and header[-1] == "" else header
    if "" in named:
        raise InputFileError(f"{path}: column {named.index('') + 1} of the header has no name")
    if duplicated := [name for index, name in enumerate(named) if name in named[:index]]:
        raise InputFileError(
            f"{path}: column {duplicated[0]} appears twice in the header (column names must be unique)"
        )
    trailing = len(first) == len(named) + 1 and first[-1] == ""
    if len(first) > len(named) + trailing:  # pandas would drop the first row's extra fields
        raise InputFileError(f"{path}: row 0 has more fields than the header's {len(named)}")
    extra = "\0trailing"  # a name no header holds: the empty field after a trailing comma
    table = pd.read_csv(
        path,
        header=0,
        names=[*named, extra] if trailing else named,
        index_col=False,
        encoding="utf-8-sig",
        dtype={column: "category" for column in TEXT_COLUMNS if column in named},
        keep_default_na=True,
    )
    if trailing and (filled := table[extra].notna().to_numpy()).any():
        raise InputFileError(
            f"{path}: row {int(np.flatnonzero(filled)[0])} has more fields than the header's {len(named)}"
        )
    return table.drop(columns=extra) if trailing else table


def _csv_head(path: Path) -> tuple[list[str], list[str]]:
    """The header's fields and the first row's (empty without one), as the CSV dialect
    reads them (quotes, a byte-order mark)."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            rows = csv.reader(handle)
            return next(rows, []), next(rows, [])
    except csv.Error as error:
        raise InputFileError(f"{path}: not a readable CSV file ({one_line(error)})") from None


def _other_delimiter(field: str) -> str | None:
    """The delimiter a one-column header seems to use, in words (None: it is one name)."""
    for delimiter, name in ((";", "semicolon (;)"), ("\t", "tab"), ("|", "pipe (|)")):
        if delimiter in field:
            return name
    return None


def _plain_text(table: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings (a categorical or Arrow string column too); a
    missing ``silenced`` value is the empty string (control silences nothing)."""
    for column in TEXT_COLUMNS:
        if column in table and not pd.api.types.is_numeric_dtype(table[column]):
            values = _objects(table[column])
            missing = values.isna()
            if column == "silenced":
                values = values.where(~missing, "")
            table[column] = values
    return table


def _objects(values: pd.Series) -> pd.Series:
    """A text column as Python objects; a categorical one (as read) with one object per
    distinct value, shared by its rows, rather than a new string per row."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(object)
    names = np.append(np.asarray(values.cat.categories, dtype=object), None)  # code -1: missing
    return pd.Series(names[values.cat.codes.to_numpy()], index=values.index, name=values.name, dtype=object)


def _first_row(table: pd.DataFrame, bad: np.ndarray) -> int:
    """The first flagged row, counted from 0 in file order (whatever the table's index)."""
    return int(np.flatnonzero(bad)[0])


def _numbered_columns(columns: list[str], prefix: str) -> list[str]:
    return [column for column in columns if column.startswith(prefix)]


def _check_binary(path: Path, table: pd.DataFrame, columns: list[str]) -> None:
    """Binary outputs hold 0 or 1 on every row (an event happened in the sample or not)."""
    for column in columns:
        bad = ~np.isin(table[column].to_numpy(np.float64), (0.0, 1.0))
        if bad.any():
            value = table[column].iloc[np.flatnonzero(bad)[0]]
            raise InputFileError(
                f"{path}: column {column}, row {_first_row(table, bad)}: {value} "
                "(a binary output b_* holds 0 or 1)"
            )


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
        if (too_large := np.abs(values) > FLOAT32_MAX).any():
            raise InputFileError(
                f"{path}: column {column}, row {_first_row(table, too_large)}: "
                f"{values[np.flatnonzero(too_large)[0]]:g} is outside what training can represent "
                f"(|value| <= {FLOAT32_MAX:.1e}, float32)"
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


def _check_names(path: Path, table: pd.DataFrame, column: str) -> pd.Series:
    """A column of names (sets, sessions): text, at most :data:`MAX_NAME_LENGTH` characters
    (figures and tables show them; a long name repeated on every row costs memory)."""
    values = _check_text(path, table, column)
    if too_long := [name for name in pd.unique(values.to_numpy()) if len(name) > MAX_NAME_LENGTH]:
        row = _first_row(table, values.to_numpy() == too_long[0])
        raise InputFileError(
            f"{path}: column {column}, row {row}: a name of {len(too_long[0])} characters "
            f"(at most {MAX_NAME_LENGTH})"
        )
    return values


def _session_keys(table: pd.DataFrame) -> np.ndarray:
    """Each row's session, as the split groups them: names, or numbers as float64 or int64
    (pandas cannot group every float width)."""
    sessions = table["session"]
    return sessions.to_numpy(np.float64) if pd.api.types.is_float_dtype(sessions) else sessions.to_numpy()


def _shown_session(value) -> str:
    """A session as a message shows it: a name quoted, a number as written."""
    return repr(value) if isinstance(value, str) else str(value)


def _mapped(values: np.ndarray, mapping: dict) -> np.ndarray:
    """``mapping`` applied to each of ``values`` (objects), one lookup per distinct value:
    pandas' ``map`` would first copy a text column into one string per row."""
    codes, distinct = pd.factorize(values)
    return np.array([mapping[value] for value in distinct] + [None], dtype=object)[codes]


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


def check_behavior(
    table: pd.DataFrame,
    path: str | os.PathLike,
    units: list[str],
    index_column: str | None = None,
    samples: np.ndarray | None = None,
) -> Layout:
    """The layout of a behaviour table, or :class:`InputFileError` naming what is wrong.
    ``index_column``: the table names its inputs in the folder's array by that column
    (checked by :func:`knockout.stimulus_arrays.sample_index`) instead of ``x_*`` columns;
    ``samples``: the positions of its rows that are samples (the others are history only),
    whose numbers per set, split and session are what training and testing need."""
    path = Path(path)
    _check_units(units)
    columns = [str(column) for column in table.columns]
    inputs = _numbered_columns(columns, "x_")
    continuous = ["y"] if "y" in columns else _numbered_columns(columns, "y_")
    binary = _numbered_columns(columns, naming.BINARY_PREFIX)
    outputs = [*continuous, *binary]  # the network's outputs: continuous, then binary
    for required in ("set", "silenced"):
        if required not in columns:
            raise InputFileError(f"{path}: column {required} missing (required: set, silenced, x_*, y_*)")
    if not inputs and index_column is None:
        raise InputFileError(
            f"{path}: no input columns x_* (at least one is required, or frames.npy / stimuli.npy beside it)"
        )
    if not outputs:
        raise InputFileError(
            f"{path}: no output columns y_* or b_* (at least one behavioural variable: "
            "y_* continuous, b_* binary)"
        )
    if "y" in columns and _numbered_columns(columns, "y_"):
        raise InputFileError(f"{path}: both y and y_* columns; name one output y, several y_00, y_01 ...")
    allowed = {
        "set",
        "silenced",
        "split",
        "session",
        *inputs,
        *outputs,
        *([index_column] if index_column else []),
    }
    if extra := [column for column in columns if column not in allowed]:
        named = "x_*" if index_column is None else index_column
        raise InputFileError(
            f"{path}: column {extra[0]} not allowed "
            f"(allowed: set, silenced, split, session, {named}, y_*, b_*)"
        )
    if table.empty:
        raise InputFileError(f"{path}: the table has no rows")
    set_names = _check_names(path, table, "set")
    silenced = _check_text(path, table, "silenced")
    _check_numeric(path, table, [*inputs, *outputs], nan_allowed=False)
    _check_binary(path, table, binary)
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
        if not name:
            raise InputFileError(f"{path}: column set, row {row}: empty (a set's name, or control)")
        names = joined.split(naming.UNIT_SEPARATOR) if joined else []
        if len(set(names)) != len(names):
            raise InputFileError(f"{path}: column silenced, row {row}: {joined!r} names a unit twice")
        if (name == naming.CONTROL) != (not names):
            raise InputFileError(
                f"{path}: column silenced, row {row}: set {name!r} silences {joined!r}; the "
                f"{naming.CONTROL} set (and only it) silences nothing"
            )
        silenced_of[name] = tuple(known[unit] for unit in names)
        first_row_of[name] = row
    joined_of = {
        name: naming.UNIT_SEPARATOR.join(units[u] for u in unit_list)
        for name, unit_list in silenced_of.items()
    }
    mismatch = silenced.to_numpy() != _mapped(set_names.to_numpy(), joined_of)
    if mismatch.any():
        row = np.flatnonzero(mismatch)[0]
        raise InputFileError(
            f"{path}: column silenced, row {row}: set {set_names.iloc[row]!r} silences "
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
    counted = table if samples is None else table.iloc[samples]
    if has_split:
        counts = counted.groupby(["set", "split"]).size().unstack(fill_value=0)
        for name in counts.index:
            have = {part: int(counts.loc[name].get(part, 0)) for part in naming.SPLITS}
            if min(have.values()) < MIN_ROWS_PER_SPLIT:
                raise InputFileError(
                    f"{path}: set {name!r} (row {first_row_of[name]}) has {have['train']} train and "
                    f"{have['test']} test rows; each set needs at least {need}"
                )
    else:
        for name, count in counted.groupby("set").size().items():
            if count < 2 * MIN_ROWS_PER_SPLIT:
                raise InputFileError(
                    f"{path}: set {name!r} (row {first_row_of[name]}) has {count} row{'s' * (count != 1)}; "
                    f"each set needs at least {2 * MIN_ROWS_PER_SPLIT} ({need})"
                )
    has_sessions = "session" in columns
    if has_sessions:
        _check_sessions(path, table, has_split, first_row_of, counted)
    order = sorted(silenced_of, key=lambda name: (silenced_of[name], name))
    return Layout(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        units=tuple(units),
        sets=tuple((name, silenced_of[name]) for name in order),
        has_split=has_split,
        has_sessions=has_sessions,
    )


def _check_sessions(
    path: Path, table: pd.DataFrame, has_split: bool, first_row_of: dict[str, int], counted: pd.DataFrame
) -> None:
    """The ``session`` column: a name or an integer on every row, and sessions a split can
    keep whole: with a ``split`` column, each session on one side; without one, per set
    enough sessions that whole ones leave 2 of the ``counted`` rows (the samples) to train
    and 2 to test."""
    sessions = table["session"]
    if pd.api.types.is_bool_dtype(sessions) or pd.api.types.is_float_dtype(sessions):
        values = sessions.to_numpy(np.float64)
        bad = pd.api.types.is_bool_dtype(sessions) | ~(np.isfinite(values) & (values == np.round(values)))
        if bad.any():
            row = _first_row(table, bad)
            raise InputFileError(
                f"{path}: column session, row {row}: {sessions.iloc[row]} (allowed: a session's name, or an "
                f"integer, on every row)"
            )
    elif not pd.api.types.is_integer_dtype(sessions):
        _check_names(path, table, "session")
    sessions = pd.Series(_session_keys(table), index=table.index)
    if has_split:
        first_split = table["split"].groupby([table["set"], sessions], sort=False).transform("first")
        if (moved := (table["split"] != first_split).to_numpy()).any():
            row = _first_row(table, moved)
            raise InputFileError(
                f"{path}: column split, row {row}: session {_shown_session(sessions.iloc[row])} of set "
                f"{table['set'].iloc[row]!r} is in both train and test (a session must lie on one side)"
            )
        return
    sizes = sessions.loc[counted.index].groupby(counted["set"], sort=False).value_counts()
    for name, per_session in sizes.groupby(level=0, sort=False):
        largest, total = int(per_session.max()), int(per_session.sum())
        if len(per_session) < 2 or total - largest < MIN_ROWS_PER_SPLIT:
            session = _shown_session(per_session.idxmax()[1])
            raise InputFileError(
                f"{path}: set {name!r} (row {first_row_of[name]}) has {len(per_session)} "
                f"session{'s' * (len(per_session) != 1)}, and session {session} holds {largest} of its "
                f"{total} rows; whole sessions must leave at least {MIN_ROWS_PER_SPLIT} rows to train and "
                f"{MIN_ROWS_PER_SPLIT} to test (add sessions, or give a split column)"
            )


def check_neurons(table: pd.DataFrame, path: str | os.PathLike, layout: Layout) -> Layout:
    """The behaviour ``layout`` with the recorded units of a neurons table added. Beside an
    array, the table is its samples (:func:`array_samples`), naming their stimuli by entry
    columns instead of ``x_*`` columns."""
    path = Path(path)
    columns = [str(column) for column in table.columns]
    array = layout.stimulus is not None
    inputs = list(layout.entry_columns) if array else _numbered_columns(columns, "x_")
    if not array and set(inputs) != set(layout.inputs):
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
class FolderData:
    """An experiment's validated files: behaviour, the neurons table or None, and where the
    stimuli are an array, the values of the entries the tables name, float32
    [entries, entry_width] (a frame, or a history, flattened): held once, however many
    samples' histories hold an entry; the tables' entry columns (``layout.entry_columns``)
    are row numbers into it. None where the tables' ``x_*`` columns are the inputs, or the
    values were not read (:func:`load` with ``gather`` False)."""

    layout: Layout
    behavior: pd.DataFrame
    neurons: pd.DataFrame | None
    inputs: np.ndarray | None = None


def read_behavior(
    path: str | os.PathLike,
    units: list[str],
    history: int = 1,
    memory_gb: float | None = None,
) -> tuple[pd.DataFrame, Layout]:
    """A behaviour file, checked against the contract. Beside an array (frames.npy or
    stimuli.npy in its folder), its samples (:func:`array_samples`; ``history``: frames per
    sample for frames.npy), naming their inputs' entries of the array (:func:`with_inputs`
    reads them)."""
    table = read_file(path)
    array = stimulus_arrays.find_array(Path(path).parent)
    if array is None:
        if history != 1:
            raise InputFileError(
                f"data.history = {history}, but {Path(path).parent} holds no frames.npy (frames over "
                f"time, whose histories it sizes); leave data.history out"
            )
        return table, check_behavior(table, path, list(units))
    array = stimulus_arrays.open_array(array)
    if array.history is not None and history not in (1, array.history):
        raise InputFileError(
            f"data.history = {history}, but {array.path} gives each sample's history itself, "
            f"{array.history} frames: set data.history to {array.history} or leave it out"
        )
    samples, index = array_samples(table, path, array, history, memory_gb)
    # every row checked as the file numbers them; each set's samples counted per split and session
    layout = check_behavior(table, path, list(units), array.index_column, index.rows)
    shape = {"stimulus": array.kind, "history": index.history, "frame_shape": tuple(array.frame_shape)}
    return samples, Layout(**(layout.__dict__ | {"inputs": ()} | shape))


def array_samples(
    table: pd.DataFrame,
    path: str | os.PathLike,
    array: stimulus_arrays.StimulusArray,
    history: int,
    memory_gb: float | None = None,
) -> tuple[pd.DataFrame, stimulus_arrays.SampleIndex]:
    """A table whose rows name their inputs in ``array``, as the tables' contract has it:
    its samples (rows with a full history; the others are history only), the index column
    replaced by the entries of the array each one's input is made of (``entry_00`` ...:
    its history's frames, oldest first, or its one history). With ``memory_gb``, entries
    that would not fit a training job are refused before they are read."""
    index = stimulus_arrays.sample_index(table, array, history, path)
    if index.n_samples == 0:
        raise InputFileError(
            f"{path}: no samples: every session has at most {index.history - 1} rows, and a sample "
            f"needs its frame and the {index.history - 1} before it in its session (data.history = "
            f"{index.history}); lower data.history"
        )
    if memory_gb is not None:
        named = len(np.unique(index.entries))
        size = stimulus_arrays.input_bytes(named, array)
        held = size * memory.TRAINING_INPUT_COPIES + memory.RUNTIME_BYTES
        if held > memory_gb * memory.GIB:
            raise InputFileError(
                f"{array.path}: the {named} {array.index_column}s its samples are made of take "
                f"{size / memory.GIB:.1f} GB as float32, and a training job holds them about "
                f"{memory.TRAINING_INPUT_COPIES} times ({held / memory.GIB:.1f} GB with the runtime), over "
                f"limits.memory_gb = {memory_gb:g}; lower data.history, or raise limits.memory_gb if the "
                f"machine has the memory"
            )
    LOG.info("%s: %s", path, index.summary())
    rows = table.iloc[index.rows].reset_index(drop=True).drop(columns=array.index_column)
    entries = pd.DataFrame(index.entries, columns=naming.entry_columns(index.entries.shape[1]))
    return pd.concat([rows, entries], axis=1), index


def read_neurons(path: str | os.PathLike, layout: Layout) -> tuple[pd.DataFrame, Layout]:
    """A neurons file, checked against the contract and the behaviour file's ``layout``
    (beside an array, its samples as the behaviour's: naming their inputs' entries)."""
    table = read_file(path)
    if layout.stimulus is not None:
        array = stimulus_arrays.open_array(Path(path).parent / stimulus_arrays.ARRAY_FILES[layout.stimulus])
        table, _ = array_samples(table, path, array, layout.history)
        table = table.drop(columns=stimulus_arrays.SESSION, errors="ignore")  # it served the histories
    return table, check_neurons(table, path, layout)


def with_inputs(data: FolderData, folder: str | os.PathLike) -> FolderData:
    """``data`` with its inputs: the values of the array entries its tables name, read
    once from ``folder``'s array (each entry once, however many samples' histories hold
    it), the tables' entry columns renumbered to rows of them. Unchanged without an array."""
    layout = data.layout
    if layout.stimulus is None:
        return data
    array = stimulus_arrays.open_array(Path(folder) / stimulus_arrays.ARRAY_FILES[layout.stimulus])
    columns = list(layout.entry_columns)
    tables = [table for table in (data.behavior, data.neurons) if table is not None]
    named = [table[columns].to_numpy(np.int64) for table in tables]
    used, rows = np.unique(np.concatenate([block.reshape(-1) for block in named]), return_inverse=True)
    values = stimulus_arrays.read_entries(array, used)
    renumbered, start = [], 0
    for table, block in zip(tables, named, strict=True):
        own = rows[start : start + block.size].reshape(block.shape)
        start += block.size
        renumbered.append(table.assign(**{column: own[:, n] for n, column in enumerate(columns)}))
    neurons = renumbered[1] if data.neurons is not None else None
    return FolderData(layout, renumbered[0], neurons, values)


def load(
    folder: str | os.PathLike,
    units: list[str],
    memory_gb: float | None = None,
    history: int = 1,
    gather: bool = True,
) -> FolderData:
    """A data folder's files, checked; :class:`InputFileError` names the first problem.
    With ``memory_gb`` (``limits.memory_gb``), files that would take more memory than that
    to read, check and split are refused before they are read. An array's every value is
    checked finite here, once per workflow start (the jobs check its content's digest);
    ``gather`` False leaves its values unread (:attr:`FolderData.inputs` None: what the
    workflow's start needs)."""
    behavior_path = find_file(folder, BEHAVIOR, required=True)
    neurons_path = find_file(folder, NEURONS, required=False)
    if memory_gb is not None:
        check_memory([path for path in (behavior_path, neurons_path) if path is not None], memory_gb)
    if (array := stimulus_arrays.find_array(folder)) is not None:
        stimulus_arrays.check_finite(stimulus_arrays.open_array(array))
    behavior, layout = read_behavior(behavior_path, units, history, memory_gb)
    neurons = None
    if neurons_path is not None:
        neurons, layout = read_neurons(neurons_path, layout)
    data = FolderData(layout, behavior, neurons)
    return with_inputs(data, folder) if gather else data


def check_memory(paths: list[Path], memory_gb: float) -> None:
    """Refuse, unread, files whose reading, checking and splitting (all held at once, as a
    job holds them) would take more than ``memory_gb``: a small compressed file can hold millions of
    rows, and a long name repeated on every row takes its length on each."""
    total = memory.RUNTIME_BYTES
    for path in paths:  # found by find_file, so readable regular files
        rows, numeric, text, dictionaries = (
            _parquet_shape(path) if path.suffix != ".csv" else _csv_shape(path)
        )
        total += memory.table_bytes(rows, numeric, text, dictionaries)
        if total > memory_gb * memory.GIB:
            raise InputFileError(
                f"{path}: {rows} rows x {numeric + text} columns would take about "
                f"{total / memory.GIB:.1f} GB to read, check and split, over limits.memory_gb = "
                f"{memory_gb:g}; raise limits.memory_gb if the machine has the memory, or split the "
                f"experiment into smaller folders"
            )


def _parquet_shape(path: Path) -> tuple[int, int, int, int]:
    """(rows, numeric columns, text columns, bytes of the text columns' pages) from a Parquet
    file's metadata, which holds them without reading any row."""
    import pyarrow
    import pyarrow.parquet

    try:
        metadata = pyarrow.parquet.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except (pyarrow.ArrowException, OSError, ValueError) as error:  # ValueError: names not UTF-8
        raise InputFileError(f"{path}: not a readable Parquet file ({one_line(error)})") from None
    text = [index for index, field in enumerate(schema) if not _is_number(field.type)]
    pages = sum(
        metadata.row_group(group).column(column).total_uncompressed_size
        for group in range(metadata.num_row_groups)
        for column in text
    )
    return metadata.num_rows, len(schema) - len(text), len(text), pages


def _is_number(kind) -> bool:
    import pyarrow

    return pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind) or pyarrow.types.is_boolean(kind)


CSV_SAMPLE_BYTES = 1 << 20
"""A CSV's rows are estimated from the mean length of the lines in its first mebibyte."""


def _csv_shape(path: Path) -> tuple[int, int, int, int]:
    """(rows, numeric columns, text columns, 0) of a CSV, estimated from its size and its
    first lines (the contract's text columns are text, every other one a number)."""
    header, _ = _csv_head(path)
    with open(path, "rb") as handle:
        lines = handle.read(CSV_SAMPLE_BYTES).splitlines()[1:-1] or [b"\n"]
    body = path.stat().st_size - len(",".join(header))
    rows = round(body / (sum(map(len, lines)) / len(lines) + 1))
    text = sum(column in TEXT_COLUMNS for column in header)
    return rows, len(header) - text, text, 0


def expect_layout(path: str | os.PathLike, found: Layout, expected: Layout) -> None:
    """A job's file must hold what the workflow planned the run for (from the config, or
    from the files as they were when it started)."""
    for field, what in (
        ("inputs", "inputs"),
        ("stimulus", "array"),
        ("history", "frames per sample"),
        ("frame_shape", "frame shape"),
        ("outputs", "outputs"),
        ("sets", "sets"),
        ("has_split", "split column"),
        ("has_sessions", "session column"),
        ("recorded", "recorded units"),
    ):
        have, want = getattr(found, field), getattr(expected, field)
        if have != want:
            raise InputFileError(
                f"{path}: its {what} ({_shown(have)}) differ from those the run was planned for "
                f"({_shown(want)}); does the file match the config? (a file edited during a run: "
                f"start the run again)"
            )


def _shown(values) -> str:
    if isinstance(values, bool):
        return "present" if values else "absent"
    values = [name if isinstance(name, str) else name[0] for name in values]
    return f"{len(values)}: {', '.join(values[:3])}{' ...' if len(values) > 3 else ''}"


def read_job_folder(
    behavior_path: str | os.PathLike, layout: Layout, neurons_path: str | os.PathLike | None = None
) -> FolderData:
    """A job's files (behaviour, and the neurons file where given), checked against the
    planned ``layout``, with their inputs (:func:`with_inputs`)."""
    table, found = read_behavior(behavior_path, layout.units, layout.history)
    expect_layout(behavior_path, found, Layout.from_dict(layout.as_dict(behavior_only=True)))
    neurons = None
    if neurons_path is not None:
        neurons, found = read_neurons(neurons_path, found)
        expect_layout(neurons_path, found, layout)
    return with_inputs(FolderData(found, table, neurons), Path(behavior_path).parent)


def job_folders(
    behavior_paths: list, layout: Layout, n_seeds: int, neurons_paths: list = ()
) -> Iterator[FolderData]:
    """Each of ``n_seeds`` seeds' files of a job: a folder's, read and checked once, here,
    and the same for every seed; or a file (and neurons file) per seed (the simulated
    fly's), each read when its seed comes."""
    neurons_paths = list(neurons_paths) or [None] * len(behavior_paths)
    if len(behavior_paths) == 1:
        return itertools.repeat(read_job_folder(behavior_paths[0], layout, neurons_paths[0]), n_seeds)
    return (
        read_job_folder(behavior, layout, neurons)
        for behavior, neurons in zip(behavior_paths, neurons_paths, strict=True)
    )


def split(
    table: pd.DataFrame, layout: Layout, test_fraction: float | None, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and test rows (in file order): the ``split`` column when there is one,
    else per set a seeded draw of about ``test_fraction`` of its rows (at least 2, leaving
    at least 2), so that each replicate seed also draws a new split. With a ``session``
    column the draw takes whole sessions: frames of one session never land on both sides."""
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
            target = max(round(test_fraction * len(rows)), MIN_ROWS_PER_SPLIT)
            if layout.has_sessions:
                session, _ = pd.factorize(_session_keys(table)[rows])
                order = torch.randperm(session.max() + 1, generator=generator).numpy()
                drawn = order[whole_sessions(np.bincount(session)[order], target)]
                is_test[rows[np.isin(session, drawn)]] = True
            else:
                n_test = min(target, len(rows) - MIN_ROWS_PER_SPLIT)
                chosen = torch.randperm(len(rows), generator=generator)[:n_test].numpy()
                is_test[rows[chosen]] = True
    return table[~is_test], table[is_test]


def whole_sessions(sizes: np.ndarray, target: int) -> np.ndarray:
    """Which of the sessions (rows each, in drawn order) to test on: each in turn until the
    test rows reach ``target``, skipping one that would leave fewer than 2 to train. Where
    whole sessions can leave 2 rows on each side (the layout check), this does."""
    chosen, total, taken = [], int(sizes.sum()), 0
    for index, size in enumerate(sizes.tolist()):
        if taken >= target:
            break
        if total - taken - size >= MIN_ROWS_PER_SPLIT:
            chosen.append(index)
            taken += size
    return np.array(chosen, dtype=np.int64)
