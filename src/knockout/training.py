"""Knockout training, its comparison models, and random restarts.

Every batch comes from one data set (control, or a silencing of one or several units).
What a model trains on and masks on a silenced batch comes from its registry entry
(:mod:`knockout.models`): control fits the control set only; noko fits every set and
masks nothing; ko masks the model units matching the silenced ones; do masks as many
uniformly random units on silenced batches.

Schedules: ``interleaved`` (the default) shuffles each set, cuts it into batches and
shuffles the batches of all sets together; ``blocked`` trains one set after another,
the sets in a new random order each epoch (as the authors' published script does).

The knockout loss is not convex once units are nonlinear, and one run can stop in a
poor local minimum. Two remedies, both measured on the ReLU fly (docs/results.md):

- ``restarts`` trains R networks from independent initial weights, side by side as one
  batched computation (stacked parameters, autograd), and keeps the one with the lowest
  final training loss.
- ``relabel``: ko's stuck runs are mostly ones whose units learned the fly's units in
  the wrong order (a permutation of the bottleneck leaves the network unchanged on
  control data, but ko masks unit i on set i, and gradient steps cannot swap two
  units). After epochs 1, 2, 4, 8, ... (each check costs about a tenth of an epoch, and
  the swaps come early), each restart's bottleneck units are reordered by the assignment
  of units to silenced sets with the lowest knockout loss (the Hungarian algorithm on
  the loss of each set with each unit masked), when it is lower than the current
  order's. It uses the behaviour data only, and only lowers the loss ko trains on (a
  line that silences several units couples their roles: see :class:`_Relabeller`).

For the two-layer, one-output network of the seed problem trained once without
relabelling, a hand-derived step (:class:`FlatAdamNet`) is used instead: it is several
times faster there (``make bench``), and the tests check it against the autograd trainer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from knockout import models, seeding
from knockout.behavior_data import BehaviorData
from knockout.errors import TrainingDiverged
from knockout.network import Architecture, KnockoutNet, initialize, silencing_mask

DIVERGED_LOSS_FACTOR = 1000.0
"""An epoch whose mean loss exceeds this many times the variance of the behaviour it fits
(predicting the mean scores 1x) has diverged. Adam's bounded steps often keep such a run
finite, so waiting for NaN would let a useless fit through."""
SCHEDULES = ("interleaved", "blocked")
RELABEL_CHOICES = ("auto", "always", "never")
RELABEL_CHUNK_VALUES = 1 << 23
"""Numbers (per layer, all restarts together) one chunk of rows of a relabelling check may
hold: 32 MiB of float32, so the check's memory is bounded whatever the data size."""


@dataclass(frozen=True)
class TrainSettings:
    """One model's slice of the ``train`` config."""

    lr: float = 1e-2
    batch_size: int = 64
    epochs: int = 60
    init: str = "glorot"
    lr_schedule: str = "cosine"
    schedule: str = "interleaved"
    restarts: int = 1
    relabel: str = "auto"
    """Reorder ko's units after epochs 1, 2, 4, ...: always, never, or auto (ReLU networks only:
    plain training of linear ones reaches the exact optimum, and keeps the fast path)."""

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} unknown (allowed: {', '.join(SCHEDULES)})")
        if self.relabel not in RELABEL_CHOICES:
            raise ValueError(f"relabel {self.relabel!r} unknown (allowed: {', '.join(RELABEL_CHOICES)})")
        if self.restarts < 1:
            raise ValueError(f"restarts must be at least 1, not {self.restarts}")

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


@dataclass(frozen=True)
class TrainingResult:
    """The kept network (on the CPU), every restart's mean training MSE per epoch
    (``losses[epoch][restart]``), which restart was kept, and per restart the epochs
    after which its units were relabelled (empty lists when no relabelling ran)."""

    network: KnockoutNet
    losses: list[list[float]]
    chosen: int
    relabelled: list[list[int]]

    @property
    def chosen_losses(self) -> list[float]:
        return [epoch[self.chosen] for epoch in self.losses]


def epoch_schedule(
    sets: list[tuple[tuple[int, ...], torch.Tensor]],
    batch_size: int,
    generator: torch.Generator,
    schedule: str = "interleaved",
) -> list[tuple[tuple[int, ...], torch.Tensor]]:
    """The batches of one epoch as (silenced units, rows).

    Each set is shuffled and cut into batches of ``batch_size`` (its last batch may
    be smaller). interleaved: the order of all batches is then shuffled; blocked: the
    sets follow each other, in a random order.
    """
    if schedule == "blocked":
        sets = [sets[i] for i in torch.randperm(len(sets), generator=generator).tolist()]
    batches = []
    for unit, rows in sets:
        shuffled = rows[torch.randperm(len(rows), generator=generator)]
        batches.extend((unit, chunk) for chunk in shuffled.split(batch_size))
    if schedule == "blocked":
        return batches
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def masked_units(
    model: str, silenced: list[tuple[int, ...]], n_hidden: int, generator: torch.Generator
) -> list[tuple[int, ...]]:
    """The model units to mask for batches from sets that silenced these units (() for none).

    random: one uniform draw per batch; a set that silences k > 1 units draws k distinct
    units more (after the batch's draws), so one-unit sets see the same stream either way.
    """
    mask = models.spec(model).train_mask
    if mask == "none":
        return [()] * len(silenced)
    if mask == "matching":  # a model smaller than the fly has no unit to mask for the fly's last units
        return [tuple(unit for unit in units if unit < n_hidden) for units in silenced]
    random_units = torch.randint(n_hidden, (len(silenced),), generator=generator).tolist()
    masked = []
    for units, drawn in zip(silenced, random_units, strict=True):
        if len(units) > 1:
            drawn_units = torch.randperm(n_hidden, generator=generator)[: len(units)].tolist()
            masked.append(tuple(drawn_units))
        else:
            masked.append((drawn,) if units else ())
    return masked


def keep_matrix(masked: list[tuple[int, ...]], n_hidden: int, device) -> torch.Tensor:
    """[batch, n_hidden] ``keep`` multipliers: 0 at each batch's masked units, else 1."""
    keep = torch.ones(len(masked), n_hidden)
    batches = [batch for batch, units in enumerate(masked) for _ in units]
    keep[batches, [unit for units in masked for unit in units]] = 0.0
    return keep.to(device)


def with_ones_column(matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` with a column of ones appended (it multiplies a bias)."""
    return torch.cat([matrix, torch.ones(len(matrix), 1, device=matrix.device)], dim=1)


def keep_masks(n_hidden: int) -> torch.Tensor:
    """Every silencing mask stacked: ``masks[unit + 1]`` is ``silencing_mask(n_hidden, unit)``."""
    return torch.stack([silencing_mask(n_hidden, unit) for unit in range(-1, n_hidden)])


class Adam:
    """Adam (no weight decay, no amsgrad) on a list of tensors, by the kernel
    ``torch.optim.Adam(fused=True)`` runs, called directly: for networks this small the
    optimizer's own ``step()`` costs more than the whole update."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros((), device=p.device) for p in params]

    def step(self, grads: list[torch.Tensor]) -> None:
        beta1, beta2 = self.betas
        for steps in self.steps:
            steps += 1
        torch._fused_adam_(
            self.params,
            grads,
            self.exp_avg,
            self.exp_avg_sq,
            [],
            self.steps,
            lr=self.lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )


class FlatAdamNet:
    """The two-layer, one-output network's parameters in one flat buffer, with
    closed-form gradients and Adam: the fast path for one restart.

    For a network this small, time goes to launching tensor operations, not to
    arithmetic, so a step is written as few of them as possible (the unit tests
    compare it with autograd step by step, and with the autograd trainer):

    - inputs carry a column of ones and the flat buffer stores each hidden unit's
      weights followed by its bias, so one product gives the hidden activity;
    - the hidden activity is kept transposed with a row of ones under it, so one
      product gives the prediction error, and one the output layer's gradient;
    - with linear units the input layer's gradient is an outer product (all rows of a
      batch share one mask, and the output is linear); with ReLU units it is one
      product of the active units' errors with the inputs; Adam is PyTorch's fused kernel;
    - ``train`` runs it in inference mode and gathers an epoch's rows once.
    """

    def __init__(self, net: KnockoutNet, lr: float) -> None:
        if not fast_path_fits(net.architecture):
            raise ValueError(
                f"the closed-form step is for two-layer, one-output networks, not {net.architecture}"
            )
        self.architecture = net.architecture
        self.n_hidden, self.n_inputs = net.hidden.weight.shape
        self.activation = net.activation
        with torch.no_grad():
            hidden_with_bias = torch.cat([net.hidden.weight, net.hidden.bias[:, None]], dim=1)
            self.theta = torch.cat([hidden_with_bias.reshape(-1), net.output.weight[0], net.output.bias])
        self.grad = torch.zeros_like(self.theta)
        self.adam = Adam([self.theta], lr)
        self.hidden_with_bias, self.output_with_bias = self._views(self.theta)
        self.grad_hidden_with_bias, self.grad_output_with_bias = self._views(self.grad)
        self.output_weight = self.output_with_bias[: self.n_hidden]
        self._activity = {}
        self._input_side = torch.zeros(self.n_inputs + 1, device=self.theta.device)

    @property
    def lr(self) -> float:
        return self.adam.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.adam.lr = value

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

        ``x_with_ones`` is [batch, d + 1] with a last column of ones; ``y`` is [batch];
        ``keep`` is the silencing mask [h] and ``keep_column`` the same with a 1 appended
        (it keeps the output bias), shaped [h + 1, 1]. ``train`` gathers both shapes once
        per epoch: slicing one from the other here costs about a tenth of a step. The
        prediction errors (before the step) are written into ``error``.
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
        self.adam.step([self.grad])

    def to_net(self) -> KnockoutNet:
        net = KnockoutNet(self.architecture)
        hidden, output = self._views(self.theta.cpu())
        with torch.no_grad():
            net.hidden.weight.copy_(hidden[:, :-1])
            net.hidden.bias.copy_(hidden[:, -1])
            net.output.weight.copy_(output[None, :-1])
            net.output.bias.copy_(output[-1:])
        return net.eval()


class StackedNets:
    """R networks of one architecture as stacked parameters: layer l's weights are one
    [R, in, out] tensor (transposed, so that autograd's gradients come out contiguous, as
    the fused Adam kernel needs) and its biases one [R, 1, out], so a batch passes through
    all R networks in one batched product per layer. Gradients come from autograd; the
    networks share no parameter, so each one's gradient is its own loss's."""

    def __init__(self, nets: list[KnockoutNet], device: torch.device | str = "cpu") -> None:
        self.architecture = nets[0].architecture
        self.bottleneck = len(self.architecture.encoder)
        layers = [net.layers() for net in nets]
        with torch.no_grad():
            self.weights = [
                torch.stack([layer[i].weight.T for layer in layers]).to(device) for i in range(len(layers[0]))
            ]
            self.biases = [
                torch.stack([layer[i].bias[None] for layer in layers]).to(device)
                for i in range(len(layers[0]))
            ]

    @property
    def params(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def _layers(self, params: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        n_layers = len(self.weights)
        return list(zip(params[:n_layers], params[n_layers:], strict=True))

    def _apply(self, values: torch.Tensor, layers, activate_last: bool) -> torch.Tensor:
        for index, (weight, bias) in enumerate(layers):
            values = torch.baddbmm(bias, values, weight)
            if (activate_last or index < len(layers) - 1) and self.architecture.activation == "relu":
                values = torch.relu(values)
        return values

    def activity(self, x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """Bottleneck activity [R, batch, h] for inputs [batch, d]."""
        values = x.expand(len(params[0]), *x.shape)  # a view: every network reads the same batch
        return self._apply(values, self._layers(params)[: self.bottleneck + 1], activate_last=True)

    def decode(self, activity: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """Outputs [R, batch, n_outputs] from bottleneck activity [R, batch, h]."""
        return self._apply(activity, self._layers(params)[self.bottleneck + 1 :], activate_last=False)

    def predict(self, x: torch.Tensor, keep: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """Outputs [R, batch, n_outputs] for inputs [batch, d], ``keep`` [h] on the bottleneck."""
        return self.decode(self.activity(x, params) * keep, params)

    def permute_units(self, restart: int, order: torch.Tensor, tensors: list[torch.Tensor]) -> None:
        """Reorder one restart's bottleneck units in ``tensors`` (laid out as ``params``: the
        parameters, or an optimizer state of the same shapes): unit k becomes old unit
        ``order[k]``. The network computes the same function; only the units' names change."""
        n_layers, into, out_of = len(self.weights), self.bottleneck, self.bottleneck + 1
        weight_in, bias_in, weight_out = tensors[into], tensors[n_layers + into], tensors[out_of]
        weight_in[restart] = weight_in[restart][:, order]
        bias_in[restart] = bias_in[restart][:, order]
        weight_out[restart] = weight_out[restart][order, :]

    def network(self, restart: int) -> KnockoutNet:
        net = KnockoutNet(self.architecture)
        with torch.no_grad():
            for layer, weight, bias in zip(net.layers(), self.weights, self.biases, strict=True):
                layer.weight.copy_(weight[restart].T.cpu())
                layer.bias.copy_(bias[restart, 0].cpu())
        return net.eval()


def fast_path_fits(architecture: Architecture) -> bool:
    """The closed-form step handles the two-layer network with one output."""
    return architecture.two_layer and architecture.n_outputs == 1


def relabels(model: str, architecture: Architecture, settings: TrainSettings) -> bool:
    """Whether this model's units are reordered during training: only a model that masks
    the unit matching the silenced one (ko) has an order to get wrong."""
    if models.spec(model).train_mask != "matching" or settings.relabel == "never":
        return False
    return settings.relabel == "always" or architecture.activation == "relu"


@torch.no_grad()
def _row_chunks(stacked: StackedNets, n_restarts: int, n_rows: int, max_values: int, device):
    """Row indices in chunks whose widest layer holds at most ``max_values`` numbers across
    the R networks, so that memory stays bounded for any data size."""
    widest = max(width for sizes in stacked.architecture.layer_sizes() for width in sizes)
    return torch.arange(n_rows, device=device).split(max(1, max_values // (n_restarts * widest)))


@torch.no_grad()
def knockout_costs(
    stacked: StackedNets,
    params: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    set_index: torch.Tensor,
    max_values: int = RELABEL_CHUNK_VALUES,
    base_keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """[R, set, unit]: each restart's summed squared error on each silenced set (rows of
    ``x``, ``y``; ``set_index`` numbers their sets from 0) with that model unit masked, on
    top of each row's ``base_keep`` [rows, units] (the set's other silenced units; None:
    nothing else), in chunks of rows (:func:`_row_chunks`).
    """
    n_restarts, n_hidden = len(params[0]), stacked.architecture.n_hidden
    n_sets = int(set_index.max()) + 1
    costs = torch.zeros(n_restarts, n_sets, n_hidden, dtype=torch.float64, device=x.device)
    masks = keep_masks(n_hidden)[1:].to(x.device)
    for rows in _row_chunks(stacked, n_restarts, len(x), max_values, x.device):
        activity = stacked.activity(x[rows], params)
        if base_keep is not None:
            activity = activity * base_keep[rows]
        for unit, keep in enumerate(masks):
            errors = stacked.decode(activity * keep, params) - y[rows]
            per_row = (errors * errors).sum(dim=2).double()
            costs[:, :, unit].index_add_(1, set_index[rows], per_row)
    return costs


@torch.no_grad()
def masked_losses(
    stacked: StackedNets,
    params: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    keep: torch.Tensor,
    max_values: int = RELABEL_CHUNK_VALUES,
) -> torch.Tensor:
    """[R]: each restart's summed squared error on rows ``x``, ``y`` masked by ``keep`` [rows, units]."""
    n_restarts = len(params[0])
    total = torch.zeros(n_restarts, dtype=torch.float64, device=x.device)
    for rows in _row_chunks(stacked, n_restarts, len(x), max_values, x.device):
        errors = stacked.predict(x[rows], keep[rows], params) - y[rows]
        total += (errors * errors).sum(dim=(1, 2)).double()
    return total


def best_order(costs, set_units: list[int], n_hidden: int) -> list[int] | None:
    """The unit order with the lowest knockout loss (unit k becomes old unit ``order[k]``),
    or None when the current order is already as good.

    ``costs`` [set, unit] is one restart's :func:`knockout_costs`; set j is the one where
    the fly's unit ``set_units[j]`` was silenced, so ko masks model unit ``set_units[j]``
    on it. Units no set masks (a model larger than the fly) keep their relative order.
    """
    from scipy.optimize import linear_sum_assignment  # ~0.7 s to import: only where it runs

    costs = np.asarray(costs)
    current = costs[np.arange(len(set_units)), set_units].sum()
    sets, units = linear_sum_assignment(costs)
    if not costs[sets, units].sum() < current:
        return None
    order: list[int | None] = [None] * n_hidden
    for set_number, unit in zip(sets, units, strict=True):
        order[set_units[set_number]] = int(unit)
    assigned = set(units.tolist())
    unassigned = iter(u for u in range(n_hidden) if u not in assigned)
    return [unit if unit is not None else next(unassigned) for unit in order]


class _Relabeller:
    """After epochs 1, 2, 4, 8, ..., reorders every restart's units (and its Adam state with
    them) to the knockout loss's best assignment of units to the silenced units' roles.

    Each silenced unit the model has is a role; the cost of model unit k in role i is the
    loss of every set that silences i with k masked in i's place (and the set's other
    units masked as now). With sets of one unit each that is the knockout loss exactly;
    a set of several units couples their roles, so there a proposed order is kept only if
    the knockout loss computed with it is lower.
    """

    def __init__(self, model: str, data: BehaviorData, n_hidden: int, n_restarts: int, device) -> None:
        sets = [(units, rows) for units, rows in trained_sets(model, data) if units]
        self.set_units = sorted({unit for units, _ in sets for unit in units if unit < n_hidden})
        self.n_hidden = n_hidden
        self.epochs: list[list[int]] = [[] for _ in range(n_restarts)]
        if not self.set_units:  # no set masks a unit this model has: there is no order to fix
            return
        role = {unit: number for number, unit in enumerate(self.set_units)}
        entries = [(role[unit], units, rows) for units, rows in sets for unit in units if unit < n_hidden]
        rows = torch.cat([rows for _, _, rows in entries])
        self.x, self.y = data.x[rows].to(device), data.y[rows].to(device)
        self.set_index = torch.cat([torch.full((len(rows),), number) for number, _, rows in entries]).to(
            device
        )
        self.exact = all(len(units) == 1 for units, _ in sets)
        self.base_keep = self.sets = None
        if not self.exact:
            others = [tuple(u for u in units if u != self.set_units[number]) for number, units, _ in entries]
            self.base_keep = torch.cat(
                [
                    keep_matrix([masked] * len(rows), n_hidden, device)
                    for masked, (_, _, rows) in zip(others, entries, strict=True)
                ]
            )
            self.sets = [(tuple(u for u in units if u < n_hidden), rows) for units, rows in sets]
            set_rows = torch.cat([rows for _, rows in sets])
            self.set_x, self.set_y = data.x[set_rows].to(device), data.y[set_rows].to(device)

    def _loss_with(self, order: list[int], stacked: StackedNets, params: list[torch.Tensor]) -> torch.Tensor:
        """[R]: the knockout loss over the silenced sets if units were renamed by ``order``
        (unit i's role played by old unit ``order[i]``)."""
        masked = [tuple(order[unit] for unit in units) for units, rows in self.sets for _ in range(len(rows))]
        keep = keep_matrix(masked, self.n_hidden, self.set_x.device)
        return masked_losses(stacked, params, self.set_x, self.set_y, keep)

    def __call__(self, epoch: int, stacked: StackedNets, params: list[torch.Tensor], adam: Adam) -> None:
        if not self.set_units or epoch & (epoch - 1):  # not a power of two
            return
        costs = knockout_costs(stacked, params, self.x, self.y, self.set_index, base_keep=self.base_keep)
        current = None if self.exact else self._loss_with(list(range(self.n_hidden)), stacked, params)
        for restart, restart_costs in enumerate(costs.cpu().numpy()):
            order = best_order(restart_costs, self.set_units, self.n_hidden)
            if order is None:
                continue
            if not self.exact and not self._loss_with(order, stacked, params)[restart] < current[restart]:
                continue
            order = torch.tensor(order, device=params[0].device)
            with torch.no_grad():
                for tensors in (params, adam.exp_avg, adam.exp_avg_sq):
                    stacked.permute_units(restart, order, tensors)
            self.epochs[restart].append(epoch)


def trained_sets(model: str, data: BehaviorData) -> list[tuple[tuple[int, ...], torch.Tensor]]:
    """The data sets a model fits: the control set only, or every set (its registry entry)."""
    return data.rows_by_set(include_silenced=models.spec(model).trains_on == "all")


def initial_networks(architecture: Architecture, settings: TrainSettings, seed: int) -> list[KnockoutNet]:
    """The ``settings.restarts`` networks training starts from, drawn one after another
    from the replicate's model_init stream: the same for every model of a replicate, and
    restart 0 is the network a run without restarts starts from."""
    generator = seeding.generator(seed, "model_init")
    return [initialize(KnockoutNet(architecture), settings.init, generator) for _ in range(settings.restarts)]


def epoch_plans(
    model: str, data: BehaviorData, n_hidden: int, settings: TrainSettings, seed: int
) -> Iterator[tuple[int, list[torch.Tensor], list[tuple[int, ...]]]]:
    """Per epoch (from 1): each batch's rows in training order, and the units it masks.

    noko, ko and do draw their batches from the same stream, so they see the same
    batches in the same order and differ only in what is masked; every restart sees the
    same batches too.
    """
    sets = trained_sets(model, data)
    schedule_rng = seeding.generator(seed, "schedule")
    dropout_rng = seeding.generator(seed, "dropout")
    for epoch in range(1, settings.epochs + 1):
        batches = epoch_schedule(sets, settings.batch_size, schedule_rng, settings.schedule)
        units = masked_units(model, [units for units, _ in batches], n_hidden, dropout_rng)
        yield epoch, [rows for _, rows in batches], units


class _DivergenceWatch:
    """Marks restarts whose epoch loss exploded or went non-finite; raises once all have."""

    def __init__(self, model: str, seed: int, settings: TrainSettings, behaviour_variance: float) -> None:
        self.model, self.seed, self.settings = model, seed, settings
        self.threshold = DIVERGED_LOSS_FACTOR * behaviour_variance
        self.diverged = [False] * settings.restarts

    def check(self, epoch: int, losses: list[float], finite_weights: list[bool]) -> None:
        for restart, (loss, finite) in enumerate(zip(losses, finite_weights, strict=True)):
            if not (loss <= self.threshold and finite):
                self.diverged[restart] = True
        if all(self.diverged):
            restarts = "" if len(losses) == 1 else f" (all {len(losses)} restarts)"
            raise TrainingDiverged(
                f"model {self.model!r}, seed {self.seed}: training diverged{restarts} at epoch {epoch} "
                f"of {self.settings.epochs} (mean training loss {min(losses):.3g}, over "
                f"{DIVERGED_LOSS_FACTOR:g} x the variance of the behaviour); lower train.lr "
                f"(now {self.settings.lr:g})"
            )

    def best(self, final_losses: list[float]) -> int:
        """The restart with the lowest final loss among those that never diverged."""
        candidates = [r for r in range(len(final_losses)) if not self.diverged[r]]
        return min(candidates, key=lambda r: final_losses[r])


def _epoch_batches(data_x, data_y, batch_rows, device):
    """An epoch's rows gathered once, in batch order; each batch is then a view."""
    order = torch.cat(batch_rows).to(device)
    sizes = [len(rows) for rows in batch_rows]
    return data_x.index_select(0, order).split(sizes), data_y.index_select(0, order).split(sizes), sizes


def _train_fast(model, data, start, settings, seed, device, watch) -> TrainingResult:
    """One two-layer, one-output network with the closed-form step."""
    n_hidden = start.n_hidden
    n_rows = sum(len(rows) for _, rows in trained_sets(model, data))
    losses = []
    with torch.inference_mode():  # no autograd bookkeeping: about a third of each step's time
        net = FlatAdamNet(start.to(device), settings.lr)
        x_with_ones = with_ones_column(data.x).to(device)
        y = data.y[:, 0].to(device)
        for epoch, batch_rows, units in epoch_plans(model, data, n_hidden, settings, seed):
            net.lr = settings.lr_at(epoch)
            xs, ys, sizes = _epoch_batches(x_with_ones, y, batch_rows, device)
            errors = torch.empty(n_rows, device=device)
            keep = keep_matrix(units, n_hidden, device)
            for batch in zip(
                xs,
                ys,
                keep.unbind(0),
                with_ones_column(keep).unsqueeze(2).unbind(0),
                errors.split(sizes),
                strict=True,
            ):
                net.step(*batch)
            epoch_loss = torch.dot(errors, errors).item() / n_rows
            watch.check(epoch, [epoch_loss], [bool(torch.isfinite(net.theta).all())])
            losses.append([epoch_loss])
    return TrainingResult(net.to_net(), losses, 0, [[]])


def train_restarts(
    model: str,
    data: BehaviorData,
    starts: list[KnockoutNet],
    settings: TrainSettings,
    seed: int,
    device: torch.device | str = "cpu",
) -> TrainingResult:
    """Train every network of ``starts`` side by side (autograd, any architecture), relabelling
    ko's units after epochs 1, 2, 4, ... where :func:`relabels` says so, and keep the one with the
    lowest final training loss. ``settings.restarts`` must equal ``len(starts)``."""
    if len(starts) != settings.restarts:
        raise ValueError(f"{len(starts)} initial networks for {settings.restarts} restarts")
    models.spec(model)
    watch = _DivergenceWatch(model, seed, settings, _trained_variance(model, data))
    n_hidden, n_outputs = starts[0].n_hidden, starts[0].architecture.n_outputs
    n_values = sum(len(rows) for _, rows in trained_sets(model, data)) * n_outputs
    stacked = StackedNets(starts, device)
    params = [p.requires_grad_() for p in stacked.params]
    adam = Adam(params, settings.lr)
    x, y = data.x.to(device), data.y.to(device)
    relabel = None
    if relabels(model, starts[0].architecture, settings):
        relabel = _Relabeller(model, data, n_hidden, len(starts), device)
    losses = []
    for epoch, batch_rows, units in epoch_plans(model, data, n_hidden, settings, seed):
        adam.lr = settings.lr_at(epoch)
        xs, ys, _ = _epoch_batches(x, y, batch_rows, device)
        squared_errors = torch.zeros(len(starts), device=device)
        for batch_x, batch_y, keep in zip(xs, ys, keep_matrix(units, n_hidden, device), strict=True):
            errors = stacked.predict(batch_x, keep, params) - batch_y
            squared = errors * errors
            # the sum of every restart's mean squared error: they share no parameter, so each
            # restart's gradient is its own loss's
            grads = torch.autograd.grad(squared.sum() / errors[0].numel(), params)
            with torch.no_grad():
                adam.step([grad.contiguous() for grad in grads])  # a no-op: they are
                squared_errors += squared.sum(dim=(1, 2))
        epoch_losses = (squared_errors / n_values).tolist()
        with torch.no_grad():
            finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in params]).all(0).tolist()
        watch.check(epoch, epoch_losses, finite)
        losses.append(epoch_losses)
        if relabel is not None:
            relabel(epoch, stacked, params, adam)
    chosen = watch.best(losses[-1]) if losses else 0
    relabelled = relabel.epochs if relabel is not None else [[] for _ in starts]
    return TrainingResult(stacked.network(chosen), losses, chosen, relabelled)


def _trained_variance(model: str, data: BehaviorData) -> float:
    """The variance of the behaviour a model fits (all its outputs pooled)."""
    rows = torch.cat([rows for _, rows in trained_sets(model, data)])
    return float(data.y[rows].var())


def train(
    model: str,
    data: BehaviorData,
    architecture: Architecture,
    settings: TrainSettings,
    seed: int,
    device: torch.device | str = "cpu",
) -> TrainingResult:
    """Fit ``settings.restarts`` networks of ``architecture`` to a model's data sets and
    keep the best; raises :class:`TrainingDiverged` naming the epoch where the loss
    exploded or became non-finite (in every restart); no network is returned then."""
    models.spec(model)
    if (
        settings.restarts == 1
        and fast_path_fits(architecture)
        and not relabels(model, architecture, settings)
    ):
        [start] = initial_networks(architecture, settings, seed)
        watch = _DivergenceWatch(model, seed, settings, _trained_variance(model, data))
        return _train_fast(model, data, start, settings, seed, device, watch)
    return train_restarts(model, data, initial_networks(architecture, settings, seed), settings, seed, device)
