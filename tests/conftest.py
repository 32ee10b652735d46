"""Shared fixtures: one small simulated replicate (6 inputs, 4 hidden units), and one small
visual fly's frames folder."""

from __future__ import annotations

import pytest
import torch

from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.visual_fly import VisualFlySettings, write_visual_fly

SMALL_FLY = FlySettings(n_inputs=6, n_hidden=4, init="glorot", noise_sd=0.05)
SMALL_DATA = DataSettings(n_train=40, n_test=30, n_probe=50)
SMALL_VISUAL = VisualFlySettings(
    height=6, width=12, n_units=3, history=3, sessions_per_set=2, frames_per_session=20, neuron_sessions=1
)


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


@pytest.fixture(scope="session")
def visual_folder(tmp_path_factory):
    """The frames folder of SMALL_VISUAL, seed 0 (3 units, histories of 3 frames of 6 x 12,
    2 sessions of 20 frames per set); do not modify (copy it)."""
    folder = tmp_path_factory.mktemp("visual")
    write_visual_fly(folder, SMALL_VISUAL, seed=0)
    return folder
