"""The knockout objective's exact optimum, and neural R² three ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets import simulated_data

from knockout.behavior_data import BehaviorData
from knockout.data_folder import simulated_layout
from knockout.identifiability import KnockoutStatistics, UnitProducts, knockout_optimum
from knockout.metrics import decoded_neural_r2, matched_neural_r2, squared_correlations
from knockout.network import Architecture
from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.training import TrainSettings, train


@pytest.fixture(scope="module")
def replicate():
    settings = FlySettings(n_inputs=6, n_hidden=4)
    fly, train_table, _, _ = simulate(settings, DataSettings(300, 2, 2), seed=0)
    data = simulated_data(train_table, 6, 4)
    return fly, data, data.x.double().numpy(), data.y[:, 0].double().numpy(), data.silenced_unit()


def test_predict_masks_the_silenced_unit_as_the_network_does(replicate):
    fly, data, x, _, silenced = replicate
    with torch.no_grad():
        keep = torch.ones(len(x), 4)
        rows = silenced >= 0
        keep[np.flatnonzero(rows), silenced[rows]] = 0.0
        expected = fly(data.x, keep)[:, 0].double().numpy()
    np.testing.assert_allclose(UnitProducts.of_net(fly).predict(x, silenced), expected, atol=1e-5)


def test_without_noise_the_optimum_is_the_fly_itself(replicate):
    fly, _, x, _, silenced = replicate
    truth = UnitProducts.of_net(fly)
    clean = truth.predict(x, silenced)
    statistics = KnockoutStatistics.of(x, clean, silenced, 4)
    optimum = knockout_optimum(statistics)
    np.testing.assert_allclose(optimum.products, truth.products, atol=1e-8)
    assert optimum.output_bias == pytest.approx(truth.output_bias, abs=1e-8)
    assert optimum.knockout_mse(statistics) < 1e-14


def test_the_optimum_is_a_lower_bound_that_trained_ko_approaches(replicate):
    fly, data, x, y, silenced = replicate
    statistics = KnockoutStatistics.of(x, y, silenced, 4)
    optimum = knockout_optimum(statistics)
    trained = train(
        "ko", data, Architecture(6, 4), TrainSettings(lr=0.01, batch_size=16, epochs=60, min_steps=0), seed=0
    ).network
    trained_mse = UnitProducts.of_net(trained).knockout_mse(statistics)
    fly_mse = UnitProducts.of_net(fly).knockout_mse(statistics)
    assert optimum.knockout_mse(statistics) <= min(trained_mse, fly_mse) + 1e-12
    assert trained_mse - optimum.knockout_mse(statistics) < 1e-4  # noise variance is 2.5e-3


def test_matching_and_decoding_see_through_a_permutation_and_a_mixing():
    generator = np.random.default_rng(0)
    fly_hidden = generator.normal(size=(400, 5))
    permuted = 3.0 * fly_hidden[:, [2, 0, 4, 1, 3]]
    mixed = fly_hidden @ generator.normal(size=(5, 5))
    assert np.diag(squared_correlations(fly_hidden, permuted)).max() < 0.1
    np.testing.assert_allclose(matched_neural_r2(fly_hidden, permuted), 1.0)
    np.testing.assert_allclose(decoded_neural_r2(fly_hidden, permuted), 1.0)
    # A mixture keeps the span (decoding recovers every unit) but no unit matches one fly unit.
    np.testing.assert_allclose(decoded_neural_r2(fly_hidden, mixed), 1.0)
    assert matched_neural_r2(fly_hidden, mixed).mean() < 0.8
    # Unrelated activity decodes nothing (cross-validation keeps chance near 0, not above it).
    assert decoded_neural_r2(fly_hidden, generator.normal(size=(400, 5))).max() < 0.05


def test_matching_with_fewer_model_units_leaves_fly_units_unmatched():
    fly_hidden = np.random.default_rng(1).normal(size=(100, 3))
    matched = matched_neural_r2(fly_hidden, fly_hidden[:, [1]])
    assert sorted(matched.round(6)) == [0.0, 0.0, 1.0]


def test_the_optimum_as_a_network_predicts_as_its_products(replicate):
    _, data, x, y, silenced = replicate
    optimum = knockout_optimum(KnockoutStatistics.of(x, y, silenced, 4))
    net = optimum.as_network()
    keep = torch.ones(len(x), 4)
    rows = silenced >= 0
    keep[np.flatnonzero(rows), silenced[rows]] = 0.0
    with torch.no_grad():
        predicted = net(data.x, keep)[:, 0].double().numpy()
    np.testing.assert_allclose(predicted, optimum.predict(x, silenced), atol=1e-5)
    np.testing.assert_allclose(UnitProducts.of_net(net).products, optimum.products, atol=1e-6)


def least_squares_optimum(x, y, silenced, n_hidden):
    """The optimum as the seed problem computed it: least squares on the dense design."""
    inputs = np.hstack([x, np.ones((len(x), 1))])
    design = np.hstack([inputs * (silenced != j)[:, None] for j in range(n_hidden)] + [np.ones((len(x), 1))])
    theta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return theta, design


@pytest.mark.parametrize(
    ("n_hidden", "n_silenced"),
    [(4, None), (4, 2), (3, None), (6, None)],
    ids=["every unit (set by set)", "some units (dense)", "a smaller model", "a larger model"],
)
def test_the_optimum_from_statistics_is_the_dense_least_squares_solution(n_hidden, n_silenced):
    _, train_table, _, _ = simulate(
        FlySettings(n_inputs=6, n_hidden=4), DataSettings(200, 2, 2, n_silenced=n_silenced), seed=2
    )
    data = BehaviorData.from_table(train_table, simulated_layout(6, 4, 1, n_silenced))
    x, y, silenced = data.x.double().numpy(), data.y[:, 0].double().numpy(), data.silenced_unit()
    theta, design = least_squares_optimum(x, y, silenced, n_hidden)
    statistics = KnockoutStatistics.of(x, y, silenced, n_hidden)
    optimum = knockout_optimum(statistics)
    np.testing.assert_allclose(np.append(optimum.products.ravel(), optimum.output_bias), theta, atol=1e-8)
    expected_mse = np.mean((design @ theta - y) ** 2)
    assert optimum.knockout_mse(statistics) == pytest.approx(expected_mse, rel=1e-9)
    np.testing.assert_allclose(optimum.predict(x, silenced), design @ theta, atol=1e-9)


def test_the_dense_solve_refuses_normal_equations_beyond_its_limit(monkeypatch):
    from knockout import identifiability
    from knockout.errors import ResourceLimit

    statistics = KnockoutStatistics.of(np.zeros((4, 3)), np.zeros(4), np.array([-1, -1, 0, 0]), 2)
    monkeypatch.setattr(identifiability, "DENSE_LIMIT_BYTES", 100)
    with pytest.raises(ResourceLimit, match=r"9² numbers .* optimum: false skips it"):
        knockout_optimum(statistics)
