"""The Python API keeps what it fitted: the seed, split and data its scores use (and any
other refused), the losses as a table, the exact optimum where there is one (and refused
where there is none, before any training), the device and the progress callback."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from knockout import api, convergence, metrics, naming
from knockout.data_folder import FolderData
from knockout.identifiability import optimum_problem
from knockout.network import Architecture
from knockout.simulation import DataSettings, FlySettings, behavior_file, simulate
from knockout.training import Progress

FAST = {"epochs": 4, "min_steps": 0, "batch_size": 16}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A simulated fly's folder without a split column: each seed draws its own split."""
    _, train, test, neurons = simulate(FlySettings(n_inputs=6, n_hidden=4), DataSettings(40, 10, 20), seed=0)
    folder = tmp_path_factory.mktemp("fly")
    behavior_file(train, test).drop(columns="split").to_parquet(folder / "behavior.parquet")
    neurons.to_parquet(folder / "neurons.parquet")
    return api.load(folder, naming.unit_names(4))


@pytest.fixture(scope="module")
def fits(data):
    return api.fit(data, ["ko", "do"], seed=1, **FAST)


def test_behaviour_is_scored_on_the_fit_s_own_test_rows(data, fits):
    own = api.behavior_r2(fits, data)
    pd.testing.assert_frame_equal(own, api.behavior_r2(fits, data, seed=1, test_fraction=0.2))
    # the same networks, told their seed: the same rows; another seed's rows score otherwise
    pd.testing.assert_frame_equal(own, api.behavior_r2(dict(fits), data, seed=1))
    assert not own["r2"].equals(api.behavior_r2(dict(fits), data, seed=0)["r2"])


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"seed": 0}, "fitted on seed 1's training rows"),
        ({"test_fraction": 0.3}, "fitted with test_fraction 0.2, not test_fraction 0.3"),
    ],
)
def test_another_seed_or_split_is_refused_in_one_line(data, fits, keys, message):
    with pytest.raises(ValueError, match=message) as refused:
        api.behavior_r2(fits, data, **keys)
    assert "\n" not in str(refused.value)


def test_other_data_are_refused(data, fits):
    behavior = data.behavior.copy()
    behavior.loc[behavior.index[0], "y"] += 1.0
    other = FolderData(data.layout, behavior, data.neurons)
    with pytest.raises(ValueError, match="not the data the networks were fitted on"):
        api.behavior_r2(fits, other)


def test_networks_not_fitted_here_need_their_seed(data, fits):
    with pytest.raises(ValueError, match="pass the seed"):
        api.behavior_r2(dict(fits), data)


def test_a_fit_remembers_its_seed_split_and_models(fits):
    assert (fits.seed, fits.test_fraction, list(fits)) == (1, 0.2, ["ko", "do"])
    assert isinstance(fits["ko"], torch.nn.Module) and fits.training["ko"].network is fits["ko"]


def test_losses_come_back_as_the_workflow_s_loss_table(fits):
    losses = fits.losses
    assert list(losses.columns) == [*convergence.LOSS_COLUMNS, "seed", "model"]
    for model, result in fits.training.items():
        kept = losses[(losses["model"] == model) & (losses["chosen"] == 1)]
        assert kept["train_mse"].tolist() == result.chosen_losses
    tolerances = convergence.Tolerances(late_improvement=0.1, optimum_gap=0.01)
    assert set(convergence.convergence_table(losses, tolerances)["model"]) == {"ko", "do"}


def test_the_optimum_is_fitted_on_the_same_rows_and_no_trained_ko_beats_it(data):
    fits = api.fit(data, ["ko", "optimum"], seed=1, **FAST)
    assert list(fits) == ["ko", "optimum"] and list(fits.training) == ["ko"]
    train, _ = api.split(data, 1)
    objective = metrics.knockout_losses(dict(fits), train).set_index("model")["knockout_mse"]
    assert objective["optimum"] <= objective["ko"]
    assert set(api.behavior_r2(fits, data)["model"]) == {"ko", "optimum"}


def test_the_optimum_is_refused_where_there_is_none_before_any_training(data):
    reports = []
    relu = api.architecture_for(data, activation="relu")
    with pytest.raises(ValueError, match=r"model 'optimum': .* only for linear .*; here the units are relu"):
        api.fit(data, ["ko", "optimum"], relu, progress=reports.append, **FAST)
    assert reports == []


@pytest.mark.parametrize(
    ("architecture", "single_unit_sets", "reason"),
    [
        (Architecture(6, 4), True, None),
        (Architecture(6, 4, activation="relu"), True, "the units are relu"),
        (Architecture(6, 4, decoder=(3,)), True, "the network has encoder or decoder layers"),
        (Architecture(6, 4, n_outputs=2), True, "it has 2 outputs"),
        (Architecture(6, 4), False, "a set silences several units"),
        (Architecture(6, 4, n_outputs=1, binary_outputs=1), True, "its output is binary"),
        (Architecture(6, 4, batch_norm=True), True, "its layers are batch-normalised"),
        (
            Architecture(12, 4, frame_shape=(6,), frame_features=2),
            True,
            "it reads frames through a frame encoder",
        ),
    ],
)
def test_the_optimum_exists_only_for_linear_two_layer_one_output_single_unit_sets(
    architecture, single_unit_sets, reason
):
    problem = optimum_problem(architecture, single_unit_sets)
    assert problem == reason if reason is None else reason in problem.split("here ")[1]


def test_the_optimum_is_of_ko_trained_with_zero_silencing():
    assert optimum_problem(Architecture(6, 4), silencing="centered").endswith(
        "here ko trains with centered silencing"
    )


def test_an_unknown_model_is_refused(data):
    with pytest.raises(ValueError, match="model 'kos' unknown"):
        api.fit(data, ["kos"], **FAST)


def test_progress_reaches_the_callback_and_ends_at_the_whole_training(data):
    reports = []
    fits = api.fit(data, ["ko"], seed=1, device="cpu", progress=reports.append, **FAST)
    assert reports and all(isinstance(report, Progress) for report in reports)
    last = reports[-1]
    assert last.fraction == 1.0 and last.fits[0].epoch == FAST["epochs"]
    assert math.isclose(last.fits[0].loss, fits.training["ko"].losses[-1][0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_a_gpu_asked_for_where_there_is_none_is_refused_in_one_line(data):
    with pytest.raises(ValueError, match="device 'cuda': PyTorch sees no GPU here; use device='cpu'"):
        api.fit(data, ["ko"], device="cuda", **FAST)


def test_only_the_optimum_trains_nothing_and_has_no_losses(data):
    fits = api.fit(data, ["optimum"], seed=2)
    assert list(fits) == ["optimum"] and fits.training == {} and fits.losses.empty


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU visible")
def test_a_fit_on_the_gpu_is_the_fit_on_the_cpu(data, fits):
    on_gpu = api.fit(data, ["ko", "do"], seed=1, device="cuda", **FAST)
    for model in fits:
        for key, value in fits[model].state_dict().items():
            torch.testing.assert_close(on_gpu[model].state_dict()[key], value, rtol=0, atol=1e-5)
