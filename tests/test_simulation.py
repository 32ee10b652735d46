"""The simulated fly and its data: names, random streams, table contract and statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from nets import silenced_unit

from knockout import naming, seeding
from knockout.network import silencing_mask
from knockout.simulation import (
    DataSettings,
    FlySettings,
    behavior_table,
    make_fly,
    simulate,
)

# ---------------------------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("names", "first", "last", "count"),
    [
        (naming.simulated_set_names(16)[1:], "unit_00", "unit_15", 16),
        (naming.simulated_set_names(4)[1:], "unit_00", "unit_03", 4),
        (naming.input_columns(50), "x_00", "x_49", 50),
        (naming.input_columns(100), "x_00", "x_99", 100),
        (naming.input_columns(101), "x_000", "x_100", 101),
        (naming.input_columns(120), "x_000", "x_119", 120),
        (naming.input_columns(3), "x_00", "x_02", 3),
        (naming.unit_names(1000), "unit_000", "unit_999", 1000),
    ],
)
def test_padding_follows_the_count(names, first, last, count):
    assert len(names) == count
    assert names[0] == first
    assert names[-1] == last
    assert len({len(name) for name in names}) == 1  # all zero-padded to one width
    assert names == sorted(names)  # so they also sort in numeric order


def test_simulated_set_names_start_with_control_then_unit_i_at_index_i_plus_1():
    names = naming.simulated_set_names(16)
    assert names[0] == naming.CONTROL == "control"
    assert names[1:] == [f"unit_{i:02d}" for i in range(16)]


def test_column_contracts():
    assert naming.behavior_columns(3) == ["set", "silenced", "split", "x_00", "x_01", "x_02", "y"]
    assert naming.neurons_columns(2, ["a", "b"]) == ["x_00", "x_01", "r_a", "r_b"]
    assert naming.model_unit_names(["a", "b"], 4) == ["a", "b", "extra_00", "extra_01"]
    assert naming.model_unit_names(["a", "b", "c"], 2) == ["a", "b"]


# --------------------------------------------------------------------------------------------- seeding


def draws(seed, stream, n=20):
    return torch.randn(n, generator=seeding.generator(seed, stream))


def test_same_seed_and_stream_give_the_same_draws_whatever_ran_before():
    first = draws(3, "fly")
    torch.manual_seed(99)
    torch.randn(100)  # global RNG use in between
    draws(3, "train_data")  # another stream in between
    assert torch.equal(first, draws(3, "fly"))


def test_different_streams_and_seeds_differ():
    samples = [draws(seed, stream) for seed in (0, 1, 2) for stream in seeding.STREAMS]
    for i, a in enumerate(samples):
        for b in samples[i + 1 :]:
            assert not torch.allclose(a, b)


def test_unknown_stream_raises_naming_the_allowed_streams():
    with pytest.raises(ValueError, match="'noise'") as info:
        seeding.generator(0, "noise")
    assert all(stream in str(info.value) for stream in seeding.STREAMS)


# ---------------------------------------------------------------------------------- tables: the contract


def test_silencing_mask():
    assert torch.equal(silencing_mask(4, -1), torch.ones(4))
    assert torch.equal(silencing_mask(4, 2), torch.tensor([1.0, 1.0, 0.0, 1.0]))
    assert torch.equal(silencing_mask(4, 2, remaining=0.25), torch.tensor([1.0, 1.0, 0.25, 1.0]))
    assert torch.equal(silencing_mask(4, 5), torch.ones(4))  # a unit the network does not have


def test_behavior_table_columns_and_dtypes_follow_the_contract():
    _, train, test, _ = simulate(FlySettings(n_inputs=5, n_hidden=16), DataSettings(7, 3, 4), seed=1)
    for table, n in ((train, 7), (test, 3)):
        assert list(table.columns) == ["set", "silenced", *naming.input_columns(5), "y"]
        assert all(isinstance(value, str) for value in table["set"])
        assert all(isinstance(value, str) for value in table["silenced"])
        for column in [*naming.input_columns(5), "y"]:
            assert table[column].dtype == np.float32, column
        assert isinstance(table.index, pd.RangeIndex) and table.index.equals(pd.RangeIndex(17 * n))
        # 17 sets of n rows, in order; control silences nothing, unit_i silences unit_i.
        sizes = table.groupby("set", sort=False).size()
        assert list(sizes.index) == naming.simulated_set_names(16)
        assert (sizes == n).all()
        assert (table["silenced"] == table["set"].where(table["set"] != "control", "")).all()
        assert table.notna().all().all()


def test_probe_table_columns_and_hidden_activity():
    fly, _, _, probe = simulate(
        FlySettings(n_inputs=5, n_hidden=3, init="pytorch"), DataSettings(2, 2, 40), 0
    )
    assert list(probe.columns) == naming.neurons_columns(5, naming.unit_names(3))
    assert (probe.dtypes == np.float32).all()
    assert len(probe) == 40
    x = torch.from_numpy(probe[naming.input_columns(5)].to_numpy(np.float32, copy=True))
    with torch.no_grad():
        hidden = fly.hidden(x).numpy()
    responses = [naming.response_column(unit) for unit in naming.unit_names(3)]
    np.testing.assert_allclose(probe[responses].to_numpy(), hidden, rtol=1e-6, atol=1e-6)
    # h is the hidden value itself (with the bias), not the output and not the weights alone.
    assert np.abs(fly.hidden.bias.detach().numpy()).min() > 0


# ----------------------------------------------------------------------------------- tables: statistics

NOISE_SD = 0.1
N_PER_SET = 5000


@pytest.fixture(scope="module")
def large():
    """A fly and 5 sets x 5000 rows: enough that sample statistics sit within a few % of the truth."""
    settings = FlySettings(n_inputs=6, n_hidden=4, noise_sd=NOISE_SD)
    fly = make_fly(settings, seed=1)
    table = behavior_table(fly, N_PER_SET, settings, torch.Generator().manual_seed(0))
    x = torch.from_numpy(table[naming.input_columns(6)].to_numpy(np.float32, copy=True))
    return fly, table, x


def predictions(fly, x, silenced_unit):
    with torch.no_grad():
        return fly(x, silencing_mask(fly.n_hidden, silenced_unit))[:, 0].double().numpy()


def test_inputs_are_standard_normal(large):
    _, table, _ = large
    x = table[naming.input_columns(6)].to_numpy(np.float64)
    # 25000 rows per column: the std error of a mean is 0.0063, of a std 0.0045; 0.03 is > 4.5 of them.
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=0.03)
    # Independent inputs: off-diagonal correlations near 0 (std error 0.0063).
    corr = np.corrcoef(x, rowvar=False)
    assert np.abs(corr - np.eye(6)).max() < 0.03


def test_behavior_is_the_silenced_fly_plus_gaussian_noise(large):
    fly, table, x = large
    for unit in range(-1, fly.n_hidden):
        rows = silenced_unit(table) == unit
        residual = table["y"].to_numpy(np.float64)[rows] - predictions(fly, x[rows], unit)
        # 5000 draws: the sample std has a relative std error of 1 / sqrt(2 * 5000) = 1 %; allow 5 %.
        assert residual.std() == pytest.approx(NOISE_SD, rel=0.05), unit
        assert abs(residual.mean()) < 5 * NOISE_SD / np.sqrt(N_PER_SET), unit


def test_on_a_silenced_set_behaviour_does_not_depend_on_the_silenced_unit(large):
    fly, table, x = large
    w_in = fly.hidden.weight.detach().double().numpy()
    w_out = fly.output.weight.detach().double().numpy()[0]
    for unit in range(fly.n_hidden):
        rows = silenced_unit(table) == unit
        y = table["y"].to_numpy(np.float64)[rows]
        with torch.no_grad():
            h_unit = fly.hidden(x[rows])[:, unit].double().numpy()
        silenced_residual = y - predictions(fly, x[rows], unit)
        intact_residual = y - predictions(fly, x[rows], -1)
        # The residual against the silenced fly is pure noise, uncorrelated with the unit
        # (|r| of independent samples: std error 1 / sqrt(5000) = 0.014).
        assert abs(np.corrcoef(silenced_residual, h_unit)[0, 1]) < 0.06
        # Against the intact fly it also holds the missing w_out,i * h_i, whose variance is
        # w_out,i^2 * |w_in,i|^2 for standard-normal inputs.
        contribution_var = w_out[unit] ** 2 * np.sum(w_in[unit] ** 2)
        assert contribution_var > 4 * NOISE_SD**2  # this fly's units all matter
        expected = np.sqrt(NOISE_SD**2 + contribution_var)
        assert intact_residual.std() == pytest.approx(expected, rel=0.05), unit


def test_zero_noise_gives_the_fly_output_exactly():
    settings = FlySettings(n_inputs=6, n_hidden=4, noise_sd=0.0)
    fly = make_fly(settings, seed=0)
    table = behavior_table(fly, 10, settings, torch.Generator().manual_seed(0))
    x = torch.from_numpy(table[naming.input_columns(6)].to_numpy(np.float32, copy=True))
    for unit in range(-1, 4):
        rows = silenced_unit(table) == unit
        np.testing.assert_allclose(table["y"].to_numpy()[rows], predictions(fly, x[rows], unit), atol=1e-6)


def test_partial_silencing_leaves_the_configured_fraction_of_the_unit():
    settings = FlySettings(n_inputs=6, n_hidden=4, noise_sd=0.0, silenced_activity=0.25)
    fly = make_fly(settings, seed=0)
    table = behavior_table(fly, 50, settings, torch.Generator().manual_seed(0))
    x = torch.from_numpy(table[naming.input_columns(6)].to_numpy(np.float32, copy=True))
    w_out = fly.output.weight.detach()[0]
    for unit in range(4):
        rows = silenced_unit(table) == unit
        with torch.no_grad():
            removed = 0.75 * w_out[unit] * fly.hidden(x[rows])[:, unit]
        expected = predictions(fly, x[rows], -1) - removed.double().numpy()
        np.testing.assert_allclose(table["y"].to_numpy()[rows], expected, atol=1e-5)


def test_a_subset_experiment_silences_the_first_units_only():
    _, train, _, _ = simulate(FlySettings(n_inputs=3, n_hidden=6), DataSettings(5, 5, 5, n_silenced=2), 0)
    assert train["set"].unique().tolist() == ["control", "unit_00", "unit_01"]


def test_a_relu_fly_records_and_silences_rectified_activity():
    settings = FlySettings(n_inputs=5, n_hidden=8, activation="relu", init="pytorch", noise_sd=0.0)
    fly, train, _, probe = simulate(settings, DataSettings(40, 2, 200), 0)
    hidden = probe[[naming.response_column(unit) for unit in naming.unit_names(8)]].to_numpy()
    assert hidden.min() == 0.0 and 0.2 < (hidden > 0).mean() < 0.8
    x = torch.from_numpy(probe[naming.input_columns(5)].to_numpy(np.float32, copy=True))
    with torch.no_grad():
        np.testing.assert_allclose(hidden, torch.relu(fly.hidden(x)).numpy(), atol=1e-6)
    x_train = torch.from_numpy(train[naming.input_columns(5)].to_numpy(np.float32, copy=True))
    for unit in range(-1, 8):
        rows = silenced_unit(train) == unit
        np.testing.assert_allclose(
            train["y"].to_numpy()[rows], predictions(fly, x_train[rows], unit), atol=1e-5
        )


# -------------------------------------------------------------------------------------- reproducibility

FLY = FlySettings(n_inputs=6, n_hidden=4, noise_sd=0.05)


def assert_same_fly(a, b):
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_same_seed_gives_identical_fly_and_tables():
    data = DataSettings(20, 10, 15)
    first = simulate(FLY, data, seed=11)
    torch.manual_seed(0)
    torch.randn(50)  # global RNG state must not matter
    second = simulate(FLY, data, seed=11)
    assert_same_fly(first[0], second[0])
    for a, b in zip(first[1:], second[1:], strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_different_seed_gives_a_different_fly_and_data():
    data = DataSettings(20, 10, 15)
    fly_a, train_a, test_a, probe_a = simulate(FLY, data, seed=11)
    fly_b, train_b, test_b, probe_b = simulate(FLY, data, seed=12)
    assert not torch.equal(fly_a.hidden.weight, fly_b.hidden.weight)
    assert not torch.equal(fly_a.output.weight, fly_b.output.weight)
    for a, b in ((train_a, train_b), (test_a, test_b), (probe_a, probe_b)):
        assert not np.allclose(a["x_00"].to_numpy(), b["x_00"].to_numpy())


def test_train_test_and_probe_sets_are_different_draws():
    _, train, test, probe = simulate(FLY, DataSettings(20, 20, 20), seed=3)
    assert not np.allclose(train["x_00"].to_numpy(), test["x_00"].to_numpy())
    assert not np.allclose(train["x_00"].to_numpy()[:20], probe["x_00"].to_numpy())


def test_changing_n_train_changes_neither_the_fly_nor_the_test_and_probe_sets():
    fly_a, train_a, test_a, probe_a = simulate(FLY, DataSettings(n_train=20, n_test=10, n_probe=15), 5)
    fly_b, train_b, test_b, probe_b = simulate(FLY, DataSettings(n_train=80, n_test=10, n_probe=15), 5)
    assert len(train_b) == 4 * len(train_a)
    assert_same_fly(fly_a, fly_b)
    pd.testing.assert_frame_equal(test_a, test_b)
    pd.testing.assert_frame_equal(probe_a, probe_b)


def test_fly_init_setting_is_used():
    glorot = make_fly(FlySettings(n_inputs=6, n_hidden=4, init="glorot"), seed=0)
    pytorch = make_fly(FlySettings(n_inputs=6, n_hidden=4, init="pytorch"), seed=0)
    assert torch.count_nonzero(glorot.hidden.bias) == 0
    assert torch.count_nonzero(pytorch.hidden.bias) == 4
