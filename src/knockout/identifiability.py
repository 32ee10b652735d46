"""How well the fly's units can be identified, in the linear case.

The knockout objective has an exact optimum. With linear hidden units, a network's
prediction on a set where unit i is silenced is

    b_out + sum over j != i of  w_out,j * (W_in,j . x + b_in,j),

which is linear in each unit's product p_j = w_out,j * [W_in,j, b_in,j] and in b_out.
So the knockout loss is ordinary least squares in (p_1 .. p_h, b_out): its minimum is
the best any knockout training of this data can reach, and trained ko's distance
from it is the optimisation gap.

Neural R² three ways separates "learned the fly's neurons" from "learned their span":
unit i against unit i; each fly unit against the model unit a one-to-one matching
assigns it (Hungarian, maximising the summed R²); and each fly unit decoded linearly
from all model units (cross-validated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from knockout.metrics import r2_score, squared_correlations


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
    def of_network(cls, hidden_weight, hidden_bias, output_weight, output_bias) -> UnitProducts:
        unit_inputs = np.hstack([np.asarray(hidden_weight), np.asarray(hidden_bias)[:, None]])
        products = np.asarray(output_weight, dtype=np.float64).reshape(-1, 1) * unit_inputs
        return cls(products, float(np.asarray(output_bias).reshape(-1)[0]))

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


def matched_neural_r2(fly_hidden: np.ndarray, model_hidden: np.ndarray) -> np.ndarray:
    """Per fly unit, R² with the model unit a one-to-one matching gives it (maximum total R²).

    With more fly units than model units, the unmatched fly units score 0.
    """
    r2 = squared_correlations(fly_hidden, model_hidden)
    fly_units, model_units = linear_sum_assignment(r2, maximize=True)
    matched = np.zeros(r2.shape[0])
    matched[fly_units] = r2[fly_units, model_units]
    return matched


def decoded_neural_r2(fly_hidden: np.ndarray, model_hidden: np.ndarray, folds: int = 2) -> np.ndarray:
    """Per fly unit, the cross-validated R² of a linear read-out from all model units.

    Samples are split into ``folds`` contiguous parts; each part is predicted by least
    squares fitted on the others, and R² is computed on the pooled predictions.
    """
    predictors = _with_ones(np.asarray(model_hidden, np.float64))
    targets = np.asarray(fly_hidden, np.float64)
    predicted = np.empty_like(targets)
    for held_out in np.array_split(np.arange(len(targets)), folds):
        train = np.setdiff1d(np.arange(len(targets)), held_out)
        coefficients, *_ = np.linalg.lstsq(predictors[train], targets[train], rcond=None)
        predicted[held_out] = predictors[held_out] @ coefficients
    return np.array([r2_score(targets[:, unit], predicted[:, unit]) for unit in range(targets.shape[1])])
