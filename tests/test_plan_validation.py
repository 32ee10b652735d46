"""The experiment planner's formula against actual knockout runs (a reduced
bench/plan_validation.py): for the default linear fly (50 inputs, 16 units), from the
workflow's pilot of 200 rows per set, the predicted neural R² at designs spanning
d/n = 0.02 .. 0.5 against the R² ko reaches when trained on that design, as the
workflow trains and scores it. Seeds 100 and 101 are used for nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from knockout import metrics, planning
from knockout.behavior_data import BehaviorData
from knockout.data_folder import simulated_layout
from knockout.simulation import DataSettings, FlySettings, pilot_table, simulate
from knockout.training import Fit, TrainSettings, train_fits

SEEDS, DESIGNS, PILOT, TARGET = (100, 101), (100, 300, 1000, 2500), 200, 0.9
D, UNITS = 50, 16


def actual_r2(fly_settings: FlySettings) -> pd.DataFrame:
    """Per seed, design and unit the R² of ko unit i against fly unit i on 2000 probe
    inputs, every run trained in one call."""
    layout = simulated_layout(D, UNITS, 1, None)
    runs, fits = [], []
    for seed in SEEDS:
        for n in DESIGNS:
            fly, train, _, neurons = simulate(fly_settings, DataSettings(n, 2, 2000), seed)
            runs.append(
                (seed, n, fly, torch.from_numpy(neurons[list(layout.inputs)].to_numpy(np.float32, copy=True)))
            )
            fits.append(Fit("ko", BehaviorData.from_table(train, layout), TrainSettings(), seed))
    results = train_fits(fits, fly_settings.architecture)
    tables = []
    for (seed, n, fly, probe), result in zip(runs, results, strict=True):
        with torch.no_grad():
            truth, found = (
                fly.activity(probe).double().numpy(),
                result.network.activity(probe).double().numpy(),
            )
        r2 = np.diagonal(metrics.squared_correlations(truth, found))
        tables.append(pd.DataFrame({"seed": seed, "unit": layout.units, "n_per_set": n, "actual": r2}))
    return pd.concat(tables, ignore_index=True)


BOUNDS = {0.05: (0.05, 0.9), 0.2: (0.08, 0.85)}
"""Per σ, the largest MAE and the least accuracy at the target allowed. σ 0.05: the issue's
targets. σ 0.2: a 200-row pilot does not meet them (bench: MAE 0.062, accuracy 0.916 over
5 seeds; the formula with the true contributions has MAE 0.030): the pilot's estimates of
weak units and training falling short of the optimum at large n (docs/results.md,
"Planning an experiment"); the bounds hold what is measured there, so that the planner
does not get worse unnoticed."""


@pytest.mark.slow
@pytest.mark.parametrize("noise_sd", list(BOUNDS))
def test_the_formula_predicts_what_ko_runs_reach(noise_sd):
    fly_settings = FlySettings(n_inputs=D, n_hidden=UNITS, noise_sd=noise_sd)
    layout = simulated_layout(D, UNITS, 1, None)
    planned = pd.concat(
        [
            planning.formula_plan(
                planning.Pilot.from_table(pilot_table(fly_settings, PILOT, seed), layout),
                DESIGNS,
                layout.units,
                TARGET,
                seed=seed,
            ).assign(seed=seed)
            for seed in SEEDS
        ]
    )
    both = planned.merge(actual_r2(fly_settings), on=["seed", "unit", "n_per_set"], validate="one_to_one")
    assert len(both) == len(SEEDS) * len(DESIGNS) * UNITS
    mae = (both["predicted_r2"] - both["actual"]).abs().mean()
    accuracy = ((both["predicted_r2"] >= TARGET) == (both["actual"] >= TARGET)).mean()
    by_design = both.groupby("n_per_set")[["predicted_r2", "actual"]].mean().round(3).to_dict("index")
    most_mae, least_accuracy = BOUNDS[noise_sd]
    assert mae <= most_mae, (
        f"σ {noise_sd}: MAE {mae:.3f} > {most_mae}; mean predicted/actual by design {by_design}"
    )
    assert accuracy >= least_accuracy, (
        f"σ {noise_sd}: accuracy at R² {TARGET} {accuracy:.3f} < {least_accuracy}"
    )
