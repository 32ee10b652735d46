"""A user's own experiment end to end: a data folder written to the import contract runs
through the same workflow as the simulated fly, with no code change.

The folder is made here by a generator of the test's own (ReLU units, a line that
silences two units, half the units recorded, some stimuli missed, rows in sessions); the neural R² of the
recorded units is recomputed from the weight files and the neurons file.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from workflow_helpers import MODELS, TINY_CONFIG, copy_workflow, scheduled_jobs, snakemake

from knockout.figures import figures_for

pytestmark = pytest.mark.slow

UNITS = ["A", "B", "C", "D", "E", "F"]
SETS = {"control": "", "A": "A", "B": "B", "C": "C", "D+E": "D+E"}  # F is never silenced
RECORDED = ["A", "B", "D", "F"]
N_INPUTS, ROWS_PER_SET = 10, 240
SESSION_ROWS = 20
"""Each set's rows come in sessions (numbered per set) that the split keeps whole."""
SEEDS = [0, 1]
LONG_AGO = 978307200  # 2001-01-01: older than any output
RECORDED_FIGURES = sorted(figure.name for figure in figures_for(has_ground_truth=False))
"""The figures of data without a ground truth: behaviour, neural R² (per unit, three ways), losses."""
RESULTS = "results/data/experiment"
"""Where the data folder ``experiment``'s results go (beside the fly's, never into them)."""


def write_experiment(folder: Path) -> None:
    rng = np.random.default_rng(7)
    w_in = rng.normal(size=(len(UNITS), N_INPUTS)) / np.sqrt(N_INPUTS) * 1.5
    w_out = rng.normal(size=(2, len(UNITS)))

    def units(x):
        return np.maximum(x @ w_in.T + 0.3, 0.0)

    blocks = []
    for name, silenced in SETS.items():
        x = rng.normal(size=(ROWS_PER_SET, N_INPUTS))
        h = units(x)
        for unit in filter(None, silenced.split("+")):
            h[:, UNITS.index(unit)] = 0.0
        y = h @ w_out.T + 0.05 * rng.normal(size=(ROWS_PER_SET, 2))
        block = pd.DataFrame(x, columns=[f"x_{i:02d}" for i in range(N_INPUTS)])
        block[["y_00", "y_01"]] = y
        block.insert(0, "session", np.repeat(np.arange(ROWS_PER_SET // SESSION_ROWS), SESSION_ROWS))
        block.insert(0, "silenced", silenced)
        block.insert(0, "set", name)
        blocks.append(block)
    folder.mkdir(parents=True)
    pd.concat(blocks, ignore_index=True).to_parquet(folder / "behavior.parquet", index=False)
    stimuli = rng.normal(size=(300, N_INPUTS))
    neurons = pd.DataFrame(stimuli, columns=[f"x_{i:02d}" for i in range(N_INPUTS)])
    for unit in RECORDED:
        response = 3.0 * units(stimuli)[:, UNITS.index(unit)] + 1.0
        response[rng.random(300) < 0.1] = np.nan  # stimuli this neuron was not recorded on
        neurons[f"r_{unit}"] = response
    neurons.to_parquet(folder / "neurons.parquet", index=False)


def recorded_config() -> dict:
    """The data folder ``experiment`` inside the run's folder (relative, as a user would)."""
    config = copy.deepcopy(TINY_CONFIG)
    del config["fly"]
    config["data"] = {"source": "experiment", "units": UNITS, "test_fraction": 0.25}
    config["train"]["epochs"] = 60
    config["train"]["batch_size"] = 32
    config["model"] = {"activation": "relu", "decoder": [16]}
    config["train"]["restarts"] = 4
    return config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("recorded"), recorded_config())
    write_experiment(workdir / "experiment")
    snakemake(workdir)
    return workdir


def load_state(path: Path) -> dict[str, np.ndarray]:
    return {k: v.double().numpy() for k, v in torch.load(path, weights_only=True).items()}


def bottleneck(state: dict, x: np.ndarray) -> np.ndarray:
    """The documented network up to the silenceable units (no encoder here): ReLU(W x + b)."""
    return np.maximum(x @ state["hidden.weight"].T + state["hidden.bias"], 0.0)


def test_the_tables_say_what_was_recorded_and_silenced_and_leave_the_unknown_empty(finished_run):
    for seed in SEEDS:
        neural = pd.read_parquet(finished_run / f"{RESULTS}/seed{seed}/eval/neural.parquet")
        ko = neural[neural["model"] == "ko"].set_index("unit_name")
        assert ko.index.tolist() == UNITS
        assert ko["recorded"].tolist() == [int(u in RECORDED) for u in UNITS]
        assert ko["silenced"].tolist() == [1, 1, 1, 1, 1, 0]
        assert ko.loc[["C", "E"], ["r2", "r2_matched", "r2_decoded"]].isna().all().all()
        assert (
            ko[["contribution", "weight_cosine", "r2_predicted", "fly_silencing_effect"]].isna().all().all()
        )
        behavior = pd.read_parquet(finished_run / f"{RESULTS}/seed{seed}/eval/behavior.parquet")
        assert behavior["noise_ceiling"].isna().all()  # no true network to compare with
        assert set(behavior["set"]) == set(SETS) and set(behavior["output"]) == {"y_00", "y_01"}
        assert dict(zip(behavior["set"], behavior["silenced_units"], strict=True))["D+E"] == "D+E"
        silencing = pd.read_parquet(finished_run / f"{RESULTS}/seed{seed}/eval/silencing.parquet")
        assert len(silencing[silencing["model"] == "ko"]) == len(UNITS) * 2  # every unit, each output
        responses = pd.read_parquet(finished_run / f"{RESULTS}/seed{seed}/eval/responses.parquet")
        assert [c for c in responses.columns if c.startswith("r_")] == [f"r_{u}" for u in UNITS]
    figures = sorted(p.stem for p in (finished_run / RESULTS / "figures").glob("*.png"))
    assert figures == RECORDED_FIGURES
    caption = (finished_run / RESULTS / "figures/behavior_r2.rst").read_text()
    assert "On recorded data there is no noise ceiling" in caption, caption
    assert "\n    data:\n" in caption and "\n    fly:" not in caption, caption  # the fly is not used
    for figure in figures:  # recorded data are never the fly's, and no simulation key is listed
        text = (finished_run / RESULTS / f"figures/{figure}.rst").read_text()
        assert "fly" not in text and "n_train" not in text and "n_probe" not in text, (figure, text)
    chance = pd.read_parquet(finished_run / RESULTS / "seed0/eval/chance.parquet")
    assert set(chance["unit_name"]) == set(RECORDED)  # scored against the recorded neurons only
    models = pd.read_parquet(finished_run / RESULTS / "summary/models.parquet")
    assert models.loc[models["measure"] == "r2_matched_median", "chance_p95"].notna().all()
    assert set(models.loc[models["measure"] == "behavior_r2_silenced", "output"]) == {"y_00", "y_01"}


def test_recorded_neural_r2_recomputed_from_the_weight_files(finished_run):
    neurons = pd.read_parquet(finished_run / "experiment/neurons.parquet")
    x = neurons[[f"x_{i:02d}" for i in range(N_INPUTS)]].to_numpy(np.float64)
    for seed in SEEDS:
        table = pd.read_parquet(finished_run / f"{RESULTS}/seed{seed}/eval/neural.parquet")
        for model in MODELS:
            model_units = bottleneck(load_state(finished_run / f"{RESULTS}/seed{seed}/models/{model}.pt"), x)
            rows = table[table["model"] == model].set_index("unit_name")
            for unit in RECORDED:
                recorded = neurons[f"r_{unit}"].notna().to_numpy()
                r = np.corrcoef(neurons.loc[recorded, f"r_{unit}"], model_units[recorded, UNITS.index(unit)])[
                    0, 1
                ]
                expected = 0.0 if np.isnan(r) else r**2  # a unit that never fires tracks nothing
                assert rows.loc[unit, "r2"] == pytest.approx(expected, abs=1e-5), (seed, model, unit)


def test_knockout_training_identifies_the_recorded_single_unit_lines(finished_run):
    for seed in SEEDS:
        neural = pd.read_parquet(finished_run / f"{RESULTS}/seed{seed}/eval/neural.parquet")
        r2 = neural.pivot(index="unit_name", columns="model", values="r2")
        single = r2.loc[["A", "B"]]  # recorded, and silenced alone
        assert (single["ko"] > 0.9).all() and single["ko"].mean() > single["do"].mean() + 0.3, r2


def test_nothing_to_do_after_a_finished_run(finished_run):
    result = snakemake(finished_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_editing_the_neurons_file_reruns_only_the_evaluation(finished_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    folder = workdir / "experiment"
    assert scheduled_jobs(workdir) == {}  # the copy is as finished as the original
    # the jobs compare the files' content, not their dates: each rewritten file is given a
    # modification time older than every output
    neurons = pd.read_parquet(folder / "neurons.parquet")
    neurons.loc[0, "r_A"] = 0.5
    neurons.to_parquet(folder / "neurons.parquet", index=False)
    os.utime(folder / "neurons.parquet", (LONG_AGO, LONG_AGO))
    assert scheduled_jobs(workdir) == {"evaluate_models": 1, "summarize": 1, "plot": 1, "all": 1}
    behavior = pd.read_parquet(folder / "behavior.parquet")
    behavior.loc[0, "y_00"] = 0.5
    behavior.to_parquet(folder / "behavior.parquet", index=False)
    os.utime(folder / "behavior.parquet", (LONG_AGO, LONG_AGO))
    assert scheduled_jobs(workdir) == {
        "train_models": 1,
        "evaluate_models": 1,
        "summarize": 1,
        "plot": 1,
        "all": 1,
    }


def test_a_damaged_folder_is_refused_before_any_job_naming_file_column_and_row(tmp_path):
    workdir = copy_workflow(tmp_path, recorded_config())
    write_experiment(workdir / "experiment")
    behavior = pd.read_parquet(workdir / "experiment/behavior.parquet")
    behavior.loc[250, "x_03"] = np.nan
    behavior.to_parquet(workdir / "experiment/behavior.parquet", index=False)
    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "behavior.parquet: column x_03, row 250: nan (allowed: finite numbers)" in output
    assert "Traceback" not in output
    assert not (workdir / "results").exists()


def test_a_folder_without_neurons_trains_evaluates_and_plots(tmp_path):
    config = recorded_config() | {"seeds": [0], "models": ["ko", "do"]}
    workdir = copy_workflow(tmp_path, config)
    write_experiment(workdir / "experiment")
    (workdir / "experiment/neurons.parquet").unlink()
    snakemake(workdir)
    neural = pd.read_parquet(workdir / RESULTS / "seed0/eval/neural.parquet")
    assert (neural["recorded"] == 0).all() and neural["r2"].isna().all()
    assert neural["silencing_effect"].notna().all()
    responses = pd.read_parquet(workdir / RESULTS / "seed0/eval/responses.parquet")
    assert len(responses) == 2 * len(SETS) * ROWS_PER_SET // 4  # the test inputs (test_fraction 0.25)
    assert sorted(p.stem for p in (workdir / RESULTS / "figures").glob("*.png")) == RECORDED_FIGURES


def test_undefined_r2_is_reported_not_a_crash_after_training(tmp_path):
    """A test set whose output never varies and a neuron that never varies: R² is undefined.
    The run finishes; the tables hold NaN with a note, and the summaries and figures are made
    (with set names that would be broken maths to matplotlib, drawn as they are)."""
    config = recorded_config()
    config["train"] |= {"epochs": 3, "restarts": 1, "min_steps": 0}
    workdir = copy_workflow(tmp_path, config)
    write_experiment(workdir / "experiment")
    behavior = pd.read_parquet(workdir / "experiment/behavior.parquet")
    behavior.loc[behavior["set"] == "C", "y_00"] = 0.5
    behavior["set"] = behavior["set"].replace({"A": "$A", "B": r"$\alpha_{B$"})
    behavior.to_parquet(workdir / "experiment/behavior.parquet", index=False)
    neurons = pd.read_parquet(workdir / "experiment/neurons.parquet")
    neurons["r_F"] = neurons["r_F"].where(neurons["r_F"].isna(), 2.0)
    neurons.to_parquet(workdir / "experiment/neurons.parquet", index=False)
    snakemake(workdir)
    scores = pd.read_parquet(workdir / RESULTS / "seed0/eval/behavior.parquet")
    flat = (scores["set"] == "C") & (scores["output"] == "y_00")
    assert {"$A", r"$\alpha_{B$"} <= set(scores["set"])
    assert scores.loc[flat, "r2"].isna().all() and scores.loc[~flat, "r2"].notna().all()
    assert (scores.loc[flat, "r2_note"] != "").all() and (scores.loc[~flat, "r2_note"] == "").all()
    neural = pd.read_parquet(workdir / RESULTS / "seed0/eval/neural.parquet").set_index(
        ["model", "unit_name"]
    )
    assert neural.loc[("ko", "F"), ["r2", "r2_matched", "r2_decoded"]].isna().all()
    assert neural.loc[("ko", "F"), "r2_note"] != "" and neural.loc[("ko", "A"), "r2_note"] == ""
    models = pd.read_parquet(workdir / RESULTS / "summary/models.parquet").set_index(["model", "measure"])
    assert (models.loc[("ko", "r2_units"), "mean"] == 3).all()  # A, B, D: F has no R²
    assert (workdir / RESULTS / "figures/neural_r2_three_ways.png").stat().st_size > 1000
