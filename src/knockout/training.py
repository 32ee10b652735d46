"""Knockout training and its three comparison models.

Every batch comes from one data set (control, or one unit silenced); an epoch
shuffles each set, cuts it into batches, and shuffles the batches of all sets
together, so the sets are interleaved rather than trained one after another
(training set after set forgets the earlier sets and does not recover the units).

- control: the control set only, nothing masked;
- noko: all sets, nothing masked (the paper's baseline);
- ko: all sets; on a set where fly unit i was silenced, model unit i is masked;
- do: all sets; on a silenced set a uniformly random model unit is masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from knockout import naming, seeding
from knockout.behavior_data import BehaviorData
from knockout.errors import TrainingDiverged
from knockout.network import TwoLayerNet, initialize, silencing_mask

DIVERGED_LOSS_FACTOR = 1000.0
"""An epoch whose mean loss exceeds this many times the variance of the behaviour it fits
(predicting the mean scores 1x) has diverged. Adam's bounded steps often keep such a run
finite, so waiting for NaN would let a useless fit through."""


@dataclass(frozen=True)
class TrainSettings:
    """One model's slice of the ``train`` config."""

    lr: float = 1e-2
    batch_size: int = 64
    epochs: int = 60
    init: str = "glorot"
    lr_schedule: str = "cosine"

    def lr_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (1-based): constant, or cosine-annealed towards 0.

        With a constant rate, Adam ends wherever the last few batches pushed it;
        annealing lets the fit settle on all data sets at once.
        """
        if self.lr_schedule == "constant":
            return self.lr
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / self.epochs))
        raise ValueError(f"lr_schedule {self.lr_schedule!r} unknown (allowed: constant, cosine)")


def epoch_schedule(
    sets: list[tuple[int, torch.Tensor]], batch_size: int, generator: torch.Generator
) -> list[tuple[int, torch.Tensor]]:
    """The batches of one epoch as (silenced unit, rows), all sets interleaved.

    Each set is shuffled and cut into batches of ``batch_size`` (its last batch may
    be smaller); then the order of all batches is shuffled.
    """
    batches = []
    for unit, rows in sets:
        shuffled = rows[torch.randperm(len(rows), generator=generator)]
        batches.extend((unit, chunk) for chunk in shuffled.split(batch_size))
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def masked_units(model: str, silenced: list[int], n_hidden: int, generator: torch.Generator) -> list[int]:
    """The model unit to mask for batches from sets with these silenced units (-1: none)."""
    if model in ("control", "noko"):
        return [-1] * len(silenced)
    if model == "ko":
        return list(silenced)
    if model == "do":
        random_units = torch.randint(n_hidden, (len(silenced),), generator=generator).tolist()
        return [r if s >= 0 else -1 for s, r in zip(silenced, random_units, strict=True)]
    raise ValueError(f"model {model!r} unknown (allowed: {', '.join(naming.MODELS)})")


def keep_masks(n_hidden: int) -> torch.Tensor:
    """Every silencing mask stacked: ``masks[unit + 1]`` is ``silencing_mask(n_hidden, unit)``."""
    return torch.stack([silencing_mask(n_hidden, unit) for unit in range(-1, n_hidden)])


class FlatAdamNet:
    """The network's parameters in one flat buffer, with closed-form gradients and Adam.

    One step is about twenty tensor operations, several times faster than autograd
    with ``torch.optim.Adam`` for a network this small, and it computes the same
    update (the unit tests compare the two step by step).
    """

    def __init__(self, net: TwoLayerNet, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.n_hidden, self.n_inputs = net.hidden.weight.shape
        self.lr, self.betas, self.eps = lr, betas, eps
        self.theta = torch.cat([p.detach().reshape(-1) for p in self._ordered(net)])
        self.grad = torch.zeros_like(self.theta)
        self.exp_avg = torch.zeros_like(self.theta)
        self.exp_avg_sq = torch.zeros_like(self.theta)
        self.steps = 0
        self.w_in, self.b_in, self.w_out, self.b_out = self._views(self.theta)
        self.g_w_in, self.g_b_in, self.g_w_out, self.g_b_out = self._views(self.grad)

    @staticmethod
    def _ordered(net: TwoLayerNet) -> list[torch.Tensor]:
        return [net.hidden.weight, net.hidden.bias, net.output.weight, net.output.bias]

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        h, d = self.n_hidden, self.n_inputs
        w_in, b_in, w_out, b_out = flat.split([h * d, h, h, 1])
        return [w_in.view(h, d), b_in, w_out, b_out]

    def step(self, x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """One Adam step on the mean squared error of a batch; returns its summed squared error."""
        hidden = torch.addmm(self.b_in, x, self.w_in.T).mul_(keep)
        error = torch.addmv(self.b_out, hidden, self.w_out).sub_(y)
        squared_error = torch.dot(error, error)
        d_pred = error.mul_(2.0 / len(y))
        effective_w_out = self.w_out * keep
        torch.sum(d_pred, 0, keepdim=True, out=self.g_b_out)
        torch.mv(hidden.T, d_pred, out=self.g_w_out)
        torch.outer(effective_w_out, torch.mv(x.T, d_pred), out=self.g_w_in)
        torch.mul(effective_w_out, self.g_b_out, out=self.g_b_in)
        self._adam_update()
        return squared_error

    def _adam_update(self) -> None:
        """``torch.optim.Adam``'s update (no weight decay, no amsgrad) on the flat buffer."""
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(self.grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.theta.addcdiv_(self.exp_avg, denom, value=-self.lr / (1 - beta1**self.steps))

    def to_net(self) -> TwoLayerNet:
        net = TwoLayerNet(self.n_inputs, self.n_hidden)
        with torch.no_grad():
            for param, value in zip(self._ordered(net), self._views(self.theta.cpu()), strict=True):
                param.copy_(value.reshape(param.shape))
        return net.eval()


def train(
    model: str,
    data: BehaviorData,
    n_hidden: int,
    settings: TrainSettings,
    seed: int,
    device: torch.device | str = "cpu",
) -> tuple[TwoLayerNet, list[float]]:
    """Fit one network; returns it (on the CPU) and the mean training MSE per epoch.

    All four models of a replicate start from the same weights, and noko/ko/do see
    the same batches in the same order, so they differ only in what is masked.
    Raises :class:`TrainingDiverged` naming the epoch where the loss exploded or became
    non-finite; no network is returned then.
    """
    if model not in naming.MODELS:
        raise ValueError(f"model {model!r} unknown (allowed: {', '.join(naming.MODELS)})")
    start = TwoLayerNet(data.x.shape[1], n_hidden)
    initialize(start, settings.init, seeding.generator(seed, "model_init"))
    net = FlatAdamNet(start.to(device), settings.lr)
    x, y = data.x.to(device), data.y.to(device)
    masks = keep_masks(n_hidden).to(device)
    sets = data.rows_by_set(include_silenced=model != "control")
    n_rows = sum(len(rows) for _, rows in sets)
    schedule_rng = seeding.generator(seed, "schedule")
    dropout_rng = seeding.generator(seed, "dropout")

    divergence_threshold = DIVERGED_LOSS_FACTOR * float(data.y[torch.cat([rows for _, rows in sets])].var())
    epoch_losses = []
    for epoch in range(1, settings.epochs + 1):
        net.lr = settings.lr_at(epoch)
        batches = epoch_schedule(sets, settings.batch_size, schedule_rng)
        units = masked_units(model, [unit for unit, _ in batches], n_hidden, dropout_rng)
        squared_error = torch.zeros((), device=device)
        for (_, rows), unit in zip(batches, units, strict=True):
            rows = rows.to(device, non_blocking=True)
            squared_error += net.step(x.index_select(0, rows), y.index_select(0, rows), masks[unit + 1])
        epoch_loss = squared_error.item() / n_rows
        if not (epoch_loss <= divergence_threshold and torch.isfinite(net.theta).all()):
            raise TrainingDiverged(
                f"model {model!r}, seed {seed}: training diverged at epoch {epoch} of "
                f"{settings.epochs} (mean training loss {epoch_loss:.3g}, over "
                f"{DIVERGED_LOSS_FACTOR:g} x the variance of the behaviour); lower train.lr "
                f"(now {settings.lr:g})"
            )
        epoch_losses.append(epoch_loss)
    return net.to_net(), epoch_losses
