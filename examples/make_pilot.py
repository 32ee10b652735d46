"""Generate the shipped pilot folder ``examples/pilot/``: a small made-up silencing pilot.

The worked example of README, "Planning an experiment": before silencing eight lines
with many trials each, a lab has run a pilot of 120 trials per line and asks which
neurons a larger experiment would identify, and with how many trials. The data come from
a network written here, not the pipeline's simulator (this script does not import the
``knockout`` package), so that the planner is run on data it was not built around:

* 8 named neurons (N1 ... N8) respond linearly to 20 stimulus features ``x ~ N(0, 1)``;
  behaviour is one output, a weighted sum of the neurons plus noise ``N(0, 0.3^2)``.
* The neurons' output weights span a factor of 12 (log-spaced), so some matter much
  more to behaviour than others: those the pilot leaves uncertain.
* Besides the control set, N1 ... N7 are each silenced alone (activity set to 0); N8 is
  never silenced, so the plan gives it a reason instead of a number.

``--truth`` also prints each neuron's contribution, the standard deviation of its share of
the behaviour (the planner's c), which the pilot does not contain. ``--rows N`` draws the
experiment the plan is about instead (the same network, N trials per line), with a
neurons file of every neuron's noise-free activity on fresh stimuli, so that what ko
reaches can be compared with the plan (README, "Planning an experiment").

Usage::

    python examples/make_pilot.py [--out FOLDER] [--truth] [--rows N]

The output is deterministic (fixed seed); running it twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 11
UNITS = [f"N{number}" for number in range(1, 9)]
SILENCED = UNITS[:7]
N_INPUTS = 20
ROWS_PER_SET = 120
NOISE_SD = 0.3
WEIGHT_RANGE = 12.0


def network(generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Input weights [units, inputs] and output weights [units] (log-spaced magnitudes,
    random signs, in a random order over the units)."""
    w_in = generator.normal(size=(len(UNITS), N_INPUTS)) / np.sqrt(N_INPUTS)
    magnitudes = np.geomspace(1.0, 1.0 / WEIGHT_RANGE, len(UNITS))[generator.permutation(len(UNITS))]
    return w_in, magnitudes * generator.choice([-1.0, 1.0], len(UNITS))


def inputs(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x.astype(np.float32), columns=[f"x_{i:02d}" for i in range(N_INPUTS)])


def behavior_table(
    generator: np.random.Generator, w_in: np.ndarray, w_out: np.ndarray, rows: int
) -> pd.DataFrame:
    blocks = []
    for name in ["control", *SILENCED]:
        x = generator.normal(size=(rows, N_INPUTS))
        activity = x @ w_in.T
        if name != "control":
            activity[:, UNITS.index(name)] = 0.0
        y = activity @ w_out + 0.5 + NOISE_SD * generator.normal(size=rows)
        block = inputs(x)
        block.insert(0, "silenced", "" if name == "control" else name)
        block.insert(0, "set", name)
        block["y"] = y.astype(np.float32)
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def neurons_table(generator: np.random.Generator, w_in: np.ndarray, stimuli: int = 2000) -> pd.DataFrame:
    """Fresh stimuli and every neuron's noise-free activity (``r_<neuron>``)."""
    x = generator.normal(size=(stimuli, N_INPUTS))
    responses = pd.DataFrame((x @ w_in.T).astype(np.float32), columns=[f"r_{unit}" for unit in UNITS])
    return pd.concat([inputs(x), responses], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "pilot")
    parser.add_argument("--truth", action="store_true", help="print each neuron's contribution c")
    parser.add_argument("--rows", type=int, help="the experiment: this many trials per line, and neurons")
    args = parser.parse_args()
    generator = np.random.default_rng(SEED)
    w_in, w_out = network(generator)
    args.out.mkdir(parents=True, exist_ok=True)
    experiment = np.random.default_rng([SEED, args.rows]) if args.rows else generator
    table = behavior_table(experiment, w_in, w_out, args.rows or ROWS_PER_SET)
    table.to_parquet(args.out / "behavior.parquet", index=False)
    if args.rows:
        neurons_table(experiment, w_in).to_parquet(args.out / "neurons.parquet", index=False)
    if args.truth:  # with x ~ N(0, I): c_i = |w_out,i| · |W_in,i|
        for name, c in zip(UNITS, np.abs(w_out) * np.linalg.norm(w_in, axis=1), strict=True):
            print(f"{name}: c = {c:.4f}")


if __name__ == "__main__":
    main()
