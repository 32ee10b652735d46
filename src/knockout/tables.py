"""Reading and writing the Parquet tables that flow between steps.

Writes are atomic (a temporary file in the same folder, then a rename), so a killed
job never leaves a file that looks complete. Reads check what they get and fail
with ``<path>: <what is wrong>`` instead of a traceback from inside a library.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from knockout import naming
from knockout.errors import InputFileError, one_line

TEXT_COLUMNS = {
    *("set", "silenced_units", "unit_name", "model", "measure", "value", "key", "output"),
    *("r2_note", "null", "silencing", "kind"),
}
"""The only columns of the pipeline's tables that hold text; every other one holds numbers."""


FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Training holds the data as float32: a larger value would become infinite there."""


def check_readable(path: Path) -> None:
    """Refuse, without opening it, a path that is not a regular file this process may read
    (opening a FIFO would block until something writes to it)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise InputFileError(
                f"{path}: a broken symbolic link (to {os.readlink(path)}, which does not exist)"
            ) from None
        raise InputFileError(f"{path}: file not found") from None
    except OSError as error:
        raise InputFileError(f"{path}: cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(mode):
        raise InputFileError(f"{path}: a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a special file (socket or device)"
        raise InputFileError(f"{path}: {kind}, not a regular file; save the table to a file")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{path}: not readable (permission denied; check its permissions)")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes it 0600; behave like open()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


MAX_TABLE_BYTES = 4 << 30
"""A Parquet table read into memory may take at most this many bytes (its metadata gives
rows and columns before anything is read; a compressed file can hold far more)."""


def check_parquet_size(path: str | os.PathLike, limit: int = MAX_TABLE_BYTES) -> None:
    """Refuse, unread, a Parquet file whose rows would take more than ``limit`` bytes in memory
    (a small file of repeated values can declare billions of rows)."""
    import pyarrow.parquet

    try:
        metadata = pyarrow.parquet.read_metadata(path)
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except (pyarrow.ArrowException, OSError) as error:
        raise InputFileError(f"{path}: not a readable Parquet file ({one_line(error)})") from None
    encoded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    size = max(encoded, 8 * metadata.num_rows * metadata.num_columns)  # 8 bytes a number in memory
    if size > limit:
        raise InputFileError(
            f"{path}: {metadata.num_rows} rows x {metadata.num_columns} columns would take "
            f"{size / 2**30:.2f} GiB in memory; tables are read whole, at most {limit / 2**30:.0f} GiB"
        )


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Parquet, written atomically and byte-for-byte reproducibly (no index, no timestamps).

    Only columns that are not numbers are dictionary-encoded: measured values seldom repeat,
    and trying a dictionary on each made a data file 3x slower to write and 1.5x larger."""
    text = [str(column) for column in table.columns if not pd.api.types.is_numeric_dtype(table[column])]
    write_atomically(
        path, lambda tmp: table.to_parquet(tmp, index=False, engine="pyarrow", use_dictionary=text)
    )


def read_table(
    path: str | os.PathLike, columns: Iterable[str], may_be_nan: Iterable[str] = ()
) -> pd.DataFrame:
    """A Parquet table that must hold ``columns`` (in any order; others are ignored), with
    finite numbers except NaN in ``may_be_nan`` (e.g. an undefined confidence interval)."""
    columns = list(columns)
    check_parquet_size(path)
    try:
        table = pd.read_parquet(path, engine="pyarrow")
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except (pyarrow.ArrowException, OSError) as error:
        raise InputFileError(f"{path}: not a readable Parquet file ({error})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputFileError(
            f"{path}: column(s) {shown} missing (expected {columns[0]} ... {columns[-1]}, "
            f"{len(columns)} columns; does the file match the config?)"
        )
    if table.empty:
        raise InputFileError(f"{path}: the table has no rows")
    table = table[columns]
    numeric_columns = [c for c in columns if c not in TEXT_COLUMNS]
    not_numeric = [c for c in numeric_columns if not pd.api.types.is_numeric_dtype(table[c])]
    if not_numeric:
        shown = ", ".join(f"{c} ({table[c].dtype})" for c in not_numeric[:5])
        raise InputFileError(f"{path}: column(s) {shown} should hold numbers")

    def bad_values(column: str) -> np.ndarray:
        values = table[column].to_numpy(np.float64)
        return np.isinf(values) if column in may_be_nan else ~np.isfinite(values)

    not_finite = [c for c in numeric_columns if bad_values(c).any()]
    if not_finite:
        raise InputFileError(f"{path}: column(s) {', '.join(not_finite[:5])} hold NaN or infinite values")
    return table


def read_seed_tables(
    paths: list, seeds: list[int], columns: list[str], may_be_nan: Iterable[str] = ()
) -> pd.DataFrame:
    """One table per seed (as ``read_table``), concatenated with a ``seed`` column."""
    return pd.concat(
        [
            read_table(path, columns, may_be_nan).assign(seed=seed)
            for path, seed in zip(paths, seeds, strict=True)
        ],
        ignore_index=True,
    )


def read_neural_scores(paths: list, seeds: list[int]) -> pd.DataFrame:
    """Every seed's neural table (``metrics.neural_scores``), where only the columns of
    ``naming.NEURAL_MAY_BE_NAN`` may be NaN (they are undefined for some architectures)."""
    return read_seed_tables(paths, seeds, naming.NEURAL_SCORE_COLUMNS, naming.NEURAL_MAY_BE_NAN)


def read_chance_scores(paths: list, seeds: list[int], neural: pd.DataFrame) -> pd.DataFrame | None:
    """Every seed's chance table (``metrics.chance_table``) for the seeds of ``neural``;
    None where ``neural`` has no recorded unit (each chance table is then empty)."""
    if not neural["recorded"].any():
        return None
    return read_seed_tables(paths, seeds, naming.CHANCE_COLUMNS, ("score",))


def read_behavior_scores(paths: list, seeds: list[int]) -> pd.DataFrame:
    """Every seed's behaviour table (``metrics.behavior_scores``); the noise ceiling is NaN
    on recorded data."""
    return read_seed_tables(paths, seeds, naming.BEHAVIOR_SCORE_COLUMNS, naming.BEHAVIOR_MAY_BE_NAN)
