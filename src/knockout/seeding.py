"""Independent random streams derived from one replicate seed.

Every random draw of the pipeline comes from a generator made here, so a seed and a
stream name fix it on any machine, in any job order, and whatever else ran before.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

STREAMS = (
    "fly",
    "train_data",
    "test_data",
    "probe_data",
    "pilot_data",
    "plan",
    "model_init",
    "schedule",
    "dropout",
    "split",
    "chance",
    "chance_permutation",
)


class Draws:
    """A generator's draws as plain lists, as a drawing masking takes them
    (:class:`knockout.masking.Draws`): the same torch calls, so the same numbers."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def integers(self, high: int, size: int) -> list[int]:
        return torch.randint(high, (size,), generator=self.generator).tolist()

    def permutation(self, n: int) -> list[int]:
        return torch.randperm(n, generator=self.generator).tolist()


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU ``torch.Generator`` for ``stream`` of replicate ``seed``.

    Streams are separated by hashing (seed, stream) so that, for example, drawing
    more training samples does not change the test set or the fly.
    """
    if stream not in STREAMS:
        raise ValueError(f"random stream {stream!r} unknown (allowed: {', '.join(STREAMS)})")
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def numpy_generator(seed: int, stream: str) -> np.random.Generator:
    """A NumPy generator for ``stream`` of replicate ``seed`` (for generators written in
    NumPy, such as the visual fly), seeded by the first draw of :func:`generator`: the same
    seed and stream give the same numbers."""
    first = torch.randint(2**62, (1,), generator=generator(seed, stream))
    return np.random.default_rng(int(first.item()))
