"""Array stimuli: a data folder's inputs as a NumPy array instead of ``x_*`` columns.

A folder holds at most one of

- ``frames.npy``: one frame per time point, [n_frames, H, W] or [n_frames, F]; table rows
  name theirs with an integer column ``frame`` and, where k > 1, a ``session``. A row's input is
  the history of k frames (``data.history``) of itself and the k-1 rows before it in its
  session, sorted by ``frame``, oldest first; the first k-1 rows of a session are history
  only, never samples;
- ``stimuli.npy``: one history per sample, given directly, [n_samples, k, H, W] or
  [n_samples, k, F]; table rows name theirs with an integer column ``sample``.

Values are float16, float32, float64 or uint8 (read as value / 255); a sample's input is
float32 [k, *frame_shape]. An array is never loaded whole: its header is read to check it,
its values are scanned memory-mapped in chunks, and only the entries the tables name are
read from the memory map, each once (:func:`read_entries`; :mod:`knockout.inputs` gathers
the histories from them), so a recording larger than the memory is checked and read as
the data folder's tables are. Every refusal is an :class:`InputFileError` of one line naming the file and the
frame, sample or table row (0-based, as pandas counts), as :mod:`knockout.data_folder` does.

numpy and pandas only: the workflow imports this at every start, where PyTorch would cost
seconds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from knockout.errors import InputFileError, one_line
from knockout.tables import FLOAT32_MAX, check_readable

FRAMES, STIMULI = "frames", "stimuli"
ARRAY_FILES = {FRAMES: "frames.npy", STIMULI: "stimuli.npy"}
"""The file each kind of array stimulus is read from, in a data folder."""
INDEX_COLUMNS = {FRAMES: "frame", STIMULI: "sample"}
"""The integer column by which a table row names its entry of the array (0-based), and what
one entry (index along axis 0) is called in messages."""
NDIMS = {FRAMES: (2, 3), STIMULI: (3, 4)}
"""The axes each kind may have: [n, F] or [n, H, W]; [n, k, F] or [n, k, H, W]."""
SHAPE_WORDS = {
    FRAMES: "2 ([n_frames, F]) or 3 ([n_frames, H, W])",
    STIMULI: "3 ([n_samples, k, F]) or 4 ([n_samples, k, H, W])",
}
ALLOWED_DTYPES = ("float16", "float32", "float64", "uint8")
"""uint8 is read as value / 255 (images as saved by most cameras), the others as they are."""
SESSION = "session"
CHUNK_BYTES = 16 << 20
"""Bytes of the array a scan or a gather reads at a time (the scan of a column-major file
holds at most four times this besides: a mask, and the positions of the values it flags)."""
INPUT_BYTES_PER_VALUE = 4
"""Inputs are held as float32."""


@dataclass(frozen=True)
class StimulusArray:
    """An array stimulus file, known from its header alone (nothing of its data read).

    ``offset`` is where its data start in the file, ``fortran_order`` whether they are
    stored column-major (MATLAB's and Julia's writers do this); both are what a memory map
    of it needs."""

    path: Path
    kind: str
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int
    fortran_order: bool = False

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """The shape of one frame: (H, W) or (F,)."""
        return self.shape[1:] if self.kind == FRAMES else self.shape[2:]

    @property
    def history(self) -> int | None:
        """k, the frames per sample, for ``stimuli.npy`` (its second axis); None for
        ``frames.npy``, whose k the config gives (``data.history``)."""
        return self.shape[1] if self.kind == STIMULI else None

    @property
    def n_entries(self) -> int:
        """The frames (``frames.npy``) or samples (``stimuli.npy``) it holds."""
        return self.shape[0]

    @property
    def index_column(self) -> str:
        """The table column naming a row's entry: ``frame`` or ``sample``."""
        return INDEX_COLUMNS[self.kind]

    def memory_map(self) -> np.ndarray:
        """The array, read-only and memory-mapped: indexing it reads only what it selects."""
        return np.memmap(
            self.path,
            dtype=self.dtype,
            mode="r",
            offset=self.offset,
            shape=self.shape,
            order="F" if self.fortran_order else "C",
        )


def find_array(folder: str | os.PathLike) -> Path | None:
    """``<folder>/frames.npy`` or ``<folder>/stimuli.npy``, or None when it holds neither.

    Both is an error (which would be the inputs?); one that exists but is not a readable
    regular file (a broken link, a directory) is an error naming it, never "absent": a folder
    whose frames went missing would otherwise be read as one with ``x_*`` columns."""
    found = [Path(folder) / name for name in ARRAY_FILES.values() if os.path.lexists(Path(folder) / name)]
    for path in found:
        check_readable(path)
    if len(found) > 1:
        raise InputFileError(
            f"{folder}: both {found[0].name} and {found[1].name}; keep one (frames.npy: one frame per "
            f"time point; stimuli.npy: one history per sample)"
        )
    return found[0] if found else None


def kind_of(path: str | os.PathLike) -> str:
    """``frames`` or ``stimuli``, from the file's name."""
    name = Path(path).name
    for kind, file_name in ARRAY_FILES.items():
        if name == file_name:
            return kind
    raise ValueError(f"{path}: not an array stimulus file (expected {' or '.join(ARRAY_FILES.values())})")


def open_array(path: str | os.PathLike, kind: str | None = None) -> StimulusArray:
    """An array stimulus file's header, checked against the contract (its values are checked
    by :func:`check_finite`). ``kind`` defaults to what the file's name says.

    Only the header is read, and a pickled (object) array is refused before anything of it
    is: unpickling runs code the file chooses. A file shorter than its header's shape needs
    is refused here: a memory map of it would fail, or read past its end, much later."""
    path = Path(path)
    kind = kind or kind_of(path)
    if kind not in ARRAY_FILES:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(ARRAY_FILES)}")
    check_readable(path)
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
            else:  # 3.0 is written only for structured dtypes with non-Latin-1 field names
                raise InputFileError(
                    f"{path}: .npy format version {version[0]}.{version[1]} (a structured array?); save a "
                    f"plain array of {', '.join(ALLOWED_DTYPES)} with np.save"
                )
            offset = handle.tell()
    except InputFileError:
        raise
    except (ValueError, OSError, SyntaxError) as error:  # a damaged header: NumPy's wording, one line
        raise InputFileError(
            f"{path}: not a valid .npy file ({one_line(error)}); save it with np.save"
        ) from None
    if dtype.hasobject:
        raise InputFileError(
            f"{path}: dtype object (pickled Python objects, which are never unpickled); save an array "
            f"of {', '.join(ALLOWED_DTYPES)}"
        )
    if dtype.names is not None or dtype.subdtype is not None or dtype.base.name not in ALLOWED_DTYPES:
        raise InputFileError(
            f"{path}: dtype {dtype} not allowed (allowed: {', '.join(ALLOWED_DTYPES)}; e.g. "
            f"array.astype(np.float32))"
        )
    if len(shape) not in NDIMS[kind]:
        raise InputFileError(
            f"{path}: shape {shape} has {len(shape)} axes; {ARRAY_FILES[kind]} needs {SHAPE_WORDS[kind]}"
        )
    if 0 in shape:
        raise InputFileError(
            f"{path}: shape {shape}: axis {shape.index(0)} is empty (every axis needs at least one element)"
        )
    needed = math.prod(shape) * dtype.itemsize
    held = path.stat().st_size - offset
    if held < needed:
        raise InputFileError(
            f"{path}: truncated: its header's shape {shape} of {dtype} needs {needed} bytes of data, the "
            f"file holds {held} (was it copied or saved completely?)"
        )
    return StimulusArray(path, kind, tuple(int(n) for n in shape), dtype, offset, bool(fortran_order))


def check_finite(array: StimulusArray, chunk_bytes: int = CHUNK_BYTES) -> None:
    """Refuse an array holding NaN, inf, or (float64) a value float32 cannot hold (training
    reads its inputs as float32, where it would become inf), naming the first bad frame or
    sample. The file is read memory-mapped, ``chunk_bytes`` at a time, in the order it is
    stored: never held whole. uint8 holds only finite values and is not read."""
    if array.dtype.kind == "u":
        return
    n, size = array.n_entries, math.prod(array.shape)
    flat = np.memmap(array.path, dtype=array.dtype, mode="r", offset=array.offset, shape=(size,))
    step = max(1, chunk_bytes // array.dtype.itemsize)
    check_range = array.dtype.itemsize > 4
    first: tuple[int, int] | None = None  # (entry, position in the file) of the first bad value
    for start in range(0, size, step):
        chunk = flat[start : start + step]
        bad = ~np.isfinite(chunk)
        if check_range:
            bad |= np.abs(chunk) > FLOAT32_MAX
        if not bad.any():
            continue
        if not array.fortran_order:  # stored entry by entry: the first bad value is in the first bad entry
            position = start + int(np.argmax(bad))
            first = (position // (size // n), position)
            break
        positions = start + np.flatnonzero(bad)
        entries = positions % n  # column-major: axis 0 varies fastest, so any chunk may hold entry 0
        found = (int(entries.min()), int(positions[np.argmin(entries)]))
        first = found if first is None else min(first, found)
        if first[0] == 0:
            break
    if first is None:
        return
    entry, position = first
    value = flat[position]
    where = np.unravel_index(position, array.shape, order="F" if array.fortran_order else "C")
    at = f"at [{', '.join(str(int(i)) for i in where)}]"
    word = INDEX_COLUMNS[array.kind]
    if np.isfinite(value):
        raise InputFileError(
            f"{array.path}: {word} {entry} holds {float(value):g} ({at}), outside what training can "
            f"represent (|value| <= {FLOAT32_MAX:.1e}, float32)"
        )
    raise InputFileError(
        f"{array.path}: {word} {entry} holds {float(value)} ({at}); every value must be finite "
        f"(no NaN or inf)"
    )


@dataclass(frozen=True)
class SessionHistory:
    """One session of a table read with ``frames.npy``: its first row (0-based), how many rows
    it has, and how many of them are history only (the first k-1, all of them when it has
    fewer than k rows, when it gives no sample)."""

    session: object
    first_row: int
    rows: int
    history_only: int

    @property
    def samples(self) -> int:
        return self.rows - self.history_only


@dataclass(frozen=True, eq=False)
class SampleIndex:
    """Which table rows are samples, and which array entries each one's input is made of.

    ``rows``: int64 [samples], positions (0-based) into the table of the rows that are
    samples, ascending (table order). ``entries``: int64 [samples, c], the array entries of
    each sample's input: for ``frames.npy`` its k frames (c = k), oldest first; for
    ``stimuli.npy`` its one sample (c = 1), which holds the k frames. ``sessions``: per
    session, in order of first appearance, its rows and how many were history only (empty
    for ``stimuli.npy``, which has no history rows). ``history`` is k."""

    rows: np.ndarray
    entries: np.ndarray
    history: int
    sessions: tuple[SessionHistory, ...] = ()

    @property
    def n_samples(self) -> int:
        return len(self.rows)

    @property
    def n_history_only(self) -> int:
        """Rows that are history only: never trained on, never tested."""
        return sum(session.history_only for session in self.sessions)

    @property
    def short_sessions(self) -> tuple[SessionHistory, ...]:
        """Sessions with fewer than k rows, which give no sample."""
        return tuple(session for session in self.sessions if session.samples == 0)

    def summary(self) -> str:
        """One line for the log: the history-only rows, and the sessions that give no sample."""
        if not self.sessions:
            return f"{self.n_samples} samples, each a history of {self.history} frames given directly"
        line = (
            f"{self.n_samples} samples of {self.history} frames; {self.n_history_only} rows history only "
            f"(the first {self.history - 1} of each of {len(self.sessions)} sessions)"
        )
        if short := self.short_sessions:
            shown = ", ".join(f"{_shown(s.session)} (row {s.first_row}, {s.rows} rows)" for s in short[:3])
            more = f" and {len(short) - 3} more" if len(short) > 3 else ""
            line += f"; fewer than {self.history} rows, so no sample: session {shown}{more}"
        return line


def sample_index(
    table: pd.DataFrame, array: StimulusArray, history: int = 1, path: str | os.PathLike = "table"
) -> SampleIndex:
    """The samples of a behaviour or neurons ``table`` (read from ``path``, named in errors)
    whose inputs are ``array``'s entries, checked against it.

    ``history`` is k for ``frames.npy`` (the config's ``data.history``); ``stimuli.npy``
    gives its own (its second axis) and ignores it. The index column must be an integer type
    (a CSV reads whole numbers as int64; a float column is refused rather than rounded) and
    within the array; with ``frames.npy`` every row needs a ``session``, and a frame may
    appear once per session (twice, it would be two time points at once)."""
    path = Path(path)
    column = array.index_column
    name = ARRAY_FILES[array.kind]
    columns = [str(c) for c in table.columns]
    if inputs := [c for c in columns if c.startswith("x_")]:
        raise InputFileError(
            f"{path}: column {inputs[0]} with {name} in the folder; a folder's inputs are x_* columns "
            f"or an array, never both"
        )
    if column not in columns:
        raise InputFileError(
            f"{path}: column {column} missing (required with {name}: each row's {INDEX_COLUMNS[array.kind]}, "
            f"0-based)"
        )
    entries = _check_index(path, table[column], array)
    if array.kind == STIMULI:
        return SampleIndex(np.arange(len(table), dtype=np.int64), entries[:, None], int(array.history))
    if isinstance(history, bool) or not isinstance(history, int | np.integer) or history < 1:
        raise InputFileError(
            f"data.history: {history!r}; the frames per sample, a whole number of at least 1"
        )
    if SESSION not in columns and history == 1:  # each row its own frame: no history to build
        return SampleIndex(np.arange(len(table), dtype=np.int64), entries[:, None], 1)
    if SESSION not in columns:
        raise InputFileError(
            f"{path}: column session missing (required with {name} and data.history = {history}: a "
            f"row's history of frames is built within its session)"
        )
    return _frame_histories(path, table[SESSION], entries, int(history))


def _check_index(path: Path, values: pd.Series, array: StimulusArray) -> np.ndarray:
    """An index column as int64, each value an entry of ``array``."""
    name, column, n = ARRAY_FILES[array.kind], values.name, array.n_entries
    missing = values.isna().to_numpy()
    if missing.any():
        raise InputFileError(
            f"{path}: column {column}, row {_first(missing)}: no value (every row needs its "
            f"{INDEX_COLUMNS[array.kind]} in {name})"
        )
    if not pd.api.types.is_integer_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        bad = ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
        shown = f", row {_first(bad)}: {_plain(values.iloc[_first(bad)])!r}" if bad.any() else ""
        raise InputFileError(
            f"{path}: column {column}{shown}: type {values.dtype}, not integer (0-based indices into {name}; "
            f"write the column as integers)"
        )
    numbers = values.to_numpy()
    if (negative := numbers < 0).any():
        row = _first(negative)
        raise InputFileError(
            f"{path}: column {column}, row {row}: {numbers[row]} is negative (0-based indices into {name}, "
            f"0..{n - 1})"
        )
    if (past := numbers >= n).any():
        row = _first(past)
        raise InputFileError(
            f"{path}: column {column}, row {row}: {numbers[row]} is past the end of {name}, which holds {n} "
            f"{INDEX_COLUMNS[array.kind]}s (0..{n - 1})"
        )
    return numbers.astype(np.int64)


def _frame_histories(path: Path, sessions: pd.Series, frames: np.ndarray, k: int) -> SampleIndex:
    """Each session's rows sorted by frame; every row from its k-th on is a sample whose
    input is its frame and the k-1 before it in the session (oldest first)."""
    codes, names = pd.factorize(sessions, sort=False)
    if (missing := codes < 0).any():
        raise InputFileError(
            f"{path}: column session, row {_first(missing)}: no value (with frames.npy every row needs its "
            f"session)"
        )
    positions = np.arange(len(frames), dtype=np.int64)
    order = np.lexsort((positions, frames, codes))  # by session, then frame, then row
    code_sorted, frame_sorted = codes[order], frames[order]
    repeated = (code_sorted[1:] == code_sorted[:-1]) & (frame_sorted[1:] == frame_sorted[:-1])
    if repeated.any():
        pairs = np.flatnonzero(repeated)
        pair = pairs[np.argmin(order[pairs + 1])]  # the first row (in the file) that repeats a frame
        row, earlier = int(order[pair + 1]), int(order[pair])
        raise InputFileError(
            f"{path}: column frame, row {row}: frame {frames[row]} appears twice in session "
            f"{_shown(names[codes[row]])} (also row {earlier}); a frame is one time point of its session"
        )
    sizes = np.bincount(codes, minlength=len(names))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    place = np.arange(len(order)) - starts[code_sorted]  # each sorted row's place in its session
    samples = np.flatnonzero(place >= k - 1)
    entries = frame_sorted[samples[:, None] + np.arange(1 - k, 1)]
    in_table_order = np.argsort(order[samples], kind="stable")
    first_rows = np.full(len(names), len(frames), dtype=np.int64)
    np.minimum.at(first_rows, codes, positions)
    histories = tuple(
        SessionHistory(_plain(names[i]), int(first_rows[i]), int(sizes[i]), int(min(sizes[i], k - 1)))
        for i in range(len(names))
    )
    return SampleIndex(order[samples][in_table_order], entries[in_table_order], k, histories)


def entry_width(array: StimulusArray) -> int:
    """Values of one entry: a frame (``frames.npy``) or a whole history (``stimuli.npy``)."""
    return math.prod(array.shape[1:])


def input_bytes(n_entries: int, array: StimulusArray) -> int:
    """Bytes ``n_entries`` of ``array``'s entries take as float32, as training holds them
    (checked by the caller against ``limits.memory_gb``)."""
    return int(n_entries) * entry_width(array) * INPUT_BYTES_PER_VALUE


def read_entries(array: StimulusArray, entries: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """The values of ``entries`` (array indices along axis 0), float32
    [len(entries), entry_width], each entry flattened, uint8 read as value / 255.

    Only the entries named are read from the memory map (NumPy's fancy indexing of a
    memory map touches only their pages), ``chunk_bytes`` of them at a time, so that the
    peak is the result and one chunk: :func:`input_bytes` of it."""
    entries = np.asarray(entries, dtype=np.int64).reshape(-1)
    width = entry_width(array)
    out = np.empty((len(entries), width), dtype=np.float32)
    data = array.memory_map()
    step = max(1, chunk_bytes // (width * array.dtype.itemsize))
    for start in range(0, len(entries), step):
        part = data[entries[start : start + step]].reshape(-1, width)
        if array.dtype.kind == "u":
            np.divide(part, np.float32(255), out=out[start : start + step], dtype=np.float32)
        else:
            out[start : start + step] = part
    return out


def _first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _plain(value):
    """A NumPy scalar as the Python one (a session shown as 3, not np.int64(3))."""
    return value.item() if isinstance(value, np.generic) else value


def _shown(value) -> str:
    """A session as a message shows it: a name quoted, a number as written."""
    value = _plain(value)
    return repr(value) if isinstance(value, str) else str(value)
