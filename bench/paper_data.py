"""Paper-sized data through the import contract: does a recording of the authors' size fit
a job, and what does reading it cost?

A synthetic folder of the paper's shapes (``frames.npy``: uint8 frames of 64 x 228, as a
camera saves them; 24 sets, control and 23 lines, of ``--sessions`` sessions of
``--frames`` frames each, 1,000 samples a set by default; three continuous and three
binary outputs; random content: nothing is learned, only
memory and time are measured) is read as a job reads it (``data.history`` 10: each
sample's frame and the 9 before it), then ko of the authors' network
(``config/authors.yaml``: three convolutions of 32 channels, 16 features per frame, 64,
23 units, 3 x 128, batch-normalised, SGD with momentum) takes one epoch of one batch of
64 per set (24 steps), and is scored on every test sample (a chunk at a time). Reported:
the frames held, the histories' size had they been held apart, the seconds of each step
and the process's peak resident size after reading the folder and at the end (a step of
this network holds about 3 GB of activations at a batch of 64:
:func:`knockout.memory.stacked_network_bytes`).

Run: ``PYTHONPATH=src:workflow/lib .venv/bin/python bench/paper_data.py [--sessions 5]
[--frames 209] [--folder /tmp/paper_data]`` (the folder is written once); prints one
Markdown table row.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from knockout import api, metrics, naming
from knockout.behavior_data import BehaviorData
from knockout.training import TrainSettings, train

HISTORY, HEIGHT, WIDTH, LINES = 10, 64, 228, 23
UNITS = [f"LC{number:02d}" for number in range(LINES)]
AUTHORS = {
    "activation": "relu",
    "conv": [[32, 3, 2], [32, 3, 2], [32, 3, 2]],
    "frame_features": 16,
    "encoder": [64],
    "decoder": [128, 128, 128],
    "batch_norm": True,
}
"""config/authors.yaml's model section."""
RECIPE = {"optimizer": "sgd", "lr": 0.06, "momentum": 0.7, "lr_schedule": "constant", "batch_size": 64}


def write_folder(folder: Path, sessions: int, frames_per_session: int) -> None:
    """The synthetic folder: ``sessions`` sessions of ``frames_per_session`` frames a set,
    the last session of each set for testing; the frames written a set at a time (never
    held whole here either)."""
    folder.mkdir(parents=True, exist_ok=True)
    sets = [naming.CONTROL, *UNITS]
    per_set = sessions * frames_per_session
    n = len(sets) * per_set
    rng = np.random.default_rng(0)
    frames = np.lib.format.open_memmap(
        folder / "frames.npy", mode="w+", dtype=np.uint8, shape=(n, HEIGHT, WIDTH)
    )
    for number in range(len(sets)):
        frames[number * per_set : (number + 1) * per_set] = rng.integers(
            0, 256, (per_set, HEIGHT, WIDTH), np.uint8
        )
    frames.flush()
    session = np.tile(np.repeat(np.arange(sessions), frames_per_session), len(sets))
    table = pd.DataFrame(
        {
            "set": np.repeat(sets, per_set),
            "silenced": np.repeat(["", *UNITS], per_set),
            "session": [f"s{number:02d}" for number in session],
            "split": np.where(session == sessions - 1, "test", "train"),
            "frame": np.arange(n, dtype=np.int64),
        }
    )
    table["session"] = table["set"] + "_" + table["session"]
    for column in ("y_00", "y_01", "y_02"):
        table[column] = rng.standard_normal(n)
    for column in ("b_00", "b_01", "b_02"):
        table[column] = (rng.random(n) < 0.2).astype(np.int64)
    table.to_parquet(folder / "behavior.parquet", index=False)


def gigabytes(size: float) -> float:
    return size / (1 << 30)


def peak_resident() -> int:
    """The process's peak resident size so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5, help="sessions per set, the last one tested")
    parser.add_argument(
        "--frames", type=int, default=209, help="frames per session (200 samples after 9 of history)"
    )
    parser.add_argument("--folder", type=Path, default=Path("/tmp/paper_data"))
    args = parser.parse_args()
    if not (args.folder / "frames.npy").exists():
        write_folder(args.folder, args.sessions, args.frames)
    torch.set_num_threads(2)
    start = time.perf_counter()
    data = api.load(args.folder, UNITS, history=HISTORY)
    read = time.perf_counter() - start
    peak_read = peak_resident()
    samples = len(data.behavior)
    training, test = BehaviorData.split(data, None, 0)
    first = [torch.nonzero(training.set_index == number).squeeze(1)[:64] for number in range(LINES + 1)]
    batch = torch.cat(first)  # one batch a set: an epoch of 24 steps; the frames held are all of them
    one_epoch = BehaviorData(
        training.inputs.select(batch), training.y[batch], training.set_index[batch], training.set_units
    )
    architecture = api.architecture_for(data, **AUTHORS)
    settings = TrainSettings(**RECIPE, epochs=1, min_steps=0, restarts=1, relabel="never")
    start = time.perf_counter()
    result = train("ko", one_epoch, architecture, settings, seed=0)
    trained = time.perf_counter() - start
    start = time.perf_counter()
    scores = metrics.behavior_scores({"ko": result.network}, test, data.layout, silencing=("zero",))
    scored = time.perf_counter() - start
    peak = peak_resident()
    held = data.inputs.nbytes
    apart = samples * HISTORY * HEIGHT * WIDTH * 4
    print(
        "| samples | frames held (GB, float32) | histories held apart (GB) | read (s) | s per step | "
        "scoring the test samples (s) | peak resident after reading, at the end (GB) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {samples} | {gigabytes(held):.2f} | {gigabytes(apart):.1f} | {read:.1f} | {trained / 24:.2f} | "
        f"{scored:.0f} ({len(test.y)} samples, {len(scores)} scores) | {gigabytes(peak_read):.2f}, "
        f"{gigabytes(peak):.2f} |"
    )


if __name__ == "__main__":
    main()
