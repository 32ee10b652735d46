"""How well each model predicts behaviour, and how well its units track the fly's.

All statistics are computed in float64 from float32 network outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from knockout import naming
from knockout.behavior_data import BehaviorData
from knockout.network import TwoLayerNet, silencing_mask


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (SS_tot about the mean of y_true)."""
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    ss_tot = np.sum((y_true - y_true.mean()) ** 2)
    if ss_tot == 0:
        raise ValueError("R² is undefined: the observed values have zero variance")
    return float(1.0 - np.sum((y_true - y_pred) ** 2) / ss_tot)


def squared_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[column of a, column of b] squared Pearson correlations; 0 where a column is
    constant (it tracks nothing).

    Hidden units are identified only up to scale and sign, hence squared correlation.
    """
    a = np.asarray(a, np.float64) - np.mean(a, axis=0)
    b = np.asarray(b, np.float64) - np.mean(b, axis=0)
    denominator = np.outer(np.sum(a * a, axis=0), np.sum(b * b, axis=0))
    numerator = (a.T @ b) ** 2
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def squared_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Squared Pearson correlation of two vectors (``squared_correlations`` of one pair)."""
    return float(squared_correlations(np.reshape(a, (-1, 1)), np.reshape(b, (-1, 1)))[0, 0])


@torch.no_grad()
def _predict(net: TwoLayerNet, x: torch.Tensor, masked_unit: int) -> np.ndarray:
    return net(x, silencing_mask(net.n_hidden, masked_unit)).numpy()


def behavior_scores(fly: TwoLayerNet, models: dict[str, TwoLayerNet], test: pd.DataFrame) -> pd.DataFrame:
    """Behaviour R² of every model on every test set, beside the noise ceiling.

    ko masks the unit matching the set's silenced unit; the other models mask
    nothing. The noise ceiling is the fly's own R² on the same noisy test set.
    """
    names = naming.dataset_names(fly.n_hidden)
    data = BehaviorData.from_table(test, fly.hidden.in_features)
    rows = []
    for silenced_unit, name in enumerate(names, start=-1):
        in_set = (data.silenced_unit == silenced_unit).numpy()
        x, y = data.x[in_set], data.y.numpy()[in_set]
        ceiling = r2_score(y, _predict(fly, x, silenced_unit))
        for model, net in models.items():
            masked = silenced_unit if model == "ko" else -1
            rows.append((model, name, silenced_unit, r2_score(y, _predict(net, x, masked)), ceiling))
    return pd.DataFrame(rows, columns=naming.BEHAVIOR_SCORE_COLUMNS)


@torch.no_grad()
def unit_contributions(fly: TwoLayerNet, fly_hidden: np.ndarray) -> np.ndarray:
    """Std over the probe set of w_out,i * h_i: each fly unit's share of the behaviour.

    Units far below the behavioural noise (noise_sd) cannot be identified from
    behaviour by any method. Population std (ddof=0).
    """
    w_out = fly.output.weight.numpy().astype(np.float64).ravel()
    return np.std(fly_hidden.astype(np.float64) * w_out, axis=0)


@torch.no_grad()
def neural_scores(fly: TwoLayerNet, models: dict[str, TwoLayerNet], probe: pd.DataFrame) -> pd.DataFrame:
    """Neural R² of model unit i against fly unit i on the probe set, per model and unit."""
    n_inputs, n_hidden = fly.hidden.in_features, fly.n_hidden
    x = torch.from_numpy(probe[naming.input_columns(n_inputs)].to_numpy(np.float32, copy=True))
    fly_hidden = probe[naming.hidden_columns(n_hidden)].to_numpy(np.float64)
    contribution = unit_contributions(fly, fly_hidden)
    rows = []
    for model, net in models.items():
        model_hidden = net.hidden(x).numpy()
        for unit in range(n_hidden):
            r2 = squared_correlation(fly_hidden[:, unit], model_hidden[:, unit])
            rows.append((model, unit, r2, contribution[unit]))
    return pd.DataFrame(rows, columns=naming.NEURAL_SCORE_COLUMNS)
