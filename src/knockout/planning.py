"""Planning a silencing experiment from a pilot: which units a design can identify.

The formula method (linear flies, one behavioural output). For a linear fly the
behaviour is y = x·a + b + noise, and silencing unit i changes the weights by its
share Δ_i = w_out,i · W_in,i (times 1 - the silenced activity). The best neural R² that
knockout training can reach for unit i at n training samples per set is close to

    c_i² / (c_i² + σ²·d/(n - d - 1))

(``predicted_r2``): c_i² = Δ_iᵀ Σ Δ_i is the unit's contribution (the variance of its
share of the behaviour over the inputs, Σ their covariance), σ² the behavioural noise
and d the number of inputs; σ²·d/(n - d - 1) is the expected error of the unit's d
weights estimated from n noisy samples (σ²·d/n for n ≫ d, which is biased where d/n
nears 0.5).

A pilot does not give c_i: ``pilot_estimates`` fits each set by least squares and takes
the control set's weights minus each silenced set's, whose quadratic form overestimates
c_i² by the estimation noise of both fits, σ²·tr(Σ (X_cᵀX_c)⁻¹ + Σ (X_iᵀX_i)⁻¹) with
centred inputs; that expectation is removed (the finite-sample correction), and σ² is
the pooled residual variance. ``plan`` carries the pilot's uncertainty into the
prediction by resampling the pilot's rows within each set: the interval and the
probability that a unit reaches the target are over those resamples.

It predicts the exact optimum, not a training run: training must also converge at the
planned n (docs/results.md). A unit the pilot cannot speak for (never silenced alone)
gets a reason instead of a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from knockout.data_folder import Layout

PLAN_COLUMNS = ["unit", "n_per_set", "predicted_r2", "lower", "upper", "p_identified", "method", "reason"]
"""One row per unit and design; ``reason`` says why a unit has no prediction (else empty)."""
FORMULA = "formula"
INTERVAL = 0.95
NOT_ALONE = "silenced only together with other units in the pilot: the design cannot tell them apart"
NEVER_SILENCED = "never silenced in the pilot: there is no set to estimate its contribution from"
NARROWER_MODEL = "the model has fewer units than the data: ko has no unit to give this one"
SHORT_REASONS = {NOT_ALONE: "silenced with others", NEVER_SILENCED: "never silenced", NARROWER_MODEL: "no model unit"}
"""Each reason in a few words, for a figure's cells."""


@dataclass(frozen=True)
class Pilot:
    """A pilot's behaviour: per set, its inputs [rows, d] and its one output [rows], and
    which units it silenced (empty: control)."""

    x: Sequence[np.ndarray]
    y: Sequence[np.ndarray]
    set_units: Sequence[tuple[int, ...]]
    n_units: int

    @classmethod
    def from_table(cls, table: pd.DataFrame, layout: Layout) -> Pilot:
        """A behaviour table of the import contract (knockout.data_folder) as a pilot."""
        if len(layout.outputs) != 1:
            raise ValueError(
                f"the formula method plans for one behavioural output; the pilot has "
                f"{len(layout.outputs)} ({', '.join(layout.outputs)})"
            )
        by_set = {name: rows for name, rows in table.groupby("set", sort=False)}
        names = [name for name, _ in layout.sets]
        x = [by_set[name][list(layout.inputs)].to_numpy(np.float64) for name in names]
        y = [by_set[name][layout.outputs[0]].to_numpy(np.float64) for name in names]
        return cls(x, y, [units for _, units in layout.sets], len(layout.units))

    def __post_init__(self) -> None:
        if sum(not units for units in self.set_units) != 1:
            raise ValueError("a pilot needs exactly one control set (nothing silenced)")
        d = self.x[0].shape[1]
        for rows, units in zip(self.x, self.set_units, strict=True):
            if len(rows) < d + 2:
                name = "control" if not units else f"the set silencing unit(s) {units}"
                raise ValueError(
                    f"{name} has {len(rows)} rows; the formula needs at least d + 2 = {d + 2} "
                    "per set to fit its weights and leave residuals"
                )


@dataclass(frozen=True)
class PilotEstimates:
    """Per unit its estimated squared contribution (NaN where the pilot cannot tell; it may
    fall below 0 where the noise dominates, which keeps it unbiased), the expected
    estimation noise that was removed from it, and the pooled noise variance."""

    contribution2: np.ndarray
    estimation_noise: np.ndarray
    noise_var: float


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Least squares with an intercept: the weights, the residual sum of squares, the
    inverse of the centred inputs' Gram matrix, and the residual degrees of freedom."""
    centred = x - x.mean(axis=0)
    gram_inverse = np.linalg.pinv(centred.T @ centred)
    weights = gram_inverse @ centred.T @ (y - y.mean())
    residuals = y - y.mean() - centred @ weights
    return weights, float(residuals @ residuals), gram_inverse, len(y) - x.shape[1] - 1


def pilot_estimates(pilot: Pilot, silenced_activity: float = 0.0) -> PilotEstimates:
    """Each singly silenced unit's squared contribution, corrected for the estimation noise
    of the two fits it is the difference of, and the pooled noise variance."""
    fits = [_fit(x.astype(np.float64), y.astype(np.float64)) for x, y in zip(pilot.x, pilot.y, strict=True)]
    noise_var = sum(fit[1] for fit in fits) / sum(fit[3] for fit in fits)
    all_x = np.concatenate([np.asarray(x, np.float64) for x in pilot.x])
    covariance = np.cov(all_x, rowvar=False).reshape(all_x.shape[1], all_x.shape[1])
    control = next(number for number, units in enumerate(pilot.set_units) if not units)
    weights_c, _, inverse_c, _ = fits[control]
    contribution2, estimation_noise = np.full(pilot.n_units, np.nan), np.full(pilot.n_units, np.nan)
    for (weights, _, inverse, _), units in zip(fits, pilot.set_units, strict=True):
        if len(units) != 1:
            continue
        share = (weights_c - weights) / (1.0 - silenced_activity)
        noise = noise_var * np.trace(covariance @ (inverse_c + inverse)) / (1.0 - silenced_activity) ** 2
        estimation_noise[units[0]] = noise
        contribution2[units[0]] = float(share @ covariance @ share) - noise
    return PilotEstimates(contribution2, estimation_noise, noise_var)


def predicted_r2(contribution2: np.ndarray, noise_var: float, n_inputs: int, n_per_set: int) -> np.ndarray:
    """The best neural R² at ``n_per_set`` training samples per set: c² / (c² + σ²·d/(n-d-1))
    (a negative estimate of c² counts as 0); 0 where n leaves no residual degrees of freedom."""
    c2 = np.maximum(np.asarray(contribution2, np.float64), 0.0)
    dof = n_per_set - n_inputs - 1
    if dof <= 0:
        return np.zeros_like(c2)
    floor = noise_var * n_inputs / dof
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c2 + floor > 0, c2 / (c2 + floor), 1.0)


def _resampled(pilot: Pilot, generator: np.random.Generator) -> Pilot:
    """The pilot with each set's rows drawn again with replacement."""
    picks = [generator.integers(0, len(y), len(y)) for y in pilot.y]
    return Pilot(
        [x[pick] for x, pick in zip(pilot.x, picks, strict=True)],
        [y[pick] for y, pick in zip(pilot.y, picks, strict=True)],
        pilot.set_units,
        pilot.n_units,
    )


def plan(
    pilot: Pilot,
    n_per_set: Sequence[int],
    unit_names: Sequence[str],
    target_r2: float = 0.9,
    resamples: int = 200,
    seed: int = 0,
    silenced_activity: float = 0.0,
) -> pd.DataFrame:
    """Per unit and design, the predicted best neural R² (from the pilot as it is), its
    interval and the probability that it reaches ``target_r2`` over ``resamples`` resamples
    of the pilot; a unit the pilot cannot speak for gets a reason instead."""
    if not 0 < target_r2 < 1:
        raise ValueError(f"target_r2 = {target_r2}: must lie strictly between 0 and 1")
    if len(unit_names) != pilot.n_units:
        raise ValueError(f"{len(unit_names)} unit names for {pilot.n_units} units")
    d = pilot.x[0].shape[1]
    estimate = pilot_estimates(pilot, silenced_activity)
    generator = np.random.default_rng(seed)
    draws = [pilot_estimates(_resampled(pilot, generator), silenced_activity) for _ in range(resamples)]
    alone = {units[0] for units in pilot.set_units if len(units) == 1}
    together = {unit for units in pilot.set_units if len(units) > 1 for unit in units}
    rows = []
    for n in n_per_set:
        point = predicted_r2(estimate.contribution2, estimate.noise_var, d, n)
        spread = np.array([predicted_r2(draw.contribution2, draw.noise_var, d, n) for draw in draws])
        low, high = np.quantile(spread, [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2], axis=0)
        reached = (spread >= target_r2).mean(axis=0)
        for unit, name in enumerate(unit_names):
            if unit in alone:
                rows.append((name, n, point[unit], low[unit], high[unit], reached[unit], FORMULA, ""))
            else:
                reason = NOT_ALONE if unit in together else NEVER_SILENCED
                rows.append((name, n, np.nan, np.nan, np.nan, np.nan, FORMULA, reason))
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def smallest_designs(planned: pd.DataFrame, probability: float = 0.8) -> pd.DataFrame:
    """Per unit, the smallest ``n_per_set`` whose probability of reaching the target is at
    least ``probability`` (null with the reason where none does)."""
    rows = []
    for unit, designs in planned.groupby("unit", sort=False):
        reached = designs[designs["p_identified"] >= probability].sort_values("n_per_set")
        if len(reached):
            rows.append((unit, int(reached["n_per_set"].iloc[0]), ""))
        else:
            reason = designs["reason"].iloc[0] or (
                f"no planned design reaches the target with probability {probability:g}"
            )
            rows.append((unit, None, reason))
    return pd.DataFrame(rows, columns=["unit", "min_n_per_set", "reason"]).astype({"min_n_per_set": "Int64"})
