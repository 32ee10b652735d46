"""Planning from pilots, whichever the method: the one entry the workflow's job, the
notebook interface and the validation bench call."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import torch

from knockout.network import Architecture
from knockout.plan_table import AUTO, FORMULA, method_for
from knockout.planning.formula import FormulaDraws, Pilot
from knockout.planning.simulation import PilotTable, simulation_plans
from knockout.planning.training_check import training_shortfalls
from knockout.training import Progress, TrainSettings


def plan_pilots(
    pilots: Sequence[PilotTable],
    seeds: Sequence[int],
    architecture: Architecture,
    settings: TrainSettings | None,
    n_per_set: Sequence[int],
    target_r2: float = 0.9,
    method: str = AUTO,
    resamples: int = 1000,
    simulation_seeds: int = 4,
    check_training: bool = True,
    silenced_activity: float = 0.0,
    device: torch.device | str = "cpu",
    memory_bytes: int | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> list[pd.DataFrame]:
    """Per pilot (each with its seed) the plan's table (``plan_table.PLAN_COLUMNS``) for
    models of ``architecture`` trained with ``settings``: by ``method`` (``auto``: the
    formula where it applies, else the simulation), the formula with its training check
    unless ``check_training`` is False (then its numbers are the exact optimum's, and
    ``settings`` may be None)."""
    if method_for(method, architecture) != FORMULA:
        return simulation_plans(
            pilots,
            seeds,
            architecture,
            settings,
            n_per_set,
            target_r2,
            simulation_seeds,
            device,
            memory_bytes,
            progress,
        )
    formula_pilots = [Pilot.from_table(pilot.table, pilot.layout, pilot.values) for pilot in pilots]
    draws = [
        FormulaDraws.of(pilot, resamples, seed, silenced_activity)
        for pilot, seed in zip(formula_pilots, seeds, strict=True)
    ]
    shortfalls = [None] * len(pilots)
    if check_training:
        typical = [pilot_draws.typical() for pilot_draws in draws]
        shortfalls = training_shortfalls(
            pilots,
            seeds,
            [contribution2 for contribution2, _ in typical],
            [noise_var for _, noise_var in typical],
            architecture,
            settings,
            n_per_set,
            device,
            memory_bytes,
            progress,
        )
    return [
        pilot_draws.plan(
            pilot, n_per_set, list(table.layout.units), target_r2, architecture.n_hidden, shortfall
        )
        for pilot_draws, pilot, table, shortfall in zip(
            draws, formula_pilots, pilots, shortfalls, strict=True
        )
    ]
