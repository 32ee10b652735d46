"""Generate the shipped example data folder ``examples/lc_lines/``: a made-up fly experiment.

The data come from a small network written here, on purpose *not* the pipeline's own
simulator (this script does not import the ``knockout`` package), so that the example
exercises the pipeline on data it was not built around:

* 12 named silenceable units (visual projection neuron types LC4 ... LC26) respond to
  20 visual inputs ``x ~ N(0, 1)`` through a softplus nonlinearity,
  ``h = softplus(W x + b)``, rather than the pipeline's linear/ReLU fly.
* The units' output weights are scaled log-uniformly over a factor of 8, so some units
  matter much more to behaviour than others.
* Behaviour has 3 outputs, ``y = V2 tanh(V1 h + c1) + c2 + noise``, read out through a
  hidden layer of 24 tanh units, with independent noise ``N(0, 0.1^2)`` per output.
  Each output's noise-free variance is calibrated to about 1.
* Silencing sets the activity of the silenced units to 0. Besides the control and seven
  single-unit lines, two "cell-type" lines each silence two units at once
  (``LC16+LC17`` and ``LC18+LC21``); LC26 is never silenced.
* Each set's trials come in sessions (``session``: an animal, say), 5 of 100 frames each,
  and frames of a session are not independent: the stimulus drifts slowly around a
  per-session mean, and the animal's behaviour carries a per-session offset. A split that
  drew rows at random would put neighbouring frames of one session on both sides and
  score the test rows partly on what training saw; the file has no ``split`` column, so
  the pipeline draws whole sessions per seed (``data.test_fraction``: 1 of 5).
* Neural recordings (``neurons.parquet``) cover only half of the units, in arbitrary
  units (gain and offset), with recording noise, about 10 % of values missing at random,
  and LC26 recorded on only the first half of the stimuli.

The true unit activities are written nowhere: the pipeline sees only behaviour and the
partial recordings.

Usage::

    python examples/make_example.py [--out FOLDER]

The output is deterministic (fixed seed); running it twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2024
UNITS = ["LC4", "LC6", "LC9", "LC10a", "LC11", "LC12", "LC15", "LC16", "LC17", "LC18", "LC21", "LC26"]
N_INPUTS = 20
N_HIDDEN = 24
N_OUTPUTS = 3
NOISE_SD = 0.1
GAIN_RANGE = 8.0  # ratio of the strongest to the weakest unit's output weight scale

# Silencing sets: name -> silenced units. Control first.
SETS: dict[str, list[str]] = {
    "control": [],
    **{unit: [unit] for unit in ["LC4", "LC6", "LC9", "LC10a", "LC11", "LC12", "LC15"]},
    "LC16+LC17": ["LC16", "LC17"],
    "LC18+LC21": ["LC18", "LC21"],
}
N_SESSIONS = 10  # per set
N_FRAMES = 50  # per session
SESSION_MEAN_SD = 0.3  # sd of a session's mean stimulus, per input (frames vary around it)
DRIFT = 0.5  # frame-to-frame correlation of the stimulus within a session
SESSION_OFFSET_SD = 0.1  # sd of a session's offset of behaviour, per output

RECORDED = ["LC4", "LC9", "LC11", "LC15", "LC17", "LC26"]
N_STIMULI = 400
RECORDING_GAIN = 2.0
RECORDING_NOISE = 0.1  # noise sd as a fraction of the unit's activity sd
MISSING_FRACTION = 0.1
LC26_RECORDED = 200  # LC26 is recorded on the first LC26_RECORDED stimuli only

N_CALIBRATION = 20_000

X_COLS = [f"x_{i:02d}" for i in range(N_INPUTS)]
Y_COLS = [f"y_{i:02d}" for i in range(N_OUTPUTS)]


def softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


class Fly:
    """The made-up fly: softplus units feeding a tanh readout of behaviour."""

    def __init__(self, rng: np.random.Generator) -> None:
        n_units = len(UNITS)
        self.W = rng.normal(size=(n_units, N_INPUTS)) / np.sqrt(N_INPUTS) * 1.5
        self.b = rng.normal(0.0, 0.1, size=n_units)
        # Output weight scale per unit, spread log-uniformly over a factor GAIN_RANGE.
        self.gain = rng.permutation(np.geomspace(1.0, GAIN_RANGE, n_units))
        v1 = rng.normal(size=(N_HIDDEN, n_units)) * self.gain
        v2 = rng.normal(size=(N_OUTPUTS, N_HIDDEN)) / np.sqrt(N_HIDDEN)

        # Calibrate on control stimuli: hidden pre-activations of sd about 1 around a
        # small random offset, and each output's noise-free variance equal to 1 - noise.
        h = self.units(rng.normal(size=(N_CALIBRATION, N_INPUTS)))
        pre = h @ v1.T
        self.V1 = v1 / pre.std(axis=0).mean()
        self.c1 = -pre.mean(axis=0) / pre.std(axis=0).mean() + rng.normal(0.0, 0.3, size=N_HIDDEN)
        out = np.tanh(h @ self.V1.T + self.c1) @ v2.T
        scale = np.sqrt(1.0 - NOISE_SD**2) / out.std(axis=0)
        self.V2 = v2 * scale[:, None]
        self.c2 = rng.normal(0.0, 0.1, size=N_OUTPUTS) - out.mean(axis=0) * scale

    def units(self, x: np.ndarray, silenced: Sequence[str] = ()) -> np.ndarray:
        h = softplus(x @ self.W.T + self.b)
        h[:, [UNITS.index(u) for u in silenced]] = 0.0
        return h

    def behaviour(self, h: np.ndarray) -> np.ndarray:
        """Noise-free behaviour from unit activities."""
        return np.tanh(h @ self.V1.T + self.c1) @ self.V2.T + self.c2


def session_stimuli(rng: np.random.Generator) -> np.ndarray:
    """One session's frames [N_FRAMES, N_INPUTS]: a per-session mean plus an AR(1) drift,
    each input of unit variance over sessions, like the calibration's ``N(0, 1)``."""
    innovations = rng.normal(size=(N_FRAMES, N_INPUTS)) * np.sqrt(1.0 - DRIFT**2)
    drift = np.empty_like(innovations)
    drift[0] = rng.normal(size=N_INPUTS)
    for frame in range(1, N_FRAMES):
        drift[frame] = DRIFT * drift[frame - 1] + innovations[frame]
    mean = rng.normal(0.0, SESSION_MEAN_SD, size=N_INPUTS)
    return mean + np.sqrt(1.0 - SESSION_MEAN_SD**2) * drift


def make_behavior(fly: Fly, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    frames, summary = [], []
    for name, silenced in SETS.items():
        x = np.concatenate([session_stimuli(rng) for _ in range(N_SESSIONS)])
        session = np.repeat(np.arange(N_SESSIONS), N_FRAMES)
        offset = rng.normal(0.0, SESSION_OFFSET_SD, size=(N_SESSIONS, N_OUTPUTS))[session]
        y_clean = fly.behaviour(fly.units(x, silenced))
        y = y_clean + offset + rng.normal(0.0, NOISE_SD, size=y_clean.shape)
        # Effect of silencing on these stimuli: mean squared change of noise-free behaviour.
        effect = np.mean((y_clean - fly.behaviour(fly.units(x))) ** 2) / NOISE_SD**2
        summary.append(
            f"{name:<10} silenced={'+'.join(silenced) or '-':<10} rows={len(x)} "
            f"var(y)={np.round(y.var(axis=0), 2).tolist()} effect/noise={effect:.1f}"
        )
        frame = pd.DataFrame(x.astype(np.float32), columns=X_COLS)
        frame[Y_COLS] = y.astype(np.float32)
        frame.insert(0, "set", name)
        frame.insert(1, "silenced", "+".join(silenced))
        frame.insert(2, "session", [f"{name}-{number + 1}" for number in session])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), summary


def make_neurons(fly: Fly, rng: np.random.Generator) -> pd.DataFrame:
    x = rng.normal(size=(N_STIMULI, N_INPUTS))
    h = fly.units(x)
    frame = pd.DataFrame(x.astype(np.float32), columns=X_COLS)
    for unit in RECORDED:
        hi = h[:, UNITS.index(unit)]
        offset = rng.uniform(-1.0, 1.0)
        r = RECORDING_GAIN * hi + offset + rng.normal(0.0, RECORDING_NOISE * hi.std(), size=N_STIMULI)
        missing = rng.choice(N_STIMULI, size=round(MISSING_FRACTION * N_STIMULI), replace=False)
        r[missing] = np.nan
        if unit == "LC26":
            r[LC26_RECORDED:] = np.nan
        frame[f"r_{unit}"] = r.astype(np.float32)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "lc_lines", help="output folder"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    fly = Fly(rng)
    behavior, summary = make_behavior(fly, rng)
    neurons = make_neurons(fly, rng)

    args.out.mkdir(parents=True, exist_ok=True)
    behavior.to_parquet(args.out / "behavior.parquet", index=False, engine="pyarrow")
    neurons.to_parquet(args.out / "neurons.parquet", index=False, engine="pyarrow")

    print(f"unit output gains: {dict(zip(UNITS, np.round(fly.gain, 2).tolist(), strict=True))}")
    print("\n".join(summary))
    never = [u for u in UNITS if not any(u in s for s in SETS.values())]
    print(f"never silenced: {', '.join(never)}")
    print(
        f"wrote {args.out / 'behavior.parquet'} ({len(behavior)} rows), "
        f"{args.out / 'neurons.parquet'} ({len(neurons)} rows)"
    )


if __name__ == "__main__":
    main()
