"""The figures, drawn from small synthetic evaluation tables and their summaries.

Every registered figure (``knockout.figures``) is drawn from its own tables and saved,
for a simulated fly, recorded data and recorded data without neurons, with its caption;
the other tests check what individual figures show, without saving them (saving is most
of a figure's cost)."""

from __future__ import annotations

import functools
import math

import matplotlib.image
import matplotlib.markers
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.lines import Line2D
from matplotlib.text import Text
from workflow_helpers import REPO

from knockout import figures, naming, plotting
from knockout import models as registry
from knockout.plotting import (
    PlotSettings,
    behavior_figure,
    contribution_figure,
    loss_curve_figure,
    neural_figure,
    save_figure,
    save_figure_in_formats,
    silencing_effect_figure,
    sweep_figure,
    three_ways_figure,
    weight_cosine_figure,
)
from knockout.summary import (
    mean_and_interval,
    replicate_summaries,
    seed_statistics,
    sweep_statistics,
    with_chance,
)
from knockout_workflow.captions import caption

N_HIDDEN = 4
SETTINGS = PlotSettings(dpi=30, width=6.0)
FLOOR = 0.05**2 * 10 / (400 - 10 - 1)
"""The synthetic fly's σ²·d/(n - d - 1)."""


def behavior_table(seeds, models=registry.TRAINED):
    rng = np.random.default_rng(len(seeds))
    rows = []
    for seed in seeds:
        for unit, set_name in enumerate(naming.simulated_set_names(N_HIDDEN), start=-1):
            ceiling = 0.95 - 0.01 * seed
            silenced = set_name if unit >= 0 else ""
            scores = rng.uniform(0.5, 0.9, len(models))
            for mode in ("zero", "centered"):  # alike, so that the expected means need no filter
                rows += [
                    (seed, m, set_name, silenced, "y", mode, r2, ceiling)
                    for m, r2 in zip(models, scores, strict=True)
                ]
    columns = ["seed", "model", "set", "silenced_units", "output", "silencing", "r2", "noise_ceiling"]
    return pd.DataFrame(rows, columns=columns)


def neural_table(seeds, models=registry.TRAINED):
    """Every column of ``naming.NEURAL_SCORE_COLUMNS``, random but in range."""
    rng = np.random.default_rng(len(seeds))
    tables = []
    for seed in seeds:
        fly = {
            "contribution": rng.uniform(0.01, 1.0, N_HIDDEN),
            "fly_silencing_effect": rng.uniform(0.01, 1, N_HIDDEN),
            "r2_predicted": rng.uniform(0.5, 1, N_HIDDEN),
            "estimation_floor": FLOOR,
        }
        for model in models:
            scores = {
                m: rng.uniform(0, 1, N_HIDDEN) for m in ("r2", "r2_matched", "r2_decoded", "weight_cosine")
            }
            effect = rng.uniform(0.01, 1, N_HIDDEN)
            tables.append(
                pd.DataFrame(
                    {"seed": seed, "model": model, "unit": range(N_HIDDEN), "silenced": 1, "recorded": 1}
                    | {"unit_name": naming.unit_names(N_HIDDEN)}
                    | scores
                    | fly
                    | {"silencing_effect": effect}
                )
            )
    return pd.concat(tables, ignore_index=True)


def summaries(behavior, neural, chance=None):
    """The summary tables of these evaluation tables, as the summarize step writes them."""
    return replicate_summaries(behavior, neural, None, chance)


@functools.cache
def replicate(seeds: tuple[int, ...], chance: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(behavior, neural, summaries) of ``seeds``, with chance levels or none, made once
    for every test (summarising is a bootstrap per statistic); do not modify them."""
    behavior, neural = behavior_table(list(seeds)), neural_table(list(seeds))
    return behavior, neural, summaries(behavior, neural, chance_rows(seeds) if chance else None)


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def mean_markers(ax, model):
    """(x, y) of the large markers of ``model``: the collection carrying its legend label."""
    (collection,) = [c for c in ax.collections if c.get_label() == registry.spec(model).label]
    return collection.get_offsets()


def assert_png(path, settings):
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(path)
    assert image.shape[1] == round(settings.width * settings.dpi)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary leftovers


def loss_table(seeds, models=registry.TRAINED, epochs=5, restarts=2):
    """Loss tables as the training job writes them; control's epochs take 10 steps, the others' 30."""
    rows = []
    for seed in seeds:
        for model in models:
            steps_per_epoch = 10 if model == "control" else 30
            for epoch in range(1, epochs + 1):
                for restart in range(restarts):
                    loss = (1 + restart) * (1 + seed) / epoch
                    rows.append(
                        (seed, model, epoch, epoch * steps_per_epoch, restart, loss, int(restart == 0))
                    )
    return pd.DataFrame(rows, columns=["seed", "model", "epoch", "step", "restart", "train_mse", "chosen"])


def chance_rows(seeds=(0, 1), draws=3, level=0.2):
    """A chance table whose untrained units all score ``level`` and permuted ones level / 10."""
    rows = [
        (seed, null, model, draw, unit, name, measure, level / (10 if null == "permuted_stimuli" else 1))
        for seed in seeds
        for draw in range(draws)
        for unit, name in enumerate(naming.unit_names(N_HIDDEN))
        for null, model, measures in (
            ("untrained", "untrained", naming.RECORDING_MEASURES),
            ("permuted_stimuli", "ko", ("r2_matched",)),
        )
        for measure in measures
    ]
    return pd.DataFrame(rows, columns=["seed", *naming.CHANCE_COLUMNS])


# ------------------------------------------------------------------- every registered figure

ODD_NAMES = ["$LC4", "LC$6$", r"$\alpha_{9$", "LC^11"]
"""Recorded unit names that would be (broken) maths to matplotlib; the third fails as maths."""


REGISTRY_SEEDS, REGISTRY_MODELS = (0, 1), ("ko", "do")
"""The registered figures are drawn for two seeds (points and intervals) of two models;
what each figure shows of every model is checked figure by figure below."""


@functools.cache
def registry_tables(recorded: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(behavior, neural, losses) of a simulated fly, or of recorded data with odd unit and
    set names (no ground truth, no noise ceiling); made once, shared: do not modify."""
    seeds, models = list(REGISTRY_SEEDS), REGISTRY_MODELS
    behavior, neural = behavior_table(seeds, models), neural_table(seeds, models)
    if recorded:
        named = dict(zip(naming.unit_names(N_HIDDEN), ODD_NAMES, strict=True))
        neural = neural.assign(unit_name=neural["unit_name"].map(named))
        neural[list(naming.GROUND_TRUTH_MEASURES)] = np.nan
        behavior = behavior.assign(set=behavior["set"].replace(named), noise_ceiling=np.nan)
        behavior["silenced_units"] = behavior["set"].where(behavior["set"] != "control", "")
    return behavior, neural, loss_table(seeds, models)


@functools.cache
def simulated_data() -> dict:
    behavior, neural, losses = registry_tables(recorded=False)
    return {
        "tables": {"behavior": behavior, "neural": neural, "losses": losses},
        "summaries": summaries(behavior, neural, chance_rows(REGISTRY_SEEDS)),
        "seeds": list(REGISTRY_SEEDS),
        "noise_sd": 0.05,
        "has_ground_truth": True,
    }


@functools.cache
def recorded_data(neurons: bool) -> dict:
    """Recorded data; ``neurons``: some units were recorded (else none: a data folder
    without a neurons file)."""
    behavior, neural, losses = registry_tables(recorded=True)
    neural = neural.copy()
    if neurons:
        neural["recorded"] = (neural["unit"] != 1).astype(int)
        neural.loc[neural["recorded"] == 0, list(naming.RECORDING_MEASURES)] = np.nan
        named = dict(zip(naming.unit_names(N_HIDDEN), ODD_NAMES, strict=True))
        chance = chance_rows(REGISTRY_SEEDS).assign(unit_name=lambda t: t["unit_name"].map(named))
    else:
        neural["recorded"] = 0
        neural[list(naming.RECORDING_MEASURES)] = np.nan
        chance = None
    return {
        "tables": {"behavior": behavior, "neural": neural, "losses": losses},
        "summaries": summaries(behavior, neural, chance),
        "seeds": list(REGISTRY_SEEDS),
        "noise_sd": None,
        "has_ground_truth": False,
    }


DATA = {
    "simulated": simulated_data,
    "recorded": lambda: recorded_data(neurons=True),
    "no_neurons": lambda: recorded_data(neurons=False),
}


def named_tables(data: dict) -> dict[str, pd.DataFrame]:
    return data["tables"] | {figures.SUMMARY + name: table for name, table in data["summaries"].items()}


def figure_data(data: dict) -> figures.FigureData:
    """The data's tables as the plot job reads them, by their registry names; a recorded
    run's summary/ranked is empty, and reading it fails as reading that file would."""
    named = named_tables(data)

    def load(name: str) -> pd.DataFrame:
        if named[name].empty:
            raise ValueError(f"{name}: the table has no rows")
        return named[name]

    return figures.FigureData(load, data["seeds"], data["noise_sd"], data["has_ground_truth"])


DRAWN: dict[tuple, tuple] = {}
"""Each figure drawn once per distinct input: (name, its registered tables, the settings of
its view) -> (figure, the tables it and its caption read)."""
SAVED: set[int] = set()
"""The drawn figures already saved (by id): each is saved once."""


@functools.cache
def drawn(kind: str) -> dict:
    """Per figure registered for data ``kind``: the figure, drawn from its own view (as
    plain text, as the plot job draws it), and the tables it and its caption read. A
    figure whose registered tables are another kind of data's is not drawn again (the
    loss curves do not change without neurons)."""
    data = DATA[kind]()
    named = named_tables(data)
    result = {}
    for figure in figures.figures_for(data["has_ground_truth"]):
        inputs = tuple(id(named[table]) for table in figure.reads)
        key = (figure.name, inputs, tuple(data["seeds"]), data["noise_sd"], data["has_ground_truth"])
        if key not in DRAWN:
            loaded = figure_data(data)
            with plotting.plain_text():
                fig = figure.draw(loaded.for_figure(figure), SETTINGS)
            figure.caption_values(loaded.for_figure(figure))
            DRAWN[key] = (fig, set(loaded.read))
        result[figure.name] = DRAWN[key]
    return result


@pytest.fixture(params=list(DATA))
def data(request) -> dict:
    return {"kind": request.param, **DATA[request.param]()}


def all_texts(fig) -> list[str]:
    return [text.get_text() for text in fig.findobj(Text) if text.get_text()]


@pytest.mark.parametrize("kind", list(DATA))
def test_every_registered_figure_is_drawn_from_its_own_tables_and_saved(tmp_path, kind):
    """Each figure reads only the tables it registered (the plot rule's inputs), draws and
    saves; recorded data are never called the fly's, and names are drawn as plain text."""
    figures_drawn = drawn(kind)
    ground_truth = DATA[kind]()["has_ground_truth"]
    assert list(figures_drawn) == [figure.name for figure in figures.figures_for(ground_truth)]
    assert (len(figures_drawn) == len(figures.FIGURES)) == ground_truth
    for name, (fig, read) in figures_drawn.items():
        assert read <= set(figures.spec(name).reads), name
        if id(fig) not in SAVED:  # drawn for another kind of data from the same tables: saved there
            save_figure(fig, tmp_path / name / "figure.png", SETTINGS)  # a lone $ would fail here
            assert_png(tmp_path / name / "figure.png", SETTINGS)
            SAVED.add(id(fig))
        # log axes are labelled in plain numbers: their default labels are maths, which
        # plain text would print as their raw source ($\mathdefault{...}$)
        ticks = [label.get_text() for ax in fig.axes for label in ax.get_xticklabels() + ax.get_yticklabels()]
        assert not any("mathdefault" in tick for tick in ticks), (name, ticks)
        if not ground_truth:
            assert not [text for text in all_texts(fig) if "fly" in text], (name, all_texts(fig))
        if kind == "recorded" and name in ("behavior_r2", "neural_r2"):
            assert "$LC4" in ticks, (name, ticks)


def test_every_registered_figure_reads_every_table_it_registers():
    """No registered table is an input the figure never reads (on one kind of data or another)."""
    read = {figure.name: set() for figure in figures.FIGURES}
    for kind in DATA:
        for name, (_, tables_read) in drawn(kind).items():
            read[name] |= tables_read
    assert read == {figure.name: set(figure.reads) for figure in figures.FIGURES}


def test_every_registered_figure_has_a_caption_that_renders_and_stays_true(data):
    for figure in figures.figures_for(data["has_ground_truth"]):
        view = figure_data(data).for_figure(figure)
        template = (REPO / "workflow" / "report" / f"{figure.name}.rst").read_text(encoding="utf-8")
        text = caption(template, view.caption_values() | figure.caption_values(view), {})
        assert str(data["seeds"]) in text, (figure.name, text)
        if not data["has_ground_truth"]:
            assert "fly" not in text, (figure.name, text)


@pytest.mark.parametrize("recorded", [False, True])
def test_the_sweep_caption_names_the_fly_only_for_a_simulated_fly(recorded):
    template = (REPO / "workflow" / "report" / "sweep.rst").read_text(encoding="utf-8")
    values = {"sweep": "lr", "key": "train.lr", "values": [0.01, 0.1], "seeds": [0], "recorded": recorded}
    text = caption(template, values, {})
    assert ("fly" in text) != recorded and "train.lr" in text, text


def test_a_figure_reading_a_table_it_did_not_register_fails():
    figure = figures.spec("loss_curves")
    view = figure_data(simulated_data()).for_figure(figure)
    with pytest.raises(KeyError, match="not among the figure's registered tables"):
        view["neural"]
    with pytest.raises(KeyError, match="registered: behavior_r2"):
        figures.spec("no_such_figure")
    with pytest.raises(ValueError, match="unknown table"):
        figures.FigureSpec("x", "x", ("chance",), figure.draw)


def test_the_registry_gives_each_kind_of_data_its_figures_and_their_tables():
    recorded = figures.figures_for(has_ground_truth=False)
    assert [figure.name for figure in recorded] == [
        figure.name for figure in figures.FIGURES if not figure.needs_ground_truth
    ]
    assert {"r2_vs_contribution", "silencing_effect", "weight_cosine"}.isdisjoint(f.name for f in recorded)
    assert figures.tables_read(recorded) == [
        "behavior",
        "neural",
        "losses",
        "summary_behavior",
        "summary_neural_units",
        "summary_ranked",
        "summary_seeds",
        "summary_models",
    ]
    assert len({figure.label for figure in figures.FIGURES}) == len(figures.FIGURES)


# ---------------------------------------------------------------------- what each figure shows


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_behavior_figure_draws_every_model_at_the_summarised_means(seeds):
    table, _, summarised = replicate(tuple(seeds))
    fig = behavior_figure(table, summarised, SETTINGS)
    (ax,) = fig.axes
    texts = legend_texts(ax)
    for model in registry.TRAINED:
        assert registry.spec(model).label in texts
    assert any("noise ceiling" in text for text in texts)
    assert f"{len(seeds)} seed" in ax.get_title()
    # Sets in silenced-unit order, control first.
    assert [t.get_text() for t in ax.get_xticklabels()] == ["control", "00", "01", "02", "03"]
    # The large markers sit at the mean over seeds of each set, near the set's tick.
    for model in registry.TRAINED:
        offsets = mean_markers(ax, model)
        rows = table[table["model"] == model]
        expected = rows.groupby(rows["set"].map(naming.simulated_set_names(N_HIDDEN).index) - 1)["r2"].mean()
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
    n_points = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    n_models = len(registry.TRAINED)
    n_means = n_models * 5 + 5  # every model x 5 sets, plus the 5 ceiling marks
    assert n_points == (n_means if len(seeds) == 1 else n_means + n_models * 5 * len(seeds))


def test_behavior_figure_ignores_row_order_and_absent_models():
    table = behavior_table([0, 1], models=("noko", "ko")).sample(frac=1.0, random_state=0)
    (ax,) = behavior_figure(table, summaries(table, neural_table([0, 1])), SETTINGS).axes
    texts = legend_texts(ax)
    assert registry.spec("ko").label in texts and registry.spec("noko").label in texts
    assert registry.spec("control").label not in texts and registry.spec("do").label not in texts
    assert [t.get_text() for t in ax.get_xticklabels()] == ["control", "00", "01", "02", "03"]


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_neural_figure_draws_every_model_and_the_noise_line(seeds):
    _, table, summarised = replicate(tuple(seeds))
    fig = neural_figure(table, summarised, 0.05, SETTINGS)
    top, bottom = fig.axes
    texts = legend_texts(top)
    for model in registry.TRAINED:
        assert registry.spec(model).label in texts
    # Units are placed by their rank of contribution within their seed (unit i of one seed
    # is not unit i of another): position 0 holds each seed's largest.
    rank = table.groupby(["seed", "model"])["contribution"].rank(ascending=False).astype(int) - 1
    assert [t.get_text() for t in bottom.get_xticklabels()] == [f"#{i + 1}" for i in range(N_HIDDEN)]
    for model in registry.TRAINED:
        rows = table["model"] == model
        means = table[rows].groupby(rank[rows])["r2"].mean()
        got = sorted((round(x), y) for x, y in mean_markers(top, model))
        assert [u for u, _ in got] == list(range(N_HIDDEN))
        np.testing.assert_allclose([y for _, y in got], means.to_numpy())
    (noise_line,) = [
        line for line in bottom.get_lines() if isinstance(line, Line2D) and "σ" in line.get_label()
    ]
    np.testing.assert_allclose(noise_line.get_ydata(), [0.05, 0.05])
    assert "0.05" in noise_line.get_label()
    assert bottom.get_yscale() == "log"
    # One contribution point per seed and unit, at its unit's rank.
    (points,) = bottom.collections
    assert len(points.get_offsets()) == N_HIDDEN * len(seeds)
    np.testing.assert_array_equal(
        sorted(points.get_offsets()[:, 0]), sorted(rank[table["model"] == "control"].to_numpy(float))
    )
    # With several seeds, each mean carries its 95 % interval over seeds (the summaries'
    # bootstrap), which stays within the values (a t-interval here reached -0.24 and 1.57).
    bars = [c for c in top.collections if isinstance(c, LineCollection)]
    assert len(bars) == (len(registry.TRAINED) if len(seeds) > 1 else 0)
    if bars:
        ko_bars = bars[registry.TRAINED.index("ko")].get_segments()
        values = table[(table["model"] == "ko") & (rank == 0)]["r2"].to_numpy()
        _, low, high, _ = mean_and_interval(values)
        (segment,) = [seg for seg in ko_bars if round(seg[0, 0]) == 0]
        np.testing.assert_allclose(sorted(segment[:, 1]), [low, high])
        for bar in bars:
            ends = np.concatenate([seg[:, 1] for seg in bar.get_segments()])
            assert ends.min() >= 0 and ends.max() <= 1


def test_settings_change_the_figure(tmp_path):
    wide = PlotSettings(dpi=20, width=8.0, colors={"control": "k", "noko": "b", "ko": "r", "do": "g"})
    behavior, _, summarised = replicate((0,))
    fig = behavior_figure(behavior, summarised, wide)
    save_figure(fig, tmp_path / "wide.png", wide)
    assert_png(tmp_path / "wide.png", wide)
    (ax,) = fig.axes
    (ko,) = [c for c in ax.collections if c.get_label() == registry.spec("ko").label]
    np.testing.assert_allclose(ko.get_facecolor()[0][:3], [1.0, 0.0, 0.0])


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_the_identifiability_figures_draw_every_model(seeds):
    behavior, neural, summarised = replicate(tuple(seeds))
    figures_drawn = {
        "three_ways": three_ways_figure(summarised, SETTINGS, ground_truth=True),
        "contribution": contribution_figure(neural, 0.05, SETTINGS),
        "silencing": silencing_effect_figure(neural, SETTINGS),
        "cosine": weight_cosine_figure(neural, summarised, SETTINGS),
    }
    (ax,) = figures_drawn["three_ways"].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "model unit i vs neuron i",
        "best one-to-one match",
        "decoded from all units",
    ]
    assert "the fly's neurons" in ax.get_title() and f"{len(seeds)} seed" in ax.get_title()
    per_seed = seed_statistics(behavior, neural)
    ko = per_seed[per_seed["model"] == "ko"].groupby("measure")["score"].mean()
    got = sorted(mean_markers(ax, "ko")[:, 1])
    np.testing.assert_allclose(got, sorted(ko[["r2_median", "r2_matched_median", "r2_decoded_median"]]))
    for name in ("contribution", "silencing"):  # one panel per model, every unit of every seed
        axes = figures_drawn[name].axes
        assert [a.get_title() for a in axes] == list(registry.TRAINED)
        assert all(sum(len(c.get_offsets()) for c in a.collections) == N_HIDDEN * len(seeds) for a in axes)
    assert figures_drawn["contribution"].axes[0].get_xscale() == "log"
    (cosine_ax,) = figures_drawn["cosine"].axes
    assert "cosine" in cosine_ax.get_ylabel()
    rank = neural.groupby(["seed", "model"])["contribution"].rank(ascending=False).astype(int) - 1
    ko_rows = neural["model"] == "ko"
    expected = neural[ko_rows].groupby(rank[ko_rows])["weight_cosine"].mean()
    got = sorted((round(x), y) for x, y in mean_markers(cosine_ax, "ko"))
    np.testing.assert_allclose([y for _, y in got], expected.to_numpy())


def test_a_log_axis_over_many_decades_has_no_minor_ticks_and_a_narrow_one_keeps_them():
    neural = neural_table([0])  # effects 0.01 ... 1: two decades and a bit
    narrow = silencing_effect_figure(neural, SETTINGS).axes[0]
    assert len(narrow.xaxis.get_minorticklocs()) > 0 and len(narrow.yaxis.get_minorticklocs()) > 0
    neural.loc[0, "silencing_effect"] = 1e-7  # a model unit whose silencing does almost nothing
    wide = silencing_effect_figure(neural, SETTINGS).axes[0]
    assert len(wide.xaxis.get_minorticklocs()) == 0 and len(wide.yaxis.get_minorticklocs()) == 0
    assert len(wide.xaxis.get_majorticklocs()) > 0


@functools.cache
def sweep_summary(values: tuple, seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    """A sweep's summary over ``values`` (each point the same synthetic tables); do not modify."""
    per_seed = seed_statistics(*replicate(seeds)[:2])
    return sweep_statistics(pd.concat([per_seed.assign(value=str(v)) for v in values]))


@pytest.mark.parametrize(("values", "log_x"), [([0.01, 0.1, 1.0], True), (["linear", "relu"], False)])
def test_sweep_figure_plots_ko_do_and_their_difference_against_the_value(tmp_path, values, log_x):
    summary = sweep_summary(tuple(values))
    fig = sweep_figure(summary, "fly.noise_sd", values, [str(v) for v in values], SETTINGS)
    top_left, _, bottom_left, bottom_right = fig.axes
    assert [line.get_label() for line in top_left.get_lines()] == ["ko", "do"]
    assert "by construction" in bottom_right.get_title() and bottom_left.get_title() == ""
    assert "fly" not in top_left.get_ylabel()  # a sweep may be of recorded data
    (difference,) = [line for line in bottom_left.get_lines() if line.get_label() == "ko - do"]
    expected = summary[(summary["model"] == "ko - do") & (summary["measure"] == "r2_mean")]["mean"]
    np.testing.assert_allclose(difference.get_ydata(), expected)
    assert bottom_left.get_xscale() == ("log" if log_x else "linear")
    assert [t.get_text() for t in bottom_left.get_xticklabels()] == [str(v) for v in values]
    if log_x:  # the sweep figure is not registered: saved here
        save_figure(fig, tmp_path / "sweep.png", SETTINGS)
        assert_png(tmp_path / "sweep.png", SETTINGS)


def test_a_sweep_value_that_did_not_converge_is_ringed_on_its_model_s_line_only():
    values = [0.1, 0.2, 0.4]
    summary = sweep_summary(tuple(values))
    # ko did not converge at 0.2: its rows and the difference's are 0, do's are 1
    stuck = (summary["value"] == "0.2") & summary["model"].isin(["ko", "ko - do"])
    summary = summary.assign(converged=(~stuck).astype(int))
    fig = sweep_figure(summary, "fly.noise_sd", values, [str(v) for v in values], SETTINGS)
    for ax in fig.axes:
        rings = [c for c in ax.collections if c.get_label() == "not converged"]
        assert len(rings) == 1, ax.get_ylabel()
        (ring,) = rings
        assert ring.get_offsets()[:, 0].tolist() == [0.2]
        ko_or_difference = next(line for line in ax.get_lines() if line.get_label() in ("ko", "ko - do"))
        assert ring.get_offsets()[0, 1] == ko_or_difference.get_ydata()[1]
    converged = sweep_figure(summary.assign(converged=1), "k", values, [str(v) for v in values], SETTINGS)
    assert not [c for ax in converged.axes for c in ax.collections if c.get_label() == "not converged"]


def test_every_model_has_its_own_marker_shape_and_colour():
    specs = list(registry.REGISTRY.values())
    assert len({spec.marker for spec in specs}) == len(specs)
    assert len({spec.color for spec in specs}) == len(specs)
    behavior, _, summarised = replicate((0, 1))
    fig = behavior_figure(behavior, summarised, SETTINGS)
    (ax,) = fig.axes
    for model in registry.TRAINED:
        (collection,) = [c for c in ax.collections if c.get_label() == registry.spec(model).label]
        style = matplotlib.markers.MarkerStyle(registry.spec(model).marker)
        expected = style.get_path().transformed(style.get_transform())
        np.testing.assert_allclose(collection.get_paths()[0].vertices, expected.vertices)


def test_loss_curve_figure_draws_the_kept_restart_of_every_seed_per_model():
    losses = loss_table([0, 1, 2])
    fig = loss_curve_figure(losses, SETTINGS)
    assert len(fig.axes) == len(registry.TRAINED)
    for ax, model in zip(fig.axes, registry.TRAINED, strict=True):
        lines = ax.get_lines()
        assert len(lines) == 3  # one per seed
        steps_per_epoch = 10 if model == "control" else 30
        for seed, line in enumerate(lines):
            np.testing.assert_allclose(line.get_ydata(), [(1 + seed) / epoch for epoch in range(1, 6)])
            np.testing.assert_allclose(line.get_xdata(), [epoch * steps_per_epoch for epoch in range(1, 6)])
        assert ax.get_yscale() == "log" and ax.get_xlabel() == "Adam steps"


def test_the_contribution_figure_draws_the_prediction_from_the_stored_estimation_floor():
    contributions = np.geomspace(1e-3, 1.0, 8)
    floor = 0.05**2 * 50 / 1000
    neural = pd.DataFrame(
        {
            "seed": 0,
            "model": "ko",
            "unit": range(8),
            "silenced": [1] * 7 + [0],
            "contribution": contributions,
            "r2": 0.5,
            "estimation_floor": floor,
        }
    )
    (ax,) = contribution_figure(neural, 0.05, SETTINGS).axes
    curve = next(line for line in ax.get_lines() if len(line.get_xdata()) > 2)
    x, y = curve.get_xdata(), curve.get_ydata()
    np.testing.assert_array_equal(y, x**2 / (x**2 + floor))
    assert x.min() == pytest.approx(1e-3) and x.max() == pytest.approx(1.0)
    (midpoint,) = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert midpoint.get_xdata()[0] == math.sqrt(floor)
    for no_floor in (np.nan, 0.0):  # no prediction, or a noiseless design: the noise σ instead
        (ax,) = contribution_figure(neural.assign(estimation_floor=no_floor), 0.05, SETTINGS).axes
        assert [line.get_xdata()[0] for line in ax.get_lines() if len(line.get_xdata()) == 2] == [0.05]


def test_the_neural_figure_shows_recorded_units_by_name_and_marks_the_never_silenced():
    neural = neural_table([0])
    neural["unit_name"] = neural["unit"].map(dict(enumerate(["LC4", "LC6", "LC9", "LC11"])))
    neural["recorded"] = (neural["unit"] != 1).astype(int)
    neural["silenced"] = (neural["unit"] != 3).astype(int)
    neural[list(naming.GROUND_TRUTH_MEASURES)] = np.nan
    (ax,) = neural_figure(neural, summaries(behavior_table([0]), neural), None, SETTINGS).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["LC4", "LC9", "LC11°"]
    ko = neural[(neural["model"] == "ko") & (neural["recorded"] == 1)]
    np.testing.assert_allclose(sorted(mean_markers(ax, "ko")[:, 1]), sorted(ko["r2"]))


def test_the_behaviour_figure_places_a_simulated_set_by_its_units_rank_within_its_seed():
    behavior, neural, summarised = replicate((0, 1))
    (ax,) = behavior_figure(behavior, summarised, SETTINGS, neural).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "control",
        *[f"#{i + 1}" for i in range(N_HIDDEN)],
    ]
    contribution = neural.drop_duplicates(["seed", "unit"]).set_index(["seed", "unit_name"])["contribution"]
    largest = {seed: contribution[seed].idxmax() for seed in (0, 1)}
    rows = behavior[
        (behavior["model"] == "ko")
        & (behavior["silenced_units"] == behavior["seed"].map(largest))
        & (behavior["silencing"] == "zero")  # the figure draws the first mode only
    ]
    y = next(y for x, y in mean_markers(ax, "ko") if round(x) == 1)
    assert y == pytest.approx(rows["r2"].mean())
    points = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label().startswith("_")]
    ko_points = points[registry.TRAINED.index("ko")].get_offsets()
    assert sorted(ko_points[np.round(ko_points[:, 0]) == 1][:, 1]) == sorted(rows["r2"])


def test_a_figure_is_written_beside_its_png_in_every_format_asked_for_byte_reproducibly(tmp_path):
    """Every format leaves out what would change between runs (timestamps, random ids):
    the same figure drawn twice gives the same bytes."""
    settings = PlotSettings(dpi=SETTINGS.dpi, width=SETTINGS.width, formats=("svg", "png", "pdf"))
    behavior, _, summarised = replicate((0,))
    for name in ("a", "b"):
        fig = behavior_figure(behavior, summarised, settings)
        save_figure_in_formats(fig, tmp_path / name / "fig.png", settings)
    assert sorted(path.name for path in (tmp_path / "a").iterdir()) == ["fig.pdf", "fig.png", "fig.svg"]
    for kind in ("png", "pdf", "svg"):
        written = (tmp_path / "a" / f"fig.{kind}").read_bytes()
        assert written == (tmp_path / "b" / f"fig.{kind}").read_bytes(), kind
        assert len(written) > 1000


def test_behaviour_is_drawn_one_panel_per_output_never_averaged():
    """One user's outputs scored -1.7 and -80: averaged, they squashed every other set."""
    first = behavior_table([0, 1])
    second = first.assign(output="y_01", r2=-80.0)
    both = pd.concat([first, second], ignore_index=True)
    fig = behavior_figure(both, summaries(both, neural_table([0, 1])), SETTINGS)
    top, bottom = fig.axes
    assert "y_01" in bottom.get_ylabel() and "(output y)" in top.get_ylabel()
    ko = first[first["model"] == "ko"].groupby("set")["r2"].mean()
    np.testing.assert_allclose(sorted(mean_markers(top, "ko")[:, 1]), sorted(ko))
    np.testing.assert_allclose(mean_markers(bottom, "ko")[:, 1], -80.0)


def test_the_neural_figures_draw_the_chance_level_as_a_grey_band_labelled_chance():
    _, neural, summarised = replicate((0, 1), chance=True)
    (ax,) = three_ways_figure(summarised, SETTINGS, ground_truth=True).axes
    (bars,) = [c for c in ax.containers if c.get_label().startswith("chance")]
    np.testing.assert_allclose([bar.get_height() for bar in bars], [0.2, 0.2, 0.2])
    (matched,) = [c for c in ax.collections if c.get_label().startswith("matching alone")]
    np.testing.assert_allclose(matched.get_segments()[0][:, 1], [0.02, 0.02])
    top = neural_figure(neural, summarised, 0.05, SETTINGS).axes[0]
    (band,) = [p for p in top.patches if p.get_label().startswith("chance")]
    assert band.get_y() + band.get_height() == pytest.approx(0.2)  # the per-unit level, in data units
    assert any(text.startswith("chance") for text in legend_texts(top))


def test_the_three_ways_caption_numbers_are_the_figure_s_with_minimum_and_units_identified():
    behavior, neural, summarised = replicate((0, 1), chance=True)
    numbers = plotting.three_ways_numbers(summarised)
    assert numbers["chance"] == [0.2, 0.2, 0.2]
    ko = next(row for row in numbers["medians"] if row[0] == "ko")
    per_seed = seed_statistics(behavior, neural)
    means = per_seed[per_seed["model"] == "ko"].groupby("measure")["score"].mean()
    expected = [means[m] for m in ("r2_median", "r2_matched_median", "r2_decoded_median", "r2_min")]
    np.testing.assert_allclose(ko[1:5], expected, atol=5e-4)
    identified = neural[neural["model"] == "ko"].groupby("seed")["r2"].apply(lambda r2: (r2 >= 0.9).sum())
    assert ko[5] == pytest.approx(identified.mean()) and ko[6] == N_HIDDEN
    assert plotting.three_ways_numbers(replicate((0, 1))[2])["chance"] == []


def test_chance_levels_without_a_defined_value_draw_no_band():
    behavior, neural = behavior_table([0, 1]), neural_table([0, 1])
    summarised = summaries(behavior, neural, chance_rows().assign(score=np.nan))  # every neuron constant
    assert plotting.three_ways_numbers(summarised)["chance"] == []
    (ax,) = three_ways_figure(summarised, SETTINGS, ground_truth=True).axes
    assert not any(c.get_label().startswith("chance") for c in ax.containers)
    top = neural_figure(neural, summarised, 0.05, SETTINGS).axes[0]
    assert not any(p.get_label().startswith("chance") for p in top.patches)


def test_a_sweep_figure_draws_each_values_chance_level_on_the_neural_panel():
    seeds, values = (0, 1), [0.1, 0.2]
    summary = sweep_summary(tuple(values), seeds)
    summary = pd.concat(
        [
            with_chance(summary[summary["value"] == str(v)], chance_rows(seeds, level=level))
            for v, level in zip(values, [0.1, 0.3], strict=True)
        ]
    )
    fig = sweep_figure(summary, "fly.noise_sd", values, [str(v) for v in values], SETTINGS)
    neural_ax = fig.axes[0]
    (band,) = [c for c in neural_ax.collections if c.get_label() == plotting.CHANCE_LABEL]
    tops = band.get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose(tops.max(), 0.3)  # each value's own level: 0.1, then 0.3
    assert np.isclose(tops, 0.1).any()
    behavior_ax = fig.axes[1]
    assert not [c for c in behavior_ax.collections if c.get_label() == plotting.CHANCE_LABEL]
