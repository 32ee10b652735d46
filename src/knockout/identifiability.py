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

from dataclasses import dataclass

import numpy as np
import torch

from knockout.network import Architecture, KnockoutNet


def _with_ones(matrix: np.ndarray) -> np.ndarray:
    return np.hstack([matrix, np.ones((len(matrix), 1))])


def knockout_design(x: np.ndarray, silenced_unit: np.ndarray, n_hidden: int) -> np.ndarray:
    """Least-squares design of the knockout objective, one row per sample.

    Unit j's block of columns is the sample's inputs with a 1 (for its bias), zeroed
    on samples whose data set silenced unit j; the last column is the output bias.
    """
    inputs = _with_ones(np.asarray(x, dtype=np.float64))
    kept = np.asarray(silenced_unit)[:, None] != np.arange(n_hidden)[None, :]
    blocks = kept[:, :, None] * inputs[:, None, :]
    return _with_ones(blocks.reshape(len(inputs), -1))


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

    def predict(self, x: np.ndarray, silenced_unit: np.ndarray) -> np.ndarray:
        """The output with each sample's silenced unit masked (-1: none), as ko is trained."""
        theta = np.append(self.products.reshape(-1), self.output_bias)
        return knockout_design(x, silenced_unit, len(self.products)) @ theta

    def knockout_mse(self, x: np.ndarray, y: np.ndarray, silenced_unit: np.ndarray) -> float:
        """Mean squared error of ``predict`` (ko's training loss over all data sets)."""
        return float(np.mean((self.predict(x, silenced_unit) - np.asarray(y, np.float64)) ** 2))


def knockout_optimum(x: np.ndarray, y: np.ndarray, silenced_unit: np.ndarray, n_hidden: int) -> UnitProducts:
    """The network that minimises the knockout loss on this data (least squares)."""
    design = knockout_design(x, silenced_unit, n_hidden)
    theta, *_ = np.linalg.lstsq(design, np.asarray(y, np.float64), rcond=None)
    return UnitProducts(theta[:-1].reshape(n_hidden, -1), float(theta[-1]))
