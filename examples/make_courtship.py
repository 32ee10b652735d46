"""Generate the second worked example, ``examples/courtship/``: a courtship experiment as
the paper's authors had it, made up.

A male fly watches a female (frames over time) and steers and sings; the generator is the
pipeline's visual fly (``knockout.visual_fly``), and the folder is then made to look like a
recording rather than a simulation:

* Eight silenceable units, named after visual projection neuron types (LC4 ... LC26); a
  line per unit silences it; sessions of 256 frames (an animal each), four per line.
* Frames: 16 x 56 grayscale images of the female (``frames.npy``, uint8 as a camera
  gives them: read as value / 255), one per time point; each sample's input is its frame
  and the 3 before it in its session (``data.history: 4``).
* Behaviour: forward and angular velocity (``y_forward``, ``y_angular``, z-scored as the
  authors z-scored theirs) and song pulses (``b_pulse``: 0 or 1 per frame).
* Recordings (``neurons.parquet``): 5 of the 8 types, in arbitrary units (gain and
  offset), with recording noise, 10 % of the values missing, in sessions of their own.
* No ``truth.json``: the pipeline sees what a lab would have.

Usage::

    python examples/make_courtship.py [--out FOLDER]

Deterministic (fixed seed): running it twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from knockout.visual_fly import VisualFlySettings, simulate_visual_fly

UNITS = ["LC4", "LC6", "LC9", "LC10a", "LC11", "LC12", "LC16", "LC26"]
RECORDED = ["LC4", "LC9", "LC11", "LC16", "LC26"]
SETTINGS = VisualFlySettings(n_units=len(UNITS), history=4, n_outputs=2, n_events=1, sessions_per_set=16)
SEED = 11


def courtship(folder: Path) -> None:
    data = simulate_visual_fly(SETTINGS, SEED)
    rng = np.random.default_rng(SEED)
    names = dict(zip((f"unit_{i:02d}" for i in range(len(UNITS))), UNITS, strict=True))
    behavior = data.behavior.replace({"set": names, "silenced": names})
    behavior["session"] = behavior["session"].replace(
        {f"{old}_": f"{new}_" for old, new in names.items()}, regex=True
    )
    outputs = {"y_00": "y_forward", "y_01": "y_angular", "b_song": "b_pulse"}
    behavior = behavior.rename(columns=outputs).drop(columns="split")  # the pipeline draws sessions
    for column in ("y_forward", "y_angular"):
        behavior[column] = (behavior[column] - behavior[column].mean()) / behavior[column].std()
    neurons = data.neurons[["session", "frame"]].copy()
    for unit in RECORDED:
        response = data.neurons[f"r_unit_{UNITS.index(unit):02d}"].to_numpy()
        recorded = rng.uniform(0.5, 3.0) * response + rng.uniform(-1, 1)
        recorded = recorded + 0.05 * recorded.std() * rng.standard_normal(len(recorded))
        recorded[rng.random(len(recorded)) < 0.1] = np.nan
        neurons[f"r_{unit}"] = recorded
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "frames.npy", np.round(data.frames * 255).astype(np.uint8), allow_pickle=False)
    behavior.to_parquet(folder / "behavior.parquet", index=False)
    neurons.to_parquet(folder / "neurons.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "courtship")
    courtship(parser.parse_args().out)


if __name__ == "__main__":
    main()
