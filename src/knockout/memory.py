"""What the batched trainer holds per network: the one memory model that sizes its batches
(knockout.training) and the config check's estimates (knockout.config_checks), which run
before any job and so must not import PyTorch."""

from __future__ import annotations

import itertools

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
    step = 4 * batch_size * sum(widths) * 4
    return 4 * 4 * parameters + step + chunk_bytes_per_network_step(batch_size, n_hidden)
