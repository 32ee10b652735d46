"""Convergence checks: the late fall of the loss, ko's gap to the exact optimum, the table."""

from __future__ import annotations

import math

import pandas as pd

from knockout.convergence import (
    Tolerances,
    convergence_table,
    late_improvement,
    unconverged_warnings,
)

TOLERANCES = Tolerances(late_improvement=0.1, optimum_gap=0.01)


def test_late_improvement_is_the_fall_over_the_last_tenth_relative_to_the_final_loss():
    losses = [1.0] * 15 + [0.6, 0.5, 0.4, 0.3, 0.2]  # 20 epochs: the last tenth is 2 epochs
    assert math.isclose(late_improvement(losses), (0.4 - 0.2) / 0.2)
    assert late_improvement([2.0, 1.0]) == 1.0  # at least one epoch back
    assert late_improvement([1.0]) == math.inf  # one epoch tells nothing
    assert late_improvement([1.0, 0.0]) == 0.0  # a perfect fit has nothing left to gain


def test_the_table_judges_ko_by_its_gap_where_there_is_one_and_the_others_by_their_late_fall():
    rows = []
    curves = {
        ("0", "ko"): [1.0] * 10,
        ("0", "do"): [1.0] * 9 + [0.5],
        ("1", "ko"): [1.0] * 10,
        ("2", "ko"): [1.0] * 9 + [0.5],  # still falling, but within the gap's tolerance: converged
        ("3", "ko"): [1.0] * 9 + [0.5],  # no optimum for this seed: the late fall decides
    }
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
    optimum = pd.DataFrame(
        {"seed": [0, 1, 2], "knockout_mse_optimum": [1.0, 1.0, 1.0], "gap": [0.005, 0.05, 0.002]}
    )
    table = convergence_table(losses, TOLERANCES, optimum).set_index(["seed", "model"])
    assert table.loc[(0, "ko"), "converged"] == 1 and math.isclose(
        table.loc[(0, "ko"), "relative_gap"], 0.005
    )
    assert table.loc[(0, "do"), "converged"] == 0 and math.isnan(table.loc[(0, "do"), "relative_gap"])
    assert table.loc[(1, "ko"), "converged"] == 0  # flat, but 5 % above the optimum
    assert table.loc[(2, "ko"), "converged"] == 1 and table.loc[(2, "ko"), "late_improvement"] == 1.0
    assert table.loc[(3, "ko"), "converged"] == 0
    warnings = unconverged_warnings(table.reset_index(), TOLERANCES)
    assert len(warnings) == 3
    assert any("seed 1, model 'ko'" in w and "5.0% above the exact optimum" in w for w in warnings)
    assert any("seed 0, model 'do'" in w and "fell by 100.0%" in w for w in warnings)
