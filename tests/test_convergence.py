"""Convergence checks: the late fall of the loss, ko's gap to the exact optimum, the table."""

from __future__ import annotations

import math

import pandas as pd

from knockout.convergence import (
    Tolerances,
    convergence_table,
    gap_warning,
    late_improvement,
    training_warning,
    unconverged_warnings,
)

TOLERANCES = Tolerances(late_improvement=0.1, optimum_gap=0.01)


def test_late_improvement_is_the_fall_over_the_last_tenth_relative_to_the_final_loss():
    losses = [1.0] * 15 + [0.6, 0.5, 0.4, 0.3, 0.2]  # 20 epochs: the last tenth is 2 epochs
    assert math.isclose(late_improvement(losses), (0.4 - 0.2) / 0.2)
    assert late_improvement([2.0, 1.0]) == 1.0  # at least one epoch back
    assert late_improvement([1.0]) == math.inf  # one epoch tells nothing
    assert late_improvement([1.0, 0.0]) == 0.0  # a perfect fit has nothing left to gain


def test_a_run_still_falling_is_warned_about_and_a_flat_one_is_not():
    falling = [1.0 / epoch for epoch in range(1, 11)]
    warning = training_warning("ko", 3, falling, TOLERANCES)
    assert "model 'ko', seed 3" in warning and "not converged" in warning
    assert "train.convergence.late_improvement" in warning and "11.1%" in warning
    assert training_warning("ko", 3, [1.0] * 9 + [0.95], TOLERANCES) is None


def test_a_gap_to_the_optimum_above_its_tolerance_is_warned_about():
    assert gap_warning(0, gap=0.00002, optimum_mse=0.0025, tolerances=TOLERANCES) is None
    warning = gap_warning(1, gap=0.0001, optimum_mse=0.0025, tolerances=TOLERANCES)
    assert "seed 1" in warning and "4.0%" in warning and "train.convergence.optimum_gap" in warning


def test_the_table_flags_each_check_with_its_own_tolerance():
    rows = []
    curves = {("0", "ko"): [1.0] * 10, ("0", "do"): [1.0] * 9 + [0.5], ("1", "ko"): [1.0] * 10}
    for (seed, model), curve in curves.items():
        for epoch, loss in enumerate(curve, start=1):
            rows.append(
                {
                    "epoch": epoch,
                    "restart": 0,
                    "train_mse": loss,
                    "chosen": 1,
                    "seed": int(seed),
                    "model": model,
                }
            )
    losses = pd.DataFrame(rows)
    optimum = pd.DataFrame({"seed": [0, 1], "knockout_mse_optimum": [1.0, 1.0], "gap": [0.005, 0.05]})
    table = convergence_table(losses, TOLERANCES, optimum).set_index(["seed", "model"])
    assert table.loc[(0, "ko"), "converged"] == 1 and math.isclose(
        table.loc[(0, "ko"), "relative_gap"], 0.005
    )
    assert table.loc[(0, "do"), "converged"] == 0 and math.isnan(table.loc[(0, "do"), "relative_gap"])
    assert table.loc[(1, "ko"), "converged"] == 0  # flat, but 5 % above the optimum
    warnings = unconverged_warnings(table.reset_index(), TOLERANCES)
    assert len(warnings) == 2 and any("seed 1, model 'ko'" in w and "5.0%" in w for w in warnings)
