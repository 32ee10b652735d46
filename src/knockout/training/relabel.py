"""Relabelling: put ko's units in the order that its knockout loss says they play.

The knockout loss is not convex once units are nonlinear, and ko's stuck runs are mostly
ones whose units learned the fly's units in the wrong order: a permutation of the
bottleneck leaves the network unchanged on control data, but ko masks unit i on set i,
and gradient steps cannot swap two units. After epochs 1, 2, 4, 8, ... (each check costs
about a tenth of an epoch, and the swaps come early), each network's bottleneck units are
reordered by the assignment of units to silenced sets with the lowest knockout loss (the
Hungarian algorithm on the loss of each set with each unit masked), when it is lower than
the current order's. It uses the behaviour data only, and only lowers the loss ko trains
on (a line that silences several units couples their roles: see :class:`Relabeller`).
"""

from __future__ import annotations

import numpy as np
import torch

from knockout.inputs import Inputs
from knockout.network import keep_matrix, output_losses, silenced
from knockout.training.plan import FitPlan
from knockout.training.stack import NetworkStack, with_ones

CHUNK_VALUES = 1 << 23
"""Numbers (per layer, all networks together) one chunk of rows of a relabelling check may
hold: 32 MiB of float32, so the check's memory is bounded whatever the data size."""


def _row_chunks(stack: NetworkStack, n_members: int, n_rows: int, max_values: int, device):
    """Row indices in chunks whose widest layer holds at most ``max_values`` numbers across
    the networks, so that memory stays bounded for any data size."""
    widest = max(
        *(width for sizes in stack.shapes for width in sizes), stack.architecture.values_per_sample()
    )
    return torch.arange(n_rows, device=device).split(max(1, max_values // (n_members * widest)))


def _shared(x: torch.Tensor, n_members: int) -> torch.Tensor:
    """Rows [rows, d] as every member's input [members, d + 1, rows] (:func:`with_ones`)."""
    inputs = with_ones(x)
    return inputs.expand(n_members, *inputs.shape)


@torch.no_grad()
def knockout_costs(
    stack: NetworkStack,
    layers: list[torch.Tensor],
    x: Inputs | torch.Tensor,
    y: torch.Tensor,
    set_index: torch.Tensor,
    max_values: int = CHUNK_VALUES,
    base_keep: torch.Tensor | None = None,
    centre: torch.Tensor | None = None,
) -> torch.Tensor:
    """[networks, set, unit]: each network's summed loss on each silenced set (rows of
    ``x``, ``y``; ``set_index`` numbers their sets from 0) with that model unit masked, on
    top of each row's ``base_keep`` [rows, units] (the set's other silenced units; None:
    nothing else), in chunks of rows; a masked unit takes the value ``centre``
    [networks, h, 1] (None: 0). ``layers`` are the networks' (a subset of the stack's
    members, :meth:`NetworkStack.evaluation_layers`). With no decoder layer and continuous
    outputs, the output is linear in the bottleneck and the loss quadratic, and one pass
    gives every unit's cost; otherwise it takes a pass per unit."""
    n_members, n_hidden = len(layers[0]), stack.architecture.n_hidden
    binary = stack.architecture.binary_mask()
    binary = None if binary is None else binary.to(x.device).view(1, -1, 1)
    n_sets = int(set_index.max()) + 1
    costs = torch.zeros(n_members, n_sets, n_hidden, dtype=torch.float64, device=x.device)
    for rows in _row_chunks(stack, n_members, len(x), max_values, x.device):
        activity = stack.activity(_shared(x[rows], n_members), layers)  # [members, h, rows]
        activity = silenced(activity, None if base_keep is None else base_keep[rows].T, centre)
        target = y[rows].T  # [outputs, rows]
        if stack.architecture.decoder or binary is not None:
            per_row = torch.stack(
                [
                    _row_losses(
                        stack.decode(activity, layers, _unit_mask(n_hidden, unit, x.device), centre),
                        target,
                        binary,
                    )
                    for unit in range(n_hidden)
                ],
                dim=2,
            )
        else:  # masking unit k takes (a_k - c_k) w_k off every output: (e - (a_k - c_k) w_k)^2, all k at once
            moved = activity if centre is None else activity - centre
            output_weight = layers[-1][:, :, :-1]  # [members, outputs, h]
            errors = stack.decode(activity, layers) - target  # [members, outputs, rows]
            projected = torch.bmm(output_weight.transpose(1, 2), errors)  # e . w_k [members, h, rows]
            norms = (output_weight * output_weight).sum(dim=1)[:, :, None]  # |w_k|^2 [members, h, 1]
            per_row = (errors * errors).sum(dim=1, keepdim=True).double() + (
                moved * (moved * norms - 2.0 * projected)
            ).double()
            per_row = per_row.transpose(1, 2)  # [members, rows, h]
        costs.index_add_(1, set_index[rows], per_row)
    return costs


@torch.no_grad()
def mean_activity(
    stack: NetworkStack, layers: list[torch.Tensor], x: Inputs | torch.Tensor, max_values: int = CHUNK_VALUES
) -> torch.Tensor:
    """[networks, h, 1]: each network's mean bottleneck activity over the rows ``x``: where
    the ``centered`` silencing mode clamps a masked unit."""
    n_members = len(layers[0])
    total = torch.zeros(n_members, stack.architecture.n_hidden, 1, dtype=torch.float64, device=x.device)
    for rows in _row_chunks(stack, n_members, len(x), max_values, x.device):
        total += stack.activity(_shared(x[rows], n_members), layers).double().sum(dim=2, keepdim=True)
    return (total / len(x)).float()


def _unit_mask(n_hidden: int, unit: int, device) -> torch.Tensor:
    """[1, 1, h]: every network's mask silencing ``unit``."""
    return keep_matrix([(unit,)], n_hidden, device=device).view(1, 1, n_hidden)


def _row_losses(predicted: torch.Tensor, target: torch.Tensor, binary: torch.Tensor | None) -> torch.Tensor:
    """[members, rows]: each row's loss (predicted [members, outputs, rows] against target
    [outputs, rows]; :func:`~knockout.network.output_losses`) summed over the outputs, in float64."""
    return output_losses(predicted, target, binary).sum(dim=1).double()


@torch.no_grad()
def masked_losses(
    stack: NetworkStack,
    layers: list[torch.Tensor],
    x: Inputs | torch.Tensor,
    y: torch.Tensor,
    keep: torch.Tensor,
    max_values: int = CHUNK_VALUES,
    centre: torch.Tensor | None = None,
) -> torch.Tensor:
    """[networks]: each network's summed loss on rows ``x``, ``y``, masked by ``keep``
    [rows, units], a masked unit taking the value ``centre`` [networks, h, 1] (None: 0)."""
    n_members = len(layers[0])
    binary = stack.architecture.binary_mask()
    binary = None if binary is None else binary.to(x.device).view(1, -1, 1)
    total = torch.zeros(n_members, dtype=torch.float64, device=x.device)
    for rows in _row_chunks(stack, n_members, len(x), max_values, x.device):
        predicted = stack.predict(_shared(x[rows], n_members), layers, keep[rows].T[None], centre)
        total += _row_losses(predicted, y[rows].T, binary).sum(dim=1)
    return total


def best_order(costs, set_units: list[int], n_hidden: int) -> list[int] | None:
    """The unit order with the lowest knockout loss (unit k becomes old unit ``order[k]``),
    or None when the current order is already as good.

    ``costs`` [set, unit] is one network's :func:`knockout_costs`; set j is the one where
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


def is_relabel_epoch(epoch: int) -> bool:
    """Relabelling runs after epochs 1, 2, 4, 8, ... (powers of two)."""
    return epoch > 0 and not epoch & (epoch - 1)


class Relabeller:
    """Reorders the units of one model's networks (its restarts: ``members`` of the stack),
    and their optimizer state and batch normalisation's running statistics with them, to
    the knockout loss's best assignment of units to the silenced units' roles.

    Each silenced unit the model has is a role; the cost of model unit k in role i is the
    loss of every set that silences i with k masked in i's place (and the set's other
    units masked as now). With sets of one unit each that is the knockout loss exactly;
    a set of several units couples their roles, so there a proposed order is kept only if
    the knockout loss computed with it is lower.
    """

    def __init__(self, plan: FitPlan, members: list[int], inputs: Inputs) -> None:
        """``inputs``: the plan's data's, where the training holds them (its device)."""
        data, n_hidden, device = plan.data, plan.architecture.n_hidden, inputs.device
        sets = [(units, rows) for units, rows in plan.sets if units]
        self.members = members
        self.set_units = sorted({unit for units, _ in sets for unit in units if unit < n_hidden})
        self.n_hidden = n_hidden
        self.epochs: list[list[int]] = [[] for _ in members]
        """Per member, the epochs after which its units were reordered."""
        if not self.set_units:  # no set masks a unit this model has: there is no order to fix
            return
        role = {unit: number for number, unit in enumerate(self.set_units)}
        entries = [(role[unit], units, rows) for units, rows in sets for unit in units if unit < n_hidden]
        rows = torch.cat([rows for _, _, rows in entries])
        self.x, self.y = inputs.select(rows), data.y[rows].to(device)
        self.set_index = torch.cat([torch.full((len(rows),), number) for number, _, rows in entries]).to(
            device
        )
        self.centered = plan.settings.silencing == "centered"
        """Whether masked units are clamped to their mean (over the silenced sets' rows here,
        computed once per check)."""
        self.exact = all(len(units) == 1 for units, _ in sets)
        self.base_keep = self.sets = None
        if not self.exact:
            others = [tuple(u for u in units if u != self.set_units[number]) for number, units, _ in entries]
            self.base_keep = torch.cat(
                [
                    keep_matrix([masked] * len(rows), n_hidden, device=device)
                    for masked, (_, _, rows) in zip(others, entries, strict=True)
                ]
            )
            self.sets = [(tuple(u for u in units if u < n_hidden), rows) for units, rows in sets]
            set_rows = torch.cat([rows for _, rows in sets])
            self.set_x, self.set_y = inputs.select(set_rows), data.y[set_rows].to(device)

    def _loss_with(
        self, order: list[int], stack: NetworkStack, layers: list[torch.Tensor], centre: torch.Tensor | None
    ) -> torch.Tensor:
        """[members]: the knockout loss over the silenced sets if units were renamed by
        ``order`` (unit i's role played by old unit ``order[i]``), a masked unit clamped to
        ``centre`` (None: set to 0)."""
        masked = [tuple(order[unit] for unit in units) for units, rows in self.sets for _ in range(len(rows))]
        keep = keep_matrix(masked, self.n_hidden, device=self.set_x.device)
        return masked_losses(stack, layers, self.set_x, self.set_y, keep, centre=centre)

    def __call__(self, epoch: int, stack: NetworkStack, states: list[torch.Tensor]) -> None:
        """After ``epoch``: reorder each member's units in every buffer of ``states`` (the
        parameters first, then the optimizer's moments) where that lowers its loss."""
        if not self.set_units or not is_relabel_epoch(epoch):
            return
        index = torch.tensor(self.members, device=stack.params.device)
        layers = stack.evaluation_layers(index)
        centre = mean_activity(stack, layers, self.x) if self.centered else None  # once per check
        costs = knockout_costs(
            stack, layers, self.x, self.y, self.set_index, base_keep=self.base_keep, centre=centre
        )
        current = None if self.exact else self._loss_with(list(range(self.n_hidden)), stack, layers, centre)
        for number, (member, member_costs) in enumerate(zip(self.members, costs.cpu().numpy(), strict=True)):
            order = best_order(member_costs, self.set_units, self.n_hidden)
            if order is None:
                continue
            if not self.exact and not self._loss_with(order, stack, layers, centre)[number] < current[number]:
                continue
            order = torch.tensor(order, device=stack.params.device)
            for buffer in states:
                stack.permute_units(member, order, buffer)
            stack.permute_statistics(member, order)
            self.epochs[number].append(epoch)
