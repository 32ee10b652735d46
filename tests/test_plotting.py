"""The two summary figures, drawn from small synthetic evaluation tables."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D

from knockout import naming
from knockout.plotting import LABELS, PlotSettings, behavior_figure, neural_figure, save_figure

N_HIDDEN = 4
SETTINGS = PlotSettings(dpi=40, width=6.0)


def behavior_table(seeds, models=naming.MODELS):
    rng = np.random.default_rng(len(seeds))
    rows = []
    for seed in seeds:
        for unit, dataset in enumerate(naming.dataset_names(N_HIDDEN), start=-1):
            ceiling = 0.95 - 0.01 * seed
            rows += [(seed, m, dataset, unit, rng.uniform(0.5, 0.9), ceiling) for m in models]
    columns = ["seed", "model", "dataset", "silenced_unit", "r2", "noise_ceiling"]
    return pd.DataFrame(rows, columns=columns)


def neural_table(seeds, models=naming.MODELS):
    rng = np.random.default_rng(len(seeds))
    rows = []
    for seed in seeds:
        contributions = rng.uniform(0.01, 1.0, N_HIDDEN)
        for model in models:
            rows += [(seed, model, u, rng.uniform(0, 1), contributions[u]) for u in range(N_HIDDEN)]
    return pd.DataFrame(rows, columns=["seed", "model", "unit", "r2", "contribution"])


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def mean_markers(ax, model):
    """(x, y) of the large markers of ``model``: the collection carrying its legend label."""
    (collection,) = [c for c in ax.collections if c.get_label() == LABELS[model]]
    return collection.get_offsets()


def assert_png(path, settings):
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(path)
    assert image.shape[1] == round(settings.width * settings.dpi)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary leftovers


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_behavior_figure_draws_every_model_and_saves_a_png(tmp_path, seeds):
    table = behavior_table(seeds)
    fig = behavior_figure(table, SETTINGS)
    (ax,) = fig.axes
    texts = legend_texts(ax)
    for model in naming.MODELS:
        assert LABELS[model] in texts
    assert any("noise ceiling" in text for text in texts)
    assert f"{len(seeds)} seed" in ax.get_title()
    # Sets in silenced-unit order, control first.
    assert [t.get_text() for t in ax.get_xticklabels()] == ["control", "00", "01", "02", "03"]
    # The large markers sit at the mean over seeds of each set, near the set's tick.
    for model in naming.MODELS:
        offsets = mean_markers(ax, model)
        rows = table[table["model"] == model]
        expected = rows.groupby("silenced_unit")["r2"].mean()
        got = {round(x) - 1: y for x, y in offsets}
        assert got.keys() == set(expected.index)
        for unit, mean in expected.items():
            assert got[unit] == pytest.approx(mean)
        assert np.all(np.abs(offsets[:, 0] - np.round(offsets[:, 0])) < 0.5)
    (ceiling,) = [c for c in ax.collections if "noise ceiling" in c.get_label()]
    ceiling_xy = ceiling.get_offsets()
    np.testing.assert_allclose(sorted(ceiling_xy[:, 0]), range(5))
    np.testing.assert_allclose(ceiling_xy[:, 1], 0.95 - 0.01 * np.mean(seeds))
    # Per-seed points appear only with several seeds.
    n_points = sum(len(c.get_offsets()) for c in ax.collections)
    n_means = 4 * 5 + 5  # 4 models x 5 sets, plus the 5 ceiling marks
    assert n_points == (n_means if len(seeds) == 1 else n_means + 4 * 5 * len(seeds))
    save_figure(fig, tmp_path / "behavior.png", SETTINGS)
    assert_png(tmp_path / "behavior.png", SETTINGS)


def test_behavior_figure_ignores_row_order_and_absent_models():
    table = behavior_table([0, 1], models=("noko", "ko")).sample(frac=1.0, random_state=0)
    (ax,) = behavior_figure(table, SETTINGS).axes
    texts = legend_texts(ax)
    assert LABELS["ko"] in texts and LABELS["noko"] in texts
    assert LABELS["control"] not in texts and LABELS["do"] not in texts
    assert [t.get_text() for t in ax.get_xticklabels()] == ["control", "00", "01", "02", "03"]


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_neural_figure_draws_every_model_and_the_noise_line(tmp_path, seeds):
    table = neural_table(seeds)
    fig = neural_figure(table, noise_sd=0.05, settings=SETTINGS)
    top, bottom = fig.axes
    texts = legend_texts(top)
    for model in naming.MODELS:
        assert LABELS[model] in texts
    for model in naming.MODELS:
        means = table[table["model"] == model].groupby("unit")["r2"].mean()
        got = sorted((round(x), y) for x, y in mean_markers(top, model))
        assert [u for u, _ in got] == list(range(N_HIDDEN))
        np.testing.assert_allclose([y for _, y in got], means.to_numpy())
    (noise_line,) = [
        line for line in bottom.get_lines() if isinstance(line, Line2D) and "σ" in line.get_label()
    ]
    np.testing.assert_allclose(noise_line.get_ydata(), [0.05, 0.05])
    assert "0.05" in noise_line.get_label()
    assert bottom.get_yscale() == "log"
    # One contribution point per seed and unit.
    assert sum(len(c.get_offsets()) for c in bottom.collections) == N_HIDDEN * len(seeds)
    save_figure(fig, tmp_path / "neural.png", SETTINGS)
    assert_png(tmp_path / "neural.png", SETTINGS)


def test_settings_change_the_figure(tmp_path):
    wide = PlotSettings(dpi=30, width=8.0, colors={"control": "k", "noko": "b", "ko": "r", "do": "g"})
    fig = behavior_figure(behavior_table([0]), wide)
    save_figure(fig, tmp_path / "wide.png", wide)
    assert_png(tmp_path / "wide.png", wide)
    (ax,) = fig.axes
    (ko,) = [c for c in ax.collections if c.get_label() == LABELS["ko"]]
    np.testing.assert_allclose(ko.get_facecolor()[0][:3], [1.0, 0.0, 0.0])
