"""How well the fly's units can be identified, in the linear two-layer, one-output case.

The knockout objective has an exact optimum. With linear hidden units, a network's
prediction on a set where unit i is silenced is

    b_out + sum over j != i of  w_out,j * (W_in,j . x + b_in,j),

which is linear in each unit's product p_j = w_out,j * [W_in,j, b_in,j] and in b_out.
So the knockout loss is ordinary least squares in (p_1 .. p_h, b_out): its minimum is
the best any knockout training of this data can reach, and trained ko's distance
from it is the optimisation gap. As a network (unit i's input weights and bias p_i,
output weights 1) the optimum is evaluated beside the trained models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from knockout import optimum_conditions
from knockout.errors import ResourceLimit
from knockout.network import Architecture, KnockoutNet

if TYPE_CHECKING:
    from knockout.behavior_data import BehaviorData

STATISTICS_CHUNK_ROWS = 1 << 16
"""Rows per chunk when the statistics are accumulated (bounds the float64 copies)."""
DENSE_LIMIT_BYTES = 1 << 30
"""The general solve forms the (h(d+1)+1)² normal matrix: refused above this size."""


@dataclass(frozen=True)
class KnockoutStatistics:
    """Per data set (control, or one unit silenced), the sufficient statistics of least
    squares on ``[x, 1]``: the Gram matrix, the column sums, ``[x, 1]ᵀy``, Σy, Σy² and the
    row count. The knockout objective is a quadratic in the unit products whose
    coefficients are sums of these, so its optimum and its loss need only them: memory
    O(sets · (d+1)²), whatever the number of samples."""

    set_units: np.ndarray
    """[sets]: the unit each set silenced (-1: control)."""
    gram: np.ndarray
    """[sets, d+1, d+1]"""
    sums: np.ndarray
    """[sets, d+1]"""
    cross: np.ndarray
    """[sets, d+1]"""
    y_sum: np.ndarray
    y_squares: np.ndarray
    counts: np.ndarray
    n_hidden: int

    @classmethod
    def of(cls, x, y, silenced_unit, n_hidden: int) -> KnockoutStatistics:
        """From samples ``x`` [rows, d], ``y`` [rows] and each row's silenced unit (-1: none)."""
        silenced_unit = np.asarray(silenced_unit)
        set_units = np.unique(silenced_unit)
        d1 = np.asarray(x).shape[1] + 1
        n_sets = len(set_units)
        gram, sums, cross = np.zeros((n_sets, d1, d1)), np.zeros((n_sets, d1)), np.zeros((n_sets, d1))
        y_sum, y_squares, counts = np.zeros(n_sets), np.zeros(n_sets), np.zeros(n_sets)
        for number, unit in enumerate(set_units):
            rows = np.flatnonzero(silenced_unit == unit)
            for chunk in np.array_split(rows, max(1, len(rows) // STATISTICS_CHUNK_ROWS)):
                inputs = np.hstack([np.asarray(x[chunk], np.float64), np.ones((len(chunk), 1))])
                values = np.asarray(y[chunk], np.float64)
                gram[number] += inputs.T @ inputs
                sums[number] += inputs.sum(axis=0)
                cross[number] += inputs.T @ values
                y_sum[number] += values.sum()
                y_squares[number] += values @ values
                counts[number] += len(chunk)
        return cls(set_units, gram, sums, cross, y_sum, y_squares, counts, n_hidden)


@dataclass(frozen=True)
class UnitProducts:
    """A linear network as knockout training can identify it: per unit, w_out,i times its
    input weights and bias ([h, d + 1]), and the output bias."""

    products: np.ndarray
    output_bias: float

    @classmethod
    def of_net(cls, net: KnockoutNet) -> UnitProducts:
        """A linear network's unit products, in float64."""
        weight, bias, output_weight = (
            p.detach().double().numpy() for p in (net.hidden.weight, net.hidden.bias, net.output.weight)
        )
        products = output_weight.reshape(-1, 1) * np.hstack([weight, bias[:, None]])
        return cls(products, float(net.output.bias.item()))

    def as_network(self) -> KnockoutNet:
        """A linear two-layer network computing the same function: unit i's weights and
        bias are p_i, every output weight is 1."""
        n_hidden, n_inputs = self.products.shape[0], self.products.shape[1] - 1
        net = KnockoutNet(Architecture(n_inputs, n_hidden))
        with torch.no_grad():
            net.hidden.weight.copy_(torch.from_numpy(self.products[:, :-1]))
            net.hidden.bias.copy_(torch.from_numpy(self.products[:, -1]))
            net.output.weight.fill_(1.0)
            net.output.bias.fill_(self.output_bias)
        return net.eval()

    def set_weights(self, silenced_unit: int) -> np.ndarray:
        """[d + 1]: the weights of ``[x, 1]`` on a set where ``silenced_unit`` is silenced
        (-1: none): the sum of the other units' products."""
        kept = np.arange(len(self.products)) != silenced_unit
        return self.products[kept].sum(axis=0)

    def predict(self, x: np.ndarray, silenced_unit: np.ndarray) -> np.ndarray:
        """The output with each sample's silenced unit masked (-1: none), as ko is trained."""
        x, silenced_unit = np.asarray(x, np.float64), np.asarray(silenced_unit)
        predicted = np.empty(len(x))
        for unit in np.unique(silenced_unit):
            rows = silenced_unit == unit
            weights = self.set_weights(unit)
            predicted[rows] = x[rows] @ weights[:-1] + weights[-1] + self.output_bias
        return predicted

    def knockout_mse(self, statistics: KnockoutStatistics) -> float:
        """Mean squared error over all data sets, with each set's unit masked (ko's training
        loss), from the sets' statistics: Σ ‖[x, 1] w + c − y‖² expanded per set."""
        c, total = self.output_bias, 0.0
        for number, unit in enumerate(statistics.set_units):
            w = self.set_weights(unit)
            total += (
                w @ statistics.gram[number] @ w
                + 2 * c * w @ statistics.sums[number]
                + c * c * statistics.counts[number]
                - 2 * w @ statistics.cross[number]
                - 2 * c * statistics.y_sum[number]
                + statistics.y_squares[number]
            )
        return float(max(total, 0.0) / statistics.counts.sum())


def knockout_optimum(statistics: KnockoutStatistics) -> UnitProducts:
    """The network that minimises the knockout loss on these data.

    When there is a control set and every unit is silenced by a set of its own, each
    set's weights w_s (the sum of the products of the units it keeps) are free but for
    one constraint, Σ_units w_i = (h − 1) w_control, and the least-squares problem splits
    by set: a (d + 2)-equation system for the constraint's multiplier and the output bias,
    then one solve per set (:func:`_by_set`). Otherwise the normal equations are formed
    from the statistics and solved for their minimum-norm solution (:func:`_dense`).
    """
    units = statistics.set_units
    every_unit_once = sorted(units[units >= 0].tolist()) == list(range(statistics.n_hidden))
    if -1 in units and every_unit_once:
        try:
            return _by_set(statistics)
        except np.linalg.LinAlgError:  # a set too small to determine its weights
            pass
    return _dense(statistics)


def _by_set(statistics: KnockoutStatistics) -> UnitProducts:
    """The optimum from per-set solves (Lagrange multiplier λ of the constraint).

    Stationarity per set: G_s w_s + m_s c − b_s + ν_s λ = 0 with ν = −(h − 1) for control,
    1 for each unit's set; [x, 1] holds a constant column, so G_s⁻¹ m_s = e (the last unit
    vector) and the output bias's equation reduces to λ_last = 0.
    """
    h = statistics.n_hidden
    nu = np.where(statistics.set_units < 0, -(h - 1.0), 1.0)
    d1 = statistics.gram.shape[1]
    solved_cross = np.stack(
        [np.linalg.solve(g, b) for g, b in zip(statistics.gram, statistics.cross, strict=True)]
    )
    inverse_sum = sum(n * n * np.linalg.inv(g) for n, g in zip(nu, statistics.gram, strict=True))
    system = np.zeros((d1 + 1, d1 + 1))
    system[:d1, :d1] = inverse_sum
    system[d1 - 1, d1] = system[d1, d1 - 1] = nu.sum()
    rhs = np.append((nu[:, None] * solved_cross).sum(axis=0), 0.0)
    solution = np.linalg.solve(system, rhs)
    multiplier, output_bias = solution[:d1], solution[d1]
    weights = {
        int(unit): np.linalg.solve(g, b - m * output_bias - n * multiplier)
        for unit, g, b, m, n in zip(
            statistics.set_units, statistics.gram, statistics.cross, statistics.sums, nu, strict=True
        )
    }
    products = np.stack([weights[-1] - weights[unit] for unit in range(h)])
    return UnitProducts(products, float(output_bias))


def _dense(statistics: KnockoutStatistics) -> UnitProducts:
    """The minimum-norm solution of the normal equations A θ = r, θ = (p_1 .. p_h, c).

    Unit j's block of a set's design row is [x, 1] unless the set silenced j, so block
    (j, k) of A is the sum of the Grams of the sets that keep both j and k.
    """
    h, d1 = statistics.n_hidden, statistics.gram.shape[1]
    size = h * d1 + 1
    if size * size * 8 * 3 > DENSE_LIMIT_BYTES:
        raise ResourceLimit(
            f"the knockout optimum's normal equations would hold {size}² numbers "
            f"({size * size * 8 / 2**30:.1f} GiB); with every unit silenced by a set of its own it "
            f"is solved set by set instead; optimum: false skips it"
        )
    matrix, rhs = np.zeros((size, size)), np.zeros(size)
    for number, unit in enumerate(statistics.set_units):
        kept = np.arange(h) != unit
        blocks = np.kron(np.outer(kept, kept), statistics.gram[number])
        matrix[: h * d1, : h * d1] += blocks
        sums = np.kron(kept, statistics.sums[number])
        matrix[: h * d1, -1] += sums
        matrix[-1, : h * d1] += sums
        matrix[-1, -1] += statistics.counts[number]
        rhs[: h * d1] += np.kron(kept, statistics.cross[number])
        rhs[-1] += statistics.y_sum[number]
    theta, *_ = np.linalg.lstsq(matrix, rhs, rcond=None)
    return UnitProducts(theta[:-1].reshape(h, d1), float(theta[-1]))


def optimum_problem(
    architecture: Architecture, single_unit_sets: bool = True, silencing: str = "zero"
) -> str | None:
    """Why the knockout objective of networks of ``architecture`` has no exact optimum on
    data whose silenced sets do (``single_unit_sets``) or do not all silence one unit each,
    under ko's ``silencing`` in training (None: it has one): the conditions of the
    derivation above, stated once in :mod:`knockout.optimum_conditions`."""
    return optimum_conditions.optimum_problem(dataclasses.asdict(architecture), single_unit_sets, silencing)


def fitted_optimum(data: BehaviorData, architecture: Architecture) -> KnockoutNet:
    """The knockout objective's exact optimum on ``data`` (training rows) for networks of
    ``architecture``, as such a network; where :func:`optimum_problem` finds none, a
    ValueError saying why."""
    if problem := optimum_problem(architecture, data.single_unit_sets):
        raise ValueError(problem)
    statistics = KnockoutStatistics.of(
        data.x.numpy(), data.y[:, 0].numpy(), data.silenced_unit(), architecture.n_hidden
    )
    return knockout_optimum(statistics).as_network()
