"""The ground-truth fly: a random network (linear or ReLU, two-layer or deeper) and its
noisy behaviour."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from knockout import naming, seeding
from knockout.network import Architecture, KnockoutNet, initialize, silencing_mask


@dataclass(frozen=True)
class FlySettings:
    """The ``fly`` section of the config."""

    n_inputs: int = 50
    n_hidden: int = 16
    init: str = "glorot"
    noise_sd: float = 0.05
    activation: str = "linear"
    silenced_activity: float = 0.0
    """Fraction of a silenced unit's activity that remains (0: fully silenced)."""
    encoder: tuple[int, ...] = ()
    decoder: tuple[int, ...] = ()
    n_outputs: int = 1
    binary_outputs: int = 0
    """How many of the outputs, the last ones, are binary: an event drawn with the
    probability the fly's output gives as log-odds (no noise added)."""

    @property
    def architecture(self) -> Architecture:
        return Architecture(
            self.n_inputs,
            self.n_hidden,
            self.encoder,
            self.decoder,
            self.n_outputs,
            self.activation,
            self.binary_outputs,
        )


@dataclass(frozen=True)
class DataSettings:
    """The ``data`` section of the config: samples per data set."""

    n_train: int = 1000
    n_test: int = 500
    n_probe: int = 1000
    n_silenced: int | None = None
    """Silenced data sets: units 0 .. n_silenced - 1 (None: every unit)."""


def make_fly(settings: FlySettings, seed: int) -> KnockoutNet:
    fly = KnockoutNet(settings.architecture)
    return initialize(fly, settings.init, seeding.generator(seed, "fly")).eval()


@torch.no_grad()
def behavior_table(
    fly: KnockoutNet,
    n_per_set: int,
    settings: FlySettings,
    generator: torch.Generator,
    n_silenced: int | None = None,
) -> pd.DataFrame:
    """``n_per_set`` samples of the control set and of each single-unit silencing, as the
    import contract's rows (``set``, ``silenced``, inputs, outputs).

    x ~ N(0, 1); y = fly(x, unit silenced) + N(0, noise_sd^2) for each continuous output
    (independent noise per output), where a silenced unit keeps
    ``settings.silenced_activity`` of its value; a binary output is 1 with probability
    sigmoid(fly(x, unit silenced)) (drawn after the noise, so adding binary outputs leaves
    the continuous ones' draws as they were).
    """
    architecture = fly.architecture
    n_inputs, n_hidden, n_outputs = architecture.n_inputs, architecture.n_hidden, architecture.n_outputs
    blocks = []
    for silenced_unit, name in enumerate(naming.simulated_set_names(n_hidden, n_silenced), start=-1):
        x = torch.randn(n_per_set, n_inputs, generator=generator)
        # one output draws [n] noise values (the seed problem's stream); several, [n, outputs]
        noise = torch.randn(n_per_set, *([n_outputs] if n_outputs > 1 else []), generator=generator)
        keep = silencing_mask(n_hidden, silenced_unit, settings.silenced_activity)
        outputs = fly(x, keep)
        y = outputs.reshape(noise.shape) + settings.noise_sd * noise
        if architecture.binary_outputs:
            log_odds = outputs[:, -architecture.binary_outputs :]
            events = torch.rand(log_odds.shape, generator=generator) < torch.sigmoid(log_odds)
            y = y.reshape(n_per_set, n_outputs)
            y[:, -architecture.binary_outputs :] = events.float()
        block = pd.DataFrame(x.numpy(), columns=naming.input_columns(n_inputs))
        block.insert(0, "silenced", "" if silenced_unit < 0 else name)
        block.insert(0, "set", name)
        outputs = pd.DataFrame(
            y.reshape(n_per_set, n_outputs).numpy(),
            columns=naming.output_columns(n_outputs, architecture.binary_outputs),
        )
        blocks.append(pd.concat([block, outputs], axis=1))
    return pd.concat(blocks, ignore_index=True)


@torch.no_grad()
def neurons_table(fly: KnockoutNet, n_samples: int, generator: torch.Generator) -> pd.DataFrame:
    """Fresh stimuli and every fly unit's noise-free response (the neurons file of the
    import contract, every unit recorded), for comparing model units to neurons."""
    n_inputs = fly.architecture.n_inputs
    x = torch.randn(n_samples, n_inputs, generator=generator)
    h = fly.activity(x)
    responses = [naming.response_column(unit) for unit in naming.unit_names(fly.n_hidden)]
    return pd.concat(
        [
            pd.DataFrame(x.numpy(), columns=naming.input_columns(n_inputs)),
            pd.DataFrame(h.numpy(), columns=responses),
        ],
        axis=1,
    )


def pilot_table(
    fly_settings: FlySettings, n_per_set: int, seed: int, n_silenced: int | None = None
) -> pd.DataFrame:
    """A pilot of replicate ``seed``'s fly (the experiment planner's input): ``n_per_set``
    rows of the control set and of each silenced set, drawn from a stream of its own, so
    that the pilot is independent of the replicate's training and test data."""
    fly = make_fly(fly_settings, seed)
    return behavior_table(fly, n_per_set, fly_settings, seeding.generator(seed, "pilot_data"), n_silenced)


def behavior_file(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The training and test rows as one behaviour file, told apart by ``split``."""
    tables = [table.assign(split=part) for table, part in ((train, "train"), (test, "test"))]
    both = pd.concat(tables, ignore_index=True)
    return both[["set", "silenced", "split", *both.columns.drop(["set", "silenced", "split"])]]


def simulate(
    fly_settings: FlySettings, data_settings: DataSettings, seed: int
) -> tuple[KnockoutNet, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One replicate: the fly, its training and test rows, and its neurons table."""
    fly = make_fly(fly_settings, seed)
    n_silenced = data_settings.n_silenced
    train_rng, test_rng = seeding.generator(seed, "train_data"), seeding.generator(seed, "test_data")
    train = behavior_table(fly, data_settings.n_train, fly_settings, train_rng, n_silenced)
    test = behavior_table(fly, data_settings.n_test, fly_settings, test_rng, n_silenced)
    neurons = neurons_table(fly, data_settings.n_probe, seeding.generator(seed, "probe_data"))
    return fly, train, test, neurons
