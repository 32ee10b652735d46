"""The experiment planner's formula method against simulated flies with known truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from knockout import metrics, planning, simulation
from knockout.data_folder import simulated_layout
from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.training import TrainSettings

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


def simulated_pilots(activation: str, seeds=(0, 1), n_per_set=80, n_silenced=None):
    settings = FlySettings(n_inputs=D, n_hidden=UNITS, noise_sd=0.05, activation=activation)
    layout = simulated_layout(D, UNITS, 1, n_silenced)
    tables = [simulation.pilot_table(settings, n_per_set, seed, n_silenced) for seed in seeds]
    return [planning.PilotTable(table, layout) for table in tables], settings.architecture


QUICK = TrainSettings(epochs=3, min_steps=400, batch_size=32)


def test_the_simulation_plans_every_pilot_and_design_within_range_and_reproducibly():
    pilots, architecture = simulated_pilots("relu")
    plans = planning.simulation_plans(pilots, [0, 1], architecture, QUICK, [50, 200], replicates=2)
    again = planning.simulation_plans(pilots, [0, 1], architecture, QUICK, [50, 200], replicates=2)
    assert len(plans) == 2
    for planned, repeated in zip(plans, again, strict=True):
        assert list(planned.columns) == planning.PLAN_COLUMNS and len(planned) == UNITS * 2
        assert set(planned["method"]) == {planning.SIMULATION}
        values = planned[["predicted_r2", "lower", "upper", "p_identified"]].to_numpy()
        assert np.all((values >= 0) & (values <= 1)) and np.all(planned["lower"] <= planned["upper"])
        pd.testing.assert_frame_equal(planned, repeated)


def test_the_simulation_gives_reasons_for_a_narrower_model_and_unsilenced_units():
    pilots, architecture = simulated_pilots("linear", seeds=(0,), n_silenced=3)
    narrower = dataclasses.replace(architecture, n_hidden=UNITS - 2)
    (planned,) = planning.simulation_plans(pilots, [0], narrower, QUICK, [100], replicates=2)
    reasons = planned.set_index("unit")["reason"]
    assert list(reasons) == ["", "", planning.NARROWER_MODEL, planning.NARROWER_MODEL]
    assert planned.set_index("unit").loc[["unit_00", "unit_01"], "predicted_r2"].notna().all()


def test_the_simulation_recovers_a_well_determined_linear_fly():
    """A large, quiet pilot and a large design: ko recovers every unit of its stand-in."""
    pilots, architecture = simulated_pilots("linear", seeds=(4,), n_per_set=400)
    (planned,) = planning.simulation_plans(
        pilots, [4], architecture, TrainSettings(epochs=20, min_steps=3000), [2000], replicates=2
    )
    assert planned["predicted_r2"].min() > 0.95


def test_auto_picks_the_formula_where_it_applies_and_refuses_it_elsewhere():
    linear = FlySettings(n_inputs=D, n_hidden=UNITS).architecture
    relu = FlySettings(n_inputs=D, n_hidden=UNITS, activation="relu").architecture
    deeper = dataclasses.replace(linear, decoder=(8,))
    assert planning.method_for("auto", linear) == planning.FORMULA
    assert planning.method_for("auto", relu) == planning.method_for("auto", deeper) == planning.SIMULATION
    with pytest.raises(ValueError, match="linear networks, not relu"):
        planning.method_for("formula", relu)
    with pytest.raises(ValueError, match="unknown"):
        planning.method_for("guess", linear)


def test_the_formula_s_probability_is_calibrated_on_repeated_pilots():
    """Across pilots of one fly, p_identified matches how often the formula's own draw of
    one experiment at n reaches the target, on average (no bias from the pilot)."""
    fly, _, _, _ = simulate(FlySettings(n_inputs=D, n_hidden=UNITS, noise_sd=NOISE), DataSettings(2, 2, 2), 7)
    _, truth = pilot_of(30, seed=7)
    n, target = 60, 0.7
    true_r2 = planning.predicted_r2(truth, NOISE**2, D, n)
    probabilities = []
    for seed in range(40):
        pilot = planning.Pilot.from_table(
            simulation.behavior_table(
                fly,
                300,
                FlySettings(n_inputs=D, n_hidden=UNITS, noise_sd=NOISE),
                torch.Generator().manual_seed(100 + seed),
            ),
            simulated_layout(D, UNITS, 1, None),
        )
        planned = planning.formula_plan(pilot, [n], list("abcd"), target_r2=target, resamples=200, seed=seed)
        probabilities.append(planned["p_identified"].to_numpy())
    mean_p = np.mean(probabilities, axis=0)
    clear = np.abs(true_r2 - target) > 0.1  # units far from the target: p near 0 or 1
    assert np.all(np.round(mean_p[clear]) == (true_r2[clear] >= target))


def test_the_training_check_finds_training_that_stops_short_and_the_plan_takes_it_off():
    """One epoch of few steps cannot reach the optimum; a long training nearly does. The
    shortfall is taken off the formula's numbers and recorded beside them."""
    (pilot,), architecture = simulated_pilots("linear", seeds=(3,), n_per_set=200)
    formula_pilot = planning.Pilot.from_table(pilot.table, pilot.layout)
    contribution2, noise_var = planning.FormulaDraws.of(formula_pilot, 200, seed=3).typical()
    assert np.all(contribution2 >= 0) and noise_var > 0

    def shortfall(settings):
        (per_design,) = planning.training_shortfalls(
            [pilot], [3], [contribution2], [noise_var], architecture, settings, [300]
        )
        return per_design[300]

    short, long = shortfall(TrainSettings(epochs=1, min_steps=0, lr=1e-3)), shortfall(TrainSettings())
    assert np.all(short >= 0) and np.all(long >= 0) and len(short) == UNITS
    assert short.max() > 0.05 > long.max()
    units = list(pilot.layout.units)
    plain = planning.formula_plan(formula_pilot, [300], units, resamples=100, seed=3)
    checked = planning.formula_plan(
        formula_pilot, [300], units, resamples=100, seed=3, shortfalls={300: short}
    )
    assert plain["training_shortfall"].isna().all()
    np.testing.assert_allclose(checked["training_shortfall"], short)
    assert np.all(checked["predicted_r2"] <= plain["predicted_r2"] + 1e-12)
    assert (checked["predicted_r2"] < plain["predicted_r2"] - 0.01).any()


def test_plan_pilots_runs_the_formula_with_its_check_or_the_simulation():
    pilots, architecture = simulated_pilots("linear", seeds=(0, 1))
    checked = planning.plan_pilots(pilots, [0, 1], architecture, QUICK, [100], resamples=50)
    unchecked = planning.plan_pilots(
        pilots, [0, 1], architecture, None, [100], resamples=50, check_training=False
    )
    assert [set(t["method"]) for t in checked] == [{planning.FORMULA}] * 2
    assert all(t["training_shortfall"].notna().all() for t in checked)
    assert all(t["training_shortfall"].isna().all() for t in unchecked)
    relu_pilots, relu = simulated_pilots("relu", seeds=(0,))
    (simulated,) = planning.plan_pilots(relu_pilots, [0], relu, QUICK, [100], simulation_seeds=2)
    assert set(simulated["method"]) == {planning.SIMULATION}
