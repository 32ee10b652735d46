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
from collections.abc import Iterator
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
    """The model unit to mask for batches from sets with these silenced fly units (-1: none)."""
    if model in ("control", "noko"):
        return [-1] * len(silenced)
    if model == "ko":  # a model smaller than the fly has no unit to mask for the fly's last units
        return [s if s < n_hidden else -1 for s in silenced]
    if model == "do":
        random_units = torch.randint(n_hidden, (len(silenced),), generator=generator).tolist()
        return [r if s >= 0 else -1 for s, r in zip(silenced, random_units, strict=True)]
    raise ValueError(f"model {model!r} unknown (allowed: {', '.join(naming.MODELS)})")


def with_ones_column(matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` with a column of ones appended (it multiplies a bias)."""
    return torch.cat([matrix, torch.ones(len(matrix), 1, device=matrix.device)], dim=1)


def keep_masks(n_hidden: int) -> torch.Tensor:
    """Every silencing mask stacked: ``masks[unit + 1]`` is ``silencing_mask(n_hidden, unit)``."""
    return torch.stack([silencing_mask(n_hidden, unit) for unit in range(-1, n_hidden)])


class FlatAdamNet:
    """The network's parameters in one flat buffer, with closed-form gradients and Adam.

    For a network this small, time goes to launching tensor operations, not to
    arithmetic, so a step is written as few of them as possible (the unit tests
    compare it with autograd and ``torch.optim.Adam`` step by step):

    - inputs carry a column of ones and the flat buffer stores each hidden unit's
      weights followed by its bias, so one product gives the hidden activity;
    - the hidden activity is kept transposed with a row of ones under it, so one
      product gives the prediction error, and one the output layer's gradient;
    - with linear units the input layer's gradient is an outer product (all rows of a
      batch share one mask, and the output is linear); with ReLU units it is one
      product of the active units' errors with the inputs; Adam is PyTorch's fused kernel;
    - ``train`` runs it in inference mode and gathers an epoch's rows once.
    """

    def __init__(self, net: TwoLayerNet, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.n_hidden, self.n_inputs = net.hidden.weight.shape
        self.activation = net.activation
        self.lr, self.betas, self.eps = lr, betas, eps
        with torch.no_grad():
            hidden_with_bias = torch.cat([net.hidden.weight, net.hidden.bias[:, None]], dim=1)
            self.theta = torch.cat([hidden_with_bias.reshape(-1), net.output.weight[0], net.output.bias])
        self.grad = torch.zeros_like(self.theta)
        self.exp_avg = torch.zeros_like(self.theta)
        self.exp_avg_sq = torch.zeros_like(self.theta)
        self.steps = torch.zeros((), device=self.theta.device)
        self.hidden_with_bias, self.output_with_bias = self._views(self.theta)
        self.grad_hidden_with_bias, self.grad_output_with_bias = self._views(self.grad)
        self.output_weight = self.output_with_bias[: self.n_hidden]
        self._activity = {}
        self._input_side = torch.zeros(self.n_inputs + 1, device=self.theta.device)

    def _views(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden weights with bias column [h, d + 1], output weights with bias [h + 1])."""
        h, d = self.n_hidden, self.n_inputs
        hidden, output = flat.split([h * (d + 1), h + 1])
        return hidden.view(h, d + 1), output

    def _activity_buffer(self, batch_size: int) -> torch.Tensor:
        """Transposed hidden activity [h + 1, batch]; the last row stays 1 (the output bias)."""
        if batch_size not in self._activity:
            self._activity[batch_size] = torch.ones(self.n_hidden + 1, batch_size, device=self.theta.device)
        return self._activity[batch_size]

    def step(
        self,
        x_with_ones: torch.Tensor,
        y: torch.Tensor,
        keep: torch.Tensor,
        keep_column: torch.Tensor,
        error: torch.Tensor,
    ) -> None:
        """One Adam step on the mean squared error of a batch.

        ``x_with_ones`` is [batch, d + 1] with a last column of ones; ``keep`` is the
        silencing mask [h] and ``keep_column`` the same with a 1 appended (it keeps the
        output bias), shaped [h + 1, 1]. ``train`` gathers both shapes once per epoch:
        slicing one from the other here costs about a tenth of a step. The prediction
        errors (before the step) are written into ``error``.
        """
        activity = self._activity_buffer(len(y))
        hidden = activity[: self.n_hidden]
        torch.mm(self.hidden_with_bias, x_with_ones.T, out=hidden)
        if self.activation == "relu":
            hidden.clamp_(min=0.0)
        activity.mul_(keep_column)
        torch.addmv(y, activity.T, self.output_with_bias, beta=-1, out=error)
        scale = 2.0 / len(y)  # d(mean squared error) / d(prediction) = scale * error
        gradient = self.grad_output_with_bias
        torch.addmv(gradient, activity, error, beta=0, alpha=scale, out=gradient)
        if self.activation == "relu":
            # d loss / d (unit j's pre-activation on row n) = scale * w_out,j * keep_j * error_n * [active]
            active_errors = (hidden > 0) * error
            torch.mm(active_errors, x_with_ones, out=self.grad_hidden_with_bias)
            self.grad_hidden_with_bias.mul_((self.output_weight * keep * scale)[:, None])
        else:
            input_side = self._input_side
            torch.addmv(input_side, x_with_ones.T, error, beta=0, alpha=scale, out=input_side)
            torch.outer(self.output_weight * keep, input_side, out=self.grad_hidden_with_bias)
        self._adam_update()

    def _adam_update(self) -> None:
        """Adam (no weight decay, no amsgrad) by the kernel ``torch.optim.Adam(fused=True)`` runs.

        Called directly: the optimizer's own ``step()`` costs more than the whole update.
        """
        beta1, beta2 = self.betas
        self.steps += 1
        torch._fused_adam_(
            [self.theta],
            [self.grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.steps],
            lr=self.lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def to_net(self) -> TwoLayerNet:
        net = TwoLayerNet(self.n_inputs, self.n_hidden, self.activation)
        hidden, output = self._views(self.theta.cpu())
        with torch.no_grad():
            net.hidden.weight.copy_(hidden[:, :-1])
            net.hidden.bias.copy_(hidden[:, -1])
            net.output.weight.copy_(output[None, :-1])
            net.output.bias.copy_(output[-1:])
        return net.eval()


def trained_sets(model: str, data: BehaviorData) -> list[tuple[int, torch.Tensor]]:
    """The data sets a model fits: the control set for control, every set otherwise."""
    return data.rows_by_set(include_silenced=model != "control")


def initial_network(
    n_inputs: int, n_hidden: int, settings: TrainSettings, seed: int, activation: str = "linear"
) -> TwoLayerNet:
    """The weights training starts from: the same for all four models of a replicate."""
    net = TwoLayerNet(n_inputs, n_hidden, activation)
    return initialize(net, settings.init, seeding.generator(seed, "model_init"))


def epoch_plans(
    model: str, data: BehaviorData, n_hidden: int, settings: TrainSettings, seed: int
) -> Iterator[tuple[int, list[torch.Tensor], list[int]]]:
    """Per epoch (from 1): each batch's rows in training order, and the unit it masks (-1: none).

    noko, ko and do draw their batches from the same stream, so they see the same
    batches in the same order and differ only in what is masked.
    """
    sets = trained_sets(model, data)
    schedule_rng = seeding.generator(seed, "schedule")
    dropout_rng = seeding.generator(seed, "dropout")
    for epoch in range(1, settings.epochs + 1):
        batches = epoch_schedule(sets, settings.batch_size, schedule_rng)
        units = masked_units(model, [unit for unit, _ in batches], n_hidden, dropout_rng)
        yield epoch, [rows for _, rows in batches], units


def train(
    model: str,
    data: BehaviorData,
    n_hidden: int,
    settings: TrainSettings,
    seed: int,
    device: torch.device | str = "cpu",
    activation: str = "linear",
) -> tuple[TwoLayerNet, list[float]]:
    """Fit one network of ``n_hidden`` units; returns it (on the CPU) and the mean
    training MSE per epoch.

    Raises :class:`TrainingDiverged` naming the epoch where the loss exploded or became
    non-finite; no network is returned then.
    """
    if model not in naming.MODELS:
        raise ValueError(f"model {model!r} unknown (allowed: {', '.join(naming.MODELS)})")
    trained_rows = torch.cat([rows for _, rows in trained_sets(model, data)])
    n_rows = len(trained_rows)
    divergence_threshold = DIVERGED_LOSS_FACTOR * float(data.y[trained_rows].var())
    epoch_losses = []
    with torch.inference_mode():  # no autograd bookkeeping: about a third of each step's time
        start = initial_network(data.x.shape[1], n_hidden, settings, seed, activation)
        net = FlatAdamNet(start.to(device), settings.lr)
        x_with_ones = with_ones_column(data.x).to(device)
        y = data.y.to(device)
        masks = keep_masks(n_hidden).to(device)
        masks_with_one = with_ones_column(masks).unsqueeze(2)
        for epoch, batch_rows, units in epoch_plans(model, data, n_hidden, settings, seed):
            net.lr = settings.lr_at(epoch)
            # The epoch's rows gathered once, in batch order; each batch is then a view.
            order = torch.cat(batch_rows).to(device)
            sizes = [len(rows) for rows in batch_rows]
            errors = torch.empty(n_rows, device=device)
            masked = torch.tensor(units, device=device) + 1
            for batch in zip(
                x_with_ones.index_select(0, order).split(sizes),
                y.index_select(0, order).split(sizes),
                masks[masked].unbind(0),
                masks_with_one[masked].unbind(0),
                errors.split(sizes),
                strict=True,
            ):
                net.step(*batch)
            epoch_loss = torch.dot(errors, errors).item() / n_rows
            if not (epoch_loss <= divergence_threshold and torch.isfinite(net.theta).all()):
                raise TrainingDiverged(
                    f"model {model!r}, seed {seed}: training diverged at epoch {epoch} of "
                    f"{settings.epochs} (mean training loss {epoch_loss:.3g}, over "
                    f"{DIVERGED_LOSS_FACTOR:g} x the variance of the behaviour); lower train.lr "
                    f"(now {settings.lr:g})"
                )
            epoch_losses.append(epoch_loss)
    return net.to_net(), epoch_losses
