"""Binary outputs (cross-entropy, pseudo-R², AUC) and the silencing modes (zero, centered),
from the loss to the trained network's scores."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from knockout import metrics, naming
from knockout.behavior_data import BehaviorData
from knockout.data_folder import check_behavior, simulated_layout
from knockout.errors import InputFileError
from knockout.network import (
    Architecture,
    KnockoutNet,
    initialize,
    input_standardization,
    keep_matrix,
    output_losses,
)
from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.training import Fit, train_fits
from knockout.training.settings import TrainSettings
from knockout.training.stack import NetworkStack

MIXED = Architecture(6, 4, decoder=(5,), n_outputs=3, activation="relu", binary_outputs=2)


def test_a_binary_output_s_loss_is_cross_entropy_on_log_odds_a_continuous_one_s_squared_error():
    z = torch.tensor([[-30.0, 0.3, 2.0], [40.0, -1.0, 0.0]])
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    losses = output_losses(z, y, MIXED.binary_mask())
    torch.testing.assert_close(losses[:, 0], (z[:, 0] - y[:, 0]) ** 2)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 1:], y[:, 1:], reduction="none")
    torch.testing.assert_close(losses[:, 1:], expected)
    assert torch.isfinite(
        output_losses(torch.tensor([[0.0, 1e4, -1e4]]), torch.ones(1, 3), MIXED.binary_mask())
    ).all()
    assert MIXED.binary_mask().tolist() == [False, True, True]
    assert Architecture(6, 4).binary_mask() is None
    with pytest.raises(ValueError, match="binary_outputs"):
        Architecture(6, 4, n_outputs=1, binary_outputs=2)


def step_arguments(architecture, n_members, generator, batch=9):
    x = torch.randn(n_members, batch, architecture.n_inputs, generator=generator)
    x = torch.cat([x, torch.ones(n_members, batch, 1)], dim=2)
    y = torch.randn(n_members, batch, architecture.n_outputs, generator=generator)
    y[:, :, -architecture.binary_outputs :] = (y[:, :, -architecture.binary_outputs :] > 0).float()
    counts = torch.tensor([batch, batch - 3, 1, batch][:n_members])
    valid = torch.arange(batch) < counts[:, None]
    weight = (valid / (counts[:, None] * architecture.n_outputs)).unsqueeze(2)
    keep = keep_matrix(
        [(member % architecture.n_hidden,) for member in range(n_members)], architecture.n_hidden
    )
    return x, y, weight, keep.unsqueeze(1)


@pytest.mark.parametrize("centered", [False, True])
def test_each_member_s_gradient_is_autograd_s_of_its_own_network_with_mixed_outputs(centered):
    """The stack's loss and gradient against the plain network's, member by member: binary
    outputs by cross-entropy, and under ``centered`` a masked unit clamped to its mean over
    the member's valid rows (padding rows left out)."""
    generator = torch.Generator().manual_seed(3)
    nets = [initialize(KnockoutNet(MIXED), "pytorch", generator) for _ in range(4)]
    stack = NetworkStack.of(nets)
    x, y, weight, keep = step_arguments(MIXED, 4, generator)
    grad = torch.zeros_like(stack.params)
    flags = torch.tensor([centered] * 4)
    losses = stack.gradient_function(grad, centered=flags)(x, y, weight, keep)
    for member, net in enumerate(nets):
        rows = weight[member, :, 0] > 0
        inputs, target = x[member][rows, :-1], y[member][rows]
        centre = net.activity(inputs).mean(dim=0) if centered else None
        loss = output_losses(net(inputs, keep[member, 0], centre), target, MIXED.binary_mask()).mean()
        net.zero_grad()
        loss.backward()
        torch.testing.assert_close(losses[member], loss.detach(), rtol=1e-5, atol=1e-7)
        for layer, linear in zip(stack.layers(grad[member : member + 1]), net.layers(), strict=True):
            torch.testing.assert_close(layer[0, :, :-1], linear.weight.grad, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(layer[0, :, -1], linear.bias.grad, rtol=1e-5, atol=1e-6)


def test_centered_silencing_clamps_a_unit_to_its_centre_and_zero_sets_it_to_zero():
    net = initialize(
        KnockoutNet(Architecture(3, 2, activation="relu")), "pytorch", torch.Generator().manual_seed(0)
    )
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    keep = keep_matrix([(0,)], 2)[0]
    centre = torch.tensor([0.7, -5.0])
    activity = net.activity(x)
    expected = net.decode(torch.stack([torch.full((50,), 0.7), activity[:, 1]], dim=1))
    torch.testing.assert_close(net(x, keep, centre), expected)
    torch.testing.assert_close(net(x, keep), net.decode(activity * keep))
    torch.testing.assert_close(net(x, None, centre), net(x))  # nothing masked: the centre is not used


def brute_force_auc(events, scores):
    pairs = [(a, b) for a, b in itertools.product(scores[events == 1], scores[events == 0])]
    return np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])


def test_event_scores_are_the_log_likelihood_mcfadden_s_pseudo_r2_and_the_auc():
    rng = np.random.default_rng(0)
    events = (rng.random(200) < 0.3).astype(float)
    log_odds = np.round(rng.normal(size=200) + 1.5 * events, 1)  # rounded: ties count half
    pseudo_r2, log_likelihood, auc = metrics.event_scores(events, log_odds)
    p = 1 / (1 + np.exp(-log_odds))
    assert log_likelihood == pytest.approx(np.mean(events * np.log(p) + (1 - events) * np.log(1 - p)))
    assert auc == pytest.approx(brute_force_auc(events, log_odds))
    rate = events.mean()
    null = rate * np.log(rate) + (1 - rate) * np.log(1 - rate)
    assert pseudo_r2 == pytest.approx(1 - log_likelihood / null)
    base_rate = metrics.event_scores(events, np.full(200, np.log(rate / (1 - rate))))
    assert base_rate[0] == pytest.approx(0.0, abs=1e-12) and base_rate[2] == 0.5
    assert metrics.event_scores(events, np.where(events == 1, 30.0, -30.0))[0] == pytest.approx(1.0, abs=1e-9)
    none = metrics.event_scores(np.zeros(5), np.zeros(5))
    assert np.isnan(none[0]) and np.isnan(none[2]) and none[1] == pytest.approx(np.log(0.5))


def folder_table(events):
    rows = len(events)
    return pd.DataFrame(
        {
            "set": ["control"] * (rows // 2) + ["A"] * (rows - rows // 2),
            "silenced": [""] * (rows // 2) + ["A"] * (rows - rows // 2),
            "x_0": np.arange(rows, dtype=float),
            "y_speed": np.ones(rows),
            "b_song": events,
        }
    )


def test_a_folder_s_b_columns_are_binary_outputs_after_the_continuous_ones(tmp_path):
    layout = check_behavior(folder_table([0, 1, 1, 0, 0, 0, 1, 1]), tmp_path / "behavior.parquet", ["A"])
    assert layout.outputs == ("y_speed", "b_song") and layout.binary_outputs == 1
    only_events = folder_table([0, 1, 1, 0, 0, 0, 1, 1]).drop(columns="y_speed")
    assert check_behavior(only_events, tmp_path / "behavior.parquet", ["A"]).binary_outputs == 1
    with pytest.raises(
        InputFileError, match=r"behavior.parquet: column b_song, row 5: 0.5 \(a binary output"
    ):
        check_behavior(folder_table([0, 1, 1, 0, 0, 0.5, 1, 1]), tmp_path / "behavior.parquet", ["A"])


@pytest.fixture(scope="module")
def event_fly():
    """A linear fly of 6 units with one continuous and one binary output, its data, and ko
    and do trained on it (few steps: enough to tell them apart)."""
    fly_settings = FlySettings(n_inputs=10, n_hidden=6, n_outputs=2, binary_outputs=1, noise_sd=0.1)
    fly, train, test, neurons = simulate(fly_settings, DataSettings(n_train=600, n_test=300), seed=0)
    layout = simulated_layout(10, 6, 2, None, binary_outputs=1)
    data = BehaviorData.from_table(train, layout)
    settings = TrainSettings(epochs=40, min_steps=0, batch_size=32, lr=0.01)
    fits = [Fit(model, data, settings, 0) for model in ("ko", "do")]
    nets = dict(zip(("ko", "do"), train_fits(fits, fly_settings.architecture), strict=True))
    return fly, layout, train, test, neurons, {model: result.network for model, result in nets.items()}


def test_the_simulated_fly_draws_events_with_the_probability_its_output_gives(event_fly):
    fly, layout, train, *_ = event_fly
    assert layout.outputs == ("y", "b_00")
    assert set(train["b_00"].unique()) == {0.0, 1.0}
    control = train[train["set"] == naming.CONTROL]
    x = torch.tensor(control[list(layout.inputs)].to_numpy(np.float32))
    expected = torch.sigmoid(fly(x)[:, 1]).mean().item()
    assert control["b_00"].mean() == pytest.approx(expected, abs=0.06)


def test_ko_trained_on_a_binary_output_finds_the_fly_s_units_better_than_do_and_is_scored_as_binary(
    event_fly,
):
    fly, layout, _, test, neurons, nets = event_fly
    data = BehaviorData.from_table(test, layout)
    scores = metrics.behavior_scores(nets, data, layout, fly, silencing=("zero", "centered"))
    assert set(scores["kind"]) == {"continuous", "binary"}
    binary = scores[scores["output"] == "b_00"]
    assert binary[["log_likelihood", "auc"]].notna().all().all()
    assert ((binary["auc"] > 0.5) & (binary["auc"] <= 1)).all()
    assert (binary["r2"] <= 1).all() and scores.loc[scores["output"] == "y", "auc"].isna().all()
    assert (binary["noise_ceiling"] > 0).all()
    neural = metrics.neural_scores(nets, neurons, layout, fly)
    matched = neural.groupby("model")["r2_matched"].median()
    assert matched["ko"] > 0.9 and matched["ko"] > matched["do"]


def test_centered_evaluation_changes_only_what_ko_masks(event_fly):
    fly, layout, _, test, _, nets = event_fly
    data = BehaviorData.from_table(test, layout)
    scores = metrics.behavior_scores(nets, data, layout, fly, silencing=("zero", "centered"))
    wide = scores.pivot_table(index=["model", "set", "output"], columns="silencing", values="r2")
    unmasked = wide.index.get_level_values("model") == "do"
    control = wide.index.get_level_values("set") == naming.CONTROL
    np.testing.assert_array_equal(
        wide.loc[unmasked | control, "zero"], wide.loc[unmasked | control, "centered"]
    )
    assert (wide.loc[~unmasked & ~control, "zero"] != wide.loc[~unmasked & ~control, "centered"]).all()
    means = metrics.control_means(nets, data)["ko"]
    control_rows = data.x[data.set_index == 0]
    torch.testing.assert_close(means, nets["ko"].activity(control_rows).mean(dim=0))


@pytest.mark.slow  # trains to convergence: the full suite's
def test_ko_trains_with_centered_silencing(event_fly):
    """Centered knockout training runs through the batched trainer (autograd, relabelling
    on) and still finds the units: masking to the mean removes a unit's variation as
    zeroing does, without moving the decoder out of its range."""
    fly, layout, train, _, neurons, _ = event_fly
    data = BehaviorData.from_table(train, layout)
    settings = TrainSettings(epochs=40, min_steps=0, batch_size=32, silencing="centered", relabel="always")
    (result,) = train_fits([Fit("ko", data, settings, 0)], fly.architecture)
    neural = metrics.neural_scores({"ko": result.network}, neurons, layout, fly)
    assert neural["r2_matched"].median() > 0.9


def test_a_standardizing_network_holds_its_training_rows_mean_and_scale_and_reads_raw_inputs():
    """Inputs far from 0 (a light background) train on their z-scores; the kept network
    holds the training rows' mean and scale, so it maps the data as they are."""
    fly_settings = FlySettings(n_inputs=8, n_hidden=3, noise_sd=0.05)
    _, train, _, _ = simulate(fly_settings, DataSettings(n_train=200, n_test=20), seed=1)
    layout = simulated_layout(8, 3, 1, None)
    shifted = train.assign(**{column: train[column] * 0.1 + 5.0 for column in layout.inputs})
    shifted.loc[:, layout.inputs[0]] = 5.0  # an input that never varies keeps scale 1
    data = BehaviorData.from_table(shifted, layout)
    architecture = Architecture(8, 3, standardize=True)
    settings = TrainSettings(epochs=3, min_steps=0, batch_size=32)
    (result,) = train_fits([Fit("ko", data, settings, 0)], architecture)
    net = result.network
    torch.testing.assert_close(net.input_mean, data.x.double().mean(dim=0).float())
    assert net.input_scale[0] == 1.0 and torch.allclose(net.input_scale[1:], torch.full((7,), 0.1), rtol=0.2)
    assert set(architecture.expected_shapes()) >= {"input_mean", "input_scale"}
    z = (data.x - net.input_mean) / net.input_scale
    plain = KnockoutNet(Architecture(8, 3))
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("input_")})
    torch.testing.assert_close(net(data.x), plain(z))


def test_frames_are_standardized_by_one_scale_for_every_pixel():
    x = torch.tensor([[0.8, 0.8, 0.1], [0.8, 0.2, 0.3], [0.8, 0.8, 0.5]])
    mean, scale = input_standardization(x, pooled=True)
    torch.testing.assert_close(mean, x.mean(dim=0))
    assert torch.all(scale == scale[0]) and scale[0] == pytest.approx(
        (x - x.mean(dim=0)).square().mean().sqrt()
    )
    _, separate = input_standardization(x)
    assert separate[0] == 1.0 and separate[1] != separate[2]  # a constant input keeps scale 1


def test_the_planner_s_formula_refuses_binary_outputs_and_frame_encoders():
    from knockout.plan_table import formula_applies

    assert formula_applies(Architecture(6, 4)) is None
    assert "binary" in formula_applies(Architecture(6, 4, binary_outputs=1))
    frames = Architecture(2 * 3, 4, frame_shape=(3,), frame_features=2)
    assert "frame encoder" in formula_applies(frames)
