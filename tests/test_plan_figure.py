"""The experiment planner's figure and caption, from small hand-made plan tables.

A plan table has one row per (seed, unit, design); each seed is its own fly (a recorded
pilot's seed is <NA>), so the figure draws one panel per seed and never pools them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from workflow_helpers import REPO

from knockout import planning
from knockout.plotting import PlotSettings, plain_text, plan_caption_values, plan_figure
from knockout_workflow.captions import write_caption

SETTINGS = PlotSettings(dpi=30, width=9.0)
TARGET, PROBABILITY = 0.9, 0.8
COLUMNS = ["seed", *(column for column in planning.PLAN_COLUMNS if column != "training_shortfall")]
"""The hand-made tables' columns; their training_shortfall (the formula's check) is NaN."""
TEMPLATE = (REPO / "workflow" / "report" / "plan.rst").read_text(encoding="utf-8")


def planned_table(seeds, n_units=3, designs=(100, 400), reasons=None, names=None) -> pd.DataFrame:
    """Per seed, unit and design a prediction that differs by seed (so that a pooled or
    misplaced cell shows), rising with n; ``reasons``: unit index -> reason."""
    rows = []
    for number, seed in enumerate(seeds):
        for n in designs:
            for unit in range(n_units):
                name = names[unit] if names else f"unit_{unit:02d}"
                reason = (reasons or {}).get(unit, "")
                if reason:
                    rows.append((seed, name, n, np.nan, np.nan, np.nan, np.nan, "formula", reason))
                    continue
                r2 = min(0.99, 0.3 + 0.2 * unit + 0.03 * number + 0.0005 * n)
                p = float(np.clip((r2 - TARGET) * 10 + 0.5, 0.0, 1.0))
                rows.append((seed, name, n, r2, r2 - 0.05, min(r2 + 0.05, 1.0), p, "formula", ""))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"seed": "Int64"}).assign(training_shortfall=np.nan)


def smallest_table(planned: pd.DataFrame, probability: float = PROBABILITY) -> pd.DataFrame:
    """``planning.smallest_designs`` per seed, as the workflow writes min_n.parquet."""
    parts = []
    for seed, rows in planned.groupby("seed", dropna=False, sort=False):
        part = planning.smallest_designs(rows.drop(columns="seed"), probability)
        parts.append(part.assign(seed=seed)[["seed", "unit", "min_n_per_set", "reason"]])
    return pd.concat(parts, ignore_index=True).astype({"seed": "Int64"})


def draw(planned: pd.DataFrame, smallest: pd.DataFrame | None = None, settings=SETTINGS) -> Figure:
    with plain_text():
        return plan_figure(
            planned, smallest_table(planned) if smallest is None else smallest, TARGET, PROBABILITY, settings
        )


def panels(fig: Figure) -> list:
    return [ax for ax in fig.axes if any(c.get_gid() == "predicted_r2" for c in ax.collections)]


def by_gid(ax, gid: str):
    return next(c for c in ax.collections if c.get_gid() == gid)


def texts(ax, gid: str) -> list[str]:
    return [text.get_text() for text in ax.texts if text.get_gid() == gid]


@pytest.mark.parametrize(
    ("seeds", "titles"),
    [([0], ["seed 0"]), ([pd.NA], ["pilot"]), ([2, 0, 1], ["seed 0", "seed 1", "seed 2"])],
)
def test_one_panel_per_seed_each_drawing_only_its_own_fly(seeds, titles):
    planned = planned_table(seeds)
    fig = draw(planned)
    drawn = panels(fig)
    assert [ax.get_title() for ax in drawn] == titles
    for ax, seed in zip(drawn, sorted(seeds, key=lambda s: -1 if pd.isna(s) else s), strict=True):
        own = planned[planned["seed"].isna()] if pd.isna(seed) else planned[planned["seed"] == seed]
        expected = own.pivot(index="unit", columns="n_per_set", values="predicted_r2").to_numpy()
        np.testing.assert_allclose(by_gid(ax, "predicted_r2").get_array().reshape(expected.shape), expected)
    assert len([ax for ax in fig.axes if ax not in drawn]) == 1  # one colourbar for every panel


def columns_of(fig: Figure) -> int:
    return len({ax.get_subplotspec().colspan.start for ax in panels(fig)})


def test_ten_seeds_make_a_grid_as_wide_as_the_settings_with_one_colourbar():
    planned = planned_table(range(10), n_units=4, designs=(25, 50, 100, 200))
    fig = draw(planned)
    assert [ax.get_title() for ax in panels(fig)] == [f"seed {seed}" for seed in range(10)]
    assert fig.get_size_inches()[0] == SETTINGS.width
    assert 1 < columns_of(fig) < 10  # a grid, not a row or a column
    assert len(fig.axes) == 10 + 1  # the panels and one colourbar; no empty grid cells left
    wider = draw(planned, settings=PlotSettings(dpi=30, width=2 * SETTINGS.width))
    assert columns_of(wider) > columns_of(fig)
    eight = draw(planned_table(range(10), n_units=5, designs=(25, 50, 100, 200, 400, 800, 1600, 3200)))
    assert len(panels(eight)) == 10
    eight.draw_without_rendering()


def test_fifty_units_by_eight_designs_draw_every_cell():
    designs = (25, 50, 100, 200, 400, 800, 1600, 3200)
    fig = draw(planned_table([0], n_units=50, designs=designs, reasons={7: planning.NOT_ALONE}))
    (ax,) = panels(fig)
    assert len(ax.get_yticklabels()) == 50 and len(texts(ax, "cell")) == 49 * 8
    fig.draw_without_rendering()


def test_rows_are_units_in_the_data_s_order_and_columns_designs_ascending():
    names = ["LC4", "DNp01", "$odd", "LPLC2"]  # neither sorted nor sorted backwards
    planned = planned_table([pd.NA], n_units=4, designs=(400, 50, 100), names=names)
    (ax,) = panels(draw(planned))
    assert [label.get_text() for label in ax.get_yticklabels()] == names
    assert [label.get_text() for label in ax.get_xticklabels()] == ["50", "100", "400"]
    expected = planned.pivot(index="unit", columns="n_per_set", values="predicted_r2").loc[names]
    np.testing.assert_allclose(by_gid(ax, "predicted_r2").get_array().reshape(4, 3), expected.to_numpy())


def test_cells_are_coloured_on_a_fixed_scale_and_say_r2_and_p():
    planned = planned_table([0], n_units=2, designs=(100,))
    planned.loc[0, ["predicted_r2", "p_identified"]] = [0.93, 0.85]
    fig = draw(planned)
    (ax,) = panels(fig)
    mesh = by_gid(ax, "predicted_r2")
    assert (mesh.norm.vmin, mesh.norm.vmax, mesh.get_cmap().name) == (0.0, 1.0, "viridis")
    assert "0.93 · p .85" in [text.replace("\n", " · ") for text in texts(ax, "cell")]


def test_cells_reaching_the_probability_are_outlined_and_each_unit_s_smallest_design_marked():
    planned = planned_table([0], n_units=3, designs=(100, 400, 1600))
    planned.loc[(planned["unit"] == "unit_02") & (planned["n_per_set"] == 400), "p_identified"] = PROBABILITY
    fig = draw(planned)
    (ax,) = panels(fig)
    p = planned.pivot(index="unit", columns="n_per_set", values="p_identified").to_numpy()
    outlined = by_gid(ax, "reaches_target")
    corners = sorted(tuple(np.round(path.vertices[0], 6)) for path in outlined.get_paths())
    assert corners == sorted(
        (col - 0.5, row - 0.5) for row, col in zip(*np.nonzero(p >= PROBABILITY), strict=True)
    )
    assert 0 < len(corners) < p.size  # the table tests both kinds of cell
    marks = by_gid(ax, "smallest_design").get_offsets()
    smallest = smallest_table(planned).dropna(subset=["min_n_per_set"])
    designs = [100, 400, 1600]
    expected = [
        (designs.index(n) - 0.5, int(unit[-2:]) - 0.5)
        for unit, n in zip(smallest["unit"], smallest["min_n_per_set"], strict=True)
    ]
    assert sorted(map(tuple, np.asarray(marks))) == sorted(expected)
    legend = fig.legends[0]
    assert f"target R² = {TARGET:g}, probability = {PROBABILITY:g}" in legend.get_title().get_text()


def test_a_unit_with_a_reason_is_grey_across_its_row_with_the_reason_in_a_few_words():
    reasons = {1: planning.NOT_ALONE, 2: planning.NEVER_SILENCED}
    planned = planned_table([0, 1], n_units=4, designs=(100, 400), reasons=reasons)
    for ax in panels(draw(planned)):
        assert sorted(texts(ax, "reason")) == sorted(planning.SHORT_REASONS[r] for r in reasons.values())
        assert len(by_gid(ax, "no_prediction").get_paths()) == 2  # one band per row
        assert len(texts(ax, "cell")) == 2 * 2  # only the two units with a prediction
        assert np.ma.getmaskarray(by_gid(ax, "predicted_r2").get_array()).reshape(4, 2)[1:3].all()


def test_a_table_whose_every_unit_has_a_reason_still_draws():
    reasons = {0: planning.NOT_ALONE, 1: planning.NEVER_SILENCED, 2: planning.NARROWER_MODEL}
    planned = planned_table([0, 1], n_units=3, designs=(100,), reasons=reasons)
    fig = draw(planned)
    assert len(panels(fig)) == 2
    for ax in panels(fig):
        assert texts(ax, "cell") == [] and len(texts(ax, "reason")) == 3
        assert len(by_gid(ax, "smallest_design").get_offsets()) == 0
    fig.draw_without_rendering()


def test_a_table_without_a_column_the_figure_needs_says_which():
    planned = planned_table([0])
    with pytest.raises(ValueError, match="p_identified"):
        plan_figure(
            planned.drop(columns="p_identified"), smallest_table(planned), TARGET, PROBABILITY, SETTINGS
        )


def hand_made() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two flies. Seed 0: a reaches the target (p >= 0.8) at 400 only, b at both (exactly
    0.8 at 100), c has a reason; seed 1: a never reaches it (p 0.79), b has another reason."""
    columns = COLUMNS
    rows = [
        (0, "a", 100, 0.50, 0.4, 0.6, 0.10, "formula", ""),
        (0, "a", 400, 0.95, 0.9, 0.97, 0.90, "formula", ""),
        (0, "b", 100, 0.92, 0.9, 0.95, 0.80, "formula", ""),
        (0, "b", 400, 0.97, 0.95, 0.99, 0.99, "formula", ""),
        (0, "c", 100, np.nan, np.nan, np.nan, np.nan, "formula", planning.NOT_ALONE),
        (0, "c", 400, np.nan, np.nan, np.nan, np.nan, "formula", planning.NOT_ALONE),
        (1, "a", 100, 0.30, 0.2, 0.4, 0.00, "formula", ""),
        (1, "a", 400, 0.88, 0.8, 0.93, 0.79, "formula", ""),
        (1, "b", 100, np.nan, np.nan, np.nan, np.nan, "formula", planning.NEVER_SILENCED),
        (1, "b", 400, np.nan, np.nan, np.nan, np.nan, "formula", planning.NEVER_SILENCED),
    ]
    planned = pd.DataFrame(rows, columns=columns).astype({"seed": "Int64"}).assign(training_shortfall=np.nan)
    return planned, smallest_table(planned)


def test_the_caption_values_count_units_per_design_over_every_seed_and_each_reason():
    planned, smallest = hand_made()
    values = plan_caption_values(planned, smallest, TARGET, PROBABILITY)
    assert values == {
        "methods": ["formula"],
        "pilot": False,
        "seeds": [0, 1],
        "n_seeds": 2,
        "designs": [100, 400],
        "target_r2": TARGET,
        "probability": PROBABILITY,
        "interval": planning.INTERVAL,
        "units": 5,
        "reaching": {100: 1, 400: 2},
        "unreached": 1,
        "reasons": [
            {"reason": planning.NOT_ALONE, "short": planning.SHORT_REASONS[planning.NOT_ALONE], "units": 1},
            {
                "reason": planning.NEVER_SILENCED,
                "short": planning.SHORT_REASONS[planning.NEVER_SILENCED],
                "units": 1,
            },
        ],
        "shortfalls": {},  # the hand-made plan had no training check
    }
    checked = planned.assign(training_shortfall=np.where(planned["n_per_set"] == 100, 0.01, 0.125))
    assert plan_caption_values(checked, smallest, TARGET, PROBABILITY)["shortfalls"] == {
        100: 0.01,
        400: 0.125,
    }
    pilot = planned[planned["seed"] == 0].assign(seed=pd.NA).astype({"seed": "Int64"})
    values = plan_caption_values(pilot, smallest_table(pilot), TARGET, PROBABILITY)
    assert (values["pilot"], values["seeds"], values["units"], values["reaching"]) == (
        True,
        [],
        3,
        {100: 1, 400: 2},
    )


def test_the_caption_renders_true_for_a_recorded_pilot_and_for_simulated_flies(tmp_path):
    planned, smallest = hand_made()
    pilot = planned[planned["seed"] == 0].assign(seed=pd.NA).astype({"seed": "Int64"})
    shown = {}
    for kind, (table, small) in {
        "flies": (planned, smallest),
        "pilot": (pilot, smallest_table(pilot)),
        "simulated": (planned.assign(method=planning.SIMULATION), smallest),
        "checked": (planned.assign(training_shortfall=0.25), smallest),
    }.items():
        path = tmp_path / f"{kind}.rst"
        write_caption(path, TEMPLATE, plan_caption_values(table, small, TARGET, PROBABILITY), {"plan": {}})
        text = path.read_text(encoding="utf-8")
        prose = text.split("Made with these settings")[0].splitlines()
        assert not [line for line in prose if line.startswith(" ")], (
            f"{kind}: an indented line reads as a quote"
        )
        shown[kind] = " ".join(text.split())
    for text in shown.values():
        assert f"target R² = {TARGET}" in text and f"p ≥ {PROBABILITY}" in text
        assert "central 95%" in text
    for kind in ("flies", "pilot"):
        assert "exact optimum" in shown[kind] and "check_training is off" in shown[kind]
        assert "sampling distributions" in shown[kind] and "simulates" not in shown[kind]
    assert "resamples of the pilot" in shown["simulated"] and "exact optimum" not in shown["simulated"]
    assert "median neural R² ko reached" in shown["simulated"]
    assert "was taken off (the largest, per design: 0.25 at 100, 0.25 at 400)" in shown["checked"]
    assert "recorded pilot" in shown["pilot"] and "simulated" not in shown["pilot"]
    assert "2 simulated flies (seeds 0, 1)" in shown["flies"] and "recorded" not in shown["flies"]
    assert "1 at n_per_set = 100, 2 at n_per_set = 400." in shown["flies"]
    assert "1 unit with a prediction reaches it at no planned design." in shown["flies"]
    assert (
        f'1 unit has no prediction (grey, hatched, "never silenced"): {planning.NEVER_SILENCED}.'
        in shown["flies"]
    )
    assert "never silenced" not in shown["pilot"]
