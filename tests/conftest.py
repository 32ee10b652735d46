"""Shared fixtures: one small simulated replicate (6 inputs, 4 hidden units)."""

from __future__ import annotations

import pytest
import torch

from knockout.simulation import DataSettings, FlySettings, simulate

SMALL_FLY = FlySettings(n_inputs=6, n_hidden=4, init="glorot", noise_sd=0.05)
SMALL_DATA = DataSettings(n_train=40, n_test=30, n_probe=50)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny tensors: extra threads only add contention on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_replicate():
    """(fly, train, test, probe) of seed 0 for SMALL_FLY / SMALL_DATA; do not modify."""
    return simulate(SMALL_FLY, SMALL_DATA, seed=0)
