"""The visual simulated fly: rendering, trajectories, the known network, behaviour and its folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from knockout import naming, seeding
from knockout.visual_fly import (
    BACKGROUND,
    STATE_RANGES,
    VisualFly,
    VisualFlySettings,
    event_columns,
    make_visual_fly,
    render,
    simulate_visual_fly,
    trajectories,
    write_visual_fly,
)

SMALL = VisualFlySettings(n_units=3, sessions_per_set=4, frames_per_session=40, neuron_sessions=2)
H, W = 16, 56


def _state(azimuth=0.5, elevation=0.5, size=0.25, heading=0.0) -> np.ndarray:
    return np.array([[azimuth, elevation, size, heading]])


def _darkness(frames: np.ndarray) -> np.ndarray:
    return BACKGROUND - frames.astype(np.float64)


def _moments(frame: np.ndarray) -> tuple[float, float, float, float, float]:
    """Mass, centre (x, y) and variances (x, y) of one frame's darkness, in pixels."""
    mass = _darkness(frame)
    ys, xs = np.mgrid[: frame.shape[0], : frame.shape[1]] + 0.5
    total = mass.sum()
    cx, cy = (mass * xs).sum() / total, (mass * ys).sum() / total
    return total, cx, cy, (mass * (xs - cx) ** 2).sum() / total, (mass * (ys - cy) ** 2).sum() / total


@pytest.fixture(scope="module")
def small():
    return simulate_visual_fly(SMALL, seed=3)


# ------------------------------------------------------------------------------------------ rendering


def test_render_is_deterministic_float32_in_range():
    states = trajectories(3, 20, SMALL, seeding.numpy_generator(0, "train_data")).reshape(-1, 4)
    frames = render(states, H, W)
    assert frames.shape == (60, H, W)
    assert frames.dtype == np.float32
    assert np.array_equal(frames, render(states, H, W))
    assert frames.min() >= 0 and frames.max() <= 1
    # a frame is the same rendered alone or among others (vectorised, no cross-talk)
    assert np.array_equal(frames[7], render(states[7:8], H, W)[0])
    # background far from the target, dark at its centre
    frame = render(_state(), H, W)[0]
    assert frame[8, 28] < 0.3
    assert frame[0, 0] == np.float32(BACKGROUND)


def test_position_moves_the_centre_of_mass():
    for azimuth in (0.2, 0.5, 0.8):
        _, cx, _, _, _ = _moments(render(_state(azimuth=azimuth, heading=np.pi / 2), H, W)[0])
        # the head spot lies on the vertical axis here: the x centre is the target's
        assert cx == pytest.approx(azimuth * W, abs=0.05)
    centres = [_moments(render(_state(elevation=e), H, W)[0])[2] for e in (0.4, 0.5, 0.6)]
    assert np.allclose(np.diff(centres), 0.1 * H, atol=0.1)


def test_size_changes_the_area():
    sizes = np.array([0.15, 0.2, 0.25, 0.3])
    masses = np.array([_moments(render(_state(size=s), H, W)[0])[0] for s in sizes])
    assert np.all(np.diff(masses) > 0)
    # dark mass grows as the area, size squared
    assert masses[-1] / masses[0] == pytest.approx((sizes[-1] / sizes[0]) ** 2, rel=0.1)


def test_rotation_changes_second_moments_and_the_head_shows_heading():
    _, _, _, var_x, var_y = _moments(render(_state(heading=0.0), H, W)[0])
    _, _, _, turned_x, turned_y = _moments(render(_state(heading=np.pi / 2), H, W)[0])
    assert var_x > 2 * var_y
    assert turned_y > 2 * turned_x
    # heading 0 and pi have the same ellipse; the head spot pulls the centre its way
    cx_right = _moments(render(_state(heading=0.0), H, W)[0])[1]
    cx_left = _moments(render(_state(heading=np.pi), H, W)[0])[1]
    assert cx_right > 0.5 * W + 0.05 > 0.5 * W - 0.05 > cx_left


def test_small_moves_change_pixels_continuously():
    base = render(_state(), H, W)[0].astype(np.float64)
    for step in (1e-3, 1e-2):
        moved = render(_state(azimuth=0.5 + step / W), H, W)[0].astype(np.float64)
        change = np.abs(moved - base).max()
        assert 0 < change <= 1.5 * step * (BACKGROUND - 0.05)


# --------------------------------------------------------------------------------------- trajectories


def test_trajectories_stay_in_view_and_are_smooth():
    states = trajectories(8, 400, VisualFlySettings(), seeding.numpy_generator(1, "train_data"))
    assert states.shape == (8, 400, 4)
    for i, name in enumerate(("azimuth", "elevation", "size")):
        low, high = STATE_RANGES[name]
        assert low <= states[..., i].min() and states[..., i].max() <= high
        centred = states[..., i] - states[..., i].mean()
        lag1 = (centred[:, 1:] * centred[:, :-1]).mean() / (centred**2).mean()
        assert lag1 > 0.95, name
    assert np.all(np.abs(states[..., 3]) <= np.pi)
    turns = np.angle(np.exp(1j * np.diff(states[..., 3], axis=1)))
    assert np.abs(turns).mean() < 0.3
    # sessions are independent: different paths, uncorrelated between sessions
    assert np.corrcoef(states[0, :, 0], states[1, :, 0])[0, 1] < 0.8


def test_trajectories_are_seeded():
    draw = lambda seed: trajectories(2, 30, SMALL, seeding.numpy_generator(seed, "train_data"))  # noqa: E731
    assert np.array_equal(draw(0), draw(0))
    assert not np.allclose(draw(0), draw(1))


# ------------------------------------------------------------------------------------------ the network


def test_units_depend_on_the_last_history_frames_only():
    fly = make_visual_fly(SMALL, 0)
    states = trajectories(1, 30, SMALL, seeding.numpy_generator(0, "train_data"))
    units = fly.units(states)
    k = SMALL.history
    t = 20
    changed = states.copy()
    changed[0, t - k + 1, 2] += 0.05  # the oldest frame in frame t's history
    assert not np.allclose(fly.units(changed)[0, t], units[0, t])
    older = states.copy()
    older[0, t - k, 2] += 0.05  # one frame before it
    assert np.allclose(fly.units(older)[0, t], units[0, t])
    assert np.array_equal(units, fly.units(states))


def test_silencing_a_unit_zeroes_it_and_changes_behaviour():
    fly = make_visual_fly(SMALL, 0)
    states = trajectories(2, 50, SMALL, seeding.numpy_generator(0, "train_data"))
    units = fly.units(states)
    for i in range(SMALL.n_units):
        silenced = fly.units(states, i)
        assert np.all(silenced[..., i] == 0) and units[..., i].max() > 0
        assert np.array_equal(np.delete(silenced, i, -1), np.delete(units, i, -1))
        assert np.abs(fly.outputs(silenced) - fly.outputs(units)).max() > 0.1
        assert np.abs(fly.event_probability(silenced) - fly.event_probability(units)).max() > 0.01
    half = fly.units(states, 1, 0.5)
    assert np.allclose(half[..., 1], 0.5 * units[..., 1])


def test_silenced_sets_in_the_data(small):
    behavior = small.behavior
    units, states = small.units[behavior["frame"]], small.states[behavior["frame"]]
    for i, name in enumerate(naming.unit_names(SMALL.n_units)):
        rows = (behavior["set"] == name).to_numpy()
        assert np.all(units[rows, i] == 0)
        assert np.all(behavior.loc[rows, "silenced"] == name)
        # the same states in the unsilenced fly behave differently
        set_states = states[rows].reshape(SMALL.sessions_per_set, -1, 4)
        intact = small.fly.units(set_states).reshape(-1, SMALL.n_units)
        assert np.allclose(
            intact[:, np.arange(SMALL.n_units) != i], units[rows][:, np.arange(SMALL.n_units) != i]
        )
        assert np.abs(small.fly.outputs(intact) - small.fly.outputs(units[rows])).mean() > 0.05
    control = (behavior["set"] == naming.CONTROL).to_numpy()
    assert np.all(behavior.loc[control, "silenced"] == "")
    assert np.all((units[control] > 0).mean(axis=0) > 0.2)


def test_event_rates_within_bounds():
    for seed in range(3):
        fly = make_visual_fly(VisualFlySettings(), seed)
        states = trajectories(16, 256, VisualFlySettings(), seeding.numpy_generator(seed, "probe_data"))
        units = fly.units(states)
        assert 0.15 < fly.event_probability(units).mean() < 0.25
        for i in range(fly.w2.shape[0]):
            assert 0.03 < fly.event_probability(fly.units(states, i)).mean() < 0.6
    rates = simulate_visual_fly(VisualFlySettings(), 0).behavior.groupby("set")["b_song"].mean()
    assert 0.1 < rates[naming.CONTROL] < 0.3
    assert rates.between(0.03, 0.6).all()


def test_outputs_have_the_noise_asked_for():
    quiet = simulate_visual_fly(SMALL, 3)
    noisy = simulate_visual_fly(VisualFlySettings(**{**SMALL.__dict__, "noise_sd": 1.0}), 3)
    y = naming.output_columns(SMALL.n_outputs)
    mean = quiet.fly.outputs(quiet.units)[: len(quiet.behavior)]
    assert np.std(quiet.behavior[y].to_numpy() - mean) == pytest.approx(SMALL.noise_sd, rel=0.15)
    assert np.std(noisy.behavior[y].to_numpy() - mean) == pytest.approx(1.0, rel=0.15)


# ------------------------------------------------------------------------------------------ the folder


def test_folder_files_follow_the_contract(tmp_path):
    write_visual_fly(tmp_path, SMALL, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "behavior.parquet",
        "frames.npy",
        "neurons.parquet",
        "truth.json",
    ]
    frames = np.load(tmp_path / "frames.npy", mmap_mode="r", allow_pickle=False)
    behavior = pd.read_parquet(tmp_path / "behavior.parquet")
    neurons = pd.read_parquet(tmp_path / "neurons.parquet")
    n_sets = SMALL.n_units + 1
    n_behavior = n_sets * SMALL.sessions_per_set * SMALL.frames_per_session
    assert frames.dtype == np.float32
    assert frames.shape == (n_behavior + SMALL.neuron_sessions * SMALL.frames_per_session, H, W)
    y, b = naming.output_columns(SMALL.n_outputs), event_columns(SMALL.n_events)
    assert list(behavior.columns) == ["set", "silenced", "split", "session", "frame", *y, *b]
    assert len(behavior) == n_behavior
    assert behavior["frame"].dtype == np.int64
    assert all(behavior[c].dtype == np.float64 for c in y)
    assert all(set(np.unique(behavior[c])) == {0, 1} for c in b)
    assert set(behavior["set"]) == set(naming.simulated_set_names(SMALL.n_units))
    assert set(behavior["split"]) == {"train", "test"}
    responses = [naming.response_column(u) for u in naming.unit_names(SMALL.n_units)]
    assert list(neurons.columns) == ["session", "frame", *responses]
    assert neurons["frame"].dtype == np.int64
    # every frame named once, behaviour then neurons
    everything = np.concatenate([behavior["frame"], neurons["frame"]])
    assert np.array_equal(np.sort(everything), np.arange(len(frames)))
    assert np.isfinite(neurons[responses].to_numpy()).all() and np.isfinite(frames).all()
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["history"] == SMALL.history and truth["settings"]["n_units"] == SMALL.n_units
    fly = VisualFly.from_json(truth["fly"])
    assert np.array_equal(fly.w2, make_visual_fly(SMALL, 3).w2)


def test_sessions_are_consecutive_frames_in_time_order(small):
    for table in (small.behavior, small.neurons):
        assert table["session"].nunique() * SMALL.frames_per_session == len(table)
        for _, rows in table.groupby("session", sort=False):
            assert np.array_equal(np.diff(rows["frame"].to_numpy()), np.ones(len(rows) - 1))
            if "set" in rows:
                assert rows["set"].nunique() == 1
    # frames.npy holds each row's state, in the order the trajectory ran
    assert np.array_equal(small.frames, render(small.states, H, W))
    neuron_rows = small.neurons["frame"].to_numpy()
    recomputed = small.fly.units(small.states[neuron_rows].reshape(SMALL.neuron_sessions, -1, 4))
    assert np.array_equal(recomputed.reshape(len(neuron_rows), -1), small.neurons.iloc[:, 2:].to_numpy())
    # session names are unique across sets
    assert small.behavior.groupby("session")["set"].nunique().max() == 1


def test_split_keeps_sessions_whole(small):
    behavior = small.behavior
    assert behavior.groupby("session")["split"].nunique().max() == 1
    per_set = behavior.drop_duplicates("session").groupby("set")["split"].value_counts().unstack()
    assert (per_set["test"] == 1).all() and (per_set["train"] == 3).all()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_visual_fly(tmp_path / name, SMALL, seed)
    for file in ("frames.npy", "behavior.parquet", "neurons.parquet", "truth.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
        assert (tmp_path / "a" / file).read_bytes() != (tmp_path / "c" / file).read_bytes(), file


@pytest.mark.parametrize(
    "change",
    [
        {"sessions_per_set": 1},
        {"frames_per_session": 3},
        {"silenced_activity": 1.5},
        {"event_rate": 0.0},
        {"n_units": 0},
    ],
)
def test_bad_settings_are_refused(change):
    with pytest.raises(ValueError, match="visual fly"):
        VisualFlySettings(**change)
