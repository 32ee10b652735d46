"""The two summary figures: behaviour R² per test set and neural R² per hidden unit.

Inputs are the per-seed evaluation tables concatenated with a ``seed`` column.
Every seed is drawn as a small point, the mean over seeds as a large marker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from knockout import naming
from knockout.tables import write_atomically

LABELS = {
    "control": "control (control data only)",
    "noko": "noko (all data, no masking)",
    "ko": "ko (knockout training)",
    "do": "do (random-unit dropout)",
}


@dataclass(frozen=True)
class PlotSettings:
    """The ``plot`` section of the config."""

    dpi: int = 150
    width: float = 11.0
    colors: dict[str, str] = field(
        default_factory=lambda: {"control": "#7f7f7f", "noko": "#1f77b4", "ko": "#d62728", "do": "#2ca02c"}
    )


def _draw_per_model(
    ax: Axes, table: pd.DataFrame, x_column: str, x_order: list, settings: PlotSettings
) -> None:
    """Each seed as a small point and the mean over seeds as a large marker, per model."""
    models = [m for m in naming.MODELS if m in set(table["model"])]
    offsets = np.linspace(-0.27, 0.27, len(models)) if len(models) > 1 else [0.0]
    position = {value: i for i, value in enumerate(x_order)}
    for offset, model in zip(offsets, models, strict=True):
        rows = table[table["model"] == model]
        x = rows[x_column].map(position).to_numpy(float) + offset
        color = settings.colors.get(model)
        if rows["seed"].nunique() > 1:
            ax.scatter(x, rows["r2"], s=9, color=color, alpha=0.35, linewidths=0)
        means = rows.groupby(x_column, sort=False)["r2"].mean()
        ax.scatter(
            means.index.map(position).to_numpy(float) + offset,
            means.to_numpy(),
            s=42,
            color=color,
            edgecolors="black",
            linewidths=0.5,
            label=LABELS[model],
            zorder=3,
        )


def _seed_note(table: pd.DataFrame) -> str:
    seeds = table["seed"].nunique()
    return "1 seed" if seeds == 1 else f"{seeds} seeds: small points per seed, large markers the mean"


def behavior_figure(behavior: pd.DataFrame, settings: PlotSettings) -> Figure:
    datasets = list(dict.fromkeys(behavior.sort_values("silenced_unit")["dataset"]))
    fig = Figure(figsize=(settings.width, 4.8), layout="constrained")
    ax = fig.add_subplot()
    ceiling = behavior.drop_duplicates(["seed", "dataset"]).groupby("dataset")["noise_ceiling"].mean()
    ax.scatter(
        [datasets.index(d) for d in ceiling.index],
        ceiling.to_numpy(),
        marker="_",
        s=420,
        color="black",
        linewidths=1.5,
        label="noise ceiling (the fly itself)",
        zorder=4,
    )
    _draw_per_model(ax, behavior, "dataset", datasets, settings)
    ax.set_xticks(range(len(datasets)), ["control", *[d.removeprefix("unit_") for d in datasets[1:]]])
    ax.set_xlabel("test set (control, or the fly's hidden unit that was silenced)")
    ax.set_ylabel("behaviour R² on the test set")
    ax.set_title(f"How well each model predicts the fly's behaviour ({_seed_note(behavior)})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower left", fontsize="small", ncols=2)
    return fig


def neural_figure(neural: pd.DataFrame, noise_sd: float, settings: PlotSettings) -> Figure:
    units = sorted(neural["unit"].unique())
    fig = Figure(figsize=(settings.width, 6.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    _draw_per_model(top, neural, "unit", units, settings)
    top.set_ylim(-0.03, 1.05)
    top.set_ylabel("neural R² (model unit i vs fly unit i)")
    top.set_title(f"How well each model unit tracks the fly's own hidden unit ({_seed_note(neural)})")
    top.grid(axis="y", alpha=0.3)
    top.legend(loc="center left", fontsize="small", ncols=2, bbox_to_anchor=(0.0, 0.62))

    contribution = neural.drop_duplicates(["seed", "unit"])
    bottom.scatter(contribution["unit"], contribution["contribution"], s=14, color="black", alpha=0.6)
    bottom.axhline(
        noise_sd, color="black", linestyle="--", linewidth=1, label=f"behavioural noise σ = {noise_sd:g}"
    )
    bottom.set_yscale("log")
    bottom.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    bottom.yaxis.set_minor_formatter(ticker.NullFormatter())
    bottom.set_ylabel("unit's contribution\nstd(w_out,i · h_i)")
    bottom.set_xlabel("hidden unit i")
    bottom.set_xticks(units)
    bottom.grid(axis="y", alpha=0.3, which="both")
    bottom.legend(loc="lower right", fontsize="small")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, settings: PlotSettings) -> None:
    """PNG without a timestamp, written atomically."""
    write_atomically(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=settings.dpi, metadata={"Software": None})
    )
