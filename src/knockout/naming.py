"""Names of data sets and columns: the file contract other tools read.

Zero-padding follows the count (at least two digits): 16 units give
``unit_00`` ... ``unit_15``, 50 inputs ``x_00`` ... ``x_49``, 120 inputs ``x_000`` ...
"""

from __future__ import annotations

CONTROL = "control"
"""The set with nothing silenced."""
UNIT_SEPARATOR = "+"
"""Joins the units one set silences (a cell-type line may silence several): ``LC16+LC17``."""
SPLITS = ("train", "test")
BINARY_PREFIX = "b_"
"""Output columns named ``b_<name>`` are binary: 0 or 1 per sample (an event such as a song
pulse in that frame); ``y`` and ``y_*`` are continuous."""
BEHAVIOR_SCORE_COLUMNS = [
    "model",
    "set",
    "silenced_units",
    "output",
    "silencing",
    "kind",
    "r2",
    "log_likelihood",
    "auc",
    "noise_ceiling",
    "r2_note",
]
"""eval/behavior.parquet: per model, test set, output and silencing mode (how a masked unit
is silenced: zero or centered), the output's ``kind`` (continuous or binary) and its score:
R², or for a binary output McFadden's pseudo-R², with the log-likelihood per row and AUC."""
BEHAVIOR_MAY_BE_NAN = ("r2", "log_likelihood", "auc", "noise_ceiling")
"""The noise ceiling needs the true network: NaN on recorded data; R² is NaN where a test
set's output never varies (``r2_note`` says so); the log-likelihood and AUC belong to
binary outputs only."""


def is_binary_output(column: str) -> bool:
    """Whether an output column is binary (``b_*``: cross-entropy, pseudo-R², AUC)."""
    return column.startswith(BINARY_PREFIX)


GROUND_TRUTH_MEASURES = (
    "r2_predicted",
    "estimation_floor",
    "weight_cosine",
    "fly_silencing_effect",
    "contribution",
)
"""Neural measures that need the true network (a simulated fly): NaN on recorded data."""
RECORDING_MEASURES = ("r2", "r2_matched", "r2_decoded")
"""Neural measures against a recorded neuron: NaN for units that were not recorded."""
NEURAL_MAY_BE_NAN = (*RECORDING_MEASURES, *GROUND_TRUTH_MEASURES)
"""Also NaN where undefined: the predicted R² needs a linear two-layer fly, the weight
cosine a bottleneck that reads the inputs directly, and R² a neuron that varies
(``r2_note`` says why)."""
CHANCE_COLUMNS = ["null", "model", "draw", "unit", "unit_name", "measure", "score"]
"""eval/chance.parquet: one row per null (untrained, permuted_stimuli), model, draw,
recorded unit and measure; ``score`` is NaN where the neuron never varies."""
SILENCING_COLUMNS = ["model", "unit", "unit_name", "output", "effect"]
KNOCKOUT_LOSS_COLUMNS = ["model", "knockout_mse"]
"""eval/knockout_loss.parquet: per model, the knockout objective on the training rows."""
NEURAL_SCORE_COLUMNS = [
    "model",
    "unit",
    "unit_name",
    "recorded",
    "silenced",
    "r2",
    "r2_matched",
    "r2_decoded",
    "r2_predicted",
    "estimation_floor",
    "weight_cosine",
    "silencing_effect",
    "fly_silencing_effect",
    "contribution",
    "r2_note",
]


def _width(count: int) -> int:
    return max(2, len(str(count - 1)))


def _numbered(prefix: str, count: int) -> list[str]:
    width = _width(count)
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def input_columns(n_inputs: int) -> list[str]:
    return _numbered("x_", n_inputs)


ENTRY_PREFIX = "entry_"


def entry_columns(n_entries: int) -> list[str]:
    """The columns a table read beside an array stimulus names each row's input by, in
    place of ``x_*``: ``entry_00`` ..., the rows of the inputs' values (one per frame of a
    history, oldest first, or one holding a given history) that make up the row's input.
    Made by the readers, never written to a file: the import contract names a row's input
    by its ``frame`` or ``sample``."""
    return _numbered(ENTRY_PREFIX, n_entries)


def unit_names(n_hidden: int) -> list[str]:
    """The simulated fly's units: ``unit_00`` ..."""
    return _numbered("unit_", n_hidden)


def model_unit_names(units: list[str], n_hidden: int) -> list[str]:
    """A model's bottleneck units: unit i plays ``units[i]``; a model with more units than
    the data names calls the extra ones ``extra_00`` ... (never masked, never recorded)."""
    return [*units[:n_hidden], *_numbered("extra_", max(0, n_hidden - len(units)))][:n_hidden]


def simulated_set_names(n_hidden: int, n_silenced: int | None = None) -> list[str]:
    """The simulated experiment's sets: ``control``, then one per silenced unit, named after
    it; index i+1 silences unit i.

    ``n_silenced`` < ``n_hidden`` keeps the sets of units 0 .. n_silenced - 1 only (an
    experiment that silences some of the fly's neurons).
    """
    return [CONTROL, *unit_names(n_hidden)[:n_silenced]]


def response_column(unit: str) -> str:
    """A recorded (or a model unit's predicted) response to the neuron stimuli."""
    return f"r_{unit}"


def output_columns(n_outputs: int, n_binary: int = 0) -> list[str]:
    """The behavioural variables, the last ``n_binary`` of them binary: the continuous ones
    ``y`` for one (the seed problem's files), else ``y_00`` ..., then ``b_00`` ..."""
    n_continuous = n_outputs - n_binary
    continuous = ["y"] if n_continuous == 1 else _numbered("y_", n_continuous) if n_continuous else []
    return [*continuous, *(_numbered(BINARY_PREFIX, n_binary) if n_binary else [])]


def behavior_columns(n_inputs: int, n_outputs: int = 1, n_binary: int = 0) -> list[str]:
    """The simulated behaviour file's columns (the import contract, with ``split``)."""
    return ["set", "silenced", "split", *input_columns(n_inputs), *output_columns(n_outputs, n_binary)]


def neurons_columns(n_inputs: int, units: list[str]) -> list[str]:
    """A neurons file's columns: the stimuli, then a response per recorded unit."""
    return [*input_columns(n_inputs), *map(response_column, units)]
