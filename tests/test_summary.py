"""Replicate summaries: per-seed statistics, bootstrap intervals over seeds, ko - do, chance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from knockout import naming, summary, tables
from knockout.summary import (
    CHANCE_COLUMNS,
    SUMMARY_COLUMNS,
    across_seeds,
    chance_levels,
    differences,
    mean_and_interval,
    ranked_units,
    read_summary,
    replicate_summaries,
    seed_statistics,
    sweep_statistics,
)


def test_the_interval_is_the_percentile_bootstrap_of_the_mean_over_seeds():
    values = np.array([0.90, 0.95, 0.97, 0.99])
    mean, low, high, n = mean_and_interval(values)
    draws = np.random.default_rng(0).integers(0, 4, (10_000, 4))
    expected = np.quantile(values[draws].mean(axis=1), [0.025, 0.975])
    assert (mean, n) == (pytest.approx(0.9525), 4)
    np.testing.assert_allclose([low, high], expected)
    assert mean_and_interval(values) == (mean, low, high, n)  # fixed resampling: same numbers


def test_groups_resampled_together_get_the_numbers_each_gets_alone(monkeypatch):
    """Summaries bootstrap every group of one size in one computation, in chunks."""
    monkeypatch.setattr(summary, "BOOTSTRAP_CHUNK", 3 * 10_000 * 2)  # 3 groups of 2 at a time
    rng = np.random.default_rng(1)
    groups = [rng.normal(size=n) for n in (2, 3, 2, 2, 5, 2, 2, 3, 2)] + [
        [np.nan, 0.5],
        [],
        [0.1, np.nan, 0.3],
    ]
    for values, (mean, low, high, n) in zip(groups, summary.means_and_intervals(groups), strict=True):
        values = np.asarray(values, np.float64)
        values = values[~np.isnan(values)]
        assert n == len(values)
        if n < 2:
            assert np.isnan([low, high]).all() and (n == 0 or mean == values.mean())
            continue
        draws = np.random.default_rng(0).integers(0, n, (10_000, n))
        expected = np.quantile(values[draws].mean(axis=1), [0.025, 0.975])
        assert (mean, low, high) == (values.mean(), *expected)  # exactly


@pytest.mark.parametrize(
    "values",
    [[0.955, 1.0, 1.0, 0.99, 0.99], [0.0, 0.0, 0.01, 0.3], [1.0, -80.0, 0.9], [0.4, 0.6]],
)
def test_every_interval_lies_within_the_values_range(values):
    """A t-interval gave 0.987 [0.955, 1.018]: an R² above 1; this one cannot leave [min, max]."""
    mean, low, high, _ = mean_and_interval(values)
    assert min(values) <= low <= mean <= high <= max(values)


def test_one_seed_has_no_interval_and_an_undefined_value_is_left_out():
    mean, low, high, n = mean_and_interval([0.5])
    assert (mean, n) == (0.5, 1) and np.isnan(low) and np.isnan(high)
    assert mean_and_interval([0.5, np.nan])[::3] == (0.5, 1)
    mean, low, high, n = mean_and_interval([np.nan])
    assert n == 0 and np.isnan([mean, low, high]).all()


def test_across_seeds_gives_one_row_per_group_and_measure():
    per_seed = pd.DataFrame(
        {"seed": [0, 1, 2, 0, 1, 2], "model": ["ko"] * 3 + ["do"] * 3, "a": [1.0, 2, 3, 4, 5, 6], "b": 0.0}
    )
    table = across_seeds(per_seed, ["model"], ["a", "b"]).set_index(["model", "measure"])
    assert len(table) == 4
    assert table.loc[("do", "a"), "mean"] == 5.0 and table.loc[("ko", "a"), "n_seeds"] == 3
    assert table.loc[("ko", "b"), "ci_low"] == table.loc[("ko", "b"), "ci_high"] == 0.0
    assert table.loc[("ko", "a"), "ci_low"] >= 1.0 and table.loc[("ko", "a"), "ci_high"] <= 3.0


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
                        "zero",
                        "continuous",
                        r2 - 0.1 * (unit < 0),
                        np.nan,
                        np.nan,
                        1.0,
                        "",
                    )
                )
            for unit, scale in enumerate([1.0, 0.5, 0.0]):
                name = f"unit_{unit:02d}"
                neural.append(
                    (seed, model, unit, name, 1, 1, r2 * scale, r2, r2, 0.99, 0.01, r2, 0.1, 0.1, 0.1, "")
                )
    behavior = pd.DataFrame(behavior, columns=["seed", *naming.BEHAVIOR_SCORE_COLUMNS])
    neural = pd.DataFrame(neural, columns=["seed", *naming.NEURAL_SCORE_COLUMNS])
    return behavior, neural


def scores(per_seed: pd.DataFrame) -> pd.Series:
    return per_seed.set_index(["seed", "model", "output", "measure"])["score"]


def test_seed_statistics_summarise_units_and_sets_within_a_seed():
    behavior, neural = evaluation_tables()
    stats = scores(seed_statistics(behavior, neural))
    assert stats[2, "ko", "", "r2_median"] == pytest.approx(0.92 * 0.5)
    assert stats[2, "ko", "", "r2_mean"] == pytest.approx(0.92 * 1.5 / 3)
    assert stats[1, "do", "y", "behavior_r2_silenced"] == pytest.approx(0.2)
    assert stats[1, "do", "y", "behavior_r2_control"] == pytest.approx(0.1)


def test_each_median_has_its_minimum_and_the_units_identified_beside_it():
    """ko's units score 0.92, 0.46 and 0 in seed 2: the median 0.46 hides a unit at 0."""
    behavior, neural = evaluation_tables()
    stats = scores(seed_statistics(behavior, neural))
    assert stats[2, "ko", "", "r2_min"] == 0.0
    assert stats[2, "ko", "", "r2_identified"] == 1  # R² >= 0.9: the first unit only
    assert stats[0, "ko", "", "r2_identified"] == 1  # 0.9 itself counts
    assert stats[2, "ko", "", "r2_units"] == 3
    assert stats[2, "do", "", "r2_matched_identified"] == 0


def test_an_undefined_r2_is_left_out_of_the_statistics_and_counted_out_of_the_units():
    behavior, neural = evaluation_tables()
    neural.loc[neural["unit"] == 2, ["r2", "r2_matched", "r2_decoded"]] = np.nan
    behavior.loc[behavior["set"] == "unit_01", "r2"] = np.nan
    stats = scores(seed_statistics(behavior, neural))
    assert stats[2, "ko", "", "r2_min"] == pytest.approx(0.46)
    assert stats[2, "ko", "", "r2_units"] == 2
    assert stats[1, "do", "y", "behavior_r2_silenced"] == pytest.approx(0.2)


def test_behaviour_is_summarised_per_output_never_averaged_over_outputs():
    behavior, neural = evaluation_tables()
    second = behavior.assign(output="y_01", r2=-80.0)
    stats = scores(seed_statistics(pd.concat([behavior, second]), neural))
    assert stats[0, "ko", "y", "behavior_r2_silenced"] == pytest.approx(0.9)
    assert stats[0, "ko", "y_01", "behavior_r2_silenced"] == -80.0


def test_ko_minus_do_is_taken_per_seed():
    behavior, neural = evaluation_tables()
    difference = differences(seed_statistics(behavior, neural), "ko", "do")
    silenced = difference[difference["measure"] == "behavior_r2_silenced"].set_index("seed")
    np.testing.assert_allclose(silenced["score"], [0.7, 0.71, 0.72])
    assert set(difference["model"]) == {"ko - do"}


def chance_table(seeds=(0, 1), draws=4):
    """Untrained networks whose 3 units score draw/10 (same-index) each; matched 0.2 + draw/10."""
    rows = []
    for seed in seeds:
        for draw in range(draws):
            for unit in range(3):
                rows.append((seed, "untrained", "untrained", draw, unit, f"unit_{unit:02d}", "r2", draw / 10))
                rows.append(
                    (
                        seed,
                        "untrained",
                        "untrained",
                        draw,
                        unit,
                        f"unit_{unit:02d}",
                        "r2_matched",
                        0.2 + draw / 10,
                    )
                )
                rows.append(
                    (seed, "permuted_stimuli", "ko", draw, unit, f"unit_{unit:02d}", "r2_matched", 0.01)
                )
    return pd.DataFrame(rows, columns=["seed", *naming.CHANCE_COLUMNS])


def test_chance_levels_are_the_mean_and_95th_percentile_of_each_statistic_over_draws():
    levels = chance_levels(chance_table()).set_index(["null", "model", "measure"])
    # per draw the median over units is draw / 10: draws 0, 0.1, 0.2, 0.3 in each of 2 seeds
    assert levels.loc[("untrained", "untrained", "r2_median"), "mean"] == pytest.approx(0.15)
    assert levels.loc[("untrained", "untrained", "r2_median"), "p95"] == pytest.approx(
        np.quantile([0, 0.1, 0.2, 0.3] * 2, 0.95)
    )
    assert levels.loc[("untrained", "untrained", "r2"), "mean"] == pytest.approx(0.15)  # per unit, pooled
    assert levels.loc[("permuted_stimuli", "ko", "r2_matched_median"), "p95"] == pytest.approx(0.01)


def test_the_models_table_carries_the_chance_levels_beside_each_neural_statistic():
    behavior, neural = evaluation_tables()
    models = replicate_summaries(behavior, neural, None, chance_table())["models"]
    assert set(CHANCE_COLUMNS) <= set(models.columns)
    models = models.set_index(["model", "output", "measure"])
    assert models.loc[("do", "", "r2_matched_median"), "chance_mean"] == pytest.approx(0.35)
    assert models.loc[("ko", "", "r2_matched_median"), "permuted_p95"] == pytest.approx(0.01)
    assert np.isnan(models.loc[("do", "", "r2_matched_median"), "permuted_p95"])  # do was not permuted
    assert np.isnan(models.loc[("ko", "y", "behavior_r2_silenced"), "chance_p95"])
    without = replicate_summaries(behavior, neural, None)["models"]  # nothing recorded: no chance
    assert without[CHANCE_COLUMNS].isna().all().all()


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
    assert list(summaries) == list(SUMMARY_COLUMNS)
    for name, table in summaries.items():  # the columns the figures read back
        assert list(table.columns) == SUMMARY_COLUMNS[name], name
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
    table = sweep_statistics(pd.concat(points)).set_index(["value", "model", "output", "measure"])
    assert table.loc[("1", "ko - do", "", "r2_mean"), "mean"] == pytest.approx(0.0)
    assert table.loc[("0.1", "ko - do", "", "r2_mean"), "mean"] > 0.2
    assert table.loc[("0.1", "do", "", "r2_mean"), "n_seeds"] == 3
    assert table.loc[("0.1", "ko - do", "y", "behavior_r2_silenced"), "mean"] == pytest.approx(0.71)


def test_units_are_summarised_per_rank_of_contribution_within_their_seed():
    """Unit i of one seed's fly is not unit i of another's: the unit of each rank is."""
    behavior, neural = evaluation_tables(seeds=(0, 1))
    # seed 0: unit 2 contributes most, then 0, then 1; seed 1: unit 0, then 1, then 2
    contributions = {(0, 0): 0.5, (0, 1): 0.1, (0, 2): 0.9, (1, 0): 0.9, (1, 1): 0.5, (1, 2): 0.1}
    neural["contribution"] = [contributions[key] for key in zip(neural["seed"], neural["unit"], strict=True)]
    behavior["r2"] = behavior["silenced_units"].map({"": 0.5, "unit_00": 0.0, "unit_01": 0.1})
    ranked = ranked_units(behavior, neural).set_index(["model", "rank", "output", "measure"])
    ko = neural[neural["model"] == "ko"].set_index(["seed", "unit"])["r2"]
    assert ranked.loc[("ko", 1, "", "r2"), "mean"] == pytest.approx((ko[0, 2] + ko[1, 0]) / 2)
    assert ranked.loc[("ko", 3, "", "r2"), "mean"] == pytest.approx((ko[0, 1] + ko[1, 2]) / 2)
    assert ranked.loc[("ko", 1, "", "contribution"), "ci_low"] == pytest.approx(0.9)
    # behaviour on the set that silenced the unit of each rank (of the seeds that silenced
    # it: seed 0 has no set for its first, unit 2); rank 0 is the control set
    assert ranked.loc[("do", 2, "y", "behavior_r2"), "mean"] == pytest.approx((0.0 + 0.1) / 2)
    assert ranked.loc[("do", 1, "y", "behavior_r2"), ["mean", "n_seeds"]].tolist() == [0.0, 1]
    assert ranked.loc[("do", 0, "y", "behavior_r2"), "mean"] == pytest.approx(0.5)
    assert ranked.loc[("do", 0, "y", "noise_ceiling"), "n_seeds"] == 2
    recorded = neural.assign(contribution=np.nan)  # no ground truth: nothing to rank
    empty = ranked_units(behavior, recorded)
    assert empty.empty and list(empty.columns) == SUMMARY_COLUMNS["ranked"]


def test_the_unit_tables_carry_each_measure_s_chance_level_and_read_back(tmp_path):
    behavior, neural = evaluation_tables()
    summaries = replicate_summaries(behavior, neural, None, chance_table())
    levels = chance_levels(chance_table()).set_index(["null", "measure"])
    for name in ("neural_units", "ranked"):
        rows = summaries[name][summaries[name]["measure"] == "r2"]
        np.testing.assert_allclose(rows["chance_p95"], levels.loc[("untrained", "r2"), "p95"])
        assert summaries[name].loc[summaries[name]["measure"] == "contribution", "chance_p95"].isna().all()
    for name, table in summaries.items():
        tables.write_table(table, tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(read_summary(tmp_path / f"{name}.parquet", name), table)
