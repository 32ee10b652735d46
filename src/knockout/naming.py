"""Names of data sets and columns: the file contract other tools read.

Zero-padding follows the count (at least two digits): 16 units give
``unit_00`` ... ``unit_15``, 50 inputs ``x_00`` ... ``x_49``, 120 inputs ``x_000`` ...
"""

from __future__ import annotations

CONTROL = "control"
MODELS = ("control", "noko", "ko", "do")
OPTIMUM = "optimum"
"""The knockout objective's exact optimum (linear networks), evaluated beside the models."""
BEHAVIOR_SCORE_COLUMNS = ["model", "dataset", "silenced_unit", "r2", "noise_ceiling"]
NEURAL_SCORE_COLUMNS = [
    "model",
    "unit",
    "silenced",
    "r2",
    "r2_matched",
    "r2_decoded",
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


def behavior_columns(n_inputs: int) -> list[str]:
    return ["dataset", "silenced_unit", *input_columns(n_inputs), "y"]


def probe_columns(n_inputs: int, n_hidden: int) -> list[str]:
    return [*input_columns(n_inputs), *hidden_columns(n_hidden)]
