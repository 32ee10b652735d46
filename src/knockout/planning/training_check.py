"""The formula's training check: does knockout training reach the optimum at the planned n?

The formula predicts the exact optimum of the knockout objective; a training run with
fixed settings can fall short of it, most for units whose share of the behaviour is
small, and more at large n (docs/results.md, "Planning an experiment": at 3000 trials per
line the default training stopped at R² 0.39-0.89 where the optimum reached 0.87-0.97).
So per pilot and design, one experiment is simulated from a linear network like the
pilot, ko is trained on it with the config's training settings, the exact optimum is
fitted to the same rows, and each unit's shortfall is how far ko's R² fell below the
optimum's (both against the simulating network's unit, 0 where ko reached it). The plan
takes it off the formula's numbers.

The simulating network is the pilot's own exact optimum (per unit w_out,i · [W_in,i, b_i])
with each unit scaled to the formula's contribution (the median of its draws: the raw
fit's contributions are inflated by the pilot's estimation noise, which would make weak
units look easier to train than they are), and the pilot's noise. Every experiment of every
pilot trains as one batched computation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from knockout import seeding
from knockout.identifiability import fitted_optimum
from knockout.models import KNOCKOUT
from knockout.network import Architecture, KnockoutNet
from knockout.planning.simulation import (
    PROBE_ROWS,
    InputDistribution,
    PilotTable,
    fit_seeds,
    same_unit_r2,
    simulated_experiment,
)
from knockout.training import Fit, Progress, TrainSettings, train_fits


@torch.no_grad()
def _scaled_to(net: KnockoutNet, contribution2: np.ndarray, inputs: InputDistribution) -> KnockoutNet:
    """``net`` (a linear two-layer network with output weights 1) with each unit's input
    weights and bias scaled so that its contribution, the variance of its activity over
    the inputs, is ``contribution2`` (a unit with no contribution to scale keeps its own)."""
    covariance = inputs.covariance.float()
    weights = net.hidden.weight
    own = torch.einsum("ud,de,ue->u", weights, covariance, weights).double().numpy()
    wanted = np.asarray(contribution2[: len(own)], np.float64)
    scale = np.where((own > 0) & (wanted > 0), np.sqrt(wanted / np.where(own > 0, own, 1.0)), 1.0)
    factors = torch.from_numpy(scale).float()
    weights.mul_(factors[:, None])
    net.hidden.bias.mul_(factors)
    return net


def training_shortfalls(
    pilots: Sequence[PilotTable],
    seeds: Sequence[int],
    contributions2: Sequence[np.ndarray],
    noise_vars: Sequence[float],
    architecture: Architecture,
    settings: TrainSettings,
    n_per_set: Sequence[int],
    device: torch.device | str = "cpu",
    memory_bytes: int | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> list[dict[int, np.ndarray]]:
    """Per pilot, per design: each unit of the data's (``len(layout.units)``) R² shortfall of
    ko trained with ``settings`` against the exact optimum, on one experiment simulated from
    a network like the pilot (its contributions ``contributions2`` and noise variance)."""
    setups, fits = [], []
    for pilot, seed, contribution2, noise_var in zip(pilots, seeds, contributions2, noise_vars, strict=True):
        data = pilot.data()
        inputs = InputDistribution(data.x)
        simulating = _scaled_to(fitted_optimum(data, architecture), contribution2, inputs)
        generator = seeding.generator(seed, "plan")
        probe = inputs.draw(PROBE_ROWS, generator)
        experiments = {
            n: simulated_experiment(
                simulating, torch.tensor([noise_var]), inputs, data.set_units, n, generator
            )
            for n in n_per_set
        }
        seeds_of_fits = fit_seeds(generator, len(n_per_set))
        fits += [
            Fit(KNOCKOUT, experiments[n], settings, s) for n, s in zip(n_per_set, seeds_of_fits, strict=True)
        ]
        setups.append((simulating, probe, experiments, len(pilot.layout.units)))
    trained = iter(train_fits(fits, architecture, device, memory_bytes, progress=progress))
    shortfalls = []
    for simulating, probe, experiments, n_units in setups:
        per_design = {}
        for n, experiment in experiments.items():
            reached = same_unit_r2(simulating, next(trained).network, probe)
            best = same_unit_r2(simulating, fitted_optimum(experiment, architecture), probe)
            shortfall = np.zeros(n_units)
            covered = min(n_units, len(reached))
            shortfall[:covered] = np.clip(best - reached, 0.0, 1.0)[:covered]
            per_design[n] = shortfall
        shortfalls.append(per_design)
    return shortfalls
