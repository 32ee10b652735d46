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


def matched_neural_r2(fly_hidden: np.ndarray, model_hidden: np.ndarray) -> np.ndarray:
    """Per fly unit, R² with the model unit a one-to-one matching gives it (maximum total R²).

    With more fly units than model units, the unmatched fly units score 0.
    """
    # imported here: scipy.optimize costs ~0.7 s, which evaluate_behavior would pay for nothing
    from scipy.optimize import linear_sum_assignment

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
    predictors = np.hstack([np.asarray(model_hidden, np.float64), np.ones((len(model_hidden), 1))])
    targets = np.asarray(fly_hidden, np.float64)
    predicted = np.empty_like(targets)
    for held_out in np.array_split(np.arange(len(targets)), folds):
        train = np.setdiff1d(np.arange(len(targets)), held_out)
        coefficients, *_ = np.linalg.lstsq(predictors[train], targets[train], rcond=None)
        predicted[held_out] = predictors[held_out] @ coefficients
    return np.array([r2_score(targets[:, unit], predicted[:, unit]) for unit in range(targets.shape[1])])


def masks_the_silenced_unit(model: str) -> bool:
    """ko, and the knockout objective's exact optimum, mask the unit matching a silenced set."""
    return model in ("ko", naming.OPTIMUM)


@torch.no_grad()
def _predict(net: TwoLayerNet, x: torch.Tensor, masked_unit: int, remaining: float = 0.0) -> np.ndarray:
    return net(x, silencing_mask(net.n_hidden, masked_unit, remaining)).numpy()


def behavior_scores(
    fly: TwoLayerNet, models: dict[str, TwoLayerNet], test: pd.DataFrame, silenced_activity: float = 0.0
) -> pd.DataFrame:
    """Behaviour R² of every model on every test set, beside the noise ceiling.

    ko (and the knockout optimum) mask the unit matching the set's silenced unit, when
    they have it; the other models mask nothing. The noise ceiling is the fly's own R²
    on the same noisy test set, silenced as the data were made (``silenced_activity``
    of the unit's value remaining).
    """
    data = BehaviorData.from_table(test, fly.hidden.in_features)
    sets = test.drop_duplicates("dataset").sort_values("silenced_unit")
    rows = []
    for name, silenced_unit in zip(sets["dataset"], sets["silenced_unit"].tolist(), strict=True):
        in_set = (data.silenced_unit == silenced_unit).numpy()
        x, y = data.x[in_set], data.y.numpy()[in_set]
        ceiling = r2_score(y, _predict(fly, x, silenced_unit, silenced_activity))
        for model, net in models.items():
            masked = silenced_unit if masks_the_silenced_unit(model) else -1
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
def silencing_effects(net: TwoLayerNet, x: torch.Tensor) -> np.ndarray:
    """Per hidden unit, the root-mean-square change of the output when it is silenced.

    The "importance" of a unit as silencing experiments measure it, in behaviour units.
    """
    intact = net(x).double()
    return np.array(
        [
            torch.sqrt(torch.mean((intact - net(x, silencing_mask(net.n_hidden, unit))) ** 2)).item()
            for unit in range(net.n_hidden)
        ]
    )


def weight_cosines(fly: TwoLayerNet, net: TwoLayerNet) -> np.ndarray:
    """Per fly unit i, |cosine| between its input weights (receptive field) and model unit i's.

    0 for fly units the model does not have. Absolute: units are identified up to sign.
    """
    fly_weights = fly.hidden.weight.detach().double().numpy()
    model_weights = net.hidden.weight.detach().double().numpy()
    shared = min(len(fly_weights), len(model_weights))
    cosines = np.zeros(len(fly_weights))
    a, b = fly_weights[:shared], model_weights[:shared]
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    np.divide(np.abs(np.sum(a * b, axis=1)), norms, out=cosines[:shared], where=norms > 0)
    return cosines


def _same_index_r2(fly_hidden: np.ndarray, model_hidden: np.ndarray) -> np.ndarray:
    """R² of model unit i against fly unit i; 0 for fly units the model does not have."""
    shared = min(fly_hidden.shape[1], model_hidden.shape[1])
    r2 = np.zeros(fly_hidden.shape[1])
    r2[:shared] = np.diag(squared_correlations(fly_hidden[:, :shared], model_hidden[:, :shared]))
    return r2


def _padded(values: np.ndarray, length: int) -> np.ndarray:
    """``values`` cut or zero-padded to ``length`` (one entry per fly unit)."""
    return np.pad(values, (0, max(0, length - len(values))))[:length]


@torch.no_grad()
def neural_scores(
    fly: TwoLayerNet, models: dict[str, TwoLayerNet], probe: pd.DataFrame, n_silenced: int | None = None
) -> pd.DataFrame:
    """Per model and fly unit, on the probe inputs:

    - ``r2``: neural R² of model unit i against fly unit i (0 if the model has no unit i);
    - ``r2_matched``: against the model unit a one-to-one matching assigns it;
    - ``r2_decoded``: decoded linearly from all model units (cross-validated);
    - ``weight_cosine``: |cosine| of fly and model unit i's input weights;
    - ``silencing_effect`` and ``fly_silencing_effect``: the RMS change of the output
      when unit i is silenced, in the model and in the fly;
    - ``contribution`` of the fly unit, and ``silenced`` (1 if the experiment silenced it).
    """
    n_inputs, n_hidden = fly.hidden.in_features, fly.n_hidden
    x = torch.from_numpy(probe[naming.input_columns(n_inputs)].to_numpy(np.float32, copy=True))
    fly_hidden = probe[naming.hidden_columns(n_hidden)].to_numpy(np.float64)
    silenced = (np.arange(n_hidden) < (n_hidden if n_silenced is None else n_silenced)).astype(np.int64)
    fly_columns = {
        "unit": np.arange(n_hidden),
        "silenced": silenced,
        "fly_silencing_effect": silencing_effects(fly, x),
        "contribution": unit_contributions(fly, fly_hidden),
    }
    tables = []
    for model, net in models.items():
        model_hidden = net.activity(x).double().numpy()
        scores = {
            "r2": _same_index_r2(fly_hidden, model_hidden),
            "r2_matched": matched_neural_r2(fly_hidden, model_hidden),
            "r2_decoded": decoded_neural_r2(fly_hidden, model_hidden),
            "weight_cosine": weight_cosines(fly, net),
            "silencing_effect": _padded(silencing_effects(net, x), n_hidden),
        }
        tables.append(pd.DataFrame({"model": model, **fly_columns, **scores}))
    return pd.concat(tables, ignore_index=True)[naming.NEURAL_SCORE_COLUMNS]
