"""How well each model predicts behaviour, and how well its units track the fly's.

All statistics are computed in float64 from float32 network outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from knockout import models, naming
from knockout.behavior_data import BehaviorData
from knockout.network import KnockoutNet, silencing_mask


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


@torch.no_grad()
def _predict(net: KnockoutNet, x: torch.Tensor, masked_unit: int, remaining: float = 0.0) -> np.ndarray:
    return net(x, silencing_mask(net.n_hidden, masked_unit, remaining)).numpy()


def behavior_scores(
    fly: KnockoutNet, nets: dict[str, KnockoutNet], test: pd.DataFrame, silenced_activity: float = 0.0
) -> pd.DataFrame:
    """Behaviour R² of every model on every test set and output, beside the noise ceiling.

    A model whose registry entry masks at test time (ko, the knockout optimum) masks the
    unit matching the set's silenced unit, when it has it; the others mask nothing. The
    noise ceiling is the fly's own R² on the same noisy test set, silenced as the data
    were made (``silenced_activity`` of the unit's value remaining).
    """
    n_outputs = fly.architecture.n_outputs
    outputs = naming.output_columns(n_outputs)
    data = BehaviorData.from_table(test, fly.architecture.n_inputs, n_outputs)
    sets = test.drop_duplicates("dataset").sort_values("silenced_unit")
    rows = []
    for name, silenced_unit in zip(sets["dataset"], sets["silenced_unit"].tolist(), strict=True):
        in_set = (data.silenced_unit == silenced_unit).numpy()
        x, y = data.x[in_set], data.y.numpy()[in_set]
        fly_prediction = _predict(fly, x, silenced_unit, silenced_activity)
        predictions = {
            model: _predict(net, x, silenced_unit if models.spec(model).test_mask == "matching" else -1)
            for model, net in nets.items()
        }
        for k, output in enumerate(outputs):
            ceiling = r2_score(y[:, k], fly_prediction[:, k])
            for model, predicted in predictions.items():
                rows.append((model, name, silenced_unit, output, r2_score(y[:, k], predicted[:, k]), ceiling))
    return pd.DataFrame(rows, columns=naming.BEHAVIOR_SCORE_COLUMNS)


@torch.no_grad()
def unit_contributions(fly: KnockoutNet, fly_hidden: np.ndarray) -> np.ndarray:
    """Each fly unit's share of the behaviour: the standard deviation over the probe set
    of the change of the output when the unit is silenced (its root-sum-square over
    outputs). Population std (ddof=0).

    With no decoder the output is linear in the bottleneck, so the change is exactly
    W_out[:, i] · h_i, computed as such in float64 (for the seed problem, std(w_out,i · h_i)).
    Units far below the behavioural noise cannot be identified from behaviour by any method.
    """
    hidden = fly_hidden.astype(np.float64)
    if fly.architecture.decoder:
        drive = torch.from_numpy(hidden)
        decoder = KnockoutNet(fly.architecture).double()
        decoder.load_state_dict(fly.state_dict())
        intact = decoder.decode(drive)
        changes = [
            (intact - decoder.decode(drive * silencing_mask(fly.n_hidden, unit).double())).numpy()
            for unit in range(fly.n_hidden)
        ]
        return np.array([np.sqrt(np.sum(np.var(change, axis=0))) for change in changes])
    w_out = fly.output.weight.numpy().astype(np.float64)  # [outputs, units]
    if len(w_out) == 1:
        return np.std(hidden * w_out[0], axis=0)
    return np.sqrt(np.sum(np.var(hidden[:, None, :] * w_out[None], axis=0), axis=0))


def predicted_neural_r2(
    contributions: np.ndarray, noise_sd: float, n_inputs: int, n_train: int
) -> np.ndarray:
    """The best neural R² the data allow for each unit of a linear fly: c² / (c² + σ²·d/n).

    c is the unit's contribution, d the inputs and n the training samples per set: the
    unit's d weights are estimated from n noisy samples, so their error variance is about
    σ²·d/n, and a unit whose contribution is below that cannot be told from noise.
    """
    c2 = np.asarray(contributions, np.float64) ** 2
    floor = noise_sd**2 * n_inputs / n_train
    return np.divide(c2, c2 + floor, out=np.ones_like(c2), where=(c2 + floor) > 0)


@torch.no_grad()
def silencing_effects(net: KnockoutNet, x: torch.Tensor) -> np.ndarray:
    """Per bottleneck unit, the root-mean-square change of the outputs when it is silenced
    (over samples, summed over outputs).

    The "importance" of a unit as silencing experiments measure it, in behaviour units.
    """
    intact = net(x).double()
    return np.array(
        [
            torch.sqrt(
                torch.mean(torch.sum((intact - net(x, silencing_mask(net.n_hidden, unit))) ** 2, dim=1))
            ).item()
            for unit in range(net.n_hidden)
        ]
    )


def weight_cosines(fly: KnockoutNet, net: KnockoutNet) -> np.ndarray:
    """Per fly unit i, |cosine| between its input weights (receptive field) and model unit i's.

    0 for fly units the model does not have. Absolute: units are identified up to sign.
    NaN when either network has an encoder: its bottleneck does not read the inputs.
    """
    fly_weights = fly.hidden.weight.detach().double().numpy()
    if fly.architecture.encoder or net.architecture.encoder:
        return np.full(len(fly_weights), np.nan)
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


@dataclass(frozen=True)
class DataDesign:
    """What the identifiability prediction needs of the experiment: noise, samples per set,
    and how complete the silencing was (the prediction holds for complete silencing only)."""

    noise_sd: float
    n_train: int
    silenced_activity: float


@torch.no_grad()
def neural_scores(
    fly: KnockoutNet,
    nets: dict[str, KnockoutNet],
    probe: pd.DataFrame,
    n_silenced: int | None = None,
    design: DataDesign | None = None,
) -> pd.DataFrame:
    """Per model and fly unit, on the probe inputs:

    - ``r2``: neural R² of model unit i against fly unit i (0 if the model has no unit i);
    - ``r2_matched``: against the model unit a one-to-one matching assigns it;
    - ``r2_decoded``: decoded linearly from all model units (cross-validated);
    - ``weight_cosine``: |cosine| of fly and model unit i's input weights;
    - ``silencing_effect`` and ``fly_silencing_effect``: the RMS change of the output
      when unit i is silenced, in the model and in the fly;
    - ``contribution`` of the fly unit, and ``silenced`` (1 if the experiment silenced it);
    - ``r2_predicted``: the best neural R² the data allow (``predicted_neural_r2``) for a
      silenced unit, 0 for a unit no set silenced (nothing singles it out). Its premises:
      a linear two-layer, one-output fly, complete silencing, and models with at least
      the fly's units; NaN where one fails or there is no ``design``.
    """
    n_inputs, n_hidden = fly.architecture.n_inputs, fly.n_hidden
    x = torch.from_numpy(probe[naming.input_columns(n_inputs)].to_numpy(np.float32, copy=True))
    fly_hidden = probe[naming.hidden_columns(n_hidden)].to_numpy(np.float64)
    silenced = (np.arange(n_hidden) < (n_hidden if n_silenced is None else n_silenced)).astype(np.int64)
    contributions = unit_contributions(fly, fly_hidden)
    predictable = (
        design is not None
        and design.silenced_activity == 0
        and fly.architecture.two_layer
        and fly.activation == "linear"
        and fly.architecture.n_outputs == 1
        and all(net.n_hidden >= n_hidden for net in nets.values())
    )
    predicted = np.full(n_hidden, np.nan)
    if predictable:
        best = predicted_neural_r2(contributions, design.noise_sd, n_inputs, design.n_train)
        predicted = np.where(silenced == 1, best, 0.0)
    fly_columns = {
        "unit": np.arange(n_hidden),
        "silenced": silenced,
        "fly_silencing_effect": silencing_effects(fly, x),
        "contribution": contributions,
        "r2_predicted": predicted,
    }
    tables = []
    for model, net in nets.items():
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
