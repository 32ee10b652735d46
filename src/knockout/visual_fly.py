"""The visual simulated fly: a male fly that sees a female and sings and steers.

What it sees: a target (the female: a dark elongated ellipse with a darker head spot, so that
its heading is visible) on a light background, rendered into small grayscale frames
[H, W] (:func:`render`). The target's state per frame is (azimuth, elevation, size, heading)
(:data:`STATE_NAMES`), each a smooth stationary random process over a session of frames
(:func:`trajectories`).

Its units (the LC cell types of Cowley et al. 2024) are a known, seeded random function of
the target's state over the last ``history`` frames: position, size and heading per frame and
their frame-to-frame changes, z-scored, through a small two-layer ReLU network
(:meth:`VisualFly.units`). The units depend on the state, not the pixels, so that the ground
truth of every unit is exact and cheap; rendering makes the state a function of the frames
(position is the dark blob's centre of mass, size its area, heading its second moments and
the head spot), so a model that sees the last ``history`` frames can represent every unit.

Its behaviour: continuous outputs ``y_*`` (a linear readout of the units plus Gaussian noise
of sd ``noise_sd``) and binary song-like events ``b_*`` (Bernoulli of a logistic readout of the
units, its bias set so that the control fly sings in ``event_rate`` of the frames).
Silencing unit i (the set ``unit_XX``) keeps ``silenced_activity`` of that unit in every frame
of that set's sessions; each set has its own sessions (one animal of one genotype).

:func:`write_visual_fly` writes it all as a data folder of the array-stimulus import contract
(``frames.npy``, ``behavior.parquet``, ``neurons.parquet``) plus ``truth.json``.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from knockout import naming, seeding

STATE_NAMES = ("azimuth", "elevation", "size", "heading")
"""A state's columns: azimuth (centre, fraction of the width), elevation (centre, fraction of
the height), size (semi-major axis, fraction of the height), heading (radians, in [-pi, pi))."""
STATE_RANGES = {"azimuth": (0.1, 0.9), "elevation": (0.35, 0.65), "size": (0.12, 0.35)}
"""Where the bounded state variables stay (the target is always in view)."""
ASPECT = 0.45
"""The target's minor over major axis."""
HEAD_OFFSET, HEAD_RADIUS = 0.6, 0.6
"""The head spot's centre (fraction of the semi-major axis along the heading) and radius
(fraction of the semi-minor axis): always inside the body."""
BACKGROUND, BODY, HEAD = 0.85, 0.25, 0.05
"""Intensities (0 black .. 1 white)."""
SPREAD = 1.2
"""A bounded variable is lo + (hi - lo) (1 + tanh(z / SPREAD)) / 2 of a unit-variance process z."""
REFERENCE_SESSIONS, REFERENCE_FRAMES = 16, 256
"""The control trajectories (drawn with the fly) that fix its z-scoring and readout scales."""
UNIT_OFFSET = 0.5
"""Each unit is ReLU(standardised drive + UNIT_OFFSET): active in about 70% of frames."""
TIME_CHUNK = 2048
"""Frames rendered at a time (bounds the temporary arrays)."""


@dataclass(frozen=True)
class VisualFlySettings:
    """The visual fly and its experiment."""

    height: int = 16
    width: int = 56
    n_units: int = 8
    history: int = 4
    """Frames (the current one and those before it) the units depend on."""
    n_outputs: int = 2
    n_events: int = 1
    sessions_per_set: int = 4
    frames_per_session: int = 256
    neuron_sessions: int = 4
    """Control sessions whose every unit is recorded (neurons.parquet)."""
    noise_sd: float = 0.1
    """Noise of the continuous outputs, whose noise-free part has sd 1 in the control fly."""
    silenced_activity: float = 0.0
    """Fraction of a silenced unit's activity that remains (0: fully silenced)."""
    time_constant: float = 6.0
    """Frames: each state variable is a second-order low-pass of white noise with this time constant."""
    turn_sd: float = 0.15
    """Radians per frame: the sd of the heading's change."""
    n_hidden: int = 32
    """Hidden ReLU units between the state features and the units."""
    event_rate: float = 0.2
    """Fraction of the control fly's frames with an event."""
    event_gain: float = 2.0
    """The event logit's sd (before its bias) in the control fly."""
    test_fraction: float = 0.25
    """Fraction of each set's sessions in the test split (at least one, at most all but one)."""

    def __post_init__(self) -> None:
        positive = ("height", "width", "n_units", "history", "n_outputs", "frames_per_session", "n_hidden")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"visual fly: {name} = {getattr(self, name)} (allowed: at least 1)")
        if self.n_events < 0 or self.neuron_sessions < 0:
            raise ValueError("visual fly: n_events and neuron_sessions must be at least 0")
        if self.sessions_per_set < 2:
            raise ValueError(
                f"visual fly: sessions_per_set = {self.sessions_per_set} (allowed: at least 2, "
                "one to train and one to test)"
            )
        if self.frames_per_session < self.history:
            raise ValueError(
                f"visual fly: frames_per_session = {self.frames_per_session} is shorter than "
                f"history = {self.history} (a session would give no sample)"
            )
        for name in ("silenced_activity", "test_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"visual fly: {name} = {getattr(self, name)} (allowed: 0 .. 1)")
        if not 0 < self.event_rate < 1:
            raise ValueError(f"visual fly: event_rate = {self.event_rate} (allowed: strictly 0 .. 1)")
        if self.time_constant <= 0 or self.noise_sd < 0 or self.turn_sd < 0 or self.event_gain < 0:
            raise ValueError("visual fly: time_constant must be positive; noise_sd, turn_sd, event_gain >= 0")


def event_columns(n_events: int) -> list[str]:
    """The binary outputs: ``b_song`` for one, else ``b_song_00`` ..."""
    return ["b_song"] if n_events == 1 else [f"b_song_{i:02d}" for i in range(n_events)]


# ------------------------------------------------------------------------------------------- rendering


def _coverage(distance: np.ndarray) -> np.ndarray:
    """How much of a pixel lies inside a shape, from its centre's signed distance (pixels) to
    the edge: a one-pixel linear ramp, so that small moves change pixels continuously."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def _render_chunk(states: np.ndarray, height: int, width: int) -> np.ndarray:
    azimuth, elevation, size, heading = (column[:, None, None] for column in states.T)
    cx, cy, a = azimuth * width, elevation * height, size * height
    b = ASPECT * a
    dx = (np.arange(width) + 0.5)[None, None, :] - cx
    dy = (np.arange(height) + 0.5)[None, :, None] - cy
    cos, sin = np.cos(heading), np.sin(heading)
    u, v = cos * dx + sin * dy, cos * dy - sin * dx
    # signed distance to the ellipse, to first order: (q - 1) / |grad q|, exact along its axes
    q = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    gradient = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / np.maximum(q, 1e-12)
    body = _coverage((q - 1) / np.maximum(gradient, 1 / a))
    head_distance = np.hypot(dx - HEAD_OFFSET * a * cos, dy - HEAD_OFFSET * a * sin) - HEAD_RADIUS * b
    head = np.minimum(_coverage(head_distance), body)
    return (BACKGROUND - (BACKGROUND - BODY) * body - (BODY - HEAD) * head).astype(np.float32)


def render(states: np.ndarray, height: int = 16, width: int = 56) -> np.ndarray:
    """Frames [n, height, width] float32 in 0..1 of the target in states [n, 4]
    (:data:`STATE_NAMES`): a pure function, vectorised over frames."""
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != len(STATE_NAMES):
        raise ValueError(f"render: states of shape {states.shape} (expected [n, {len(STATE_NAMES)}])")
    frames = np.empty((len(states), height, width), dtype=np.float32)
    for start in range(0, len(states), TIME_CHUNK):
        frames[start : start + TIME_CHUNK] = _render_chunk(states[start : start + TIME_CHUNK], height, width)
    return frames


# ---------------------------------------------------------------------------------------- trajectories


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def trajectories(
    n_sessions: int, n_frames: int, settings: VisualFlySettings, rng: np.random.Generator
) -> np.ndarray:
    """States [n_sessions, n_frames, 4] of independent sessions.

    Each variable is driven by z, a second-order low-pass (two cascaded AR(1) filters of
    coefficient exp(-1/time_constant)) of white noise with unit stationary variance, started
    in its stationary distribution by a burn-in of 10 time constants. Azimuth, elevation and
    size are z squashed into :data:`STATE_RANGES`; heading integrates a turning rate
    ``turn_sd`` z from a uniform start and wraps to [-pi, pi).
    """
    rho = math.exp(-1 / settings.time_constant)
    gain = (1 - rho**2) / math.sqrt(1 + rho**2)  # makes var(z) = 1
    burn = math.ceil(10 * settings.time_constant)
    noise = rng.standard_normal((burn + n_frames, n_sessions, len(STATE_NAMES)))
    start = rng.uniform(-np.pi, np.pi, n_sessions)
    first = np.zeros((n_sessions, len(STATE_NAMES)))
    z = np.zeros_like(first)
    drive = np.empty((n_frames, n_sessions, len(STATE_NAMES)))
    for t in range(burn + n_frames):
        first = rho * first + math.sqrt(1 - rho**2) * noise[t]
        z = rho * z + gain * first
        if t >= burn:
            drive[t - burn] = z
    drive = drive.transpose(1, 0, 2)
    states = np.empty_like(drive)
    for i, name in enumerate(STATE_NAMES[:3]):
        low, high = STATE_RANGES[name]
        states[..., i] = low + (high - low) * (1 + np.tanh(drive[..., i] / SPREAD)) / 2
    states[..., 3] = _wrap(start[:, None] + np.cumsum(settings.turn_sd * drive[..., 3], axis=1))
    return states


def features(states: np.ndarray, history: int) -> np.ndarray:
    """Features [sessions, T, 5 history + 4 (history - 1)] of states [sessions, T, 4]: per frame
    of the last ``history`` (oldest first) azimuth, elevation, size, cos and sin heading, then
    the changes from each of these frames to the next (heading's wrapped). The first
    history - 1 frames of a session repeat its first state as their missing past."""
    padded = np.concatenate([np.repeat(states[:, :1], history - 1, axis=1), states], axis=1)
    n_frames = states.shape[1]
    windows = [padded[:, lag : lag + n_frames] for lag in range(history)]
    per_frame = [
        np.concatenate([w[..., :3], np.cos(w[..., 3:]), np.sin(w[..., 3:])], axis=-1) for w in windows
    ]
    changes = [
        np.concatenate([new[..., :3] - old[..., :3], _wrap(new[..., 3:] - old[..., 3:])], axis=-1)
        for old, new in itertools.pairwise(windows)
    ]
    return np.concatenate(per_frame + changes, axis=-1)


# --------------------------------------------------------------------------------------------- the fly


@dataclass(frozen=True)
class VisualFly:
    """The known network: features -> z-score -> ReLU(w1 . + b1) -> units ReLU(w2 . + b2);
    outputs ``readout`` . units + ``readout_bias``; event logits ``events`` . units + ``event_bias``.
    Arrays are float64; their scales are folded in from the reference trajectories."""

    history: int
    feature_mean: np.ndarray
    feature_sd: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    readout: np.ndarray
    readout_bias: np.ndarray
    events: np.ndarray
    event_bias: np.ndarray

    def units(
        self, states: np.ndarray, silenced: int | None = None, silenced_activity: float = 0.0
    ) -> np.ndarray:
        """Unit responses [sessions, T, n_units] to states [sessions, T, 4]; unit ``silenced``
        (if any) keeps ``silenced_activity`` of its response in every frame."""
        z = (features(states, self.history) - self.feature_mean) / self.feature_sd
        hidden = np.maximum(z @ self.w1.T + self.b1, 0.0)
        units = np.maximum(hidden @ self.w2.T + self.b2, 0.0)
        if silenced is not None:
            units[..., silenced] *= silenced_activity
        return units

    def outputs(self, units: np.ndarray) -> np.ndarray:
        """Noise-free continuous outputs [..., n_outputs]."""
        return units @ self.readout.T + self.readout_bias

    def event_probability(self, units: np.ndarray) -> np.ndarray:
        """Each frame's probability of an event [..., n_events]."""
        return 1 / (1 + np.exp(-(units @ self.events.T + self.event_bias)))

    def behave(
        self, units: np.ndarray, noise_sd: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noisy outputs and 0/1 events (int64) of units [..., n_units]."""
        outputs = self.outputs(units)
        outputs = outputs + noise_sd * rng.standard_normal(outputs.shape)
        probability = self.event_probability(units)
        return outputs, (rng.random(probability.shape) < probability).astype(np.int64)

    def to_json(self) -> dict:
        return {f.name: np.asarray(getattr(self, f.name)).tolist() for f in fields(self)}

    @classmethod
    def from_json(cls, values: dict) -> VisualFly:
        """The fly ``truth.json`` holds (``to_json``'s inverse)."""
        return cls(
            **{
                f.name: values[f.name] if f.name == "history" else np.asarray(values[f.name])
                for f in fields(cls)
            }
        )


def _standardise(weights: np.ndarray, drive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias whose drive has mean 0 and sd 1 over the reference frames."""
    flat = drive.reshape(-1, drive.shape[-1])
    mean, sd = flat.mean(axis=0), np.maximum(flat.std(axis=0), 1e-12)
    return weights / sd[:, None], -mean / sd


def _event_bias(logits: np.ndarray, rate: float) -> float:
    """The bias that makes the mean of sigmoid(logits + bias) ``rate`` (bisection)."""
    low, high = -50.0, 50.0
    for _ in range(100):
        middle = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logits + middle)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def make_visual_fly(settings: VisualFlySettings, seed: int) -> VisualFly:
    """Replicate ``seed``'s fly, from stream ``fly``: random weights, then scales fixed on
    control reference trajectories so that features are z-scored, each unit's drive has
    sd 1 (unit = ReLU(drive + :data:`UNIT_OFFSET`)), each output's noise-free part mean 0 and
    sd 1, each event logit sd ``event_gain`` and mean rate ``event_rate``."""
    rng = seeding.numpy_generator(seed, "fly")
    n_features = 5 * settings.history + 4 * (settings.history - 1)
    w1 = rng.standard_normal((settings.n_hidden, n_features)) / math.sqrt(n_features)
    b1 = 0.5 * rng.standard_normal(settings.n_hidden)
    w2 = rng.standard_normal((settings.n_units, settings.n_hidden))
    readout = rng.standard_normal((settings.n_outputs, settings.n_units))
    events = rng.standard_normal((settings.n_events, settings.n_units))
    reference = trajectories(REFERENCE_SESSIONS, REFERENCE_FRAMES, settings, rng)

    raw = features(reference, settings.history).reshape(-1, n_features)
    feature_mean, feature_sd = raw.mean(axis=0), np.maximum(raw.std(axis=0), 1e-12)
    hidden = np.maximum(((raw - feature_mean) / feature_sd) @ w1.T + b1, 0.0)
    w2, b2 = _standardise(w2, hidden @ w2.T)
    units = np.maximum(hidden @ w2.T + b2 + UNIT_OFFSET, 0.0)
    readout, readout_bias = _standardise(readout, units @ readout.T)
    events, event_shift = _standardise(events, units @ events.T)
    events, logits = settings.event_gain * events, settings.event_gain * (units @ events.T + event_shift)
    event_bias = np.array([_event_bias(column, settings.event_rate) for column in logits.T])
    return VisualFly(
        settings.history,
        feature_mean,
        feature_sd,
        w1,
        b1,
        w2,
        b2 + UNIT_OFFSET,
        readout,
        readout_bias,
        events,
        settings.event_gain * event_shift + event_bias,
    )


# ---------------------------------------------------------------------------------------- the folder


@dataclass(frozen=True)
class VisualFlyData:
    """One replicate in memory: ``frames`` [n_frames, H, W], the target's ``states``
    [n_frames, 4] and the fly's ``units`` [n_frames, n_units] (as silenced in that frame's set)
    per frame; the behaviour and neurons tables; the truth written as truth.json."""

    fly: VisualFly
    frames: np.ndarray
    states: np.ndarray
    units: np.ndarray
    behavior: pd.DataFrame
    neurons: pd.DataFrame
    truth: dict


def _test_sessions(n_sessions: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    n_test = min(max(round(fraction * n_sessions), 1), n_sessions - 1)
    test = np.zeros(n_sessions, dtype=bool)
    test[rng.permutation(n_sessions)[:n_test]] = True
    return test


def simulate_visual_fly(settings: VisualFlySettings, seed: int) -> VisualFlyData:
    """Replicate ``seed``: the control set and one set per unit silenced alone, each
    ``sessions_per_set`` sessions of ``frames_per_session`` frames (stream ``train_data``), a
    seeded choice of whole test sessions per set (stream ``split``), and ``neuron_sessions``
    control sessions with every unit's noise-free response (stream ``probe_data``), whose
    frames follow the behaviour's in frames.npy."""
    fly = make_visual_fly(settings, seed)
    data_rng, split_rng = seeding.numpy_generator(seed, "train_data"), seeding.numpy_generator(seed, "split")
    n_sessions, n_frames = settings.sessions_per_set, settings.frames_per_session
    outputs, events = naming.output_columns(settings.n_outputs), event_columns(settings.n_events)
    all_states, all_units, blocks = [], [], []
    for silenced, name in enumerate(naming.simulated_set_names(settings.n_units), start=-1):
        states = trajectories(n_sessions, n_frames, settings, data_rng)
        units = fly.units(states, None if silenced < 0 else silenced, settings.silenced_activity)
        y, b = fly.behave(units, settings.noise_sd, data_rng)
        test = np.repeat(_test_sessions(n_sessions, settings.test_fraction, split_rng), n_frames)
        block = pd.DataFrame(
            {
                "set": name,
                "silenced": "" if silenced < 0 else name,
                "split": np.where(test, "test", "train"),
                "session": np.repeat([f"{name}_s{i:02d}" for i in range(n_sessions)], n_frames),
            }
        )
        block[outputs] = y.reshape(-1, settings.n_outputs)
        block[events] = b.reshape(-1, settings.n_events)
        all_states.append(states.reshape(-1, len(STATE_NAMES)))
        all_units.append(units.reshape(-1, settings.n_units))
        blocks.append(block)
    behavior = pd.concat(blocks, ignore_index=True)
    behavior.insert(4, "frame", np.arange(len(behavior), dtype=np.int64))

    probe = trajectories(
        settings.neuron_sessions, n_frames, settings, seeding.numpy_generator(seed, "probe_data")
    )
    responses = fly.units(probe).reshape(-1, settings.n_units)
    neurons = pd.DataFrame(
        {
            "session": np.repeat([f"neurons_s{i:02d}" for i in range(settings.neuron_sessions)], n_frames),
            "frame": np.arange(len(behavior), len(behavior) + len(responses), dtype=np.int64),
        }
    )
    units_named = naming.unit_names(settings.n_units)
    neurons[[naming.response_column(unit) for unit in units_named]] = responses
    all_states.append(probe.reshape(-1, len(STATE_NAMES)))
    all_units.append(responses)

    states = np.concatenate(all_states)
    truth = {
        "seed": seed,
        "settings": asdict(settings),
        "history": settings.history,
        "state_names": list(STATE_NAMES),
        "units": units_named,
        "fly": fly.to_json(),
    }
    frames = render(states, settings.height, settings.width)
    return VisualFlyData(fly, frames, states, np.concatenate(all_units), behavior, neurons, truth)


def write_visual_fly(folder: str | Path, settings: VisualFlySettings, seed: int) -> VisualFlyData:
    """Write replicate ``seed`` as a data folder: ``frames.npy`` [n_frames, H, W] float32,
    ``behavior.parquet`` (set, silenced, split, session, frame, y*, b_*), ``neurons.parquet``
    (session, frame, r_<unit>) and ``truth.json`` (seed, settings, history, the fly's weights).
    The same settings and seed give byte-identical files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = simulate_visual_fly(settings, seed)
    np.save(folder / "frames.npy", data.frames, allow_pickle=False)
    data.behavior.to_parquet(folder / "behavior.parquet", index=False)
    data.neurons.to_parquet(folder / "neurons.parquet", index=False)
    (folder / "truth.json").write_text(json.dumps(data.truth, sort_keys=True) + "\n")
    return data
