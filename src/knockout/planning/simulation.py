"""The simulation method: a network fitted to the pilot plays the fly.

The formula holds for linear two-layer networks with one output. For any other network
the planner asks training itself. Per pilot and replicate:

1. the pilot's rows are resampled within each set, and ko (with the config's training
   settings, restarts and relabelling) is fitted to the resample: the *stand-in*, a
   network that behaves like the pilot, with its noise variance per output taken from
   its residuals (corrected for the parameters fitted: rows / (rows - parameters));
2. for each design, ``n_per_set`` fresh inputs per set are drawn from a Gaussian with the
   pilot's input mean and covariance, the stand-in's silenced behaviour plus its noise
   gives the outputs, and ko is trained on them;
3. each ko unit is scored against the stand-in's unit (squared correlation on fresh
   probe inputs), as the workflow scores ko against a fly's neurons.

The predicted R² is the median over replicates; the interval and ``p_identified`` come
from Student's t over them (``designs.design_rows``: a few replicates' own quantiles would
be about their range). Resampling the pilot carries its uncertainty into all three. Every
stand-in of every pilot is one batched training, and every design's ko another.

A stand-in fitted to a small pilot has its units' contributions inflated by its own
estimation noise, so predictions for small pilots lean optimistic (docs/results.md,
"Planning an experiment", measures how far). The simulated samples are independent: a
pilot whose frames are correlated within sessions holds fewer independent samples than
rows, which the simulation does not model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from knockout import seeding
from knockout.behavior_data import BehaviorData
from knockout.data_folder import Layout
from knockout.metrics import squared_correlations
from knockout.models import KNOCKOUT
from knockout.network import Architecture, KnockoutNet, keep_matrix
from knockout.plan_table import SIMULATION
from knockout.planning.designs import check_target, design_rows, plan_table, unit_reasons
from knockout.training import Fit, Progress, TrainSettings, train_fits

PROBE_ROWS = 2000
"""Fresh inputs each ko unit is scored against its stand-in unit on."""


@dataclass(frozen=True)
class PilotTable:
    """One pilot: its behaviour rows (the import contract's table) and their layout, and
    where its stimuli are an array, the values its rows name (:attr:`FolderData.inputs`)."""

    table: pd.DataFrame
    layout: Layout
    inputs: np.ndarray | None = None

    @property
    def values(self) -> torch.Tensor | None:
        """``inputs`` as a tensor sharing their memory."""
        return None if self.inputs is None else torch.from_numpy(self.inputs)

    def data(self) -> BehaviorData:
        """Its rows as tensors."""
        return BehaviorData.from_table(self.table, self.layout, self.values)


class InputDistribution:
    """A Gaussian with the pilot's input mean and covariance, to draw designs' inputs from
    (the simulation's and the training check's)."""

    def __init__(self, x: torch.Tensor) -> None:
        values = x.double()
        self.mean = values.mean(dim=0)
        self.covariance = torch.atleast_2d(torch.cov(values.T))
        jitter = 1e-9 * max(float(torch.diagonal(self.covariance).mean()), 1e-12)
        identity = torch.eye(len(self.covariance), dtype=torch.float64)
        self.factor = torch.linalg.cholesky(self.covariance + jitter * identity)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, len(self.mean), generator=generator, dtype=torch.float64)
        return (self.mean + z @ self.factor.T).float()


def _resampled(data: BehaviorData, generator: torch.Generator) -> BehaviorData:
    """``data`` with each set's rows drawn again with replacement."""
    picks = []
    for _, rows in data.rows_by_set(include_silenced=True):
        picks.append(rows[torch.randint(len(rows), (len(rows),), generator=generator)])
    pick = torch.cat(picks)
    return BehaviorData(data.x[pick], data.y[pick], data.set_index[pick], data.set_units)


def _set_keep(data: BehaviorData, n_hidden: int) -> torch.Tensor:
    """Per row, the stand-in's keep multipliers: its set's units silenced fully (as ko
    masks them, so the stand-in reproduces what it was fitted to)."""
    return keep_matrix([data.set_units[number] for number in data.set_index.tolist()], n_hidden)


@torch.no_grad()
def stand_in_noise_var(net: KnockoutNet, data: BehaviorData) -> torch.Tensor:
    """Per output, the residual variance of ``net`` on the rows it was fitted to, times
    rows / (rows - parameters) for the parameters fitted (at least one degree of freedom)."""
    residuals = data.y - net(data.x, _set_keep(data, net.n_hidden))
    parameters = sum(parameter.numel() for parameter in net.parameters())
    rows = len(data.y)
    return (residuals.double() ** 2).mean(dim=0) * rows / max(rows - parameters, 1)


@torch.no_grad()
def simulated_experiment(
    net: KnockoutNet,
    noise_var: torch.Tensor,
    inputs: InputDistribution,
    set_units,
    n: int,
    generator: torch.Generator,
) -> BehaviorData:
    """``n`` rows per set of the stand-in's behaviour with its noise."""
    x = inputs.draw(n * len(set_units), generator)
    set_index = torch.arange(len(set_units)).repeat_interleave(n)
    data = BehaviorData(x, torch.empty(0), set_index, tuple(set_units))
    clean = net(x, _set_keep(data, net.n_hidden))
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float64) * noise_var.sqrt()
    return BehaviorData(x, (clean.double() + noise).float(), set_index, tuple(set_units))


def fit_seeds(generator: torch.Generator, count: int) -> list[int]:
    """``count`` seeds for the networks trained on simulated experiments, from ``generator``."""
    return torch.randint(2**31 - 1, (count,), generator=generator).tolist()


@torch.no_grad()
def same_unit_r2(stand_in: KnockoutNet, trained: KnockoutNet, probe: torch.Tensor) -> np.ndarray:
    """Per stand-in unit, the squared correlation with the trained unit of the same index
    (as neural.parquet's ``r2`` scores model unit i against neuron i)."""
    truth = stand_in.activity(probe).double().numpy()
    found = trained.activity(probe).double().numpy()
    return np.diagonal(squared_correlations(truth, found)).copy()


def simulation_plans(
    pilots: Sequence[PilotTable],
    seeds: Sequence[int],
    architecture: Architecture,
    settings: TrainSettings,
    n_per_set: Sequence[int],
    target_r2: float = 0.9,
    replicates: int = 4,
    device: torch.device | str = "cpu",
    memory_bytes: int | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> list[pd.DataFrame]:
    """Per pilot (with its seed), the plan's table (``designs.PLAN_COLUMNS``): for each
    design and unit, the R² ko reached on ``replicates`` simulated experiments drawn from
    stand-ins fitted to resamples of the pilot. ``architecture`` is the model's (the
    stand-in's too); its inputs and outputs must be the pilot's."""
    check_target(target_r2)
    if replicates < 2:
        raise ValueError(f"replicates = {replicates}: the simulation needs at least 2 to give an interval")
    generators = [seeding.generator(seed, "plan") for seed in seeds]
    pilot_data = [pilot.data() for pilot in pilots]
    stand_in_fits = [
        Fit(KNOCKOUT, _resampled(data, generator), settings, fit_seed)
        for data, generator in zip(pilot_data, generators, strict=True)
        for fit_seed in fit_seeds(generator, replicates)
    ]
    stand_ins = [
        result.network
        for result in train_fits(stand_in_fits, architecture, device, memory_bytes, progress=progress)
    ]
    noise = [stand_in_noise_var(net, fit.data) for net, fit in zip(stand_ins, stand_in_fits, strict=True)]
    inputs = [InputDistribution(data.x) for data in pilot_data]
    design_fits, probes = [], []
    for number, (data, generator) in enumerate(zip(pilot_data, generators, strict=True)):
        probes.append(inputs[number].draw(PROBE_ROWS, generator))
        for n in n_per_set:
            for replicate, fit_seed in enumerate(fit_seeds(generator, replicates)):
                member = number * replicates + replicate
                simulated = simulated_experiment(
                    stand_ins[member], noise[member], inputs[number], data.set_units, n, generator
                )
                design_fits.append(Fit(KNOCKOUT, simulated, settings, fit_seed))
    trained = iter(train_fits(design_fits, architecture, device, memory_bytes, progress=progress))
    plans = []
    for number, (pilot, data) in enumerate(zip(pilots, pilot_data, strict=True)):
        names = list(pilot.layout.units)
        reasons = unit_reasons(data.set_units, len(names), architecture.n_hidden)
        covered = min(len(names), architecture.n_hidden)
        rows = []
        for n in n_per_set:
            draws = np.zeros((replicates, len(names)))
            for replicate in range(replicates):
                scores = same_unit_r2(
                    stand_ins[number * replicates + replicate], next(trained).network, probes[number]
                )
                draws[replicate, :covered] = scores[:covered]
            rows += design_rows(n, draws, reasons, names, target_r2, SIMULATION)
        plans.append(plan_table(rows))
    return plans
