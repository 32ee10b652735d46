"""The visual fly end to end: does knockout training recover the units of a fly that sees?

Per fly seed, the visual fly (``knockout.visual_fly``: a rendered target whose position,
size and heading over time drive 8 units through a known network; two continuous
outputs and a song-like event) is written as a data folder of frames (16 x 56,
``--sessions`` sessions of 256 frames per set), read back through the import contract
(each sample its frame and the 3 before it in its session), and control, noko, ko and do
are trained on it (training seed 0) with a frame encoder shared across the frames, as the
workflow trains them (``api.fit``: the same checks, split, trainer and measures). Reported
per fly seed and model: the neural R² of model unit i against fly unit i (every unit is
"recorded", noise-free) as its median, minimum and the units at or above 0.9, beside the
chance level (untrained networks of the same shape, scored the same way: mean and 95th
percentile); and ko's behaviour on the silenced test sets under both silencing modes
(R², or pseudo-R² and AUC for the event).

Run: ``PYTHONPATH=src:workflow/lib .venv/bin/python bench/visual_fly.py [--seeds 0 1]
[--sessions 16] [--lr 0.003] [--steps 16000] [--batch-norm] [--width 8]`` (the defaults:
about 7 minutes a seed on 2 cores; ``--width``: the frame encoder's channels and features,
the encoder layer 4 times as wide; ``--batch-norm``: every hidden layer batch-normalised, as the
authors' network, about 2.5x the time); writes ``results/benchmarks/<name>.parquet`` and
``<name>_behavior.parquet``, the name telling the settings, and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from knockout import api, metrics, naming
from knockout.behavior_data import NeuronData
from knockout.visual_fly import VisualFlySettings, write_visual_fly


def model(width: int) -> dict:
    """The models' architecture keys: two stride-2 convolutions of ``width`` channels, a frame
    feature layer of ``width``, an encoder layer of 4 x ``width``, ReLU."""
    return {
        "activation": "relu",
        "conv": [[width, 3, 2], [width, 3, 2]],
        "frame_features": width,
        "encoder": [4 * width],
    }


TRAIN = {"lr": 0.003, "epochs": 1, "min_steps": 16000, "restarts": 1}
"""Every model 16,000 steps (the default train.min_steps), whatever its rows."""
MODELS = ["control", "noko", "ko", "do"]
OUT = Path("results/benchmarks")


def one_fly(seed: int, args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    settings = VisualFlySettings(sessions_per_set=args.sessions)
    folder = OUT / "visual_fly" / f"sessions{args.sessions}_seed{seed}"
    write_visual_fly(folder, settings, seed)
    units = naming.unit_names(settings.n_units)
    data = api.load(folder, units, history=settings.history)
    architecture = api.architecture_for(data, **model(args.width), batch_norm=args.batch_norm)
    start = time.perf_counter()
    fits = api.fit(data, MODELS, architecture, seed=0, **(TRAIN | {"min_steps": args.steps, "lr": args.lr}))
    seconds = time.perf_counter() - start
    neural = api.neural_r2(fits, data)
    chance = metrics.chance_table(dict(fits), NeuronData.of_folder(data), data.layout, "glorot", 0)
    untrained = chance[(chance["null"] == "untrained") & (chance["measure"] == "r2")]["score"]
    summary = neural.groupby("model", sort=False)["r2"].agg(
        median="median", minimum="min", identified=lambda r2: int((r2 >= 0.9).sum())
    )
    summary = summary.reset_index()
    summary = summary.assign(
        fly_seed=seed,
        chance_mean=untrained.mean(),
        chance_p95=untrained.quantile(0.95),
        train_seconds=seconds,
        final_loss=[
            fits.training[model].losses[-1][fits.training[model].chosen] for model in summary["model"]
        ],
    )
    behavior = api.behavior_r2(fits, data)
    silenced = behavior[(behavior["silenced_units"] != "") & (behavior["model"] == "ko")]
    ko = silenced.groupby(["output", "kind", "silencing"])[["r2", "auc"]].mean().reset_index()
    return summary, ko.assign(fly_seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sessions", type=int, default=16, help="sessions of 256 frames per set")
    parser.add_argument("--steps", type=int, default=TRAIN["min_steps"], help="train.min_steps")
    parser.add_argument("--lr", type=float, default=TRAIN["lr"], help="train.lr (Adam)")
    parser.add_argument("--batch-norm", action="store_true", help="model.batch_norm: true")
    parser.add_argument("--width", type=int, default=8, help="the frame encoder's channels (see model())")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = [one_fly(seed, args) for seed in args.seeds]
    name = (
        f"visual_fly_sessions{args.sessions}_lr{args.lr:g}_steps{args.steps}"
        + ("_bn" if args.batch_norm else "")
        + (f"_width{args.width}" if args.width != 8 else "")
    )
    neural = pd.concat([summary for summary, _ in results], ignore_index=True)
    behavior = pd.concat([ko for _, ko in results], ignore_index=True)
    neural.to_parquet(OUT / f"{name}.parquet", index=False)
    behavior.to_parquet(OUT / f"{name}_behavior.parquet", index=False)
    print(neural.round(3).to_markdown(index=False))
    print()
    print(behavior.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
