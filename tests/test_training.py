"""Knockout training: batch schedule, masks, the closed-form Adam step, and train()."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from nets import silenced_unit, simulated_data, two_layer

from knockout import metrics, naming, seeding
from knockout.behavior_data import BehaviorData
from knockout.dataset import simulated_layout
from knockout.errors import TrainingDiverged
from knockout.network import Architecture, KnockoutNet, initialize, silencing_mask
from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.training import (
    FlatAdamNet,
    StackedNets,
    TrainSettings,
    best_order,
    epoch_schedule,
    initial_networks,
    keep_masks,
    keep_matrix,
    knockout_costs,
    masked_units,
    relabels,
    train,
    train_restarts,
    with_ones_column,
)

ARCH = Architecture(6, 4)


def fit(model, data, settings, seed, architecture=ARCH):
    """``train``'s kept network and its loss per epoch."""
    result = train(model, data, architecture, settings, seed)
    return result.network, result.chosen_losses


# ------------------------------------------------------------------------------------------- BehaviorData


def test_behavior_data_from_table_and_rows_by_set(small_replicate):
    _, train_table, _, _ = small_replicate
    data = simulated_data(train_table, 6, 4)
    assert data.x.dtype == torch.float32 and data.x.shape == (5 * 40, 6)
    assert data.y.dtype == torch.float32 and data.set_index.dtype == torch.int64
    np.testing.assert_array_equal(data.y.numpy(), train_table[["y"]].to_numpy())
    sets = data.rows_by_set(include_silenced=True)
    assert [units for units, _ in sets] == [(), (0,), (1,), (2,), (3,)]
    for units, rows in sets:
        assert len(rows) == 40
        assert (silenced_unit(train_table)[rows.numpy()] == (units[0] if units else -1)).all()
    np.testing.assert_array_equal(data.silenced_unit(), silenced_unit(train_table))
    control_only = data.rows_by_set(include_silenced=False)
    assert [units for units, _ in control_only] == [()]
    assert torch.equal(control_only[0][1], sets[0][1])


# ---------------------------------------------------------------------------------------- epoch_schedule

N_SETS, SET_SIZE, BATCH = 17, 50, 8


@pytest.fixture
def sets():
    """17 sets of 50 rows whose rows are interleaved in the table (row r belongs to set r % 17)."""
    rows = torch.arange(N_SETS * SET_SIZE)
    return [(unit, rows[rows % N_SETS == unit + 1]) for unit in range(-1, N_SETS - 1)]


def set_of_row(sets):
    owner = {}
    for unit, rows in sets:
        owner.update(dict.fromkeys(rows.tolist(), unit))
    return owner


def test_every_batch_comes_from_one_set_and_every_row_appears_once_per_epoch(sets):
    owner = set_of_row(sets)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # two epochs from the same generator
        batches = epoch_schedule(sets, BATCH, generator)
        assert len(batches) == N_SETS * math.ceil(SET_SIZE / BATCH)
        for unit, rows in batches:
            assert {owner[r] for r in rows.tolist()} == {unit}
        all_rows = torch.cat([rows for _, rows in batches])
        assert torch.equal(all_rows.sort().values, torch.arange(N_SETS * SET_SIZE))
        for unit, _ in sets:
            sizes = sorted((len(rows) for u, rows in batches if u == unit), reverse=True)
            assert sizes == [8, 8, 8, 8, 8, 8, 2]


def test_batches_of_all_sets_are_interleaved(sets):
    batches = epoch_schedule(sets, BATCH, torch.Generator().manual_seed(1))
    units = [unit for unit, _ in batches]
    changes = sum(a != b for a, b in itertools.pairwise(units))
    # Blocked (set after set) would give 16 changes; a random order of 119 batches from 17
    # equal sets gives about 118 * 16/17 = 111.
    assert changes > 90
    assert units != sorted(units)
    # The sets are spread over the epoch: every set has a batch in each half.
    half = len(units) // 2
    assert set(units[:half]) == set(units[half:]) == {unit for unit, _ in sets}


def test_rows_are_shuffled_within_a_set_and_epochs_differ(sets):
    generator = torch.Generator().manual_seed(2)
    first, second = epoch_schedule(sets, BATCH, generator), epoch_schedule(sets, BATCH, generator)
    assert [u for u, _ in first] != [u for u, _ in second]
    # Each set is reshuffled every epoch, so its batches hold different rows from one epoch to the next.
    for unit, _ in sets:
        chunks_first = {frozenset(rows.tolist()) for u, rows in first if u == unit}
        chunks_second = {frozenset(rows.tolist()) for u, rows in second if u == unit}
        assert chunks_first != chunks_second
    # Same generator seed, same schedule.
    again = epoch_schedule(sets, BATCH, torch.Generator().manual_seed(2))
    assert all(u == v and torch.equal(a, b) for (u, a), (v, b) in zip(first, again, strict=True))


def test_uneven_sets_and_batch_larger_than_a_set():
    sets = [(-1, torch.arange(0, 10)), (0, torch.arange(10, 13)), (1, torch.arange(13, 30))]
    batches = epoch_schedule(sets, 4, torch.Generator().manual_seed(0))
    sizes = {unit: sorted(len(rows) for u, rows in batches if u == unit) for unit, _ in sets}
    assert sizes == {-1: [2, 4, 4], 0: [3], 1: [1, 4, 4, 4, 4]}
    big = epoch_schedule(sets, 100, torch.Generator().manual_seed(0))
    assert sorted((u, len(rows)) for u, rows in big) == [(-1, 10), (0, 3), (1, 17)]


# ------------------------------------------------------------------------------- masked_units, keep_masks


SILENCED = [(), (0,), (1,), (2,), (3,), (), (3,), (1, 3), (0,)]


@pytest.mark.parametrize("model", ["control", "noko"])
def test_control_and_noko_mask_nothing(model):
    assert masked_units(model, SILENCED, 4, torch.Generator()) == [()] * len(SILENCED)


def test_ko_masks_the_silenced_units():
    assert masked_units("ko", SILENCED, 4, torch.Generator()) == SILENCED


def test_a_ko_model_smaller_than_the_fly_masks_nothing_for_the_units_it_lacks():
    assert masked_units("ko", SILENCED, 2, torch.Generator()) == [(), (0,), (1,), (), (), (), (), (1,), (0,)]


def test_keep_matrix_zeroes_each_batch_s_masked_units():
    keep = keep_matrix([(), (2,), (0, 3)], 4, "cpu")
    expected = torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 1], [0, 1, 1, 0]])
    assert torch.equal(keep, expected)


def test_do_masks_as_many_distinct_random_units_as_the_set_silences():
    units = masked_units("do", [(), (1, 3), (2,)] * 500, 4, torch.Generator().manual_seed(0))
    assert all(not masked for masked in units[0::3])
    pairs = units[1::3]
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in pairs)
    assert len(set(pairs)) > 6  # not tied to the silenced pair
    assert all(len(single) == 1 for single in units[2::3])


def test_do_masks_a_uniformly_random_unit_on_silenced_batches_only():
    silenced = [(), (2,)] * 2000
    masked = masked_units("do", silenced, 4, torch.Generator().manual_seed(0))
    units = np.array([units[0] if units else -1 for units in masked])
    on_control, on_silenced = units[0::2], units[1::2]
    assert (on_control == -1).all()
    assert set(on_silenced.tolist()) == {0, 1, 2, 3}
    # Uniform: each unit ~ 1/4 of 2000 draws (std error 0.0097), so not tied to the silenced unit 2.
    fractions = np.bincount(on_silenced, minlength=4) / len(on_silenced)
    np.testing.assert_allclose(fractions, 0.25, atol=0.05)
    # Fresh draws each call.
    generator = torch.Generator().manual_seed(1)
    assert masked_units("do", silenced, 4, generator) != masked_units("do", silenced, 4, generator)


def test_unknown_model_in_masked_units_raises():
    with pytest.raises(ValueError, match="'dropout'"):
        masked_units("dropout", SILENCED, 4, torch.Generator())


def test_keep_masks_rows_index_by_unit_plus_one():
    masks = keep_masks(5)
    assert masks.shape == (6, 5)
    for unit in range(-1, 5):
        assert torch.equal(masks[unit + 1], silencing_mask(5, unit))


# ------------------------------------------------------------------------------------------ FlatAdamNet


def flat_step_inputs(x, y, keep):
    """``FlatAdamNet.step``'s inputs for a batch, as ``train`` prepares them."""
    return with_ones_column(x), y, keep, with_ones_column(keep[None]).T


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_flat_adam_matches_autograd_and_torch_adam_step_by_step(activation):
    n_inputs, n_hidden = 6, 4
    generator = torch.Generator().manual_seed(0)
    reference = initialize(two_layer(n_inputs, n_hidden, activation), "pytorch", generator)
    initial = copy.deepcopy(reference)
    flat = FlatAdamNet(reference, lr=0.01)
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    masks = keep_masks(n_hidden)
    for step in range(24):
        if step == 12:  # train() changes the rate between epochs
            flat.lr = 0.003
            optimizer.param_groups[0]["lr"] = 0.003
        batch = int(torch.randint(3, 12, (), generator=generator))
        x = torch.randn(batch, n_inputs, generator=generator)
        y = torch.randn(batch, 1, generator=generator)
        keep = masks[int(torch.randint(-1, n_hidden, (), generator=generator)) + 1]

        with torch.no_grad():
            expected_sse = torch.sum((reference(x, keep) - y) ** 2)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(reference(x, keep), y).backward()
        optimizer.step()
        error = torch.empty(batch)
        flat.step(*flat_step_inputs(x, y[:, 0], keep), error)

        torch.testing.assert_close(torch.dot(error, error), expected_sse, rtol=1e-5, atol=1e-6)
        # The closed-form gradient is autograd's (Adam alone would hide a wrong gradient scale).
        hidden, output = reference.hidden, reference.output
        autograd = torch.cat(
            [
                torch.cat([hidden.weight.grad, hidden.bias.grad[:, None]], dim=1).reshape(-1),
                output.weight.grad[0],
                output.bias.grad,
            ]
        )
        torch.testing.assert_close(flat.grad, autograd, rtol=1e-5, atol=1e-6)
        for got, want in zip(flat.to_net().parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(got, want.detach(), rtol=0, atol=1e-5)
    # The comparison is not vacuous: both moved well beyond the tolerance.
    moved = max(
        (p - q).abs().max().item() for p, q in zip(reference.parameters(), initial.parameters(), strict=True)
    )
    assert moved > 0.05
    if activation == "relu":  # the ReLU's gate was exercised: some units were inactive on some rows
        assert 0 < (reference.hidden(x) > 0).float().mean() < 1


def test_flat_adam_does_not_modify_the_network_it_was_built_from():
    net = initialize(two_layer(3, 2), "pytorch", torch.Generator().manual_seed(0))
    before = copy.deepcopy(net.state_dict())
    flat = FlatAdamNet(net, lr=0.1)
    flat.step(*flat_step_inputs(torch.randn(5, 3), torch.randn(5), torch.ones(2)), torch.empty(5))
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    assert not torch.equal(flat.to_net().hidden.weight, net.hidden.weight)


# -------------------------------------------------------------------------------------------- train()

SETTINGS = TrainSettings(lr=0.01, batch_size=8, epochs=4, init="glorot", lr_schedule="cosine")


@pytest.fixture(scope="module")
def data():
    _, train_table, _, _ = simulate(FlySettings(n_inputs=6, n_hidden=4), DataSettings(40, 2, 2), seed=0)
    return simulated_data(train_table, 6, 4)


def assert_same_weights(a, b):
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


@pytest.mark.parametrize("model", ["control", "noko", "ko", "do"])
def test_train_is_bit_reproducible(data, model):
    net_a, losses_a = fit(model, data, SETTINGS, 3)
    torch.manual_seed(0)  # the global RNG plays no part
    net_b, losses_b = fit(model, data, SETTINGS, 3)
    assert_same_weights(net_a, net_b)
    assert losses_a == losses_b
    assert len(losses_a) == SETTINGS.epochs
    assert all(np.isfinite(losses_a))
    net_c, _ = fit(model, data, SETTINGS, 4)
    assert not torch.equal(net_a.hidden.weight, net_c.hidden.weight)


def test_models_differ_only_in_masking(data):
    """All models start from the same weights; without silenced sets ko/do/noko/control coincide."""
    start = initialize(two_layer(6, 4), "glorot", seeding.generator(3, "model_init"))
    zero_epochs = TrainSettings(epochs=0)
    for model in ("control", "noko", "ko", "do"):
        assert_same_weights(fit(model, data, zero_epochs, 3)[0], start)

    control_rows = data.set_index == 0
    control_only = BehaviorData(
        data.x[control_rows], data.y[control_rows], data.set_index[control_rows], data.set_units
    )
    nets = {m: fit(m, control_only, SETTINGS, 3)[0] for m in ("control", "noko", "ko", "do")}
    for model in ("noko", "ko", "do"):
        assert_same_weights(nets[model], nets["control"])
    # With the silenced sets, masking makes them differ.
    ko, noko = fit("ko", data, SETTINGS, 3)[0], fit("noko", data, SETTINGS, 3)[0]
    assert not torch.equal(ko.hidden.weight, noko.hidden.weight)


def test_control_model_ignores_the_silenced_sets(data):
    garbage_y = torch.where(data.set_index[:, None] > 0, 1e3, data.y)
    garbage = BehaviorData(data.x, garbage_y, data.set_index, data.set_units)
    assert_same_weights(fit("control", data, SETTINGS, 0)[0], fit("control", garbage, SETTINGS, 0)[0])
    # ...while noko does use them.
    noko_a, noko_b = fit("noko", data, SETTINGS, 0)[0], fit("noko", garbage, SETTINGS, 0)[0]
    assert not torch.equal(noko_a.output.bias, noko_b.output.bias)


@pytest.mark.parametrize("model", ["control", "noko", "ko"])
def test_epoch_loss_is_the_mean_squared_error_over_the_rows_trained_on(data, model):
    """With lr = 0 the weights stay at their start, so epoch 1's loss is the start network's MSE."""
    frozen = TrainSettings(lr=0.0, batch_size=8, epochs=2, lr_schedule="constant")
    net, losses = fit(model, data, frozen, 2)
    start = initialize(two_layer(6, 4), "glorot", seeding.generator(2, "model_init"))
    assert_same_weights(net, start)
    squared_errors = []
    for unit in range(-1, 4) if model != "control" else [-1]:
        rows = torch.from_numpy(data.silenced_unit() == unit)
        keep = silencing_mask(4, unit if model == "ko" else -1)
        with torch.no_grad():
            squared_errors.append(((start(data.x[rows], keep) - data.y[rows]).double() ** 2).numpy())
    expected = np.concatenate(squared_errors).mean()
    assert losses == pytest.approx([expected, expected], rel=1e-5)


def test_training_lowers_the_loss(data):
    _, losses = fit("ko", data, TrainSettings(lr=0.01, batch_size=8, epochs=15), 0)
    assert losses[-1] < 0.5 * losses[0]


def test_cosine_schedule_anneals_from_lr_towards_zero():
    settings = TrainSettings(lr=0.02, epochs=60, lr_schedule="cosine")
    rates = [settings.lr_at(epoch) for epoch in range(1, 61)]
    assert rates[0] == 0.02
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert 0 < rates[-1] < 0.01 * 0.02
    assert settings.lr_at(31) == pytest.approx(0.01)  # half-way: half the peak rate


def test_constant_schedule_stays():
    settings = TrainSettings(lr=0.02, epochs=10, lr_schedule="constant")
    assert [settings.lr_at(epoch) for epoch in range(1, 11)] == [0.02] * 10


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="'step'"):
        TrainSettings(lr_schedule="step").lr_at(1)


def test_train_follows_the_schedule(data):
    """Epoch 1 runs at lr under both schedules; epoch 2 of 2 runs at lr / 2 under cosine."""
    constant = TrainSettings(lr=0.01, batch_size=8, epochs=2, lr_schedule="constant")
    cosine = TrainSettings(lr=0.01, batch_size=8, epochs=2, lr_schedule="cosine")
    _, loss_constant = fit("noko", data, constant, 0)
    _, loss_cosine = fit("noko", data, cosine, 0)
    assert loss_constant[0] == loss_cosine[0]
    assert loss_constant[1] != loss_cosine[1]
    # A shorter run is the start of a longer one (same batches, same rates).
    one_epoch = TrainSettings(lr=0.01, batch_size=8, epochs=1, lr_schedule="constant")
    assert fit("noko", data, one_epoch, 0)[1] == loss_constant[:1]


def test_huge_learning_rate_raises_training_diverged_naming_model_seed_and_epoch(data):
    settings = TrainSettings(lr=1e9, batch_size=8, epochs=5, lr_schedule="constant")
    with pytest.raises(TrainingDiverged) as info:
        fit("ko", data, settings, 3)
    message = str(info.value)
    assert "'ko'" in message
    assert "seed 3" in message
    assert "epoch 1 of 5" in message
    assert "lr" in message


def test_learning_rate_1e6_is_reported_as_diverged(data):
    settings = TrainSettings(lr=1e6, batch_size=8, epochs=5, lr_schedule="constant")
    with pytest.raises(TrainingDiverged):
        fit("ko", data, settings, 3)


def test_unknown_model_raises_value_error(data):
    with pytest.raises(ValueError, match="'knockout'") as info:
        fit("knockout", data, SETTINGS, 0)
    assert all(model in str(info.value) for model in ("control", "noko", "ko", "do"))


# ------------------------------------------------------------------------------------- the science


def test_knockout_training_recovers_the_fly_units_and_noko_does_not():
    """The paper's claim on a small fly: ko's units track the fly's, noko's (unidentifiable) do not."""
    fly, train_table, _, probe = simulate(
        FlySettings(n_inputs=10, n_hidden=4, noise_sd=0.01), DataSettings(200, 2, 500), seed=1
    )
    data = simulated_data(train_table, 10, 4)
    settings = TrainSettings(lr=0.01, batch_size=16, epochs=40)
    models = {model: fit(model, data, settings, 1, Architecture(10, 4))[0] for model in ("noko", "ko")}
    scores = metrics.neural_scores(models, probe, simulated_layout(10, 4, 1, None), fly)
    median = scores.groupby("model")["r2"].median()
    assert median["ko"] > 0.9
    assert median["noko"] < 0.5


def test_trained_network_is_an_ordinary_module(data):
    """Training runs in inference mode; the returned network must still support autograd."""
    net, _ = fit("ko", data, SETTINGS, 0)
    assert not net.hidden.weight.is_inference()
    net(data.x[:5]).sum().backward()
    assert net.hidden.weight.grad is not None


# ------------------------------------------------------------------- blocked schedule, restarts, autograd


def test_blocked_schedule_trains_one_set_after_another_in_a_random_order(sets):
    owner = set_of_row(sets)
    generator = torch.Generator().manual_seed(0)
    first = epoch_schedule(sets, BATCH, generator, "blocked")
    second = epoch_schedule(sets, BATCH, generator, "blocked")
    for batches in (first, second):
        units = [unit for unit, _ in batches]
        # each set's batches are contiguous: 16 changes of set for 17 sets
        assert sum(a != b for a, b in itertools.pairwise(units)) == N_SETS - 1
        for unit, rows in batches:
            assert {owner[r] for r in rows.tolist()} == {unit}
        all_rows = torch.cat([rows for _, rows in batches])
        assert torch.equal(all_rows.sort().values, torch.arange(N_SETS * SET_SIZE))
    order = [list(dict.fromkeys(u for u, _ in batches)) for batches in (first, second)]
    assert order[0] != order[1]  # a new set order each epoch
    assert order[0] != sorted(order[0])


def test_an_unknown_schedule_or_restart_count_is_refused():
    with pytest.raises(ValueError, match="'sequential'"):
        TrainSettings(schedule="sequential")
    with pytest.raises(ValueError, match="restarts"):
        TrainSettings(restarts=0)


@pytest.mark.parametrize("model", ["control", "ko", "do"])
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_the_fast_path_and_the_autograd_trainer_train_the_same_network(data, model, activation):
    """The closed-form step (one restart, two layers, one output) against autograd on stacked
    parameters: same batches, same masks, same Adam, so the same weights to rounding."""
    architecture = Architecture(6, 4, activation=activation)
    settings = TrainSettings(lr=0.01, batch_size=8, epochs=6, relabel="never")  # the fast path has none
    fast = train(model, data, architecture, settings, seed=1)
    general = train_restarts(model, data, initial_networks(architecture, settings, 1), settings, seed=1)
    for key, value in fast.network.state_dict().items():
        torch.testing.assert_close(general.network.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(general.losses, fast.losses, rtol=1e-4)
    start = initial_networks(architecture, settings, 1)[0]
    assert (fast.network.hidden.weight - start.hidden.weight).abs().max() > 0.01  # it did train


def test_batched_restarts_equal_the_same_restarts_trained_one_at_a_time(data):
    architecture = Architecture(6, 4, activation="relu", decoder=(5,), n_outputs=1)
    batched_settings = TrainSettings(lr=0.01, batch_size=8, epochs=5, restarts=3)
    starts = initial_networks(architecture, batched_settings, seed=2)
    batched = train_restarts("ko", data, starts, batched_settings, seed=2)
    alone = TrainSettings(lr=0.01, batch_size=8, epochs=5, restarts=1)
    for restart, start in enumerate(starts):
        single = train_restarts("ko", data, [start], alone, seed=2)
        np.testing.assert_allclose(
            [epoch[restart] for epoch in batched.losses], single.chosen_losses, rtol=1e-4
        )
    # the kept restart is the one with the lowest final loss, and it is that restart's network
    finals = batched.losses[-1]
    assert batched.chosen == int(np.argmin(finals))
    kept = train_restarts("ko", data, [starts[batched.chosen]], alone, seed=2).network
    for key, value in kept.state_dict().items():
        torch.testing.assert_close(batched.network.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert len(set(finals)) == 3  # independent initial weights


def test_restart_zero_is_the_network_a_single_run_starts_from():
    settings = TrainSettings(restarts=4)
    nets = initial_networks(ARCH, settings, seed=5)
    [single] = initial_networks(ARCH, TrainSettings(restarts=1), seed=5)
    assert_same_weights(nets[0], single)
    assert not torch.equal(nets[1].hidden.weight, nets[0].hidden.weight)
    again = initial_networks(ARCH, settings, seed=5)
    for a, b in zip(nets, again, strict=True):
        assert_same_weights(a, b)


@pytest.fixture(scope="module")
def deep_data():
    fly = FlySettings(n_inputs=6, n_hidden=4, activation="relu", decoder=(8,), n_outputs=3, noise_sd=0.05)
    _, train_table, _, _ = simulate(fly, DataSettings(60, 2, 2), seed=0)
    return fly.architecture, simulated_data(train_table, 6, 4, 3)


def test_a_deep_several_output_network_trains_reproducibly_and_lowers_the_loss(deep_data):
    architecture, data = deep_data
    assert data.y.shape == (5 * 60, 3)
    settings = TrainSettings(lr=0.01, batch_size=16, epochs=15, restarts=2)
    first = train("ko", data, architecture, settings, seed=0)
    torch.manual_seed(1)  # the global RNG plays no part
    second = train("ko", data, architecture, settings, seed=0)
    assert first.losses == second.losses
    assert_same_weights(first.network, second.network)
    assert isinstance(first.network, KnockoutNet) and first.network.architecture == architecture
    assert len(first.losses) == 15 and all(len(epoch) == 2 for epoch in first.losses)
    assert first.chosen_losses[-1] < 0.5 * first.chosen_losses[0]
    # the loss is the mean over rows and outputs of the squared error of the kept network
    assert not first.network.hidden.weight.is_inference()


def test_a_restart_that_diverges_is_never_kept(deep_data):
    architecture, data = deep_data
    settings = TrainSettings(lr=1e9, batch_size=16, epochs=3, restarts=2, lr_schedule="constant")
    with pytest.raises(TrainingDiverged, match="all 2 restarts"):
        train("ko", data, architecture, settings, seed=0)


# ------------------------------------------------------------------------------------------- relabelling


def test_relabelling_is_for_the_model_that_masks_the_matching_unit():
    relu, linear = Architecture(6, 4, activation="relu"), Architecture(6, 4)
    assert relabels("ko", relu, TrainSettings())  # auto: ReLU networks
    assert not relabels("ko", linear, TrainSettings())
    assert relabels("ko", linear, TrainSettings(relabel="always"))
    assert not relabels("ko", relu, TrainSettings(relabel="never"))
    for model in ("control", "noko", "do"):  # nothing they mask depends on the units' order
        assert not relabels(model, relu, TrainSettings(relabel="always"))
    with pytest.raises(ValueError, match="'sometimes'"):
        TrainSettings(relabel="sometimes")


def test_best_order_solves_the_assignment_and_keeps_an_order_that_is_already_best():
    costs = np.array([[5.0, 1.0, 9.0], [1.0, 5.0, 9.0], [9.0, 9.0, 1.0]])
    # sets of fly units 0, 1, 2: the set of unit 0 is fitted best with model unit 1 masked
    assert best_order(costs, [0, 1, 2], 3) == [1, 0, 2]
    assert best_order(np.eye(3) * -1 + 2, [0, 1, 2], 3) is None  # identity is already best
    # a model larger than the fly: units no set masks keep their relative order after
    wider = np.array([[9.0, 9.0, 1.0, 9.0], [9.0, 1.0, 9.0, 9.0]])
    assert best_order(wider, [0, 1], 4) == [2, 1, 0, 3]
    # only units 1 and 2 were silenced: the order is built around them
    assert best_order(np.array([[1.0, 9.0, 9.0], [9.0, 9.0, 1.0]]), [1, 2], 3) == [1, 0, 2]


def test_permuting_units_renames_them_and_knockout_costs_mask_each_one(deep_data):
    architecture, data = deep_data
    nets = initial_networks(architecture, TrainSettings(restarts=2), seed=3)
    stacked = StackedNets(nets)
    x, y = data.x, data.y
    set_index = torch.from_numpy(data.silenced_unit()).clamp(min=0)
    costs = knockout_costs(stacked, stacked.params, x, y, set_index)
    # rows in chunks (here of one row per network) add up to the same costs
    torch.testing.assert_close(knockout_costs(stacked, stacked.params, x, y, set_index, max_values=1), costs)
    for restart, net in enumerate(nets):
        for unit in range(4):
            errors = net(x, silencing_mask(4, unit)) - y
            expected = torch.zeros(4, dtype=torch.float64).index_add_(
                0, set_index, (errors**2).sum(1).double()
            )
            torch.testing.assert_close(costs[restart, :, unit], expected, rtol=1e-5, atol=1e-6)
    order = torch.tensor([2, 0, 3, 1])
    before = [stacked.predict(x, silencing_mask(4, unit), stacked.params) for unit in range(4)]
    stacked.permute_units(1, order, stacked.params)
    after = [stacked.predict(x, silencing_mask(4, unit), stacked.params) for unit in range(4)]
    torch.testing.assert_close(after[0][0], before[0][0])  # restart 0 untouched
    for new, old in enumerate(order.tolist()):  # masking new unit k is masking old unit order[k]
        torch.testing.assert_close(after[new][1], before[old][1], rtol=1e-5, atol=1e-6)
    no_mask = torch.ones(4)
    torch.testing.assert_close(
        stacked.predict(x, no_mask, stacked.params)[1], net(x).detach(), rtol=1e-5, atol=1e-6
    )


def swapped(net: KnockoutNet, a: int, b: int) -> KnockoutNet:
    """``net`` with bottleneck units a and b exchanged (the same function unmasked)."""
    other = copy.deepcopy(net)
    order = list(range(net.n_hidden))
    order[a], order[b] = b, a
    with torch.no_grad():
        other.hidden.weight.copy_(net.hidden.weight[order])
        other.hidden.bias.copy_(net.hidden.bias[order])
        other.output.weight.copy_(net.output.weight[:, order])
    return other


@pytest.mark.parametrize("relabel", ["always", "never"])
def test_relabelling_puts_swapped_units_back_where_gradient_steps_cannot(small_replicate, relabel):
    """ko started from the fly itself with two units exchanged: only relabelling undoes it."""
    fly, train_table, _, probe = small_replicate
    fly_relu = KnockoutNet(Architecture(6, 4, activation="relu"))
    fly_relu.load_state_dict(fly.state_dict())
    data = simulated_data(train_table, 6, 4)
    with torch.no_grad():  # the table's behaviour, as this ReLU fly would give it
        data.y.copy_(fly_relu(data.x, keep_masks(4)[torch.from_numpy(data.silenced_unit()) + 1]))
    settings = TrainSettings(lr=1e-4, batch_size=40, epochs=2, relabel=relabel)
    result = train_restarts("ko", data, [swapped(fly_relu, 0, 2)], settings, seed=0)
    x = torch.tensor(probe[naming.input_columns(6)].to_numpy(np.float32))
    with torch.no_grad():
        r2 = np.diag(
            metrics.squared_correlations(fly_relu.activity(x).numpy(), result.network.activity(x).numpy())
        )
    if relabel == "always":
        assert result.relabelled == [[1]]
        assert r2.min() > 0.99
    else:
        assert result.relabelled == [[]]
        assert r2[0] < 0.9 and r2[2] < 0.9


@pytest.mark.parametrize(("swap", "relabelled"), [((0, 3), True), ((0, 1), True), ((1, 2), False)])
def test_relabelling_handles_a_line_that_silences_two_units(small_replicate, swap, relabelled):
    """Sets: control, unit 0, units 1 and 2 together, unit 3. Swapped single units, or a
    single unit swapped with one of the pair, are put back; the pair's two units play
    interchangeable roles (knockout training cannot tell them apart), so swapping them
    changes no loss and nothing is relabelled."""
    fly, train_table, _, probe = small_replicate
    fly_relu = KnockoutNet(Architecture(6, 4, activation="relu"))
    fly_relu.load_state_dict(fly.state_dict())
    plain = simulated_data(train_table, 6, 4)
    set_index = torch.tensor([0, 1, 2, 2, 3])[plain.set_index]
    set_units = ((), (0,), (1, 2), (3,))
    data = BehaviorData(plain.x, plain.y.clone(), set_index, set_units)
    keep = keep_matrix([set_units[s] for s in set_index.tolist()], 4, "cpu")
    with torch.no_grad():
        data.y.copy_(fly_relu(data.x, keep))
    settings = TrainSettings(lr=1e-4, batch_size=40, epochs=2, relabel="always")
    result = train_restarts("ko", data, [swapped(fly_relu, *swap)], settings, seed=0)
    x = torch.tensor(probe[naming.input_columns(6)].to_numpy(np.float32))
    with torch.no_grad():
        r2 = np.diag(
            metrics.squared_correlations(fly_relu.activity(x).numpy(), result.network.activity(x).numpy())
        )
    assert result.relabelled == ([[1]] if relabelled else [[]])
    if relabelled:
        assert r2.min() > 0.99
    else:
        assert r2[0] > 0.99 and r2[3] > 0.99 and r2[1] < 0.9


@pytest.mark.parametrize("n_hidden", [2, 6])
def test_relabelling_trains_models_smaller_and_larger_than_the_fly(data, n_hidden):
    architecture = Architecture(6, n_hidden, activation="relu")
    settings = TrainSettings(lr=0.01, batch_size=8, epochs=4, restarts=2, relabel="always")
    result = train("ko", data, architecture, settings, seed=0)
    assert result.network.architecture == architecture and len(result.relabelled) == 2
    assert all(set(epochs) <= {1, 2, 4} for epochs in result.relabelled)
    assert math.isfinite(result.chosen_losses[-1])
