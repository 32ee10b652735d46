"""Names of data sets and columns: the file contract other tools read.

Zero-padding follows the count (at least two digits): 16 units give
``unit_00`` ... ``unit_15``, 50 inputs ``x_00`` ... ``x_49``, 120 inputs ``x_000`` ...
"""

from __future__ import annotations

CONTROL = "control"
BEHAVIOR_SCORE_COLUMNS = ["model", "dataset", "silenced_unit", "output", "r2", "noise_ceiling"]
NEURAL_MAY_BE_NAN = ("r2_predicted", "weight_cosine")
"""Neural measures that are undefined for some networks: the predicted R² needs a linear
two-layer fly, the weight cosine a bottleneck that reads the inputs directly."""
NEURAL_SCORE_COLUMNS = [
    "model",
    "unit",
    "silenced",
    "r2",
    "r2_matched",
    "r2_decoded",
    "r2_predicted",
    "weight_cosine",
    "silencing_effect",
    "fly_silencing_effect",
    "contribution",
]


def _width(count: int) -> int:
    return max(2, len(str(count - 1)))


def _numbered(prefix: str, count: int) -> list[str]:
    width = _width(count)
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def input_columns(n_inputs: int) -> list[str]:
    return _numbered("x_", n_inputs)


def hidden_columns(n_hidden: int) -> list[str]:
    return _numbered("h_", n_hidden)


def dataset_names(n_hidden: int, n_silenced: int | None = None) -> list[str]:
    """``control`` then one silenced set per hidden unit; index i+1 silences unit i.

    ``n_silenced`` < ``n_hidden`` keeps the sets of units 0 .. n_silenced - 1 only (an
    experiment that silences some of the fly's neurons).
    """
    names = _numbered("unit_", n_hidden)
    return [CONTROL, *names[:n_silenced]]


def output_columns(n_outputs: int) -> list[str]:
    """The behavioural variables: ``y`` for one (the seed problem's files), else ``y_00`` ..."""
    return ["y"] if n_outputs == 1 else _numbered("y_", n_outputs)


def behavior_columns(n_inputs: int, n_outputs: int = 1) -> list[str]:
    return ["dataset", "silenced_unit", *input_columns(n_inputs), *output_columns(n_outputs)]


def probe_columns(n_inputs: int, n_hidden: int) -> list[str]:
    return [*input_columns(n_inputs), *hidden_columns(n_hidden)]
