"""The experiment planner's formula method against simulated flies with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from knockout import metrics, planning
from knockout.data_folder import simulated_layout
from knockout.simulation import DataSettings, FlySettings, simulate

D, UNITS, NOISE = 10, 4, 0.2


def pilot_of(n_per_set: int, seed: int, noise_sd: float = NOISE):
    """A simulated pilot (every unit silenced alone) and the fly's true contributions²:
    with standard normal inputs, c_i² = w_out,i² · |W_in,i|² exactly."""
    fly, train, _, _ = simulate(
        FlySettings(n_inputs=D, n_hidden=UNITS, noise_sd=noise_sd), DataSettings(n_per_set, 2, 2), seed=seed
    )
    pilot = planning.Pilot.from_table(train, simulated_layout(D, UNITS, 1, None))
    w_in, w_out = fly.hidden.weight.detach().double(), fly.output.weight.detach().double()[0]
    return pilot, (w_out**2 * (w_in**2).sum(dim=1)).numpy()


def test_the_contributions_are_the_fly_s_own_measure():
    """The exact c² above is what metrics.unit_contributions measures on many probe inputs."""
    fly, _, _, probe = simulate(FlySettings(n_inputs=D, n_hidden=UNITS), DataSettings(2, 2, 20_000), seed=5)
    _, truth = pilot_of(30, seed=5, noise_sd=0.05)
    with torch.no_grad():
        hidden = fly.activity(torch.tensor(probe[[f"x_{i:02d}" for i in range(D)]].to_numpy(np.float32)))
    np.testing.assert_allclose(metrics.unit_contributions(fly, hidden.numpy()) ** 2, truth, rtol=0.05)


def test_a_large_pilot_recovers_the_contributions_and_the_noise():
    pilot, truth = pilot_of(20_000, seed=1)
    estimate = planning.pilot_estimates(pilot)
    np.testing.assert_allclose(estimate.contribution2, truth, rtol=0.05, atol=2e-3)
    assert estimate.noise_var == pytest.approx(NOISE**2, rel=0.05)


def test_the_finite_sample_correction_removes_the_estimation_noise():
    """On small noisy pilots (40 rows per set, d 10, σ 1) the plain quadratic form
    overestimates c² by the estimation noise of its two fits (about σ²·2d/n = 0.5); the
    corrected estimate is right on average, within its standard error. The pilots are
    drawn here from known weights: control y = x·a + noise, unit i silenced y = x·(a - Δ_i)."""
    rng = np.random.default_rng(0)
    shares = rng.normal(size=(UNITS, D)) * np.array([[0.1], [0.3], [0.6], [1.0]])
    truth = (shares**2).sum(axis=1)  # c_i² = Δ_iᵀ Σ Δ_i with Σ = I
    raw_errors, corrected_errors = [], []
    for _ in range(200):
        x = [rng.normal(size=(40, D)) for _ in range(UNITS + 1)]
        weights = [np.ones(D), *(np.ones(D) - share for share in shares)]
        y = [rows @ w + rng.normal(size=40) for rows, w in zip(x, weights, strict=True)]
        pilot = planning.Pilot(x, y, [(), *((unit,) for unit in range(UNITS))], UNITS)
        estimate = planning.pilot_estimates(pilot)
        raw_errors.append(estimate.contribution2 + estimate.estimation_noise - truth)
        corrected_errors.append(estimate.contribution2 - truth)
    raw_errors, corrected_errors = np.ravel(raw_errors), np.ravel(corrected_errors)
    standard_error = corrected_errors.std() / np.sqrt(len(corrected_errors))
    assert raw_errors.mean() > 0.3  # the bias the correction removes
    assert abs(corrected_errors.mean()) < 3 * standard_error


def test_the_prediction_grows_with_n_and_stays_in_range():
    c2 = np.array([0.0, 0.01, 0.1, 1.0])
    low, high = (planning.predicted_r2(c2, 0.04, D, n) for n in (100, 3000))
    assert np.all((low >= 0) & (low <= high) & (high <= 1))
    assert high[0] == 0 and high[-1] > 0.99
    assert np.all(planning.predicted_r2(c2, 0.04, D, D + 1) == 0)  # no residual freedom: nothing


def test_a_plan_gives_every_unit_and_design_intervals_in_range():
    pilot, _ = pilot_of(200, seed=3)
    names = [f"unit_{i:02d}" for i in range(UNITS)]
    planned = planning.formula_plan(pilot, [100, 1000, 10_000], names, resamples=50)
    assert list(planned.columns) == planning.PLAN_COLUMNS
    assert len(planned) == UNITS * 3
    values = planned[["predicted_r2", "lower", "upper", "p_identified"]].to_numpy()
    assert np.all((values >= 0) & (values <= 1))
    assert np.all(planned["lower"] <= planned["upper"])
    per_unit = planned.pivot(index="unit", columns="n_per_set", values="predicted_r2")
    assert np.all(np.diff(per_unit.to_numpy(), axis=1) >= 0)  # more data never predicts less
    smallest = planning.smallest_designs(planned)
    assert list(smallest["unit"]) == names


def test_a_unit_the_pilot_cannot_speak_for_gets_a_reason():
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(30, 3)) for _ in range(3)]
    y = [rows @ np.ones(3) + rng.normal(size=30) for rows in x]
    pilot = planning.Pilot(x, y, [(), (0, 1), (3,)], n_units=4)
    planned = planning.formula_plan(pilot, [100], ["a", "b", "c", "d"], resamples=5).set_index("unit")
    assert planned.loc["a", "reason"] == planning.NOT_ALONE and np.isnan(planned.loc["a", "predicted_r2"])
    assert planned.loc["c", "reason"] == planning.NEVER_SILENCED
    assert planned.loc["d", "reason"] == ""
    smallest = planning.smallest_designs(planned.reset_index()).set_index("unit")
    assert pd.isna(smallest.loc["a", "min_n_per_set"]) and smallest.loc["a", "reason"] == planning.NOT_ALONE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda sets: [(0,), (1,)], "one control set"),
        (lambda sets: sets, "at least d \\+ 2"),
    ],
)
def test_a_pilot_it_cannot_use_is_refused_in_one_sentence(change, message):
    rng = np.random.default_rng(0)
    rows = 4 if message.startswith("at least") else 30
    x = [rng.normal(size=(rows, 3)) for _ in range(2)]
    with pytest.raises(ValueError, match=message):
        planning.Pilot(x, [rows_x[:, 0] for rows_x in x], change([(), (0,)]), n_units=2)


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5])
def test_a_target_outside_zero_to_one_is_refused(target):
    pilot, _ = pilot_of(50, seed=0)
    with pytest.raises(ValueError, match="target_r2"):
        planning.formula_plan(pilot, [100], [f"u{i}" for i in range(UNITS)], target_r2=target, resamples=2)
