"""The figures of one experiment's replicates, and a sweep's summary figure.

A figure draws each seed as a small point, from the per-seed evaluation tables
(concatenated with a ``seed`` column), and the mean over seeds as a large marker with its
95 % interval as the summary tables hold them (``summary.replicate_summaries``, passed as
``summaries``: the tables by name): no statistic over seeds is computed here. A simulated
fly's units are placed by their rank of contribution within their seed
(``summary.contribution_ranks``), recorded units by name. Names from the data (sets,
units, outputs) are drawn as plain text, never as maths (``plain_text``). Which figure
reads which table is registered in ``knockout.figures``. The experiment planner's figure
(``plan_figure``, from the planner's tables: ``knockout.plan_table``) draws each seed's plan in a panel
of its own: each seed is another fly.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker, transforms
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.markers import MarkerStyle
from matplotlib.path import Path as MarkerPath

from knockout import models, naming
from knockout.convergence import chosen_losses
from knockout.plan_table import INTERVAL, SHORT_REASONS
from knockout.summary import (
    CHANCE_QUANTILE,
    contrast_label,
    contribution_ranks,
    has_ground_truth,
    primary_silencing,
    set_ranks,
)
from knockout.tables import write_atomically


@dataclass(frozen=True)
class PlotSettings:
    """The ``plot`` section of the config; ``colors`` overrides the registry's colours."""

    dpi: int = 150
    width: float = 11.0
    colors: dict[str, str] = field(default_factory=dict)
    formats: tuple[str, ...] = ("png",)


def plain_text() -> contextlib.AbstractContextManager:
    """Draw every text as it is written: a ``$`` in a set or unit name would otherwise
    start matplotlib's maths mode (and a lone one fail the figure). Texts read the setting
    when they are made, tick labels when the figure is drawn: wrap both."""
    from matplotlib import rc_context

    return rc_context({"text.parse_math": False})


def _color(model: str, settings: PlotSettings) -> str:
    return settings.colors.get(model, models.spec(model).color)


def _marker(model: str) -> str:
    return models.spec(model).marker


def _present_models(table: pd.DataFrame) -> list[str]:
    return models.ordered(set(table["model"]))


def _draw_per_model(
    ax: Axes,
    points: pd.DataFrame,
    means: pd.DataFrame,
    x_order: list,
    settings: PlotSettings,
    value: str = "r2",
) -> None:
    """Per model, each seed's ``value`` in ``points`` as a small point, and its mean over
    seeds in ``means`` (a summary table's rows: ``mean``, ``ci_low``, ``ci_high``) as a
    large marker with its 95 % interval (with two seeds or more); both placed at the index
    in ``x_order`` of their ``position`` column. Nothing for tables with no rows (no unit
    was recorded)."""
    present = _present_models(means)
    offsets = np.linspace(-0.3, 0.3, len(present)) if len(present) > 1 else [0.0] * len(present)
    position = {x: i for i, x in enumerate(x_order)}
    several_seeds = points["seed"].nunique() > 1
    for offset, model in zip(offsets, present, strict=True):
        color = _color(model, settings)
        if several_seeds:
            rows = points[points["model"] == model]
            x = rows["position"].map(position).to_numpy(float) + offset
            ax.scatter(x, rows[value], s=9, color=color, marker=_marker(model), alpha=0.35, linewidths=0)
        rows = means[means["model"] == model]
        x = rows["position"].map(position).to_numpy(float) + offset
        mean = rows["mean"].to_numpy(float)
        if several_seeds:
            low, high = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
            ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=color, lw=1.2, zorder=2)
        ax.scatter(
            x,
            mean,
            s=42,
            color=color,
            marker=_marker(model),
            edgecolors="black",
            linewidths=0.5,
            label=models.spec(model).label,
            zorder=3,
        )


def _units_note(table: pd.DataFrame) -> str:
    seeds = table["seed"].nunique()
    return f"every unit of {seeds} seed{'s' if seeds > 1 else ''}"


def _seed_note(table: pd.DataFrame) -> str:
    seeds = table["seed"].nunique()
    return "1 seed" if seeds == 1 else f"{seeds} seeds: points per seed, mean ± 95% bootstrap interval"


CHANCE_LABEL = f"chance: untrained networks ({CHANCE_QUANTILE:.0%} quantile)"
PERMUTED_LABEL = f"matching alone: shuffled stimuli ({CHANCE_QUANTILE:.0%} quantile, highest model)"


def _untrained_levels(summary: pd.DataFrame) -> dict[str, float]:
    """Per measure of a summary table, its chance level (``chance_p95``: the untrained
    networks' 95th percentile, the same for every model; none where it is NaN, e.g. when
    no unit was recorded or none varies)."""
    levels = summary.dropna(subset=["chance_p95"]).drop_duplicates("measure")
    return dict(zip(levels["measure"], levels["chance_p95"].astype(float), strict=True))


def _draw_chance(ax: Axes, summary: pd.DataFrame, measures: list[str]) -> None:
    """A grey bar at each x position up to the chance level of ``measures[x]`` (untrained
    networks), and for a matched measure a dashed line at the highest model's level when
    its responses are shuffled (``permuted_p95``; nothing without one)."""
    untrained = _untrained_levels(summary)
    if not untrained:
        return
    permuted = summary.dropna(subset=["permuted_p95"]).groupby("measure")["permuted_p95"].max()
    heights = [untrained.get(measure, np.nan) for measure in measures]
    ax.bar(range(len(measures)), heights, width=0.9, color="0.88", zorder=0, label=CHANCE_LABEL)
    labelled = False
    for x, measure in enumerate(measures):
        if measure in permuted:
            ax.hlines(
                permuted[measure],
                x - 0.45,
                x + 0.45,
                colors="0.35",
                linestyles="--",
                linewidth=1,
                label=None if labelled else PERMUTED_LABEL,
                zorder=1,
            )
            labelled = True


def _rank_label(rank: float) -> str | None:
    """A rank of contribution as the figures label it: ``#1`` the largest; rank 0 is the
    control set (``summary.set_ranks``)."""
    if rank != rank:  # NaN: no single ranked unit
        return None
    return "control" if rank == 0 else f"#{int(rank)}"


def behavior_figure(
    behavior: pd.DataFrame,
    summaries: Mapping[str, pd.DataFrame],
    settings: PlotSettings,
    neural: pd.DataFrame | None = None,
) -> Figure:
    """Behaviour R² per test set, one panel per behavioural output (R² of different
    behaviours is never averaged: one output's -80 would squash every other), beside the
    noise ceiling where the true network is known. With a simulated fly's ``neural``
    table, a silenced set is placed by its unit's rank of contribution within its seed,
    so that a position means the same in every seed (means from summary/ranked; else per
    set, from summary/behavior)."""
    ranked = neural is not None and has_ground_truth(neural)
    behavior = primary_silencing(behavior)
    if ranked:
        labels = set_ranks(behavior, neural).map(_rank_label)
        behavior = behavior.assign(position=labels).dropna(subset=["position"])
        means = summaries["ranked"]
        means = means.assign(position=means["rank"].map(_rank_label))
        means = means.replace({"measure": {"behavior_r2": "r2"}})
    else:
        behavior = behavior.assign(position=behavior["set"])
        means = primary_silencing(summaries["behavior"]).assign(position=lambda table: table["set"])
    sets = sorted(set(behavior["position"]), key=lambda name: (name != "control", len(name), name))
    outputs = list(dict.fromkeys(behavior["output"]))
    fig = Figure(figsize=(settings.width, 1.2 + 3.6 * len(outputs)), layout="constrained")
    axes = fig.subplots(len(outputs), 1, sharex=True, squeeze=False)[:, 0]
    for ax, output in zip(axes, outputs, strict=True):
        _behavior_panel(
            ax, behavior[behavior["output"] == output], means[means["output"] == output], sets, settings
        )
        score = "pseudo-R²" if naming.is_binary_output(output) else "behaviour R²"  # McFadden's, for events
        ax.set_ylabel(
            f"{score} on the test set\n(output {output})" if len(outputs) > 1 else f"{score} on the test set"
        )
    axes[0].legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.0, 1.0))
    bottom = axes[-1]
    bottom.set_xticks(range(len(sets)), [name.removeprefix("unit_") for name in sets])
    if max((len(name) for name in sets if name != "control"), default=0) > 4:  # long set names
        bottom.tick_params(axis="x", labelrotation=45)
    bottom.set_xlabel(
        "test set: control, or the silenced unit ranked by its contribution within its seed"
        if ranked
        else "test set (control, or the silenced units)"
    )
    title = f"How well each model predicts the behaviour ({_seed_note(behavior)})"
    if len(outputs) > 1:
        fig.suptitle(f"{title}, one panel per output")
    else:
        axes[0].set_title(title)
    return fig


def _behavior_panel(
    ax: Axes, behavior: pd.DataFrame, means: pd.DataFrame, sets: list[str], settings: PlotSettings
) -> None:
    """One output's behaviour R² per test set, and its noise ceiling (the mean over seeds
    of the fly's own R², the same for every model) where there is one."""
    ceiling = means[means["measure"] == "noise_ceiling"].drop_duplicates("position").dropna(subset=["mean"])
    if len(ceiling):
        ax.scatter(
            [sets.index(name) for name in ceiling["position"]],
            ceiling["mean"].to_numpy(),
            marker="_",
            s=420,
            color="black",
            linewidths=1.5,
            label="noise ceiling (the fly itself)",
            zorder=4,
        )
    _draw_per_model(ax, behavior, means[means["measure"] == "r2"], sets, settings)
    ax.grid(axis="y", alpha=0.3)


def unit_labels(neural: pd.DataFrame) -> dict[int, str]:
    """Per unit index, its name, marked ``°`` when no set silenced it."""
    units = neural.drop_duplicates("unit").sort_values("unit")
    return {
        int(unit): str(name).removeprefix("unit_") + ("°" if not silenced else "")
        for unit, name, silenced in zip(units["unit"], units["unit_name"], units["silenced"], strict=True)
    }


def unit_positions(
    neural: pd.DataFrame, summaries: Mapping[str, pd.DataFrame], measure: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """``neural`` and the summary rows of ``measure``, each with a ``position`` column
    (its x label), and the x labels in order: for a simulated fly, each unit's rank by
    contribution within its seed (``#1`` the largest; means from summary/ranked), so that
    a position means the same in every seed; for recorded data, the unit itself (the same
    neuron in every seed; means from summary/neural_units, for the units of ``neural``)."""
    if has_ground_truth(neural):
        ranked = summaries["ranked"]
        means = ranked[ranked["measure"] == measure]
        means = means.assign(position=means["rank"].map(_rank_label))
        ranks = contribution_ranks(neural)
        points = neural.assign(position=ranks.map(_rank_label))
        return points, means, [f"#{rank}" for rank in range(1, int(ranks.max()) + 1)]
    labels = unit_labels(neural)
    units = summaries["neural_units"]
    means = units[(units["measure"] == measure) & units["unit"].isin(list(labels))]
    return (
        neural.assign(position=neural["unit"].map(labels)),
        means.assign(position=means["unit"].map(labels)),
        list(labels.values()),
    )


def neural_figure(
    neural: pd.DataFrame,
    summaries: Mapping[str, pd.DataFrame],
    noise_sd: float | None,
    settings: PlotSettings,
) -> Figure:
    """Per recorded unit, neural R² of model unit i against neuron i, over a grey band up
    to its chance level (the summaries' ``chance_p95`` of ``r2``, where there is one);
    below it, with the true network, each unit's contribution to behaviour."""
    recorded = neural[neural["recorded"] == 1]
    if recorded.empty:  # a data folder without a neurons file
        fig = Figure(figsize=(settings.width, 3.0), layout="constrained")
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no unit was recorded (no neurons file): nothing to compare", ha="center")
        ax.set_axis_off()
        return fig
    recorded, means, labels = unit_positions(recorded, summaries, "r2")
    positions = list(range(len(labels)))
    truth = noise_sd is not None and has_ground_truth(recorded)
    fig = Figure(figsize=(settings.width, 6.6 if truth else 4.6), layout="constrained")
    top, bottom = (
        fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1]) if truth else (fig.add_subplot(), None)
    )
    level = _untrained_levels(means).get("r2")
    if level is not None:
        top.axhspan(0, level, color="0.88", zorder=0, label=CHANCE_LABEL)
    _draw_per_model(top, recorded, means, labels, settings)
    top.set_ylim(-0.03, 1.05)
    top.set_ylabel("neural R² (model unit i vs neuron i)")
    top.set_title(f"How well each model unit tracks its neuron ({_seed_note(recorded)})")
    top.grid(axis="y", alpha=0.3)
    top.set_xticks(positions, labels)
    if bottom is None:
        top.legend(loc="upper left", fontsize="small", ncols=2, bbox_to_anchor=(1.0, 1.0))
        top.set_xlabel("recorded unit (° never silenced)")
        return fig
    top.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.0, 1.0))
    contribution = recorded.drop_duplicates(["seed", "unit"])
    x = contribution["position"].map(labels.index)
    bottom.scatter(x, contribution["contribution"], s=14, color="black", alpha=0.6)
    bottom.axhline(
        noise_sd, color="black", linestyle="--", linewidth=1, label=f"behavioural noise σ = {noise_sd:g}"
    )
    bottom.set_yscale("log")
    bottom.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    bottom.yaxis.set_minor_formatter(ticker.NullFormatter())
    bottom.set_ylabel("unit's contribution\nstd(w_out,i · h_i)")
    bottom.set_xlabel("fly unit, ranked by its contribution within its seed (#1 the largest)")
    bottom.grid(axis="y", alpha=0.3, which="both")
    bottom.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.0, 1.0))
    return fig


THREE_WAYS = {
    "r2_median": "model unit i vs neuron i",
    "r2_matched_median": "best one-to-one match",
    "r2_decoded_median": "decoded from all units",
}


CAPTION_MEASURES = [*THREE_WAYS, "r2_min", "r2_identified", "r2_units"]
"""What the three-ways caption gives per model: each way's median, and beside the
same-index median its minimum and the units identified (R² >= 0.9) of those scored."""


def three_ways_numbers(summaries: Mapping[str, pd.DataFrame]) -> dict[str, list]:
    """What the three-ways figure shows, for its caption, from summary/models: per model
    present, the mean over seeds of each of ``CAPTION_MEASURES`` (rounded to 3 places),
    and each way's chance level (its 95th percentile over untrained networks; empty
    without one)."""
    table = summaries["models"]
    table = table[table["output"] == ""]
    means = table.set_index(["model", "measure"])["mean"]
    rows = [
        [model, *(round(float(means.get((model, measure), np.nan)), 3) for measure in CAPTION_MEASURES)]
        for model in _present_models(table)
    ]
    untrained = _untrained_levels(table)
    levels = [round(untrained[way], 3) for way in THREE_WAYS] if set(THREE_WAYS) <= set(untrained) else []
    return {"medians": rows, "chance": levels}


def three_ways_figure(
    summaries: Mapping[str, pd.DataFrame], settings: PlotSettings, ground_truth: bool
) -> Figure:
    """Per model, the median over the recorded units of neural R² measured three ways
    (per seed from summary/seeds, the mean over seeds from summary/models), over grey bars
    up to each way's chance level (where there is one). ``ground_truth``: the neurons are
    a simulated fly's."""
    ways = list(THREE_WAYS)
    seeds, means = summaries["seeds"], summaries["models"]
    seeds = seeds[seeds["measure"].isin(ways)].assign(position=lambda table: table["measure"])
    means = means[means["measure"].isin(ways)].assign(position=lambda table: table["measure"])
    fig = Figure(figsize=(settings.width, 4.6), layout="constrained")
    ax = fig.add_subplot()
    _draw_chance(ax, means, ways)
    _draw_per_model(ax, seeds, means, ways, settings, value="score")
    ax.set_xticks(range(len(THREE_WAYS)), list(THREE_WAYS.values()))
    ax.set_xlabel("how each recorded neuron is compared with the model's units")
    ax.set_ylabel("median over the recorded units of neural R²")
    ax.set_ylim(-0.03, 1.05)
    neurons = "the fly's neurons" if ground_truth else "the recorded neurons"
    ax.set_title(f"Did a model learn {neurons}, or only their span?\n({_seed_note(summaries['seeds'])})")
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to label when no unit was recorded
        ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.0, 1.0))
    return fig


def _unit_scatter_panels(
    neural: pd.DataFrame,
    x: str,
    y: str,
    labels: tuple[str, str],
    title: str,
    settings: PlotSettings,
    **shared,
) -> tuple[Figure, list[Axes]]:
    """One panel per model: every unit of every seed as a point (``x`` against ``y``)."""
    fig = Figure(figsize=(settings.width, 3.6), layout="constrained")
    present = _present_models(neural)
    axes = list(fig.subplots(1, len(present), squeeze=False, **shared)[0])
    for model, ax in zip(present, axes, strict=True):
        rows = neural[neural["model"] == model]
        ax.scatter(
            rows[x],
            rows[y],
            s=12,
            color=_color(model, settings),
            marker=_marker(model),
            alpha=0.6,
            linewidths=0,
        )
        ax.set(title=model, xlabel=labels[0])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(labels[1])
    fig.suptitle(f"{title} ({_units_note(neural)})")
    return fig, axes


WIDE_LOG_AXIS_DECADES = 3
"""A log axis spanning more decades than this gets no minor ticks: eight per decade are too
close to read there, and laying them out was most of such a figure's drawing time."""


def _no_minor_ticks_on_wide_log_axes(ax: Axes) -> None:
    for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() == "log" and low > 0 and math.log10(high / low) > WIDE_LOG_AXIS_DECADES:
            axis.set_minor_locator(ticker.NullLocator())


def _estimation_floor(neural: pd.DataFrame) -> float | None:
    """The σ²·d/(n−d−1) the prediction ``r2_predicted`` was computed with (the table's
    ``estimation_floor``, one value for the experiment); None where there is none."""
    floors = neural["estimation_floor"].replace(np.inf, np.nan).dropna().unique()
    return float(floors[0]) if len(floors) == 1 and floors[0] > 0 else None


def contribution_figure(neural: pd.DataFrame, noise_sd: float, settings: PlotSettings) -> Figure:
    """Neural R² (unit i vs unit i) against the fly unit's contribution, every unit of every
    seed, with the best R² the data allow, c² / (c² + σ²·d/(n−d−1)), as a curve where the
    evaluation gave its σ²·d/(n−d−1) (``estimation_floor``); otherwise the noise σ marks where
    units start to drown."""
    labels = ("fly unit's contribution\nstd(w_out,i · h_i)", "neural R² (unit i vs fly unit i)")
    title = "Which units can be identified? Neural R² against each unit's share"
    fig, axes = _unit_scatter_panels(neural, "contribution", "r2", labels, title, settings, sharey=True)
    floor = _estimation_floor(neural)
    low, high = neural["contribution"].min(), neural["contribution"].max()
    grid = np.geomspace(max(low, 1e-12), max(high, 1e-12), 200)
    for ax in axes:
        if floor is None:
            ax.axvline(noise_sd, color="black", linestyle="--", linewidth=1, label=f"noise σ = {noise_sd:g}")
        else:
            ax.plot(
                grid,
                grid**2 / (grid**2 + floor),
                color="black",
                linewidth=1,
                label="best the data allow:\nc² / (c² + σ²·d/(n−d−1))",
            )
            ax.axvline(
                math.sqrt(floor),
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"√(σ²·d/(n−d−1)) = {math.sqrt(floor):.2g} (best R² 0.5)",
            )
        ax.set_xscale("log")
        _no_minor_ticks_on_wide_log_axes(ax)
    axes[0].legend(loc="upper left", fontsize="small")
    return fig


def loss_curve_figure(losses: pd.DataFrame, settings: PlotSettings) -> Figure:
    """One panel per model: the kept restart's training loss at the end of each epoch
    against the Adam steps taken (models whose epochs hold fewer batches train more of
    them: train.min_steps), one line per seed (log scale), so that a run still falling at
    its end shows as such."""
    present = _present_models(losses)
    fig = Figure(figsize=(settings.width, 3.6), layout="constrained")
    axes = list(fig.subplots(1, len(present), squeeze=False, sharey=True)[0])
    for model, ax in zip(present, axes, strict=True):
        for _, table in losses[losses["model"] == model].groupby("seed", sort=True):
            steps = table[table["chosen"] == 1].sort_values("epoch")["step"]
            ax.plot(steps, chosen_losses(table), color=_color(model, settings), linewidth=0.9, alpha=0.7)
        ax.set(title=models.spec(model).label.split(" (")[0], xlabel="Adam steps", yscale="log")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("training loss (kept restart)")
    seeds = losses["seed"].nunique()
    fig.suptitle(
        f"Training loss at each epoch's end, one line per seed ({seeds} seed{'s' if seeds > 1 else ''})"
    )
    return fig


def silencing_effect_figure(neural: pd.DataFrame, settings: PlotSettings) -> Figure:
    """Each unit's silencing effect in the fly against the same unit's in the model."""
    effects = neural[["fly_silencing_effect", "silencing_effect"]].to_numpy()
    positive = effects[effects > 0]
    limits = (positive.min() / 1.5, positive.max() * 1.5) if len(positive) else (1e-3, 1.0)
    labels = (
        "silencing fly unit i:\nRMS change of behaviour",
        "silencing model unit i:\nRMS change of output",
    )
    title = "Does silencing a model unit do what silencing the fly's unit does?"
    fig, axes = _unit_scatter_panels(
        neural, "fly_silencing_effect", "silencing_effect", labels, title, settings, sharex=True, sharey=True
    )
    for ax in axes:
        ax.plot(limits, limits, color="black", linewidth=0.8, label="equal effect")
        ax.set(xscale="log", yscale="log", xlim=limits, ylim=limits)
        _no_minor_ticks_on_wide_log_axes(ax)
    axes[0].legend(loc="upper left", fontsize="small")
    return fig


def weight_cosine_figure(
    neural: pd.DataFrame, summaries: Mapping[str, pd.DataFrame], settings: PlotSettings
) -> Figure:
    """Per fly unit (ranked by contribution within its seed), |cosine| between its input
    weights and model unit i's."""
    neural, means, labels = unit_positions(neural, summaries, "weight_cosine")
    fig = Figure(figsize=(settings.width, 4.6), layout="constrained")
    ax = fig.add_subplot()
    _draw_per_model(ax, neural, means, labels, settings, value="weight_cosine")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("fly unit, ranked by its contribution within its seed (#1 the largest)")
    ax.set_ylabel("|cosine| of input weights,\nmodel unit i vs fly unit i")
    ax.set_ylim(-0.03, 1.05)
    ax.set_title(f"Weight recovery: does model unit i see what fly unit i sees? ({_seed_note(neural)})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.0, 1.0))
    return fig


SWEEP_NEURAL = ("r2_mean", "neural R², model unit i vs neuron i\n(mean over units)")
SWEEP_BEHAVIOR = ("behavior_r2_silenced", "behaviour R² on silenced sets\n(mean over sets)")
BY_CONSTRUCTION = "ko scored masked, do unmasked:\nko's lead here is partly by construction"
"""On a silenced set ko is scored with its matching units masked, as the data were made,
and do with nothing masked (it masked random units in training), so ko - do on the
behaviour of silenced sets favours ko by construction; the figure says so where it shows it."""


def _sweep_panels(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(measure, output, label) per column: neural R², then behaviour per output (never
    averaged over outputs)."""
    behavior = summary[summary["measure"] == SWEEP_BEHAVIOR[0]]
    outputs = list(dict.fromkeys(behavior["output"]))
    named = len(outputs) > 1
    return [
        (SWEEP_NEURAL[0], "", SWEEP_NEURAL[1]),
        *((SWEEP_BEHAVIOR[0], out, SWEEP_BEHAVIOR[1] + (f", {out}" if named else "")) for out in outputs),
    ]


def _axis_values(values: list, labels: list[str]) -> tuple[np.ndarray, list[str], bool]:
    """x positions of swept values (``labels``: their folder names): the numbers themselves
    (log-spaced when they span a factor of 10 or more), or evenly spaced categories."""
    if all(isinstance(v, int | float) for v in values):
        numbers = np.array(values, float)
        return numbers, labels, bool(numbers.min() > 0 and numbers.max() / numbers.min() >= 10)
    return np.arange(len(values), dtype=float), labels, False


def _draw_sweep_chance(ax: Axes, summary: pd.DataFrame, measure: str, position: dict) -> None:
    """A grey band up to ``measure``'s chance level at each swept value (the summary's
    ``chance_p95``: untrained networks of that point's shape); nothing where it has none."""
    if "chance_p95" not in summary:
        return
    rows = summary[(summary["model"] == models.CONTRAST[0]) & (summary["measure"] == measure)]
    rows = rows.assign(x=rows["value"].map(position)).sort_values("x").dropna(subset=["chance_p95"])
    if len(rows):
        ax.fill_between(
            rows["x"], 0, rows["chance_p95"], color="0.85", linewidth=0, label=CHANCE_LABEL, zorder=0
        )


def sweep_figure(
    summary: pd.DataFrame, key: str, values: list, names: list[str], settings: PlotSettings
) -> Figure:
    """Top: the registry's contrast pair (ko and do) against the swept value; bottom: their
    difference (on behaviour marked as favouring ko by construction: ``BY_CONSTRUCTION``).
    Mean over seeds with its 95 % interval; one column for neural R², one per behavioural
    output. A value where some
    network's training did not converge (the summary's ``converged`` column, where there
    is one) is ringed in red."""
    difference = contrast_label()
    x, labels, log_x = _axis_values(values, names)
    position = dict(zip(labels, x, strict=True))
    panels = _sweep_panels(summary)
    fig = Figure(figsize=(settings.width, 5.6), layout="constrained")
    axes = fig.subplots(2, len(panels), sharex=True, squeeze=False)
    for column, (measure, output, label) in enumerate(panels):
        for row, shown in enumerate([list(models.CONTRAST), [difference]]):
            ax = axes[row, column]
            ringed = False
            for model in shown:
                rows = summary[
                    (summary["model"] == model)
                    & (summary["measure"] == measure)
                    & (summary["output"] == output)
                ]
                rows = rows.assign(x=rows["value"].map(position)).sort_values("x")
                color = "black" if model == difference else _color(model, settings)
                marker = "o" if model == difference else _marker(model)
                ax.plot(rows["x"], rows["mean"], marker=marker, color=color, label=model)
                ax.fill_between(
                    rows["x"], rows["ci_low"], rows["ci_high"], color=color, alpha=0.2, linewidth=0
                )
                stuck = rows[rows["converged"] == 0] if "converged" in rows else rows.iloc[:0]
                if len(stuck):
                    ax.scatter(
                        stuck["x"],
                        stuck["mean"],
                        s=160,
                        facecolors="none",
                        edgecolors="red",
                        linewidths=1.5,
                        label=None if ringed else "not converged",
                        zorder=3,
                    )
                    ringed = True
            if row == 0:
                _draw_sweep_chance(ax, summary, measure, position)
            if row == 1:
                ax.axhline(0, color="black", linewidth=0.8, linestyle=":")
                ax.set_xlabel(key)
                if measure == SWEEP_BEHAVIOR[0]:
                    ax.set_title(BY_CONSTRUCTION, fontsize="small")
            ax.set_ylabel(label if row == 0 else f"{difference}:\n{label.split(chr(10))[0]}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
            if log_x:
                ax.set_xscale("log")
            ax.set_xticks(x, labels)
            ax.xaxis.set_minor_locator(ticker.NullLocator())
    n_seeds = int(summary["n_seeds"].max())
    fig.suptitle(
        f"Sweep of {key}: {' vs '.join(models.spec(m).label for m in models.CONTRAST)}, "
        f"{n_seeds} seeds, mean ± 95% bootstrap interval"
    )
    return fig


PLAN_COLORMAP = "viridis"
"""The planner's cells: predicted R² on a fixed 0-1 scale, sequential and colour-blind safe."""
NO_PREDICTION = {"facecolor": "0.88", "edgecolor": "0.6", "hatch": "///", "linewidth": 0}
"""How a cell without a prediction (a unit with a reason) is drawn (the hatch takes the edge
colour; no edge is drawn: a small gap parts neighbouring rows)."""
PLAN_COLUMNS_NEEDED = {
    "planned": ["seed", "unit", "n_per_set", "predicted_r2", "p_identified", "method", "reason"],
    "smallest": ["seed", "unit", "min_n_per_set"],
}
SMALLEST_MARKER = MarkerStyle(MarkerPath([(0, 0), (1, 0), (0, -1), (0, 0)]))
"""A unit's smallest design: a wedge in its cell's top left corner (the marker's origin)."""
_PLAN_MAX_HEIGHT = 30.0
"""Inches the planner's figure aims to stay within (rows shrink down to a floor)."""


def _check_plan_columns(planned: pd.DataFrame, smallest: pd.DataFrame) -> None:
    for name, table in (("planned", planned), ("smallest", smallest)):
        missing = [column for column in PLAN_COLUMNS_NEEDED[name] if column not in table]
        if missing:
            raise ValueError(
                f"the {name} table lacks column(s) {', '.join(missing)} "
                f"(expected {', '.join(PLAN_COLUMNS_NEEDED[name])})"
            )


def plan_seeds(planned: pd.DataFrame) -> list:
    """The table's seeds in panel order: a recorded pilot (``<NA>``) first, then each
    simulated fly's seed ascending. Each is its own fly: never pooled."""
    seeds = planned["seed"]
    return ([pd.NA] if seeds.isna().any() else []) + sorted(int(seed) for seed in seeds.dropna().unique())


def _of_seed(table: pd.DataFrame, seed) -> pd.DataFrame:
    return table[table["seed"].isna()] if pd.isna(seed) else table[table["seed"].eq(seed).fillna(False)]


def _only_a_pilot(seeds: list) -> bool:
    return len(seeds) == 1 and pd.isna(seeds[0])


def _plan_flies(seeds: list) -> str:
    """Whose pilot a plan comes from, as the figure's title says it."""
    if _only_a_pilot(seeds):
        return "the recorded pilot"
    simulated = sum(not pd.isna(seed) for seed in seeds)
    flies = f"{simulated} simulated fl{'y' if simulated == 1 else 'ies'}"
    if simulated < len(seeds):
        flies = f"the recorded pilot and {flies}"
    return flies if len(seeds) == 1 else f"{flies}, one panel each, never pooled"


def plan_panel_title(seed) -> str:
    return "pilot" if pd.isna(seed) else f"seed {int(seed)}"


def _reason_label(ax: Axes, x: float, y: float, reason: str, size: float) -> None:
    """A unit's reason for no prediction, in a few words, centred on its cells."""
    ax.text(
        x,
        y,
        _short_reason(reason),
        ha="center",
        va="center",
        fontsize=size,
        color="0.15",
        gid="reason",
        in_layout=False,
    )


def _short_reason(reason: str) -> str:
    return SHORT_REASONS.get(reason, reason)


def _p_text(p: float) -> str:
    """A probability as a cell shows it: ``.85``, ``1.00``."""
    return f"{p:.2f}".removeprefix("0")


@dataclass(frozen=True)
class _PlanGeometry:
    """How the planner's panels are laid out: the grid, each row's height (inches), the
    cell text's size (points; 0: no text, the cells are too small) and line break."""

    columns: int
    rows: int
    row_height: float
    fontsize: float
    two_lines: bool
    height: float


def _plan_geometry(
    n_seeds: int, n_units: int, n_designs: int, longest_name: int, width: float
) -> _PlanGeometry:
    """Panels as wide as ``width`` allows (cells at least half an inch wide), and the
    largest cell text that fits a cell, on one line or two."""
    label, colorbar, cell_min = 0.3 + 0.07 * longest_name, 1.0, 0.5
    columns = max(1, min(n_seeds, int((width - colorbar) // (label + n_designs * cell_min))))
    rows = math.ceil(n_seeds / columns)
    cell_width = max(((width - colorbar) / columns - label - 0.2) / n_designs, 0.05)
    frame, margins = 0.85, 1.9  # per panel: title and design ticks; the figure's titles and legend
    row_height = min(0.3, max(0.12, (_PLAN_MAX_HEIGHT - margins - rows * frame) / (rows * n_units)))
    points_wide, points_high = cell_width * 72 * 0.9, row_height * 72
    one_line = min(points_wide / (12 * 0.6), points_high / 1.4)  # "0.93 · p .85"
    two_lines = min(points_wide / (5 * 0.6), points_high / 2.6)  # "0.93" over "p .85"
    fontsize = min(max(one_line, two_lines), 8.5)
    return _PlanGeometry(
        columns=columns,
        rows=rows,
        row_height=row_height,
        fontsize=fontsize if fontsize >= 4.5 else 0.0,
        two_lines=two_lines > one_line,
        height=rows * (n_units * row_height + frame) + margins,
    )


def _box(left: float, top: float, width: float = 1.0, gap: float = 0.0) -> list[tuple[float, float]]:
    """A row's cells from ``left`` (one cell by default) as a polygon, its top left first,
    ``gap`` (a fraction of the row) short of the row's top and bottom."""
    top, bottom = top + gap, top + 1.0 - gap
    return [(left, top), (left + width, top), (left + width, bottom), (left, bottom)]


def _plan_panel(
    ax: Axes,
    rows: pd.DataFrame,
    smallest: pd.DataFrame,
    designs: list[int],
    probability: float,
    geometry: _PlanGeometry,
):
    """One seed's units (rows, in the data's order) by designs (columns, ascending n):
    the cell's colour and text its predicted R² and p_identified, outlined where p reaches
    ``probability``, the unit's smallest such design marked on its left edge; a unit with
    a reason grey and hatched across its row, with the reason in a few words."""
    from matplotlib.collections import PolyCollection

    units = list(pd.unique(rows["unit"]))
    table = rows.set_index(["unit", "n_per_set"])
    if not table.index.is_unique:
        doubled = table.index[table.index.duplicated()][0]
        raise ValueError(f"the planned table has two rows for unit {doubled[0]} at n_per_set {doubled[1]}")
    cells = pd.MultiIndex.from_product([units, designs])
    r2 = table["predicted_r2"].reindex(cells).to_numpy(float).reshape(len(units), len(designs))
    p = table["p_identified"].reindex(cells).to_numpy(float).reshape(r2.shape)
    reason = table["reason"].reindex(cells).fillna("").to_numpy(str).reshape(r2.shape)
    shown = np.where(reason == "", r2, np.nan)
    mesh = ax.pcolormesh(
        np.arange(len(designs) + 1) - 0.5,
        np.arange(len(units) + 1) - 0.5,
        np.ma.masked_invalid(shown),
        cmap=PLAN_COLORMAP,
        vmin=0.0,
        vmax=1.0,
        edgecolors="white",
        linewidth=0.5,
        gid="predicted_r2",
    )
    cell_font = geometry.fontsize
    reason_font = max(cell_font, 4.5) if cell_font else 4.5
    greyed = []
    for row, unit_reasons in enumerate(reason):
        given = [text for text in unit_reasons if text]
        if given and len(given) == len(designs) and len(set(given)) == 1:  # the whole row: one reason
            greyed.append(_box(-0.5, row - 0.5, len(designs), gap=0.03))
            _reason_label(ax, (len(designs) - 1) / 2, row, given[0], reason_font)
            continue
        for column, text in enumerate(unit_reasons):
            if text:
                greyed.append(_box(column - 0.47, row - 0.5, 0.94, gap=0.03))
                _reason_label(ax, column, row, text, reason_font)
    if greyed:
        ax.add_collection(PolyCollection(greyed, gid="no_prediction", **NO_PREDICTION))
    if cell_font:
        for row, column in zip(*np.nonzero(np.isfinite(shown)), strict=True):
            value = f"{r2[row, column]:.2f}"
            if np.isfinite(p[row, column]):
                value += ("\n" if geometry.two_lines else " · ") + f"p {_p_text(p[row, column])}"
            ax.text(
                column,
                row,
                value,
                ha="center",
                va="center",
                fontsize=cell_font,
                color="white" if r2[row, column] < 0.55 else "black",
                gid="cell",
                in_layout=False,
            )
    line = max(0.8, min(2.4, geometry.row_height * 9))
    reached = [
        (row, column)
        for row, column in zip(*np.nonzero(p >= probability), strict=True)
        if reason[row, column] == ""
    ]
    outlines = [_box(column - 0.5, row - 0.5) for row, column in reached]
    for color, width, name in (
        ("black", line, "reaches_target"),
        ("white", line / 3, None),
    ):  # any background
        ax.add_collection(
            PolyCollection(outlines, facecolor="none", edgecolor=color, linewidth=width, gid=name, zorder=3)
        )
    first = {
        unit: n for unit, n in zip(smallest["unit"], smallest["min_n_per_set"], strict=True) if not pd.isna(n)
    }
    marks = [
        (designs.index(int(n)), units.index(unit))
        for unit, n in first.items()
        if unit in units and int(n) in designs
    ]
    size = geometry.row_height * 72 * 1.1  # points: the corner's legs are half of it
    inside = transforms.ScaledTranslation(line / 2 / 72, -line / 2 / 72, ax.figure.dpi_scale_trans)
    ax.scatter(
        [column - 0.5 for column, _ in marks],
        [row - 0.5 for _, row in marks],
        marker=SMALLEST_MARKER,
        s=size**2,
        transform=ax.transData + inside,
        facecolors="white",
        edgecolors="black",
        linewidths=0.6,
        zorder=4,
        gid="smallest_design",
    )
    ax.set_xlim(-0.5, len(designs) - 0.5)
    ax.set_ylim(len(units) - 0.5, -0.5)
    ax.set_xticks(range(len(designs)), [str(n) for n in designs])
    ax.set_yticks(range(len(units)), [str(unit).removeprefix("unit_") for unit in units])
    ax.tick_params(length=0, labelsize=max(min(8.0, geometry.row_height * 72 * 0.75), 4.0))
    for spine in ax.spines.values():
        spine.set_visible(False)
    return mesh


def plan_figure(
    planned: pd.DataFrame,
    smallest: pd.DataFrame,
    target_r2: float,
    probability: float,
    settings: PlotSettings,
) -> Figure:
    """The experiment planner's figure: per seed (each a different fly; a recorded pilot's
    ``<NA>``: "pilot") one heatmap of units (rows, in the data's order) by designs
    (columns: ``n_per_set`` ascending), coloured by the predicted best neural R² on a fixed
    0-1 scale, each cell giving it and ``p_identified``; outlined where ``p_identified``
    reaches ``probability``; each unit's smallest such design (``smallest``) marked on the
    cell's left edge; units with a reason grey and hatched, with the reason in a few words."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    _check_plan_columns(planned, smallest)
    if planned.empty:
        raise ValueError("the planned table has no rows: nothing to draw")
    seeds = plan_seeds(planned)
    designs = sorted(int(n) for n in planned["n_per_set"].unique())
    n_units = max(_of_seed(planned, seed)["unit"].nunique() for seed in seeds)
    longest = max(len(str(unit).removeprefix("unit_")) for unit in planned["unit"])
    geometry = _plan_geometry(len(seeds), n_units, len(designs), longest, settings.width)
    fig = Figure(figsize=(settings.width, geometry.height), layout="constrained")
    grid = fig.subplots(geometry.rows, geometry.columns, squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(seeds) :]:
        ax.remove()
    for number, (ax, seed) in enumerate(zip(axes, seeds, strict=False)):
        mesh = _plan_panel(
            ax, _of_seed(planned, seed), _of_seed(smallest, seed), designs, probability, geometry
        )
        ax.set_title(plan_panel_title(seed), fontsize="medium")
        if number + geometry.columns >= len(seeds):  # no panel below
            ax.set_xlabel("n_per_set", fontsize="small")
    shrink = min(1.0, 4.0 / geometry.height)
    fig.colorbar(
        mesh,
        ax=axes[: len(seeds)],
        shrink=shrink,
        aspect=20,
        anchor=(0.0, 1.0),
        label="predicted best neural R²",
    )
    fig.supylabel("unit, in the data's order", fontsize="medium")
    methods = " and ".join(sorted(set(planned["method"])))
    flies = _plan_flies(seeds)
    fig.suptitle(
        f"Planned designs: the best neural R² knockout training can reach per unit\n"
        f"({methods} method, from {flies})",
        fontsize="medium",
    )
    handles = [
        Patch(
            facecolor="none",
            edgecolor="black",
            linewidth=2.0,
            label=f"p ≥ {probability:g}: R² ≥ {target_r2:g} in ≥ {probability:.0%} of the plan's draws",
        ),
        Line2D(
            [],
            [],
            linestyle="none",
            marker=">",
            markerfacecolor="white",
            markeredgecolor="black",
            label="the unit's smallest such design",
        ),
        Patch(**NO_PREDICTION, label="no prediction (the reason in the row)"),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=max(1, min(3, int(settings.width // 3.6))),
        fontsize="small",
        title=(
            f"target R² = {target_r2:g}, probability = {probability:g}; columns: designs, n_per_set "
            "training samples per silenced line; cell: predicted R² · p"
        ),
        title_fontsize="small",
        frameon=False,
    )
    return fig


def _seed_units(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its seed as text (``<NA>`` for a pilot), to key units by (seed, unit)."""
    return table.assign(seed=table["seed"].astype("Int64").astype(str))


def _unit_keys(table: pd.DataFrame) -> set[tuple[str, str]]:
    keyed = _seed_units(table)
    return set(zip(keyed["seed"], keyed["unit"], strict=True))


def plan_caption_values(
    planned: pd.DataFrame, smallest: pd.DataFrame, target_r2: float, probability: float
) -> dict:
    """What the planner's caption states: the method(s), the flies (``pilot``: one recorded
    pilot; else the simulated flies' ``seeds``), the designs, the target and probability,
    per design how many units (over every seed) reach the target with p_identified >=
    ``probability``, how many units have a prediction and reach it at no planned design,
    per reason (in full and as the figure's cells say it) how many units have it, and
    where the formula's training check ran, per design the largest shortfall it took off."""
    _check_plan_columns(planned, smallest)
    checked = (
        planned.dropna(subset=["training_shortfall"]) if "training_shortfall" in planned else planned[:0]
    )
    seeds = plan_seeds(planned)
    designs = sorted(int(n) for n in planned["n_per_set"].unique())
    predicted = planned["reason"].eq("")
    reached = planned[predicted & planned["p_identified"].ge(probability).fillna(False)]
    per_design = reached.groupby("n_per_set")["unit"].size()
    with_reason = _seed_units(planned[~predicted]).drop_duplicates(["seed", "unit"])
    reasons = with_reason["reason"].value_counts(sort=False)
    found = smallest.dropna(subset=["min_n_per_set"])
    unreached = _unit_keys(planned[predicted]) - _unit_keys(found)
    return {
        "methods": sorted(set(planned["method"])),
        "pilot": _only_a_pilot(seeds),
        "seeds": [int(seed) for seed in seeds if not pd.isna(seed)],
        "n_seeds": len(seeds),
        "designs": designs,
        "target_r2": float(target_r2),
        "probability": float(probability),
        "interval": INTERVAL,
        "units": len(_unit_keys(planned)),
        "reaching": {n: int(per_design.get(n, 0)) for n in designs},
        "unreached": len(unreached),
        "reasons": [
            {"reason": str(reason), "short": _short_reason(str(reason)), "units": int(count)}
            for reason, count in reasons.items()
        ],
        "shortfalls": {
            int(n): round(float(value), 3)
            for n, value in checked.groupby("n_per_set")["training_shortfall"].max().items()
        },
    }


REPRODUCIBLE_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}
"""Per format, the metadata left out so that the same figure gives the same bytes."""


def _plain_log_ticks(fig: Figure) -> None:
    """Log axes labelled in plain numbers (0.01, 1e-05): their default labels are maths
    (10 to a power), which ``plain_text`` would print as the raw maths source."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            if isinstance(axis.get_major_formatter(), ticker.LogFormatterMathtext):  # not labels set by hand
                axis.set_major_formatter(ticker.LogFormatter())
            if isinstance(axis.get_minor_formatter(), ticker.LogFormatterMathtext):
                axis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def save_figure(fig: Figure, path: str | os.PathLike, settings: PlotSettings) -> None:
    """The figure in the format its suffix names (png, pdf, svg), without timestamps or
    random ids (the same figure gives the same bytes), written atomically."""
    from matplotlib import rc_context

    kind = os.fspath(path).rsplit(".", 1)[-1]
    _plain_log_ticks(fig)
    with rc_context({"svg.hashsalt": "knockout"}), plain_text():
        write_atomically(
            path,
            lambda tmp: fig.savefig(tmp, format=kind, dpi=settings.dpi, metadata=REPRODUCIBLE_METADATA[kind]),
        )


def save_figure_in_formats(fig: Figure, png: str | os.PathLike, settings: PlotSettings) -> None:
    """The figure at ``png`` and, beside it under the same name, in every other format of
    ``settings.formats`` (the paths the workflow declares for ``plot.formats``)."""
    for kind in ["png", *(kind for kind in settings.formats if kind != "png")]:
        save_figure(fig, Path(png).with_suffix(f".{kind}"), settings)
