"""The authors' KO network at the paper's size (config/authors.yaml): time per training
step and per epoch on this machine's CPU, and on a GPU where one is visible.

The network: 10 frames of 64 x 228 pixels per sample, three convolutions of 32 channels
(kernel 3, stride 2) shared across the frames, 16 features per frame, a dense layer of 64,
23 silenceable units, a decoder of 3 x 128, six outputs (three continuous, three binary),
every hidden layer batch-normalised; SGD with momentum 0.7, inputs standardized. ko on
synthetic data (random frames; the timing does not depend on what the pixels hold): 24
sets of 64 samples, one batch each, ``--restarts`` networks side by side; a step's time
is the difference of two runs, of one and two epochs, over the 24 steps of an epoch. An
epoch of 1000 samples per set is 24 x 1000 / 64 steps.

Run: ``PYTHONPATH=src:workflow/lib .venv/bin/python bench/paper_network.py [--device cuda]``;
prints one Markdown table row per device and restarts, and writes
``results/benchmarks/paper_network.parquet``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from knockout.behavior_data import BehaviorData
from knockout.network import Architecture
from knockout.training import Fit, TrainSettings, train_fits

HISTORY, HEIGHT, WIDTH, UNITS, SETS = 10, 64, 228, 23, 24
PAPER = Architecture(
    HISTORY * HEIGHT * WIDTH,
    UNITS,
    encoder=(64,),
    decoder=(128, 128, 128),
    n_outputs=6,
    activation="relu",
    binary_outputs=3,
    frame_shape=(HEIGHT, WIDTH),
    conv=((32, 3, 2), (32, 3, 2), (32, 3, 2)),
    frame_features=16,
    standardize=True,
    batch_norm=True,
)


def synthetic_data(rows_per_set: int) -> BehaviorData:
    generator = torch.Generator().manual_seed(0)
    n = SETS * rows_per_set
    x = torch.rand(n, PAPER.n_inputs, generator=generator)
    y = torch.randn(n, 6, generator=generator)
    y[:, 3:] = (y[:, 3:] > 1).float()
    set_index = torch.arange(SETS).repeat_interleave(rows_per_set)
    set_units = ((), *((unit,) for unit in range(SETS - 1)))
    return BehaviorData(x, y, set_index, set_units)


def time_steps(data: BehaviorData, restarts: int, device: str) -> float:
    """Seconds per step of ``restarts`` ko networks, from runs of one and of two epochs
    (so that the start-up cancels); an epoch is a batch of 64 from each set."""
    times = []
    for epochs in (1, 2):
        settings = TrainSettings(
            optimizer="sgd",
            momentum=0.7,
            lr=0.06,
            lr_schedule="constant",
            batch_size=64,
            epochs=epochs,
            min_steps=0,
            restarts=restarts,
            relabel="never",
        )
        start = time.perf_counter()
        train_fits([Fit("ko", data, settings, 0)], PAPER, device)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / SETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=64, help="samples per set: one batch each")
    parser.add_argument("--restarts", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    data = synthetic_data(args.rows)
    rows = []
    print("| device | restarts | s per step | s per epoch of 1000 samples per set |")
    print("|---|---|---|---|")
    for restarts in args.restarts:
        per_step = time_steps(data, restarts, args.device)
        per_epoch = per_step * SETS * 1000 / 64
        rows.append((args.device, restarts, per_step, per_epoch, PAPER.parameter_count()))
        print(f"| {args.device} | {restarts} | {per_step:.3f} | {per_epoch:.0f} |")
    out = Path("results/benchmarks")
    out.mkdir(parents=True, exist_ok=True)
    columns = ["device", "restarts", "seconds_per_step", "seconds_per_epoch_1000_per_set", "parameters"]
    pd.DataFrame(rows, columns=columns).to_parquet(out / "paper_network.parquet", index=False)


if __name__ == "__main__":
    main()
