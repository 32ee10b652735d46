"""The experiment planner against actual knockout runs: is what it predicts what ko reaches?

Per grid point (activation, behavioural noise σ) and seed, a simulated fly gives

- the *truth*: at each design (``n_per_set`` training rows per set), one ko run as the
  workflow does it (``simulation.simulate``, ko trained by ``train_fits``, every run of a
  grid point in one batched call), scored as neural.parquet's ``r2``: per unit, the
  squared correlation of ko unit i with fly unit i on 2000 probe inputs;
- the *plan*: from the workflow's pilot of the same fly (``simulation.pilot_table``, a
  stream of its own), the planner's ``predicted_r2``, ``lower``/``upper``,
  ``p_identified`` and smallest design (``smallest_designs``, p >= 0.8) per unit and design.
  Linear flies: the formula with its training check (the truth's training settings) and
  without it (``formula, unchecked``: the exact optimum's numbers). ReLU flies: the
  simulation method (replicates 4, the truth's training settings), and the unchecked
  formula beside it (derived for linear networks, called directly for comparison).

Also written: ``oracle``, the formula with the fly's true contributions and σ (what the
formula would say with a perfect pilot), which tells the formula's own error from the
pilot's; and for linear flies ``optimum``, the R² of the knockout objective's exact
optimum on the same training rows, which tells how far the ko run fell short of it
(training). Seeds 100-104 are used for nothing else (the unit tests use seeds < 10).

Writes ``results/benchmarks/plan_validation.parquet`` (one row per grid point, pilot size,
method, seed, unit and design) and ``plan_validation_times.parquet``, and prints a
Markdown summary: per (activation, method, σ, pilot, design) the MAE and mean bias of
``predicted_r2`` against the actual R², the coverage of [lower, upper], the accuracy at
the target (predicted >= 0.9 against actual >= 0.9) and the Brier score of
``p_identified``; the calibration of ``p_identified``; per unit whether the planned
smallest design is within one grid step of the true one; and the time of each part.

Run: ``PYTHONPATH=src:workflow/lib .venv/bin/python bench/plan_validation.py [--quick]`` (about 3
minutes on 2 shared cores; ``--quick`` about 1); with ``OMP_NUM_THREADS=1`` numpy's
linear algebra keeps to one thread as torch does (``--threads``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from knockout import identifiability, metrics, planning
from knockout.behavior_data import BehaviorData
from knockout.data_folder import simulated_layout
from knockout.simulation import DataSettings, FlySettings, pilot_table, simulate
from knockout.training import Fit, TrainSettings, train_fits

TARGET = 0.9
PROBABILITY = 0.8
PROBE_ROWS = 2000
RESAMPLES = 200
P_BIN = 0.2


@dataclass(frozen=True)
class Grid:
    """One activation's part of the grid."""

    activation: str
    n_inputs: int
    n_hidden: int
    designs: tuple[int, ...]
    pilots: tuple[int, ...]
    methods: tuple[str, ...]
    settings: TrainSettings


UNCHECKED = "formula, unchecked"
"""The formula without its training check: the exact optimum's numbers."""


def grids(quick: bool) -> list[Grid]:
    linear, relu = TrainSettings(), TrainSettings(restarts=8)
    if quick:
        return [
            Grid("linear", 50, 16, (100, 1000), (200,), (planning.FORMULA, UNCHECKED), linear),
            Grid("relu", 20, 8, (40, 300), (200,), (planning.SIMULATION, UNCHECKED), relu),
        ]
    return [
        Grid("linear", 50, 16, (100, 300, 1000, 2500), (100, 200), (planning.FORMULA, UNCHECKED), linear),
        Grid("relu", 20, 8, (40, 100, 300, 1000), (200,), (planning.SIMULATION, UNCHECKED), relu),
    ]


def say(message: str) -> None:
    print(message, flush=True)


def truth(fly_settings: FlySettings, grid: Grid, seeds: list[int]) -> pd.DataFrame:
    """Per seed, design and unit the R² an actual ko run reaches, with the fly's true
    squared contribution and the formula at the true contributions and σ (``oracle``)."""
    layout = simulated_layout(grid.n_inputs, grid.n_hidden, 1, None)
    fits, flies = [], []
    for seed in seeds:
        for n in grid.designs:
            fly, train, _, neurons = simulate(fly_settings, DataSettings(n, 2, PROBE_ROWS), seed)
            probe = torch.from_numpy(neurons[list(layout.inputs)].to_numpy(np.float32, copy=True))
            flies.append((seed, n, fly, probe))
            fits.append(Fit("ko", BehaviorData.from_table(train, layout), grid.settings, seed))
    results = train_fits(fits, fly_settings.architecture)
    exact = identifiability.optimum_problem(fly_settings.architecture) is None
    rows = []
    for (seed, n, fly, probe), fit, result in zip(flies, fits, results, strict=True):
        with torch.no_grad():
            fly_hidden = fly.activity(probe).double().numpy()
            ko_hidden = result.network.activity(probe).double().numpy()
            optimum = np.full(grid.n_hidden, np.nan)
            if exact:
                best = identifiability.fitted_optimum(fit.data, fly_settings.architecture)
                best_hidden = best.activity(probe).double().numpy()
                optimum = np.diagonal(metrics.squared_correlations(fly_hidden, best_hidden))
        actual = np.diagonal(metrics.squared_correlations(fly_hidden, ko_hidden))
        c2 = metrics.unit_contributions(fly, fly_hidden) ** 2
        oracle = planning.predicted_r2(c2, fly_settings.noise_sd**2, grid.n_inputs, n)
        for unit in range(grid.n_hidden):
            rows.append((seed, layout.units[unit], n, actual[unit], optimum[unit], oracle[unit], c2[unit]))
    columns = ["seed", "unit", "n_per_set", "actual", "optimum", "oracle", "true_c2"]
    return pd.DataFrame(rows, columns=columns)


def plans(
    fly_settings: FlySettings, grid: Grid, seeds: list[int], n_pilot: int, method: str, replicates: int
) -> pd.DataFrame:
    """The planner's table per seed from the workflow's pilot of that seed's fly, with each
    unit's planned smallest design."""
    layout = simulated_layout(grid.n_inputs, grid.n_hidden, 1, None)
    pilots = [planning.PilotTable(pilot_table(fly_settings, n_pilot, seed), layout) for seed in seeds]
    if method == UNCHECKED:  # the formula alone, also where it does not apply (ReLU, for comparison)
        planned = [
            planning.formula_plan(
                planning.Pilot.from_table(pilot.table, layout),
                grid.designs,
                layout.units,
                TARGET,
                RESAMPLES,
                seed,
                fly_settings.silenced_activity,
            )
            for pilot, seed in zip(pilots, seeds, strict=True)
        ]
    else:
        planned = planning.plan_pilots(
            pilots,
            seeds,
            fly_settings.architecture,
            grid.settings,
            grid.designs,
            TARGET,
            method,
            RESAMPLES,
            replicates,
            silenced_activity=fly_settings.silenced_activity,
        )
    planned = [table.assign(method=method) for table in planned]
    tables = []
    for seed, table in zip(seeds, planned, strict=True):
        smallest = planning.smallest_designs(table, PROBABILITY)[["unit", "min_n_per_set"]]
        table = table.merge(smallest.rename(columns={"min_n_per_set": "min_n_planned"}), on="unit")
        tables.append(table.assign(seed=seed))
    return pd.concat(tables, ignore_index=True)


def true_smallest(rows: pd.DataFrame) -> pd.Series:
    """Per (seed, unit) the smallest design whose actual R² reaches the target (NA if none)."""
    reached = rows[rows["actual"] >= TARGET].groupby(["seed", "unit"])["n_per_set"].min()
    index = rows.set_index(["seed", "unit"]).index.unique()
    return reached.reindex(index).astype("Int64").rename("min_n_true")


def within_one_step(planned, actual, designs: tuple[int, ...]) -> bool:
    """Whether the planned smallest design is at most one grid step from the true one;
    both null counts as right, one null as wrong."""
    if pd.isna(planned) or pd.isna(actual):
        return bool(pd.isna(planned) and pd.isna(actual))
    return abs(designs.index(int(planned)) - designs.index(int(actual))) <= 1


def run(grid_parts: list[Grid], noises: list[float], seeds: list[int], replicates: int):
    tables, times = [], []
    for grid in grid_parts:
        for noise_sd in noises:
            fly_settings = FlySettings(
                grid.n_inputs, grid.n_hidden, noise_sd=noise_sd, activation=grid.activation
            )
            start = time.perf_counter()
            actual = truth(fly_settings, grid, seeds)
            networks = len(seeds) * len(grid.designs) * grid.settings.restarts
            times.append(
                (grid.activation, noise_sd, "truth (ko runs)", None, networks, time.perf_counter() - start)
            )
            say(f"{grid.activation} σ={noise_sd}: truth {times[-1][-1]:.1f} s")
            for method in grid.methods:
                for n_pilot in grid.pilots:
                    start = time.perf_counter()
                    planned = plans(fly_settings, grid, seeds, n_pilot, method, replicates)
                    networks = 0
                    if method == planning.SIMULATION:
                        networks = len(seeds) * replicates * (1 + len(grid.designs)) * grid.settings.restarts
                    elif method == planning.FORMULA:  # its training check: one ko run a design
                        networks = len(seeds) * len(grid.designs) * grid.settings.restarts
                    elapsed = time.perf_counter() - start
                    times.append((grid.activation, noise_sd, method, n_pilot, networks, elapsed))
                    say(f"{grid.activation} σ={noise_sd}: {method}, pilot {n_pilot}: {elapsed:.1f} s")
                    both = planned.merge(actual, on=["seed", "unit", "n_per_set"], validate="one_to_one")
                    both = both.join(true_smallest(both), on=["seed", "unit"])
                    both["min_n_right"] = [
                        within_one_step(p, a, grid.designs)
                        for p, a in zip(both["min_n_planned"], both["min_n_true"], strict=True)
                    ]
                    tables.append(
                        both.assign(
                            activation=grid.activation,
                            noise_sd=noise_sd,
                            d=grid.n_inputs,
                            n_units=grid.n_hidden,
                            n_pilot=n_pilot,
                            d_over_n=grid.n_inputs / both["n_per_set"],
                        )
                    )
    columns = ["activation", "method", "noise_sd", "d", "n_units", "n_pilot", "seed", "unit", "n_per_set"]
    columns += ["d_over_n", "predicted_r2", "lower", "upper", "p_identified", "actual", "optimum", "oracle"]
    columns += ["true_c2"]
    columns += ["min_n_planned", "min_n_true", "min_n_right"]
    rows = pd.concat(tables, ignore_index=True)[columns]
    times = pd.DataFrame(
        times, columns=["activation", "noise_sd", "part", "n_pilot", "networks", "seconds"]
    ).astype({"n_pilot": "Int64"})
    return rows, times


KEYS = ["activation", "method", "noise_sd", "n_pilot"]


def measures(group: pd.DataFrame) -> pd.Series:
    """How the plan compares with the runs over ``group``'s rows."""
    error = group["predicted_r2"] - group["actual"]
    reached = group["actual"] >= TARGET
    inside = (group["lower"] <= group["actual"]) & (group["actual"] <= group["upper"])
    return pd.Series(
        {
            "MAE": error.abs().mean(),
            "bias": error.mean(),
            "oracle MAE": (group["oracle"] - group["actual"]).abs().mean(),
            "ko - optimum": (group["actual"] - group["optimum"]).mean(),
            "coverage": inside.mean(),
            "accuracy": ((group["predicted_r2"] >= TARGET) == reached).mean(),
            "Brier": ((group["p_identified"] - reached) ** 2).mean(),
            "reached": reached.mean(),
            "units": len(group),
        }
    )


def summary(rows: pd.DataFrame, by_design: bool = True) -> pd.DataFrame:
    """Per (activation, method, σ, pilot) and design (or all designs pooled) how the plan
    compares with the runs."""
    keys = [*KEYS, "n_per_set", "d_over_n"] if by_design else KEYS
    table = rows.groupby(keys).apply(measures, include_groups=False).reset_index()
    return table.rename(columns={"d_over_n": "d/n"})


def calibration(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (activation, method), bins of p_identified (width 0.2, the last one holding
    1.0) against the share of units that reached the target."""
    lower = np.minimum(np.floor(np.round(rows["p_identified"] / P_BIN, 9)), round(1 / P_BIN) - 1) * P_BIN
    labels = [f"[{low:.1f}, {low + P_BIN:.1f}{']' if low + P_BIN >= 1 else ')'}" for low in lower]
    binned = rows.assign(bin=labels, reached=rows["actual"] >= TARGET)
    grouped = binned.groupby(["activation", "method", "bin"])
    return grouped.agg(
        mean_p=("p_identified", "mean"), observed=("reached", "mean"), units=("reached", "size")
    ).reset_index()


def smallest_summary(rows: pd.DataFrame) -> pd.DataFrame:
    units = rows.drop_duplicates([*KEYS, "seed", "unit"])
    grouped = units.groupby(KEYS)
    return grouped.agg(
        min_n_right=("min_n_right", "mean"),
        planned_null=("min_n_planned", lambda v: v.isna().mean()),
        true_null=("min_n_true", lambda v: v.isna().mean()),
        units=("min_n_right", "size"),
    ).reset_index()


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """``table`` in Markdown: counts as integers, σ with 2 decimals, other numbers with ``digits``."""

    def cell(column: str, value) -> str:
        if pd.isna(value):
            return ""
        if column in ("units", "networks", "n_per_set", "n_pilot"):
            return str(int(value))
        if column == "noise_sd":
            return f"{value:.2f}"
        if isinstance(value, float | np.floating):
            return f"{value:.{digits}f}"
        return str(value)

    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(cell(c, v) for c, v in zip(columns, row, strict=True)) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small grid (2 seeds, 2 designs, 1 pilot)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 100-104; --quick 100-101)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.2], help="noise_sd values")
    parser.add_argument("--activations", nargs="+", default=["linear", "relu"], choices=["linear", "relu"])
    parser.add_argument("--replicates", type=int, help="simulation replicates (default 4; --quick 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks"), help="output folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = args.seeds or ([100, 101] if args.quick else list(range(100, 105)))
    replicates = args.replicates or (2 if args.quick else 4)
    grid_parts = [grid for grid in grids(args.quick) if grid.activation in args.activations]
    start = time.perf_counter()
    rows, times = run(grid_parts, args.noise, seeds, replicates)
    total = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(args.out / "plan_validation.parquet", index=False)
    times.to_parquet(args.out / "plan_validation_times.parquet", index=False)

    say(f"\n## Planner against ko runs (seeds {seeds[0]}-{seeds[-1]}, target R² {TARGET})\n")
    say(markdown(summary(rows)))
    say("\n### All designs pooled\n")
    say(markdown(summary(rows, by_design=False)))
    say(f"\n### Smallest design (p >= {PROBABILITY}) within one grid step of the true one, per unit\n")
    say(markdown(smallest_summary(rows)))
    say("\n### Calibration of p_identified (all σ, pilots and designs pooled)\n")
    say(markdown(calibration(rows)))
    say(f"\n### Times (s, torch threads: {args.threads})\n")
    say(markdown(times, 1))
    say(f"\ntotal {total:.1f} s; rows in {args.out / 'plan_validation.parquet'}")


if __name__ == "__main__":
    main()
