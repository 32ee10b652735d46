"""Names of data sets and columns: the file contract other tools read.

Zero-padding follows the count (at least two digits): 16 units give
``unit_00`` ... ``unit_15``, 50 inputs ``x_00`` ... ``x_49``, 120 inputs ``x_000`` ...
"""

from __future__ import annotations

CONTROL = "control"
MODELS = ("control", "noko", "ko", "do")
BEHAVIOR_SCORE_COLUMNS = ["model", "dataset", "silenced_unit", "r2", "noise_ceiling"]
NEURAL_SCORE_COLUMNS = ["model", "unit", "r2", "contribution"]


def _width(count: int) -> int:
    return max(2, len(str(count - 1)))


def _numbered(prefix: str, count: int) -> list[str]:
    width = _width(count)
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def input_columns(n_inputs: int) -> list[str]:
    return _numbered("x_", n_inputs)


def hidden_columns(n_hidden: int) -> list[str]:
    return _numbered("h_", n_hidden)


def dataset_names(n_hidden: int) -> list[str]:
    """``control`` then one silenced set per hidden unit; index i+1 silences unit i."""
    return [CONTROL, *_numbered("unit_", n_hidden)]


def behavior_columns(n_inputs: int) -> list[str]:
    return ["dataset", "silenced_unit", *input_columns(n_inputs), "y"]


def probe_columns(n_inputs: int, n_hidden: int) -> list[str]:
    return [*input_columns(n_inputs), *hidden_columns(n_hidden)]
