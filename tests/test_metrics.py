"""Behaviour R², neural R² and unit contributions."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from nets import fly_layout, simulated_behavior_scores, simulated_neural_scores, two_layer

from knockout import metrics, naming
from knockout import models as registry
from knockout.metrics import (
    r2_score,
    squared_correlations,
    unit_contributions,
)
from knockout.network import Architecture, KnockoutNet
from knockout.simulation import DataSettings, FlySettings, simulate

# -------------------------------------------------------------------------------------------- r2_score


def test_r2_perfect_prediction_is_one():
    y = np.array([0.3, -1.2, 2.0, 0.7])
    assert r2_score(y, y) == 1.0


def test_r2_predicting_the_mean_is_zero():
    y = np.array([0.3, -1.2, 2.0, 0.7])
    assert r2_score(y, np.full(4, y.mean())) == pytest.approx(0.0, abs=1e-15)


def test_r2_hand_computed_cases():
    y = [1.0, 2.0, 3.0, 4.0]  # mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5
    assert r2_score(y, [1.0, 2.0, 3.0, 5.0]) == pytest.approx(1 - 1 / 5)
    assert r2_score(y, [4.0, 3.0, 2.0, 1.0]) == pytest.approx(1 - 20 / 5)  # worse than the mean: < 0
    # Not symmetric: SS_tot is about the mean of the observed values.
    assert r2_score([1.0, 2.0, 3.0, 5.0], y) == pytest.approx(1 - 1 / 8.75)


def test_r2_is_computed_in_float64():
    y = np.array([1e4, 1e4 + 1, 1e4 + 2], np.float32)
    assert r2_score(y, y + np.float32(0.5)) == pytest.approx(1 - 0.75 / 2)


def test_r2_is_nan_on_constant_observations():
    """Undefined, reported as such (the tables say why), not a crash after training."""
    assert np.isnan(r2_score(np.full(5, 2.0), np.arange(5.0)))


# -------------------------------------------------------------------------------- squared_correlations


def squared_correlation(a, b) -> float:
    """``squared_correlations`` of one pair of vectors."""
    return float(squared_correlations(np.reshape(a, (-1, 1)), np.reshape(b, (-1, 1)))[0, 0])


def test_squared_correlation_is_invariant_to_scale_shift_and_sign():
    a = np.random.default_rng(0).normal(size=50)
    assert squared_correlation(a, -3 * a + 2) == pytest.approx(1.0, abs=1e-12)
    assert squared_correlation(0.01 * a, a) == pytest.approx(1.0, abs=1e-12)


def test_squared_correlation_matches_numpy_corrcoef():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    b = 0.5 * a + rng.normal(size=200)
    expected = np.corrcoef(a, b)[0, 1] ** 2
    assert 0.1 < expected < 0.4  # a middling case, not 0 or 1
    assert squared_correlation(a, b) == pytest.approx(expected, rel=1e-10)
    assert squared_correlation(b, a) == pytest.approx(expected, rel=1e-10)
    assert squared_correlation(a.astype(np.float32), b.astype(np.float32)) == pytest.approx(
        expected, rel=1e-5
    )


def test_squared_correlation_is_zero_for_a_constant_side():
    a = np.random.default_rng(2).normal(size=20)
    assert squared_correlation(np.full(20, 3.0), a) == 0.0
    assert squared_correlation(a, np.zeros(20)) == 0.0


# -------------------------------------------------------------------------------------- behavior_scores

NOISE_SD = 0.2


@pytest.fixture(scope="module")
def replicate():
    """A 16-unit fly (17 test sets) with enough noise that the ceiling is visibly below 1."""
    return simulate(FlySettings(n_inputs=6, n_hidden=16, noise_sd=NOISE_SD), DataSettings(2, 200, 300), 4)


def test_behavior_scores_rows_and_columns(replicate):
    fly, _, test, _ = replicate
    models = {m: copy.deepcopy(fly) for m in registry.REGISTRY}
    scores = simulated_behavior_scores(fly, models, test)
    assert list(scores.columns) == naming.BEHAVIOR_SCORE_COLUMNS
    assert (scores["r2_note"] == "").all()
    assert set(scores["output"]) == {"y"}
    assert len(scores) == 17 * len(models)
    assert sorted(set(zip(scores["model"], scores["set"], strict=True))) == sorted(
        (m, d) for m in models for d in naming.simulated_set_names(16)
    )
    assert (scores["silenced_units"] == scores["set"].where(scores["set"] != "control", "")).all()
    # One ceiling per test set, the same for every model.
    assert (scores.groupby("set")["noise_ceiling"].nunique() == 1).all()


def test_the_fly_scores_exactly_the_noise_ceiling_on_every_set(replicate):
    fly, _, test, _ = replicate
    scores = simulated_behavior_scores(fly, {"ko": copy.deepcopy(fly)}, test)
    np.testing.assert_array_equal(scores["r2"], scores["noise_ceiling"])
    # The ceiling is the fly's R² against noisy data: below 1 by about noise_sd² / var(y).
    for _, row in scores.iterrows():
        y = test.loc[test["set"] == row["set"], "y"].to_numpy(np.float64)
        assert row["noise_ceiling"] == pytest.approx(1 - NOISE_SD**2 / y.var(), abs=0.03)
        assert row["noise_ceiling"] < 1


def test_ko_masks_the_matching_unit_at_test_time_and_the_others_do_not(replicate):
    fly, _, test, _ = replicate
    scores = simulated_behavior_scores(fly, {"ko": copy.deepcopy(fly), "noko": copy.deepcopy(fly)}, test)
    ko = scores[scores["model"] == "ko"].set_index("set")
    noko = scores[scores["model"] == "noko"].set_index("set")
    np.testing.assert_array_equal(ko["r2"], ko["noise_ceiling"])
    assert noko.loc["control", "r2"] == noko.loc["control", "noise_ceiling"]
    # Unmasked, the fly's own weights miss the silenced unit's contribution, std |w_out,i| |w_in,i|
    # for standard-normal inputs: clearly lower wherever that is not small beside the noise.
    contribution = (fly.output.weight[0].abs() * fly.hidden.weight.norm(dim=1)).detach().numpy()
    large = [f"unit_{i:02d}" for i in np.flatnonzero(contribution > NOISE_SD / 2)]
    assert len(large) >= 8
    assert (noko.loc[large, "r2"] < noko.loc[large, "noise_ceiling"]).all()
    assert (noko["noise_ceiling"] - noko["r2"]).max() > 0.1


def test_behavior_scores_use_the_silenced_unit_column_not_the_row_order(replicate):
    fly, _, test, _ = replicate
    models = {"ko": copy.deepcopy(fly), "noko": copy.deepcopy(fly)}
    shuffled = test.sample(frac=1.0, random_state=0).reset_index(drop=True)
    a, b = simulated_behavior_scores(fly, models, test), simulated_behavior_scores(fly, models, shuffled)
    np.testing.assert_allclose(a["r2"], b["r2"], rtol=1e-6)
    np.testing.assert_allclose(a["noise_ceiling"], b["noise_ceiling"], rtol=1e-6)


# --------------------------------------------------------------------------------------- neural_scores


def permuted(fly: KnockoutNet, order: list[int]) -> KnockoutNet:
    """The same function as the fly with hidden unit i of the model being fly unit order[i]."""
    model = copy.deepcopy(fly)
    with torch.no_grad():
        model.hidden.weight.copy_(fly.hidden.weight[order])
        model.hidden.bias.copy_(fly.hidden.bias[order])
        model.output.weight.copy_(fly.output.weight[:, order])
    return model


def probe_hidden(probe, n_hidden):
    return probe[[naming.response_column(unit) for unit in naming.unit_names(n_hidden)]].to_numpy(np.float64)


def test_the_fly_as_a_model_has_neural_r2_one_for_every_unit(replicate):
    fly, _, _, probe = replicate
    scores = simulated_neural_scores(fly, {"ko": copy.deepcopy(fly)}, probe)
    assert list(scores.columns) == naming.NEURAL_SCORE_COLUMNS
    assert scores["unit"].tolist() == list(range(16))
    for measure in ("r2", "r2_matched", "r2_decoded", "weight_cosine"):
        np.testing.assert_allclose(scores[measure], 1.0, atol=1e-6)
    np.testing.assert_allclose(scores["silencing_effect"], scores["fly_silencing_effect"], rtol=1e-6)
    assert (scores["silenced"] == 1).all()


def test_silencing_effect_is_the_rms_of_the_units_share_of_the_output(replicate):
    """For a linear network, silencing unit i removes w_out,i * h_i from the output."""
    fly, _, _, probe = replicate
    scores = simulated_neural_scores(fly, {"ko": copy.deepcopy(fly)}, probe)
    shares = probe_hidden(probe, 16) * fly.output.weight.detach().double().numpy()[0]
    np.testing.assert_allclose(scores["fly_silencing_effect"], np.sqrt(np.mean(shares**2, axis=0)), rtol=1e-5)


def test_a_permuted_model_is_matched_and_decoded_but_not_aligned(replicate):
    fly, _, _, probe = replicate
    scores = simulated_neural_scores(fly, {"noko": permuted(fly, [(i + 1) % 16 for i in range(16)])}, probe)
    np.testing.assert_allclose(scores["r2_matched"], 1.0, atol=1e-6)
    np.testing.assert_allclose(scores["r2_decoded"], 1.0, atol=1e-6)
    assert np.median(scores["weight_cosine"]) < 0.5
    assert np.median(scores["r2"]) < 0.3


def test_a_smaller_model_scores_zero_on_the_fly_units_it_lacks(replicate):
    fly, _, _, probe = replicate
    small = two_layer(6, 10)
    with torch.no_grad():
        small.hidden.weight.copy_(fly.hidden.weight[:10])
        small.hidden.bias.copy_(fly.hidden.bias[:10])
        small.output.weight.copy_(fly.output.weight[:, :10])
    scores = simulated_neural_scores(fly, {"ko": small}, probe, n_silenced=12)
    assert len(scores) == 16
    np.testing.assert_allclose(scores["r2"][:10], 1.0, atol=1e-6)
    for measure in ("r2", "r2_matched", "weight_cosine", "silencing_effect"):
        assert (scores[measure][10:] == 0).all(), measure
    assert scores["silenced"].tolist() == [1] * 12 + [0] * 4


def test_scaled_and_sign_flipped_units_still_score_one(replicate):
    fly, _, _, probe = replicate
    model = copy.deepcopy(fly)
    with torch.no_grad():
        model.hidden.weight.mul_(-2.5)
        model.hidden.bias.add_(1.0)
    np.testing.assert_allclose(simulated_neural_scores(fly, {"ko": model}, probe)["r2"], 1.0, atol=1e-6)


def test_permuted_model_units_score_low(replicate):
    fly, _, test, probe = replicate
    order = [(i + 1) % 16 for i in range(16)]
    model = permuted(fly, order)
    # Same behaviour as the fly on the control set, different units.
    behavior = simulated_behavior_scores(fly, {"noko": model}, test).set_index("set")
    assert behavior.loc["control", "r2"] == pytest.approx(behavior.loc["control", "noise_ceiling"], abs=1e-5)
    scores = simulated_neural_scores(fly, {"noko": model}, probe)
    hidden = probe_hidden(probe, 16)
    expected = [np.corrcoef(hidden[:, i], hidden[:, order[i]])[0, 1] ** 2 for i in range(16)]
    np.testing.assert_allclose(scores["r2"], expected, rtol=1e-5, atol=1e-7)
    assert np.median(scores["r2"]) < 0.3


def test_contribution_is_the_std_of_w_out_times_h(replicate):
    fly, _, _, probe = replicate
    scores = simulated_neural_scores(
        fly, {"ko": copy.deepcopy(fly), "noko": permuted(fly, list(range(16))[::-1])}, probe
    )
    hidden = probe_hidden(probe, 16)
    w_out = fly.output.weight.detach().double().numpy()[0]
    expected = [np.std(w_out[i] * hidden[:, i]) for i in range(16)]  # ddof=0
    for model in ("ko", "noko"):  # the fly's property, whatever the model
        np.testing.assert_allclose(scores.loc[scores["model"] == model, "contribution"], expected, rtol=1e-12)
    assert not np.allclose(expected, [np.std(w_out[i] * hidden[:, i], ddof=1) for i in range(16)], rtol=1e-6)
    np.testing.assert_allclose(unit_contributions(fly, hidden), expected, rtol=1e-12)


def test_squared_correlations_pairs_every_column_of_a_with_every_column_of_b():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(60, 3)), rng.normal(size=(60, 2))
    expected = [[np.corrcoef(a[:, i], b[:, j])[0, 1] ** 2 for j in range(2)] for i in range(3)]
    np.testing.assert_allclose(squared_correlations(a, b), expected, rtol=1e-10)


def test_predicted_neural_r2_is_the_contribution_against_the_estimation_noise():
    contributions = np.array([0.0, 0.05, 0.5])
    predicted = metrics.predicted_neural_r2(contributions, noise_sd=0.5, n_inputs=50, n_train=1000)
    floor = 0.5**2 * 50 / (1000 - 50 - 1)  # d/(n - d - 1): the residual degrees of freedom
    np.testing.assert_allclose(predicted, contributions**2 / (contributions**2 + floor))
    assert predicted[0] == 0 and 0 < predicted[1] < predicted[2] < 1
    # with no noise every unit is identifiable; with no residual freedom none is
    np.testing.assert_allclose(metrics.predicted_neural_r2(contributions[1:], 0.0, 50, 1000), 1.0)
    assert metrics.estimation_floor(0.5, 50, 51) == np.inf
    np.testing.assert_array_equal(metrics.predicted_neural_r2(contributions, 0.5, 50, 51), 0.0)


def test_several_outputs_are_scored_one_by_one_and_deep_flies_get_their_measures():

    settings = FlySettings(n_inputs=6, n_hidden=4, activation="relu", decoder=(5,), n_outputs=3)
    fly, _, test, probe = simulate(settings, DataSettings(2, 100, 200), seed=0)
    scores = simulated_behavior_scores(fly, {"ko": copy.deepcopy(fly)}, test)
    assert sorted(set(scores["output"])) == ["y_00", "y_01", "y_02"]
    assert len(scores) == 5 * 3
    # the fly itself, masked like ko, scores exactly its noise ceiling on every set and output
    np.testing.assert_allclose(scores["r2"], scores["noise_ceiling"])
    neural = simulated_neural_scores(
        fly, {"ko": copy.deepcopy(fly)}, probe, design=metrics.DataDesign(0.05, 2, 0.0)
    )
    np.testing.assert_allclose(neural["r2"], 1.0)
    assert neural["r2_predicted"].isna().all()  # the prediction is for linear two-layer flies
    # the contribution (std of the output's change when the unit is silenced) is the silencing
    # effect's spread: positive, and at most its root mean square
    assert (neural["contribution"] > 0).all()
    assert (neural["contribution"] <= neural["fly_silencing_effect"] + 1e-9).all()


def test_the_prediction_covers_silenced_units_and_only_the_designs_it_was_derived_for(small_replicate):
    fly, _, _, probe = small_replicate
    models = {"ko": copy.deepcopy(fly)}
    design = metrics.DataDesign(noise_sd=0.05, n_train=40, silenced_activity=0.0)
    full = simulated_neural_scores(fly, models, probe, n_silenced=3, design=design)
    expected = metrics.predicted_neural_r2(full["contribution"].to_numpy(), 0.05, 6, 40)
    silenced = full["silenced"] == 1
    np.testing.assert_allclose(full.loc[silenced, "r2_predicted"], expected[silenced])
    assert (full.loc[~silenced, "r2_predicted"] == 0).all() and (~silenced).sum() == 1
    # the σ²·d/(n - d - 1) it was computed with is stored beside it, for every unit: never
    # read back from it
    floor = metrics.estimation_floor(0.05, 6, 40)
    assert floor == 0.05**2 * 6 / (40 - 6 - 1) and (full["estimation_floor"] == floor).all()
    c2 = full.loc[silenced, "contribution"] ** 2
    np.testing.assert_allclose(
        full.loc[silenced, "r2_predicted"], c2 / (c2 + full.loc[silenced, "estimation_floor"])
    )
    incomplete = metrics.DataDesign(noise_sd=0.05, n_train=40, silenced_activity=0.5)
    without = simulated_neural_scores(fly, models, probe, design=incomplete)
    assert without[["r2_predicted", "estimation_floor"]].isna().all().all()
    smaller = KnockoutNet(Architecture(6, 3))
    assert simulated_neural_scores(fly, {"ko": smaller}, probe, design=design)["r2_predicted"].isna().all()


# ------------------------------------------------------------------------------------ undefined R²


def test_a_test_set_whose_output_never_varies_scores_nan_with_a_note(replicate):
    fly, _, test, _ = replicate
    flat = test.copy()
    flat.loc[flat["set"] == "unit_03", "y"] = 1.5
    scores = simulated_behavior_scores(fly, {"ko": copy.deepcopy(fly), "do": copy.deepcopy(fly)}, flat)
    undefined = scores["set"] == "unit_03"
    assert scores.loc[undefined, ["r2", "noise_ceiling"]].isna().all().all()
    assert (scores.loc[undefined, "r2_note"] == metrics.CONSTANT_NOTE).all()
    assert scores.loc[~undefined, "r2"].notna().all() and (scores.loc[~undefined, "r2_note"] == "").all()


def test_a_neuron_that_never_varies_scores_nan_three_ways_with_a_note(replicate):
    fly, _, _, probe = replicate
    flat = probe.assign(**{naming.response_column("unit_05"): 0.25})
    scores = simulated_neural_scores(fly, {"ko": copy.deepcopy(fly)}, flat).set_index("unit")
    assert scores.loc[5, ["r2", "r2_matched", "r2_decoded"]].isna().all()
    assert scores.loc[5, "r2_note"] == metrics.CONSTANT_NOTE
    others = scores.drop(index=5)
    np.testing.assert_allclose(others[["r2", "r2_matched", "r2_decoded"]], 1.0, atol=1e-6)
    assert (others["r2_note"] == "").all()


# ------------------------------------------------------------------------------------ chance levels


def chance(fly, nets, probe, seed=0, draws=5):
    return metrics.chance_table(nets, probe, fly_layout(fly), "glorot", seed, draws)


def test_chance_comes_from_untrained_networks_scored_like_the_models(replicate):
    fly, _, _, probe = replicate
    table = chance(fly, {"ko": copy.deepcopy(fly)}, probe)
    assert list(table.columns) == naming.CHANCE_COLUMNS
    untrained = table[table["null"] == "untrained"]
    assert set(untrained["model"]) == {metrics.UNTRAINED} and set(untrained["draw"]) == set(range(5))
    assert set(untrained["measure"]) == set(naming.RECORDING_MEASURES)
    # draw 2 is the third network of the seed's chance stream, scored by recording_scores
    net = metrics.untrained_networks(fly.architecture, "glorot", 0, 3)[2]
    layout = fly_layout(fly)
    values = probe[[naming.response_column(u) for u in layout.units]].to_numpy(np.float64)
    hidden = (
        net.activity(torch.from_numpy(probe[list(layout.inputs)].to_numpy(np.float32, copy=True)))
        .detach()
        .double()
        .numpy()
    )
    expected = metrics.recording_scores(values, hidden, list(range(16)))
    for measure, per_unit in expected.items():
        got = untrained[(untrained["draw"] == 2) & (untrained["measure"] == measure)].sort_values("unit")
        np.testing.assert_allclose(got["score"], per_unit)
    # random units of a 16-of-6-dimensional span: far from identified one to one
    assert untrained[untrained["measure"] == "r2"]["score"].median() < 0.5


def test_chance_is_fixed_by_the_seed_and_does_not_touch_the_models_init_stream(replicate):
    fly, _, _, probe = replicate
    nets = {"ko": copy.deepcopy(fly)}
    a, b, c = chance(fly, nets, probe, 0), chance(fly, nets, probe, 0), chance(fly, nets, probe, 1)
    assert a.equals(b) and not a.equals(c)
    chance_net = metrics.untrained_networks(fly.architecture, "glorot", 0, 1)[0]
    from knockout.training.plan import initial_networks
    from knockout.training.settings import TrainSettings

    (first,) = initial_networks(fly.architecture, TrainSettings(), 0)
    assert not torch.equal(chance_net.hidden.weight, first.hidden.weight)


def test_the_permutation_null_matches_each_model_to_responses_with_their_stimuli_shuffled(replicate):
    """The fly itself scores 1 matched; against shuffled responses the matching finds ~0."""
    fly, _, _, probe = replicate
    table = chance(fly, {"ko": copy.deepcopy(fly), "do": copy.deepcopy(fly)}, probe)
    permuted = table[table["null"] == "permuted_stimuli"]
    assert set(permuted["model"]) == {"ko", "do"} and set(permuted["measure"]) == {"r2_matched"}
    assert permuted["score"].max() < 0.1
    ko, do = (permuted[permuted["model"] == m]["score"].to_numpy() for m in ("ko", "do"))
    np.testing.assert_array_equal(ko, do)  # the same permutation for every model of a draw


def test_chance_is_empty_without_a_recorded_unit(replicate):
    fly, _, _, probe = replicate
    inputs = probe[list(fly_layout(fly).inputs)]
    assert chance(fly, {"ko": copy.deepcopy(fly)}, inputs).empty
