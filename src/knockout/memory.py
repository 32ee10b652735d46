"""What the batched trainer holds per network: the one memory model that sizes its batches
(knockout.training) and the config check's estimates (knockout_workflow.step_settings), which run
before any job and so must not import PyTorch; and what reading a data folder's table
holds (knockout.data_folder), estimated from the file before it is read."""

from __future__ import annotations

import itertools

GIB = 1 << 30
RUNTIME_BYTES = 400 << 20
"""What every job holds before its data: the interpreter, PyTorch, pandas (the default run's
jobs peaked at 340-590 MB resident, as the workflow's benchmark files measured)."""
TRAINING_INPUT_COPIES = 2
"""How many times a job holds a frames folder's inputs (the entries its samples name, as
float32) at its peak: once as the values every history, seed and data set reads
(:mod:`knockout.inputs`), and once more while they are read, the array's pages (mapped
from the file, counted in the resident size while they are read). Measured: 1.40 GB peak
resident for 0.53 GB of frames (147,456 samples of 4 frames of 16 x 56, ko trained;
docs/results.md, "The visual fly"), 9.96 GB while each sample's history was held apart."""
RELABEL_BYTES = 4 * 4 * (1 << 23)
"""A relabelling check holds a few chunks of at most 2^23 float32 numbers (knockout.training.relabel)."""


def chunk_bytes_per_network_step(batch_size: int, n_hidden: int) -> int:
    """Bytes one network's step takes in a chunk of the plan on the device: row indices,
    row weights, masks, loss bins and losses, each as sent and as expanded to networks."""
    return 2 * (batch_size * (8 + 4) + n_hidden * 4 + 8 + 8 + 4)


def network_bytes(widths: list[int], n_hidden: int, batch_size: int) -> int:
    """Bytes one network of layer ``widths`` (inputs, hidden layers, outputs; ``n_hidden``
    bottleneck units) takes in a batched training: its parameters, gradient and the two
    Adam moments, one step's batch and activations (autograd keeps a few per layer), and
    its share of a chunk of the plan."""
    parameters = sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(widths))
    return stacked_network_bytes(parameters, sum(widths), n_hidden, batch_size)


def stacked_network_bytes(parameters: int, values_per_sample: int, n_hidden: int, batch_size: int) -> int:
    """:func:`network_bytes` of a network given by its ``parameters`` and the numbers one
    sample's pass holds (inputs and every layer's outputs; a frame encoder's per frame)."""
    step = 4 * batch_size * values_per_sample * 4
    return 4 * 4 * parameters + step + chunk_bytes_per_network_step(batch_size, n_hidden)


TABLE_NUMBER_BYTES = 32
"""Bytes a numeric cell takes while a job reads a data file: the file's column, the table's,
the float64 copies and masks of the checks, then a job's train/test copies and tensors.
Measured (peak resident memory above the imports, per row): 794 B for 51 float32 and 2 text
columns checked at the workflow's start (1 M rows, Parquet), 1090 B read by a training job
(read, checked, split, as tensors)."""
TABLE_TEXT_BYTES = 48
"""Bytes a text cell (set, silenced, split, session) takes: read as a dictionary (each name
held once), then one shared Python object per row for the checks, and the split's copies.
Measured per row, with two numeric columns: 79 B with 2 text columns checked (20 M rows;
116 B read by a training job), 130 B read by a training job from CSV (5 M rows), 107 B
with 2 checked (names of 194 characters), 139 B with 3 (and sessions), 167 B with 4 (and
a split)."""


def table_bytes(rows: int, numeric_columns: int, text_columns: int, dictionaries: int = 0) -> int:
    """Bytes a job reading a table of ``rows`` (check, split, tensors) holds at its peak,
    roughly (sized to refuse a file an order of magnitude too large, not to plan a
    cluster's requests);
    ``dictionaries`` are its text columns' distinct values, held once."""
    return rows * (numeric_columns * TABLE_NUMBER_BYTES + text_columns * TABLE_TEXT_BYTES) + dictionaries
