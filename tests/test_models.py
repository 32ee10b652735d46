"""The model registry and the maskings.

Every registered model (whatever the registry holds: a new entry is tested here without
a line of test code) trains on the sets, masks on the batches and is evaluated with the
masks its entry says; the maskings themselves; the entries of the paper's models say
what the paper says; a bad entry or an unknown name fails loudly; a training call looks
its model up once."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from nets import simulated_behavior_scores, simulated_data

from knockout import metrics, models, seeding
from knockout.behavior_data import BehaviorData
from knockout.masking import MATCHING, NONE, RANDOM, Masking
from knockout.network import Architecture, keep_matrix, silencing_mask
from knockout.training import Fit, TrainSettings, initial_networks, train
from knockout.training.plan import FitPlan

TRAINED = models.TRAINED
EVERY = tuple(models.REGISTRY)


# ------------------------------------------------------------------------------------------ the maskings

SET_UNITS = [(), (0,), (1,), (2,), (3,), (1, 3)]
SET_OF_BATCH = [0, 1, 2, 3, 4, 0, 4, 5, 1]


def draws(seed: int = 0) -> seeding.Draws:
    return seeding.Draws(torch.Generator().manual_seed(seed))


def test_no_masking_masks_nothing():
    assert NONE.units(SET_UNITS, SET_OF_BATCH, 4) == [()] * len(SET_OF_BATCH)


def test_matching_masks_the_silenced_units():
    assert MATCHING.units(SET_UNITS, SET_OF_BATCH, 4) == [SET_UNITS[s] for s in SET_OF_BATCH]


def test_a_matching_model_smaller_than_the_fly_masks_nothing_for_the_units_it_lacks():
    assert MATCHING.units(SET_UNITS, SET_OF_BATCH, 2) == [(), (0,), (1,), (), (), (), (), (1,), (0,)]


def test_keep_matrix_zeroes_each_row_s_masked_units_that_the_network_has():
    keep = keep_matrix([(), (2,), (0, 3)], 4)
    assert torch.equal(keep, torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 1], [0, 1, 1, 0]]))
    assert torch.equal(keep_matrix([(-1,), (5, 1)], 4), torch.tensor([[1.0, 1, 1, 1], [1, 0, 1, 1]]))
    assert torch.equal(keep_matrix([(2,)], 4, remaining=0.25), torch.tensor([[1.0, 1, 0.25, 1]]))
    for unit in (-1, 0, 3, 4):  # the fly's silencing is the same function's
        assert torch.equal(silencing_mask(4, unit, 0.5), keep_matrix([(unit,)], 4, 0.5)[0])


def test_random_masks_as_many_distinct_random_units_as_the_set_silences():
    units = RANDOM.units(SET_UNITS, [0, 5, 1] * 500, 4, draws())
    assert all(not m for m in units[0::3])
    pairs = units[1::3]
    assert all(len(set(pair)) == 2 for pair in pairs)
    assert (
        len({tuple(sorted(pair)) for pair in pairs}) == 6
    )  # every pair of 4 units: not tied to the silenced pair
    assert all(len(single) == 1 for single in units[2::3])


def test_random_masks_a_uniformly_random_unit_on_silenced_batches_only():
    set_of_batch = [0, 3] * 2000
    stream = draws()
    units = np.array([m[0] if m else -1 for m in RANDOM.units(SET_UNITS, set_of_batch, 4, stream)])
    assert (units[0::2] == -1).all()
    on_silenced = units[1::2]
    # Uniform: each unit ~ 1/4 of 2000 draws (std error 0.0097), so not tied to the silenced unit 2.
    np.testing.assert_allclose(np.bincount(on_silenced, minlength=4) / len(on_silenced), 0.25, atol=0.05)
    again = RANDOM.units(SET_UNITS, set_of_batch, 4, stream)  # fresh draws each call
    assert again != RANDOM.units(SET_UNITS, set_of_batch, 4, draws())


def test_random_draws_what_it_drew_before_the_maskings_were_objects():
    """The draws, in their order: a unit per batch, then a permutation per batch of a set of
    several units (the stream the trained networks' bytes depend on)."""
    generator = torch.Generator().manual_seed(3)
    drawn = torch.randint(4, (len(SET_OF_BATCH),), generator=generator)
    several = torch.randperm(4, generator=generator)[:2]
    expected = [(int(drawn[b]),) if len(SET_UNITS[s]) == 1 else () for b, s in enumerate(SET_OF_BATCH)]
    expected[SET_OF_BATCH.index(5)] = tuple(several.tolist())
    assert RANDOM.units(SET_UNITS, SET_OF_BATCH, 4, draws(3)) == expected


def test_a_masking_at_test_time_masks_what_it_masks_on_the_set_and_draws_nothing():
    assert MATCHING.on_set((1, 3), 4) == (1, 3) and MATCHING.on_set((1, 3), 2) == (1,)
    assert NONE.on_set((1, 3), 4) == ()
    with pytest.raises(ValueError, match="draws"):
        RANDOM.on_set((1,), 4)


# ------------------------------------------------------------------------------------------ the registry


def test_the_paper_s_models_are_what_the_registry_says():
    """control fits the control set; noko every set, unmasked; ko masks the matching units in
    training and at test time; do masks random units in training only; the optimum is the
    exact optimum of ko's objective, evaluated as ko is."""
    expected = {
        "control": (models.CONTROL_SET, NONE, NONE, None),
        "noko": (models.EVERY_SET, NONE, NONE, None),
        "ko": (models.EVERY_SET, MATCHING, MATCHING, None),
        "do": (models.EVERY_SET, RANDOM, NONE, None),
        "optimum": (models.EVERY_SET, MATCHING, MATCHING, "ko"),
    }
    for name, (trains_on, train_masking, test_masking, optimum_of) in expected.items():
        spec = models.spec(name)
        assert (spec.trains_on, spec.train_masking, spec.test_masking, spec.optimum_of) == (
            trains_on,
            train_masking,
            test_masking,
            optimum_of,
        ), name
    assert models.KNOCKOUT == "ko" and models.OPTIMUM == "optimum"
    assert models.OPTIMUM not in TRAINED and models.KNOCKOUT in TRAINED
    assert set(models.CONTRAST) <= set(TRAINED)
    assert MATCHING.assigns_roles and not NONE.assigns_roles and not RANDOM.assigns_roles


def test_every_entry_is_well_formed():
    for name, spec in models.REGISTRY.items():
        assert spec.name == name
        assert isinstance(spec.trains_on, models.TrainsOn)
        assert isinstance(spec.train_masking, Masking) and isinstance(spec.test_masking, Masking)
        assert not spec.test_masking.draws
        assert spec.trained == (spec.optimum_of is None)
        assert spec.optimum_of is None or models.spec(spec.optimum_of).trained


def test_a_bad_entry_fails_loudly():
    entry = ("m", models.EVERY_SET, MATCHING, MATCHING, "m", "#000000", "o")
    with pytest.raises(TypeError, match="train_masking 'matching'"):
        models.ModelSpec("m", models.EVERY_SET, "matching", MATCHING, "m", "#000000", "o")
    with pytest.raises(TypeError, match="trains_on 'all'"):
        models.ModelSpec("m", "all", MATCHING, MATCHING, "m", "#000000", "o")
    with pytest.raises(ValueError, match="draws at random"):
        models.ModelSpec("m", models.EVERY_SET, RANDOM, RANDOM, "m", "#000000", "o")
    with pytest.raises(ValueError, match="optimum_of 'nothing'"):
        models._checked((models.ModelSpec(*entry, optimum_of="nothing"),))
    with pytest.raises(ValueError, match="repeat"):
        models._checked((models.ModelSpec(*entry), models.ModelSpec(*entry)))


def test_an_unknown_or_untrained_model_fails_before_training(small_replicate):
    data = simulated_data(small_replicate[1], 6, 4)
    with pytest.raises(ValueError, match="'dropout' unknown") as info:
        Fit("dropout", data, TrainSettings(), 0)
    assert all(name in str(info.value) for name in EVERY)
    with pytest.raises(ValueError, match="computed, not trained"):
        Fit(models.OPTIMUM, data, TrainSettings(), 0)
    with pytest.raises(TypeError, match="registry entry"):
        FitPlan("ko", data, Architecture(6, 4), TrainSettings(), 0)


def test_a_training_call_looks_its_model_up_once(small_replicate, monkeypatch):
    data = simulated_data(small_replicate[1], 6, 4)
    looked_up = []
    lookup = models.spec
    monkeypatch.setattr(models, "spec", lambda name: looked_up.append(name) or lookup(name))
    train("ko", data, Architecture(6, 4), TrainSettings(epochs=2, min_steps=0, batch_size=8), 0)
    assert looked_up == ["ko"]


# ------------------------------------------------------------------------- every registered model

ARCH = Architecture(6, 4)
SETTINGS = TrainSettings(lr=0.01, batch_size=8, epochs=3, min_steps=0, relabel="never")
SEED = 5


@pytest.fixture(scope="module")
def data(small_replicate) -> BehaviorData:
    """The small replicate's training rows, its last set relabelled as silencing units 1 and
    3 together (the trainer does not care whether that is true): one-unit and two-unit sets."""
    data = simulated_data(small_replicate[1], 6, 4)
    return BehaviorData(data.x, data.y, data.set_index, (*data.set_units[:-1], (1, 3)))


@pytest.mark.parametrize("n_hidden", [4, 3])
@pytest.mark.parametrize("model", TRAINED)
def test_every_model_trains_on_its_sets_and_masks_each_batch_as_its_entry_says(data, model, n_hidden):
    """Each epoch takes every row of the sets the entry trains on once, a batch from one set
    at a time; the masks are the entry's training masking's for those batches (with the
    replicate's dropout stream); nothing is masked on the control set; a masking that draws
    nothing masks every batch of a set alike, as it would on that test set."""
    spec = models.spec(model)
    plan = FitPlan(spec, data, Architecture(6, n_hidden), SETTINGS, SEED)
    assert [units for units, _ in plan.sets] == (list(data.set_units) if spec.trains_on.silenced else [()])
    plan_set = torch.full((len(data.x),), -1)
    for number, (_, rows) in enumerate(plan.sets):
        plan_set[rows] = number
    set_units = [units for units, _ in plan.sets]
    dropout = seeding.Draws(seeding.generator(SEED, "dropout"))
    masked_units = set()
    for epoch in plan.epochs():
        rows_seen, set_of_batch = [], []
        for rows, _ in epoch.batches():
            (number,) = set(plan_set[rows].tolist())  # one set per batch, a set trained on
            assert number >= 0
            rows_seen += rows.tolist()
            set_of_batch.append(number)
        assert sorted(rows_seen) == sorted(torch.cat([rows for _, rows in plan.sets]).tolist())
        expected = spec.train_masking.units(set_units, set_of_batch, n_hidden, dropout)
        assert torch.equal(epoch.keep, keep_matrix(expected, n_hidden))
        for units, number in zip(expected, set_of_batch, strict=True):
            masked_units.update(units)
            assert units == () or set_units[number], "masked on the control set"
            assert set(units) <= set(range(n_hidden))
            if not spec.train_masking.draws:
                assert units == spec.train_masking.on_set(set_units[number], n_hidden)
    if spec.train_masking != NONE and spec.trains_on.silenced:
        assert masked_units, "a masking that never masks"


@pytest.mark.parametrize("model", TRAINED)
def test_every_model_is_trained_with_the_masks_of_its_plan(data, model):
    """The batched trainer's network is what a plain PyTorch loop (autograd, torch.optim.Adam,
    one batch at a time) makes from the same start with the plan's batches and masks."""
    spec = models.spec(model)
    trained = train(model, data, ARCH, SETTINGS, SEED).network
    net = initial_networks(ARCH, SETTINGS, SEED)[0]
    optimizer = torch.optim.Adam(net.parameters(), lr=SETTINGS.lr)
    for epoch in FitPlan(spec, data, ARCH, SETTINGS, SEED).epochs():
        for group in optimizer.param_groups:
            group["lr"] = epoch.lr
        for rows, keep in epoch.batches():
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(net(data.x[rows], keep), data.y[rows]).backward()
            optimizer.step()
    for key, value in net.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[key], value, rtol=0, atol=1e-5)
    start = initial_networks(ARCH, SETTINGS, SEED)[0]
    assert (trained.hidden.weight - start.hidden.weight).abs().max() > 0.01  # it did train


@pytest.mark.parametrize("model", EVERY)
def test_every_model_is_evaluated_with_its_test_masking(small_replicate, model):
    """Behaviour R² of a model on each test set is its network's with the units its entry's
    test masking masks there (nothing on the control set)."""
    fly, _, test, _ = small_replicate
    net = copy.deepcopy(fly)
    masking = models.spec(model).test_masking
    scores = simulated_behavior_scores(fly, {model: net}, test).set_index("set")
    for name in scores.index:
        silenced = (int(name.removeprefix("unit_")),) if name != "control" else ()
        rows = test[test["set"] == name]
        x = torch.tensor(rows[[f"x_{i:02d}" for i in range(6)]].to_numpy(np.float32))
        units = masking.on_set(silenced, 4)
        assert set(units) <= set(range(4))
        assert silenced or units == (), "masked on the control set"
        with torch.no_grad():
            predicted = net(x, keep_matrix([units], 4)[0]).numpy()[:, 0]
        assert scores.loc[name, "r2"] == pytest.approx(metrics.r2_score(rows["y"].to_numpy(), predicted))
