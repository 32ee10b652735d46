"""The formula method (linear flies, one behavioural output). For a linear fly the
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
the pooled residual variance. ``formula_plan`` carries the pilot's uncertainty into the
prediction by drawing the pilot's fits from their sampling distributions (the weights'
Gaussian, the noise variance's chi²), and adds the run's own estimation error at n: the
interval and the probability that a unit reaches the target speak for one experiment.
The predicted R² is the median of those draws, with contributions truncated to c² > 0 (a
contribution is never negative; a small pilot's estimate of a weak unit often is).

It predicts the exact optimum, not a training run: training must also converge at the
planned n (docs/results.md). A unit the pilot cannot speak for (never silenced alone)
gets a reason instead of a number.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from knockout.behavior_data import table_inputs
from knockout.data_folder import Layout
from knockout.metrics import estimation_floor, predicted_neural_r2
from knockout.plan_table import FORMULA
from knockout.planning.designs import check_target, design_rows, plan_table, unit_reasons


@dataclass(frozen=True)
class Pilot:
    """A pilot's behaviour: per set, its inputs [rows, d] and its one output [rows], and
    which units it silenced (empty: control)."""

    x: Sequence[np.ndarray]
    y: Sequence[np.ndarray]
    set_units: Sequence[tuple[int, ...]]
    n_units: int

    @classmethod
    def from_table(cls, table: pd.DataFrame, layout: Layout, values: torch.Tensor | None = None) -> Pilot:
        """A behaviour table of the import contract (knockout.data_folder) as a pilot
        (``values``: an array's, which its rows name: :func:`~knockout.behavior_data.table_inputs`)."""
        if len(layout.outputs) != 1:
            raise ValueError(
                f"the formula method plans for one behavioural output; the pilot has "
                f"{len(layout.outputs)} ({', '.join(layout.outputs)})"
            )
        by_set = {name: rows for name, rows in table.groupby("set", sort=False)}
        names = [name for name, _ in layout.sets]
        if layout.stimulus is None:  # as the file holds them (float64 where it does)
            x = [by_set[name][list(layout.inputs)].to_numpy(np.float64) for name in names]
        else:
            x = [table_inputs(by_set[name], layout, values).tensor().double().numpy() for name in names]
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


@dataclass(frozen=True)
class _SetFits:
    """Each set's least-squares weights and the inverse of its centred inputs' Gram
    matrix, the pooled noise variance with its degrees of freedom, the inputs' covariance
    and which set is control."""

    weights: list[np.ndarray]
    gram_inverses: list[np.ndarray]
    noise_var: float
    dof: int
    covariance: np.ndarray
    control: int

    @classmethod
    def of(cls, pilot: Pilot) -> _SetFits:
        weights, inverses, squares, dof = [], [], 0.0, 0
        for x, y in zip(pilot.x, pilot.y, strict=True):
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
            centred = x - x.mean(axis=0)
            inverse = np.linalg.pinv(centred.T @ centred)
            weights.append(inverse @ centred.T @ (y - y.mean()))
            inverses.append(inverse)
            residuals = y - y.mean() - centred @ weights[-1]
            squares += float(residuals @ residuals)
            dof += len(y) - x.shape[1] - 1
        all_x = np.concatenate([np.asarray(x, np.float64) for x in pilot.x])
        covariance = np.cov(all_x, rowvar=False).reshape(all_x.shape[1], all_x.shape[1])
        control = next(number for number, units in enumerate(pilot.set_units) if not units)
        return cls(weights, inverses, squares / dof, dof, covariance, control)

    def contributions(
        self, pilot: Pilot, weights: list[np.ndarray], silenced_activity: float, corrections: int = 1
    ) -> PilotEstimates:
        """Each singly silenced unit's squared contribution from ``weights`` (the fitted
        ones, or a draw around them), less ``corrections`` times the estimation noise of
        the two fits it is the difference of."""
        contribution2, estimation_noise = np.full(pilot.n_units, np.nan), np.full(pilot.n_units, np.nan)
        scale = 1.0 - silenced_activity
        for number, units in enumerate(pilot.set_units):
            if len(units) != 1:
                continue
            share = (weights[self.control] - weights[number]) / scale
            noise = self._estimation_noise[number] / scale**2
            estimation_noise[units[0]] = noise
            contribution2[units[0]] = float(share @ self.covariance @ share) - corrections * noise
        return PilotEstimates(contribution2, estimation_noise, self.noise_var)

    @functools.cached_property
    def _estimation_noise(self) -> list[float]:
        """Per set, the expected σ²·tr(Σ ((X_cᵀX_c)⁻¹ + (X_iᵀX_i)⁻¹)) its weight difference
        from control's adds to the quadratic form."""
        control = self.gram_inverses[self.control]
        return [
            self.noise_var * float(np.sum(self.covariance * (control + inverse).T))
            for inverse in self.gram_inverses
        ]

    @functools.cached_property
    def _weight_spreads(self) -> list[np.ndarray]:
        """Per set a square root of its weights' sampling covariance σ²·(XᵀX)⁻¹."""
        spreads = []
        for inverse in self.gram_inverses:
            values, vectors = np.linalg.eigh(self.noise_var * inverse)
            spreads.append(vectors * np.sqrt(np.clip(values, 0.0, None)))
        return spreads

    def draw_weights(self, generator: np.random.Generator) -> list[np.ndarray]:
        """Weights as another pilot of the same inputs might have given them: the fitted
        ones plus Gaussian noise of their sampling covariance, σ²·(XᵀX)⁻¹ per set."""
        return [
            weights + spread @ generator.standard_normal(len(weights))
            for weights, spread in zip(self.weights, self._weight_spreads, strict=True)
        ]


def pilot_estimates(pilot: Pilot, silenced_activity: float = 0.0) -> PilotEstimates:
    """Each singly silenced unit's squared contribution, corrected for the estimation noise
    of the two fits it is the difference of, and the pooled noise variance."""
    fits = _SetFits.of(pilot)
    return fits.contributions(pilot, fits.weights, silenced_activity)


def predicted_r2(contribution2: np.ndarray, noise_var: float, n_inputs: int, n_per_set: int) -> np.ndarray:
    """The best neural R² at ``n_per_set`` training samples per set,
    c² / (c² + σ²·d/(n - d - 1)) (``metrics.predicted_neural_r2``; a negative estimate of c²
    counts as 0): 0 where n leaves no residual degrees of freedom."""
    contributions = np.sqrt(np.maximum(np.asarray(contribution2, np.float64), 0.0))
    return predicted_neural_r2(contributions, math.sqrt(noise_var), n_inputs, n_per_set)


@dataclass(frozen=True)
class FormulaDraws:
    """The formula's draws for one pilot: per draw and unit the contribution c² (NaN where
    a draw's c² <= 0: a contribution is never negative), per draw the noise variance, and
    per draw and unit one experiment's estimation error (relative to its expectation)."""

    contributions: np.ndarray
    noise_vars: np.ndarray
    run_errors: np.ndarray
    n_inputs: int

    @classmethod
    def of(cls, pilot: Pilot, resamples: int, seed: int, silenced_activity: float = 0.0) -> FormulaDraws:
        """Each draw: the pilot's weights and noise variance as another pilot might have
        given them (their sampling distributions; the contributions, with the draw's own
        noise added, corrected twice to centre on the estimate), and the run's own
        estimation error at n (the floor times chi²_d / d), so that the numbers speak for
        one experiment. Truncating c² to c² > 0 halved the error of the plain estimate
        against the true contributions where the pilot is small (docs/results.md)."""
        d = pilot.x[0].shape[1]
        fits = _SetFits.of(pilot)
        generator = np.random.default_rng(seed)
        contributions = np.array(
            [
                fits.contributions(pilot, fits.draw_weights(generator), silenced_activity, 2).contribution2
                for _ in range(resamples)
            ]
        )
        contributions[contributions <= 0] = np.nan
        noise_vars = fits.noise_var * generator.chisquare(fits.dof, resamples) / fits.dof
        run_errors = generator.chisquare(d, (resamples, pilot.n_units)) / d
        return cls(contributions, noise_vars, run_errors, d)

    def typical(self) -> tuple[np.ndarray, float]:
        """Per unit the median contribution c² over the draws (0 where none is positive), and
        the median noise variance: a network like the pilot for the training check."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a unit without a positive draw: 0
            contribution2 = np.nanmedian(self.contributions, axis=0)
        return np.nan_to_num(contribution2), float(np.median(self.noise_vars))

    def r2(self, n_per_set: int) -> np.ndarray:
        """[draw, unit]: the R² one experiment with ``n_per_set`` rows per set reaches."""
        floors = self.noise_vars[:, None] * self.run_errors * estimation_floor(1.0, self.n_inputs, n_per_set)
        return self.contributions / (self.contributions + floors)  # 0 where n leaves no residual freedom

    def plan(
        self,
        pilot: Pilot,
        n_per_set: Sequence[int],
        unit_names: Sequence[str],
        target_r2: float = 0.9,
        model_units: int | None = None,
        shortfalls: Mapping[int, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """The plan's table from these draws of ``pilot`` (``formula_plan``)."""
        check_target(target_r2)
        if len(unit_names) != pilot.n_units:
            raise ValueError(f"{len(unit_names)} unit names for {pilot.n_units} units")
        reasons = unit_reasons(pilot.set_units, pilot.n_units, model_units)
        rows = []
        for n in n_per_set:
            shortfall = None if shortfalls is None else shortfalls[n]
            r2 = self.r2(n) if shortfall is None else np.maximum(self.r2(n) - shortfall, 0.0)
            rows += design_rows(n, r2, reasons, unit_names, target_r2, FORMULA, shortfall)
        return plan_table(rows)


def formula_plan(
    pilot: Pilot,
    n_per_set: Sequence[int],
    unit_names: Sequence[str],
    target_r2: float = 0.9,
    resamples: int = 200,
    seed: int = 0,
    silenced_activity: float = 0.0,
    model_units: int | None = None,
    shortfalls: Mapping[int, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Per unit and design, the neural R² one experiment is predicted to reach (the median
    over ``resamples`` draws of the pilot and of the experiment), its interval and the
    probability that it reaches ``target_r2``; a unit the pilot cannot speak for (or beyond
    the ``model_units`` of a narrower model) gets a reason instead. ``shortfalls`` (per
    design, per unit: ``training_check.training_shortfalls``) are taken off every draw:
    without them the numbers are the exact optimum's."""
    draws = FormulaDraws.of(pilot, resamples, seed, silenced_activity)
    return draws.plan(pilot, n_per_set, unit_names, target_r2, model_units, shortfalls)
