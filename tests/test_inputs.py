"""Frames held once (knockout.inputs): rows' inputs gathered from values each held once
give what a table of every sample's history gives, in training (network for network, bit
for bit), relabelling and evaluation, with the values never copied per row, per seed or
per data set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from knockout import api, data_folder, inputs, metrics, naming
from knockout.behavior_data import BehaviorData, NeuronData
from knockout.inputs import Inputs
from knockout.training import Fit, TrainSettings, train_fits

UNITS = naming.unit_names(3)  # the visual_folder fixture's (conftest)


@pytest.fixture(scope="module")
def folder(visual_folder):
    return data_folder.load(visual_folder, UNITS, history=3)


def as_table(data: BehaviorData) -> BehaviorData:
    """The same rows with every sample's history copied out, one row each (a table of
    ``x_*`` columns, as the data were held before frames were held once)."""
    return BehaviorData(data.inputs.tensor().clone(), data.y, data.set_index, data.set_units)


def test_a_row_is_its_entries_values_side_by_side_z_scored_where_asked():
    values = torch.arange(12, dtype=torch.float32).view(6, 2)
    rows = Inputs(values, torch.tensor([[0, 1], [4, 5], [2, 3]]))
    assert rows.shape == (3, 4) and rows.per_row == 2
    torch.testing.assert_close(rows[torch.tensor([1])], torch.tensor([[8.0, 9.0, 10.0, 11.0]]))
    torch.testing.assert_close(rows[np.array([True, False, True])], rows.tensor()[[0, 2]])
    mean, scale = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([2.0, 2.0, 4.0, 4.0])
    torch.testing.assert_close(rows.standardized(mean, scale).tensor(), (rows.tensor() - mean) / scale)
    chosen = rows.select(torch.tensor([2, 0]))
    assert chosen.values is values and chosen.values_key() == rows.values_key()  # nothing copied
    torch.testing.assert_close(chosen.tensor(), rows.tensor()[[2, 0]])
    assert torch.cat(list(rows.chunks(2))).equal(rows.tensor())
    table = Inputs(values)  # a table of x_* columns: one entry a row, held as it is
    assert table.tensor() is values and table.select([5, 1]).tensor().equal(values[[5, 1]])


def test_a_folder_s_seeds_and_splits_name_the_frames_held_once(folder):
    (train, test), (other, _) = BehaviorData.split(folder, 0.2, 0), BehaviorData.split(folder, 0.2, 1)
    pointer = folder.inputs.__array_interface__["data"][0]
    for data in (train, test, other):
        assert data.inputs.values.data_ptr() == pointer and data.inputs.per_row == 3
    assert train.inputs.values_key() == other.inputs.values_key()
    latest = folder.inputs[train.inputs.entries[:, -1].numpy()]  # each sample's own frame
    np.testing.assert_array_equal(train.x.numpy().reshape(len(train.y), 3, -1)[:, -1], latest)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_networks_trained_on_frames_held_once_equal_them_trained_on_every_history(folder, batch_norm):
    """Two seeds' data sets naming the same frames, z-scored each by its own statistics, ko
    relabelled (ReLU) and restarts: every network, loss and relabelling bit for bit as
    trained on a table holding each sample's history."""
    architecture = api.architecture_for(
        folder, encoder=(6,), activation="relu", conv=((2, 3, 2),), frame_features=3, batch_norm=batch_norm
    )
    settings = TrainSettings(epochs=4, min_steps=0, batch_size=16, restarts=2, relabel="always")
    seeds = (0, 1)
    held = [BehaviorData.split(folder, 0.2, seed)[0] for seed in seeds]
    fits = [
        Fit(model, data, settings, seed)
        for data, seed in zip(held, seeds, strict=True)
        for model in ("ko", "noko")
    ]
    copied = {id(data): as_table(data) for data in held}
    tables = [dataclasses.replace(fit, data=copied[id(fit.data)]) for fit in fits]
    for from_frames, from_table in zip(
        train_fits(fits, architecture), train_fits(tables, architecture), strict=True
    ):
        assert from_frames.losses == from_table.losses and from_frames.relabelled == from_table.relabelled
        assert from_frames.chosen == from_table.chosen
        for name, value in from_frames.network.state_dict().items():
            assert torch.equal(value, from_table.network.state_dict()[name]), name


def test_evaluation_reads_frames_held_once_in_chunks_as_one_pass_over_every_history(folder, monkeypatch):
    architecture = api.architecture_for(
        folder, encoder=(6,), activation="relu", conv=((2, 3, 2),), frame_features=3
    )
    fits = api.fit(folder, ("ko", "noko"), architecture, seed=0, epochs=2, min_steps=0, batch_size=32)
    nets = dict(fits.networks)
    train, test = BehaviorData.split(folder, 0.2, 0)
    neurons = NeuronData.of_folder(folder)
    copied_neurons = dataclasses.replace(neurons, stimuli=Inputs(neurons.stimuli.tensor().clone()))

    def scores(train, test, neurons):
        return (
            metrics.behavior_scores(nets, test, folder.layout, silencing=("zero", "centered")),
            metrics.knockout_losses(nets, train),
            metrics.silencing_table(nets, test.inputs, list(UNITS), list(folder.layout.outputs)),
            metrics.neural_scores(nets, neurons, folder.layout),
            metrics.response_table(nets, neurons, folder.layout),
        )

    whole = scores(as_table(train), as_table(test), copied_neurons)
    monkeypatch.setattr(inputs, "CHUNK_VALUES", 5000)  # a few rows a chunk
    assert inputs.rows_per_chunk(architecture.values_per_sample()) < len(test.y)
    for chunked, one_pass in zip(scores(train, test, neurons), whole, strict=True):
        numbers = chunked.select_dtypes("number").columns
        np.testing.assert_allclose(
            chunked[numbers].to_numpy(float), one_pass[numbers].to_numpy(float), rtol=1e-5, atol=1e-6
        )


def test_a_frames_pilot_plans_from_the_frames_held_once(folder):
    """The planner reads a frames pilot's histories from its frames (``PilotTable.inputs``)."""
    plan = api.plan(
        folder,
        [20, 40],
        method="simulation",
        resamples=10,
        simulation_seeds=2,
        epochs=2,
        min_steps=0,
        batch_size=16,
    )
    assert set(plan.designs["unit"]) == set(UNITS) and set(plan.designs["n_per_set"]) == {20, 40}
    assert plan.designs["predicted_r2"].between(0, 1).all()
