"""How well each model predicts behaviour, and how well its units track the fly's.

All statistics are computed in float64 from float32 network outputs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from knockout import models, naming, seeding
from knockout.behavior_data import BehaviorData, NeuronData
from knockout.data_folder import Layout
from knockout.inputs import Inputs, rows_per_chunk
from knockout.network import Architecture, KnockoutNet, initialize, keep_matrix, output_losses, silencing_mask


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (SS_tot about the mean of y_true);
    NaN where it is undefined (observed values that never vary: see ``CONSTANT_NOTE``), so
    that one flat output or neuron is reported, not a crash after the training has run."""
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    ss_tot = np.sum((y_true - y_true.mean()) ** 2)
    if ss_tot == 0:
        return np.nan
    return float(1.0 - np.sum((y_true - y_pred) ** 2) / ss_tot)


CONSTANT_NOTE = "undefined: the observed values never vary here"
"""The ``r2_note`` of an R² that is NaN because what it is scored against is constant
(a test set whose output never changes, a neuron that never varies on its stimuli)."""


def r2_notes(defined: np.ndarray) -> np.ndarray:
    """Per score, ``""`` where it is defined, else ``CONSTANT_NOTE`` (the ``r2_note`` column)."""
    return np.where(defined, "", CONSTANT_NOTE)


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
    return matched_from_r2(squared_correlations(fly_hidden, model_hidden))


def matched_from_r2(r2: np.ndarray) -> np.ndarray:
    """Per row (neuron) of an R² matrix [neuron, model unit], the R² of the model unit a
    one-to-one matching of maximum total R² gives it (0 for neurons left unmatched)."""
    # imported here: scipy.optimize costs ~0.4-0.7 s, which a job that needs no matching would pay for nothing
    from scipy.optimize import linear_sum_assignment

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


def _keep(n_hidden: int, units: tuple[int, ...], remaining: float = 0.0) -> torch.Tensor:
    """The ``keep`` multiplier silencing ``units`` (those the network has) to ``remaining``."""
    return keep_matrix([units], n_hidden, remaining)[0]


def event_scores(events: np.ndarray, log_odds: np.ndarray) -> tuple[float, float, float]:
    """A binary output's scores: (pseudo-R², log-likelihood, AUC) of predicted log-odds
    against observed 0/1 ``events``.

    - log-likelihood: the mean per row, in nats, of log p(observed | predicted);
    - pseudo-R² (McFadden's): 1 - LL(model) / LL(base rate), the base rate being the events'
      rate on these rows: 0 for a model that knows only how often events happen, 1 for one
      that predicts every row with certainty, below 0 for one worse than the rate; it sits
      where R² sits in the tables, so that one column ranks models on every output;
    - AUC: the probability that a row with an event gets a higher predicted probability than
      one without (ties count half), blind to calibration.
    NaN (all three but the log-likelihood) where the rows hold only events or no event."""
    events = np.asarray(events, np.float64)
    z = np.asarray(log_odds, np.float64)
    log_likelihood = float(np.mean(events * z - np.logaddexp(0.0, z)))
    rate = events.mean()
    if rate in (0.0, 1.0):
        return math.nan, log_likelihood, math.nan
    null = rate * math.log(rate) + (1 - rate) * math.log(1 - rate)
    ranks = pd.Series(z).rank().to_numpy()  # average ranks: ties count half
    n_events = events.sum()
    auc = (ranks[events == 1].sum() - n_events * (n_events + 1) / 2) / (n_events * (len(events) - n_events))
    return 1.0 - log_likelihood / null, log_likelihood, float(auc)


def _output_scores(observed: np.ndarray, predicted: np.ndarray, binary: bool) -> tuple[float, float, float]:
    """(R² or pseudo-R², log-likelihood, AUC) of one output; the last two NaN for a continuous one."""
    if binary:
        return event_scores(observed, predicted)
    return r2_score(observed, predicted), math.nan, math.nan


def over_rows(net: KnockoutNet, inputs: Inputs | torch.Tensor, function) -> torch.Tensor:
    """``function`` (of a tensor of inputs [rows, d], giving [rows, ...]) of every row of
    ``inputs``, chunks of rows at a time, concatenated: one network's evaluation held
    within :data:`~knockout.inputs.CHUNK_VALUES` numbers a layer, however many rows (a
    recording's frames through a convolutional encoder would not fit at once)."""
    inputs = inputs if isinstance(inputs, Inputs) else Inputs(inputs)
    rows = rows_per_chunk(net.architecture.values_per_sample() + inputs.width)
    return torch.cat([function(chunk) for chunk in inputs.chunks(rows)])


def _predicted(
    net: KnockoutNet, inputs: Inputs, keep: torch.Tensor, centre: torch.Tensor | None = None
) -> torch.Tensor:
    """A network's outputs [rows, outputs] on every row of ``inputs``, its bottleneck masked
    by ``keep`` (a masked unit at ``centre``; None: 0), in the network's precision."""
    dtype = next(net.parameters()).dtype
    return over_rows(net, inputs, lambda rows: net(rows.to(dtype), keep, centre))


def activities(net: KnockoutNet, inputs: Inputs | torch.Tensor) -> torch.Tensor:
    """A network's bottleneck activity [rows, h] on every row of ``inputs`` (:func:`over_rows`)."""
    return over_rows(net, inputs, net.activity)


def control_means(nets: dict[str, KnockoutNet], data: BehaviorData) -> dict[str, torch.Tensor]:
    """Per model, each bottleneck unit's mean activity over ``data``'s control rows: the
    value the ``centered`` silencing mode clamps a silenced unit to."""
    control = data.inputs.select(torch.tensor([not units for units in data.set_units])[data.set_index])
    return {model: activities(net, control).mean(dim=0) for model, net in nets.items()}


def behavior_scores(
    nets: dict[str, KnockoutNet],
    test: BehaviorData,
    layout: Layout,
    fly: KnockoutNet | None = None,
    silenced_activity: float = 0.0,
    silencing: tuple[str, ...] = ("zero",),
) -> pd.DataFrame:
    """Every model's scores on every test set and output, under each ``silencing`` mode,
    beside the noise ceiling.

    Each model masks what its registry entry's ``test_masking`` masks on the set (ko and the
    knockout optimum: the units matching the set's silenced ones, where it has them; the
    others nothing); a masked unit is set to 0 (``zero``) or clamped to its mean over the
    control test rows (``centered``; :func:`control_means`). A continuous output is scored
    by R², a binary one by McFadden's pseudo-R² in the same column, its log-likelihood and
    AUC beside it (:func:`event_scores`).
    The noise ceiling is the true network's score on the same noisy test set, silenced as the
    data were made (``silenced_activity`` of the unit's value remaining); NaN without one
    (recorded data).
    """
    rows = []
    masking = {model: models.spec(model).test_masking for model in nets}
    centres = control_means(nets, test) if "centered" in silencing else {}
    binary = [naming.is_binary_output(output) for output in layout.outputs]
    with torch.no_grad():
        for number, (name, units) in enumerate(layout.sets):
            in_set = (test.set_index == number).numpy()
            x, y = test.inputs.select(in_set), test.y.numpy()[in_set]
            fly_prediction = None
            if fly is not None:
                fly_prediction = _predicted(fly, x, _keep(fly.n_hidden, units, silenced_activity)).numpy()
            silenced = naming.UNIT_SEPARATOR.join(layout.units[unit] for unit in units)
            for mode in silencing:
                predictions = {
                    model: _predicted(
                        net,
                        x,
                        _keep(net.n_hidden, masking[model].on_set(units, net.n_hidden)),
                        centres.get(model) if mode == "centered" else None,
                    ).numpy()
                    for model, net in nets.items()
                }
                for k, output in enumerate(layout.outputs):
                    ceiling = (
                        np.nan
                        if fly_prediction is None
                        else _output_scores(y[:, k], fly_prediction[:, k], binary[k])[0]
                    )
                    note = r2_notes(np.var(y[:, k]) > 0).item()
                    kind = "binary" if binary[k] else "continuous"
                    for model, predicted in predictions.items():
                        score, log_likelihood, auc = _output_scores(y[:, k], predicted[:, k], binary[k])
                        rows.append(
                            (
                                model,
                                name,
                                silenced,
                                output,
                                mode,
                                kind,
                                score,
                                log_likelihood,
                                auc,
                                ceiling,
                                note,
                            )
                        )
    return pd.DataFrame(rows, columns=naming.BEHAVIOR_SCORE_COLUMNS)


@torch.no_grad()
def knockout_losses(nets: dict[str, KnockoutNet], train: BehaviorData) -> pd.DataFrame:
    """Per model, the knockout objective on ``train`` (a replicate's training rows): the mean
    loss (squared error, or cross-entropy for a binary output:
    :func:`~knockout.network.output_losses`) over every set's rows and the outputs, each
    silenced set with the model units matching its silenced ones set to 0 (where the model
    has them). It is what ko minimises, so ko's distance to the exact optimum's value says
    whether its training converged; computed in float64, where that distance is a fraction
    of a percent."""
    rows = []
    for model, net in nets.items():
        binary = net.architecture.binary_mask()
        net = copy.deepcopy(net).double()
        total = 0.0
        for number, units in enumerate(train.set_units):
            in_set = train.set_index == number
            keep = _keep(net.n_hidden, units).double()
            predicted = _predicted(net, train.inputs.select(in_set), keep)
            total += float(output_losses(predicted, train.y[in_set].double(), binary).sum())
        rows.append((model, total / train.y.numel()))
    return pd.DataFrame(rows, columns=naming.KNOCKOUT_LOSS_COLUMNS)


@torch.no_grad()
def silencing_table(
    nets: dict[str, KnockoutNet], x: Inputs | torch.Tensor, units: list[str], outputs: list[str]
) -> pd.DataFrame:
    """Per model, bottleneck unit and output: the root-mean-square change of the output on
    inputs ``x`` when the unit is silenced (what silencing it would do to each behaviour;
    written for every unit, recorded or not, silenced in the data or not)."""
    rows = []
    for model, net in nets.items():
        names = naming.model_unit_names(units, net.n_hidden)
        for unit, change in enumerate(_silencing_changes(net, x)):
            effect = torch.sqrt(torch.mean(change * change, dim=0)).tolist()
            rows.extend(
                (model, unit, names[unit], output, e) for output, e in zip(outputs, effect, strict=True)
            )
    return pd.DataFrame(rows, columns=naming.SILENCING_COLUMNS)


def _silencing_changes(net: KnockoutNet, x: Inputs | torch.Tensor) -> list[torch.Tensor]:
    """Per bottleneck unit, the change of the outputs [samples, outputs] on inputs ``x`` when
    it is silenced. In float64: a unit whose effect is a millionth of the output would
    otherwise be lost in the rounding of the two outputs it is the difference of. The
    bottleneck's activity is computed once; only the decoder runs per unit."""
    net = copy.deepcopy(net).double()
    activity = over_rows(net, x, lambda rows: net.activity(rows.double()))
    intact = net.decode(activity)
    return [
        intact - net.decode(activity * silencing_mask(net.n_hidden, unit).double())
        for unit in range(net.n_hidden)
    ]


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
    """The best neural R² the data allow for each unit of a linear fly:
    c² / (c² + σ²·d/(n - d - 1)).

    c is the unit's contribution, d the inputs and n the training samples per set: the
    unit's d weights are estimated from n noisy samples, so their error variance is about
    σ²·d/(n - d - 1) (``estimation_floor``), and a unit whose contribution is below that
    cannot be told from noise. 0 where n leaves no residual degrees of freedom.
    """
    c2 = np.asarray(contributions, np.float64) ** 2
    floor = estimation_floor(noise_sd, n_inputs, n_train)  # infinite: every unit 0
    return np.divide(c2, c2 + floor, out=np.ones_like(c2), where=(c2 + floor) > 0)


def estimation_floor(noise_sd: float, n_inputs: int, n_train: int) -> float:
    """σ²·d/(n - d - 1): the error variance of a unit's d input weights estimated from n noisy
    training samples per set (least squares with an intercept leaves n - d - 1 residual
    degrees of freedom; σ²·d/n for n ≫ d, which overstates the best R² where d/n nears 0.5:
    docs/results.md); a unit whose squared contribution is below it cannot be told from
    noise (``predicted_neural_r2`` is 0.5 where c² equals it). Infinite where n <= d + 1.
    The one place this floor is computed: the evaluation's ``r2_predicted`` and the
    experiment planner (knockout.planning) both use it."""
    dof = n_train - n_inputs - 1
    return noise_sd**2 * n_inputs / dof if dof > 0 else math.inf


@torch.no_grad()
def silencing_effects(net: KnockoutNet, x: Inputs | torch.Tensor) -> np.ndarray:
    """Per bottleneck unit, the root-mean-square change of the outputs when it is silenced
    (over samples, summed over outputs).

    The "importance" of a unit as silencing experiments measure it, in behaviour units.
    """
    changes = _silencing_changes(net, x)
    return np.array([torch.sqrt(torch.mean(torch.sum(change**2, dim=1))).item() for change in changes])


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


def _padded(values: np.ndarray, length: int) -> np.ndarray:
    """``values`` cut or zero-padded to ``length`` (one entry per unit of the data)."""
    return np.pad(values, (0, max(0, length - len(values))))[:length]


@dataclass(frozen=True)
class DataDesign:
    """What the identifiability prediction needs of the experiment: noise, samples per set,
    and how complete the silencing was (the prediction holds for complete silencing only)."""

    noise_sd: float
    n_train: int
    silenced_activity: float


def _recording_groups(recordings: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(neurons, stimuli) groups: neurons recorded on the same stimuli are scored together,
    on exactly those stimuli (a simulated fly's neurons form one group)."""
    recorded = np.isfinite(recordings)
    patterns: dict[bytes, list[int]] = {}
    for neuron in range(recordings.shape[1]):
        patterns.setdefault(recorded[:, neuron].tobytes(), []).append(neuron)
    return [(np.array(neurons), np.flatnonzero(recorded[:, neurons[0]])) for neurons in patterns.values()]


def recorded_r2_matrix(recordings: np.ndarray, model_hidden: np.ndarray) -> np.ndarray:
    """[recorded neuron, model unit] squared correlations, each neuron on the stimuli where
    it was recorded (``recordings``: NaN where not recorded)."""
    r2 = np.zeros((recordings.shape[1], model_hidden.shape[1]))
    for neurons, stimuli in _recording_groups(recordings):
        r2[neurons] = squared_correlations(recordings[np.ix_(stimuli, neurons)], model_hidden[stimuli])
    return r2


def neurons_vary(recordings: np.ndarray) -> np.ndarray:
    """Per recorded neuron, whether its response varies on its stimuli (else its R² is undefined)."""
    return np.nan_to_num(np.nanmax(recordings, axis=0) - np.nanmin(recordings, axis=0)) > 0


def recording_scores(
    recordings: np.ndarray, model_hidden: np.ndarray, units: list[int]
) -> dict[str, np.ndarray]:
    """Per recorded neuron (columns of ``recordings``, NaN where not recorded; neuron j is
    the data's unit ``units[j]``), its R² with model unit ``units[j]`` (0 if the model lacks
    it), with the model unit a one-to-one matching gives it, and decoded from all model units.
    NaN all three ways for a neuron that never varies (it can be matched to nothing)."""
    n_model = model_hidden.shape[1]
    r2 = recorded_r2_matrix(recordings, model_hidden)
    decoded = np.zeros(recordings.shape[1])
    for neurons, stimuli in _recording_groups(recordings):
        decoded[neurons] = decoded_neural_r2(recordings[np.ix_(stimuli, neurons)], model_hidden[stimuli])
    same = np.array([r2[j, unit] if unit < n_model else 0.0 for j, unit in enumerate(units)])
    undefined = np.where(neurons_vary(recordings), 0.0, np.nan)
    return {
        "r2": same + undefined,
        "r2_matched": matched_from_r2(r2) + undefined,
        "r2_decoded": decoded + undefined,
    }


def _neuron_data(neurons: NeuronData | pd.DataFrame, layout: Layout) -> NeuronData:
    """A neurons table of ``x_*`` stimuli (the import contract's) as :class:`NeuronData`."""
    return neurons if isinstance(neurons, NeuronData) else NeuronData.from_table(neurons, layout)


@torch.no_grad()
def neural_scores(
    nets: dict[str, KnockoutNet],
    neurons: NeuronData | pd.DataFrame,
    layout: Layout,
    fly: KnockoutNet | None = None,
    design: DataDesign | None = None,
) -> pd.DataFrame:
    """Per model and unit of the data (``layout.units``), on the stimuli of ``neurons`` (the
    stimuli and responses of the recorded units; or a neurons table of ``x_*`` stimuli and
    ``r_<unit>`` responses):

    - ``recorded`` (1 if ``neurons`` has the unit's response) and ``silenced`` (1 if a set
      silenced it);
    - for recorded units (NaN for the others), on the stimuli where the neuron was recorded:
      ``r2`` (model unit i against neuron i; 0 if the model has no unit i), ``r2_matched``
      (against the model unit a one-to-one matching assigns it), ``r2_decoded`` (decoded
      linearly from all model units, cross-validated); NaN all three ways for a neuron
      that never varies on its stimuli, with ``r2_note`` saying so;
    - ``silencing_effect``: the RMS change of the outputs when model unit i is silenced;
    - with the true network ``fly`` (NaN without): ``fly_silencing_effect``, the unit's
      ``contribution``, ``weight_cosine`` of its and model unit i's input weights, and
      ``r2_predicted``, the best neural R² the data allow (``predicted_neural_r2``) for a
      silenced unit, 0 for a unit no set silenced, and ``estimation_floor``, the σ²·d/(n - d - 1)
      it is computed with (the same for every unit). Their premises: a linear two-layer,
      one-output fly, complete silencing, and models with at least the fly's units; NaN
      where one fails or there is no ``design``.
    """
    units = list(layout.units)
    n_units = len(units)
    neurons = _neuron_data(neurons, layout)
    stimuli, recorded_index, values = neurons.stimuli, neurons.recorded, neurons.responses
    defined = np.ones(n_units, bool)
    defined[recorded_index] = neurons_vary(values)
    silenced = np.array(layout.silenced, dtype=np.int64)
    unknown = np.full(n_units, np.nan)
    truth = {
        "fly_silencing_effect": unknown,
        "contribution": unknown,
        "r2_predicted": unknown,
        "estimation_floor": unknown,
    }
    if fly is not None:
        contributions = unit_contributions(fly, activities(fly, stimuli).double().numpy())
        predicted, floor = unknown, unknown
        if (
            design is not None
            and design.silenced_activity == 0
            and fly.architecture.two_layer
            and fly.activation == "linear"
            and fly.architecture.n_outputs == 1
            and all(net.n_hidden >= n_units for net in nets.values())
        ):
            n_inputs = fly.architecture.n_inputs
            best = predicted_neural_r2(contributions, design.noise_sd, n_inputs, design.n_train)
            predicted = np.where(silenced == 1, best, 0.0)
            floor = np.full(n_units, estimation_floor(design.noise_sd, n_inputs, design.n_train))
        truth = {
            "fly_silencing_effect": silencing_effects(fly, stimuli),
            "contribution": contributions,
            "r2_predicted": predicted,
            "estimation_floor": floor,
        }
    unit_columns = {
        "unit": np.arange(n_units),
        "unit_name": units,
        "recorded": np.isin(np.arange(n_units), recorded_index).astype(np.int64),
        "silenced": silenced,
        **truth,
        "r2_note": r2_notes(defined),
    }
    tables = []
    for model, net in nets.items():
        model_hidden = activities(net, stimuli).double().numpy()
        scores = {measure: np.full(n_units, np.nan) for measure in naming.RECORDING_MEASURES}
        if recorded_index:
            for measure, per_neuron in recording_scores(values, model_hidden, recorded_index).items():
                scores[measure][recorded_index] = per_neuron
        cosines = weight_cosines(fly, net) if fly is not None else unknown
        scores |= {
            "weight_cosine": cosines,
            "silencing_effect": _padded(silencing_effects(net, stimuli), n_units),
        }
        tables.append(pd.DataFrame({"model": model, **unit_columns, **scores}))
    return pd.concat(tables, ignore_index=True)[naming.NEURAL_SCORE_COLUMNS]


@torch.no_grad()
def response_table(
    nets: dict[str, KnockoutNet], neurons: NeuronData | pd.DataFrame, layout: Layout
) -> pd.DataFrame:
    """Every model unit's predicted response to each stimulus of ``neurons`` (``r_<unit>``,
    as in the neurons file; a model's extra units ``r_extra_00`` ...), one row per model and
    stimulus: what an experimenter compares with the next recording."""
    neurons = _neuron_data(neurons, layout)
    units = list(layout.units)
    tables = []
    for model, net in nets.items():
        names = [naming.response_column(name) for name in naming.model_unit_names(units, net.n_hidden)]
        activity = pd.DataFrame(activities(net, neurons.stimuli).numpy(), columns=names)
        activity.insert(0, "stimulus", np.arange(len(activity)))
        activity.insert(0, "model", model)
        tables.append(activity)
    return pd.concat(tables, ignore_index=True)


CHANCE_DRAWS = 20
"""Untrained networks, and stimulus permutations, per seed for the chance levels."""
UNTRAINED = "untrained"
"""The ``model`` of the chance rows that come from untrained networks (no trained model)."""


def untrained_networks(architecture: Architecture, init: str, seed: int, count: int) -> list[KnockoutNet]:
    """``count`` networks of the models' architecture, initialised as training initialises
    them (``train.init``), drawn from the replicate's own ``chance`` stream (so that adding
    them changes no other draw), in evaluation mode as the trained ones are scored (a batch
    normalisation by its initial running statistics, mean 0 and variance 1)."""
    generator = seeding.generator(seed, "chance")
    return [initialize(KnockoutNet(architecture), init, generator).eval() for _ in range(count)]


def _chance_rows(null: str, model: str, draw: int, recorded: list[int], names: list[str], scores: dict):
    return [
        (null, model, draw, unit, names[unit], measure, float(value))
        for measure, values in scores.items()
        for unit, value in zip(recorded, values, strict=True)
    ]


@torch.no_grad()
def chance_table(
    nets: dict[str, KnockoutNet],
    neurons: NeuronData | pd.DataFrame,
    layout: Layout,
    init: str,
    seed: int,
    draws: int = CHANCE_DRAWS,
) -> pd.DataFrame:
    """What the neural R² of the recorded units would be by chance (``naming.CHANCE_COLUMNS``):

    - null ``untrained``: ``draws`` untrained networks of the models' architecture
      (``untrained_networks``), each scored exactly like a model (``recording_scores``:
      r2, r2_matched, r2_decoded) against the same neurons on the same stimuli;
    - null ``permuted_stimuli``: per trained model and draw, the matched R² after the
      recorded responses' stimulus order is permuted (the same permutation for every
      neuron and model of a draw, from the seed's ``chance_permutation`` stream): what the
      one-to-one matching alone finds in a model's units when they are unrelated to the
      neurons (the responses' own correlations kept).

    Empty where no unit was recorded."""
    neurons = _neuron_data(neurons, layout)
    stimuli, recorded, values = neurons.stimuli, neurons.recorded, neurons.responses
    if not recorded:
        return pd.DataFrame(columns=naming.CHANCE_COLUMNS)
    names = list(layout.units)
    trained = next(iter(nets.values()))
    architecture = trained.architecture
    rows = []
    for draw, net in enumerate(untrained_networks(architecture, init, seed, draws)):
        if architecture.standardize:  # the inputs as the trained networks read them
            net.input_mean, net.input_scale = trained.input_mean, trained.input_scale
        scores = recording_scores(values, activities(net, stimuli).double().numpy(), recorded)
        rows += _chance_rows(UNTRAINED, UNTRAINED, draw, recorded, names, scores)
    hidden = {model: activities(net, stimuli).double().numpy() for model, net in nets.items()}
    generator = seeding.generator(seed, "chance_permutation")
    undefined = np.where(neurons_vary(values), 0.0, np.nan)
    for draw in range(draws):
        permuted = values[torch.randperm(len(values), generator=generator).numpy()]
        for model, activity in hidden.items():
            matched = matched_from_r2(recorded_r2_matrix(permuted, activity)) + undefined
            rows += _chance_rows("permuted_stimuli", model, draw, recorded, names, {"r2_matched": matched})
    return pd.DataFrame(rows, columns=naming.CHANCE_COLUMNS)
