"""Replicate summaries: per-seed statistics, t-intervals over seeds, ko - do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from knockout import naming
from knockout.summary import (
    SEED_MEASURES,
    across_seeds,
    differences,
    mean_and_interval,
    replicate_summaries,
    seed_statistics,
    sweep_statistics,
)


def test_interval_is_the_t_interval_over_seeds():
    values = [0.90, 0.95, 0.97, 0.99]
    mean, low, high, n = mean_and_interval(values)
    # t(0.975, 3 df) = 3.182446; sample std (ddof 1) = 0.0386221, / sqrt(4)
    half = 3.182446305 * np.std(values, ddof=1) / 2
    assert (mean, n) == (pytest.approx(0.9525), 4)
    assert (low, high) == (pytest.approx(0.9525 - half, rel=1e-9), pytest.approx(0.9525 + half, rel=1e-9))


def test_one_seed_has_no_interval():
    mean, low, high, n = mean_and_interval([0.5])
    assert (mean, n) == (0.5, 1) and np.isnan(low) and np.isnan(high)


def test_across_seeds_gives_one_row_per_group_and_measure():
    per_seed = pd.DataFrame(
        {"seed": [0, 1, 2, 0, 1, 2], "model": ["ko"] * 3 + ["do"] * 3, "a": [1.0, 2, 3, 4, 5, 6], "b": 0.0}
    )
    table = across_seeds(per_seed, ["model"], ["a", "b"]).set_index(["model", "measure"])
    assert len(table) == 4
    assert table.loc[("do", "a"), "mean"] == 5.0 and table.loc[("ko", "a"), "n_seeds"] == 3
    assert table.loc[("ko", "b"), "ci_low"] == table.loc[("ko", "b"), "ci_high"] == 0.0


def evaluation_tables(seeds=(0, 1, 2), models=("ko", "do")):
    """Per-seed behaviour and neural tables where ko scores 0.9 + seed/100 everywhere, do 0.2."""
    behavior, neural = [], []
    for seed in seeds:
        for model in models:
            r2 = 0.9 + seed / 100 if model == "ko" else 0.2
            for unit in (-1, 0, 1):
                behavior.append(
                    (
                        seed,
                        model,
                        "control" if unit < 0 else f"unit_{unit:02d}",
                        "" if unit < 0 else f"unit_{unit:02d}",
                        "y",
                        r2 - 0.1 * (unit < 0),
                        1.0,
                    )
                )
            for unit, scale in enumerate([1.0, 0.5, 0.0]):
                name = f"unit_{unit:02d}"
                neural.append((seed, model, unit, name, 1, 1, r2 * scale, r2, r2, 0.99, r2, 0.1, 0.1, 0.1))
    behavior = pd.DataFrame(behavior, columns=["seed", *naming.BEHAVIOR_SCORE_COLUMNS])
    neural = pd.DataFrame(neural, columns=["seed", *naming.NEURAL_SCORE_COLUMNS])
    return behavior, neural


def test_seed_statistics_summarise_units_and_sets_within_a_seed():
    behavior, neural = evaluation_tables()
    stats = seed_statistics(behavior, neural).set_index(["seed", "model"])
    assert set(SEED_MEASURES) <= set(stats.columns)
    assert stats.loc[(2, "ko"), "r2_median"] == pytest.approx(0.92 * 0.5)
    assert stats.loc[(2, "ko"), "r2_mean"] == pytest.approx(0.92 * 1.5 / 3)
    assert stats.loc[(1, "do"), "behavior_r2_silenced"] == pytest.approx(0.2)
    assert stats.loc[(1, "do"), "behavior_r2_control"] == pytest.approx(0.1)


def test_ko_minus_do_is_taken_per_seed():
    behavior, neural = evaluation_tables()
    difference = differences(seed_statistics(behavior, neural), "ko", "do").set_index("seed")
    np.testing.assert_allclose(difference["behavior_r2_silenced"], [0.7, 0.71, 0.72])


def test_replicate_summaries_add_the_optimisation_gap_to_ko():
    behavior, neural = evaluation_tables()
    optimum = pd.DataFrame(
        {
            "seed": [0, 1, 2],
            "knockout_mse_ko": [1.0, 1.1, 1.2],
            "knockout_mse_optimum": 1.0,
            "gap": [0.0, 0.1, 0.2],
        }
    )
    summaries = replicate_summaries(behavior, neural, optimum)
    assert set(summaries) == {"behavior", "neural_units", "models"}
    models = summaries["models"].set_index(["model", "measure"])
    assert models.loc[("ko", "gap"), "mean"] == pytest.approx(0.1)
    assert ("do", "gap") not in models.index
    assert models.loc[("ko", "r2_decoded_median"), "n_seeds"] == 3
    units = summaries["neural_units"].set_index(["model", "unit", "measure"])
    assert units.loc[("ko", 0, "r2"), "mean"] == pytest.approx(0.91)


def test_sweep_statistics_give_ko_do_and_their_difference_per_value():
    points = []
    for value in ("0.1", "1"):
        behavior, neural = evaluation_tables()
        if value == "1":
            is_ko = neural["model"] == "ko"  # ko's units no better than do's
            neural.loc[is_ko, "r2"] = neural.loc[~is_ko, "r2"].to_numpy()
        points.append(seed_statistics(behavior, neural).assign(value=value))
    table = sweep_statistics(pd.concat(points)).set_index(["value", "model", "measure"])
    assert table.loc[("1", "ko - do", "r2_mean"), "mean"] == pytest.approx(0.0)
    assert table.loc[("0.1", "ko - do", "r2_mean"), "mean"] > 0.2
    assert table.loc[("0.1", "do", "r2_mean"), "n_seeds"] == 3
