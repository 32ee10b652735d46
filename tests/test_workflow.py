"""End to end: run the Snakemake workflow on a tiny config in a temporary copy.

Checks the file contract other tools rely on, recomputes every R² independently
of the package (NumPy on the saved weights and Parquet files), checks that ko
recovers the fly's units where the other models do not, and that a rerun of the
same config reproduces the evaluation tables byte for byte.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from workflow_helpers import (
    FIGURES,
    MODELS,
    N_HIDDEN,
    N_INPUTS,
    SEEDS,
    TINY_CONFIG,
    copy_workflow,
    scheduled_jobs,
    snakemake,
)

from knockout import models as registry

pytestmark = pytest.mark.slow
EVALUATED = [*MODELS, registry.OPTIMUM]  # the exact knockout optimum is evaluated beside the models


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"), TINY_CONFIG)
    snakemake(workdir)
    return workdir


def load_state(path: Path) -> dict[str, np.ndarray]:
    return {k: v.double().numpy() for k, v in torch.load(path, weights_only=True).items()}


def hidden(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return x @ state["hidden.weight"].T + state["hidden.bias"]


def predict(
    state: dict[str, np.ndarray],
    x: np.ndarray,
    masked_units: tuple[int, ...],
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """The documented network with ``masked_units`` set to 0, or to ``centre`` (their means)."""
    h = hidden(state, x)
    h[:, list(masked_units)] = 0.0 if centre is None else centre[list(masked_units)]
    return h @ state["output.weight"][0] + state["output.bias"][0]


def r2(y: np.ndarray, prediction: np.ndarray) -> float:
    return 1.0 - np.sum((y - prediction) ** 2) / np.sum((y - y.mean()) ** 2)


def test_data_files_follow_the_contract(finished_run):
    inputs = [f"x_{i:02d}" for i in range(N_INPUTS)]
    names = ["control", *[f"unit_{i:02d}" for i in range(N_HIDDEN)]]
    for seed in SEEDS:
        data = finished_run / f"results/seed{seed}/data"
        behavior = pd.read_parquet(data / "behavior.parquet")
        assert list(behavior.columns) == ["set", "silenced", "split", *inputs, "y"]
        assert all(behavior[c].dtype == np.float32 for c in [*inputs, "y"])
        for split, per_set in [("train", 400), ("test", 200)]:
            table = behavior[behavior["split"] == split]
            assert table.groupby("set", sort=False).size().to_dict() == dict.fromkeys(names, per_set)
            assert (
                table.groupby("set")["silenced"].first() == pd.Series(["", *names[1:]], index=names)
            ).all()
        probe = pd.read_parquet(data / "neurons.parquet")
        assert list(probe.columns) == [*inputs, *[f"r_unit_{i:02d}" for i in range(N_HIDDEN)]]
        assert len(probe) == 400


def test_weight_files_follow_the_contract(finished_run):
    shapes = {
        "hidden.weight": (N_HIDDEN, N_INPUTS),
        "hidden.bias": (N_HIDDEN,),
        "output.weight": (1, N_HIDDEN),
        "output.bias": (1,),
    }
    for seed in SEEDS:
        for path in ["fly.pt", *[f"models/{m}.pt" for m in MODELS]]:
            state = torch.load(finished_run / f"results/seed{seed}" / path, weights_only=True)
            assert {k: tuple(v.shape) for k, v in state.items()} == shapes


def test_behavior_r2_recomputed_independently(finished_run):
    for seed in SEEDS:
        run = finished_run / f"results/seed{seed}"
        behavior = pd.read_parquet(run / "data/behavior.parquet")
        test = behavior[behavior["split"] == "test"]
        table = pd.read_parquet(run / "eval/behavior.parquet")
        assert list(table.columns) == [
            *("model", "set", "silenced_units", "output", "silencing", "kind"),
            *("r2", "log_likelihood", "auc", "noise_ceiling", "r2_note"),
        ]
        assert (table["r2_note"] == "").all() and (table["kind"] == "continuous").all()
        assert set(table["output"]) == {"y"} and table[["log_likelihood", "auc"]].isna().all().all()
        assert len(table) == len(EVALUATED) * (N_HIDDEN + 1) * 2  # both silencing modes (the default)
        assert table["silencing"].drop_duplicates().tolist() == ["zero", "centered"]
        fly = load_state(run / "fly.pt")
        inputs = [f"x_{i:02d}" for i in range(N_INPUTS)]
        control = test[test["set"] == "control"][inputs].to_numpy(np.float64)
        for row in table.itertuples():
            rows = test[test["set"] == row.set]
            x = rows[inputs].to_numpy(np.float64)
            y = rows["y"].to_numpy(np.float64)
            model = load_state(run / f"models/{row.model}.pt")
            silenced = (int(row.silenced_units.removeprefix("unit_")),) if row.silenced_units else ()
            # what the model's registry entry masks on a test set (ko, the optimum: the matching unit),
            # set to 0 or clamped to its mean over the control test rows
            (masked,) = registry.spec(row.model).test_masking.units([silenced], torch.tensor([0]), N_HIDDEN)
            centre = hidden(model, control).mean(axis=0) if row.silencing == "centered" else None
            assert row.r2 == pytest.approx(r2(y, predict(model, x, masked, centre)), abs=1e-4)
            assert row.noise_ceiling == pytest.approx(r2(y, predict(fly, x, silenced)), abs=1e-4)


def test_neural_r2_recomputed_independently(finished_run):
    for seed in SEEDS:
        run = finished_run / f"results/seed{seed}"
        probe = pd.read_parquet(run / "data/neurons.parquet")
        x = probe[[f"x_{i:02d}" for i in range(N_INPUTS)]].to_numpy(np.float64)
        fly_hidden = probe[[f"r_unit_{i:02d}" for i in range(N_HIDDEN)]].to_numpy(np.float64)
        fly = load_state(run / "fly.pt")
        np.testing.assert_allclose(fly_hidden, hidden(fly, x), atol=1e-4)
        table = pd.read_parquet(run / "eval/neural.parquet")
        assert list(table.columns) == [
            "model",
            "unit",
            "unit_name",
            "recorded",
            "silenced",
            "r2",
            "r2_matched",
            "r2_decoded",
            "r2_predicted",
            "estimation_floor",
            "weight_cosine",
            "silencing_effect",
            "fly_silencing_effect",
            "contribution",
            "r2_note",
        ]
        assert (table["r2_note"] == "").all()
        assert sorted(set(table["model"])) == sorted(EVALUATED)
        for model, rows in table.groupby("model"):
            state = load_state(run / f"models/{model}.pt")
            model_hidden = hidden(state, x)
            r2_pairs = np.corrcoef(fly_hidden.T, model_hidden.T)[:N_HIDDEN, N_HIDDEN:] ** 2
            # the best one-to-one matching, by trying every permutation of the 4 units
            best = max(
                itertools.permutations(range(N_HIDDEN)), key=lambda p: r2_pairs[range(N_HIDDEN), p].sum()
            )
            # each fly unit decoded from all model units: fit on one half, predict the other, and back
            design = np.hstack([model_hidden, np.ones((len(x), 1))])
            halves = np.array_split(np.arange(len(x)), 2)
            decoded = np.empty_like(fly_hidden)
            for held_out, fitted in [(halves[0], halves[1]), (halves[1], halves[0])]:
                coefficients = np.linalg.lstsq(design[fitted], fly_hidden[fitted], rcond=None)[0]
                decoded[held_out] = design[held_out] @ coefficients
            for row in rows.itertuples():
                unit = row.unit
                assert row.r2 == pytest.approx(r2_pairs[unit, unit], abs=1e-4)
                assert row.r2_matched == pytest.approx(r2_pairs[unit, best[unit]], abs=1e-4)
                assert row.r2_decoded == pytest.approx(r2(fly_hidden[:, unit], decoded[:, unit]), abs=1e-4)
                w_fly, w_model = fly["hidden.weight"][unit], state["hidden.weight"][unit]
                cosine = abs(w_fly @ w_model) / np.linalg.norm(w_fly) / np.linalg.norm(w_model)
                assert row.weight_cosine == pytest.approx(cosine, abs=1e-5)
                # linear units: silencing unit i removes w_out,i * h_i from the output
                share = state["output.weight"][0, unit] * model_hidden[:, unit]
                assert row.silencing_effect == pytest.approx(np.sqrt(np.mean(share**2)), rel=1e-4)
                fly_share = fly["output.weight"][0, unit] * fly_hidden[:, unit]
                assert row.fly_silencing_effect == pytest.approx(np.sqrt(np.mean(fly_share**2)), rel=1e-4)
                assert row.contribution == pytest.approx(np.std(fly_share), abs=1e-4)
                # c² / (c² + σ² d / (n - d - 1)) with the tiny config's σ, d and n
                dof = TINY_CONFIG["data"]["n_train"] - N_INPUTS - 1
                floor = TINY_CONFIG["fly"]["noise_sd"] ** 2 * N_INPUTS / dof
                assert row.r2_predicted == pytest.approx(row.contribution**2 / (row.contribution**2 + floor))
                assert row.estimation_floor == pytest.approx(floor, rel=1e-12)  # stored, not read back
                assert row.silenced == 1 and row.recorded == 1 and row.unit_name == f"unit_{unit:02d}"


def test_knockout_optimum_recomputed_independently(finished_run):
    """The closed-form optimum from the saved training data, by least squares written here."""
    for seed in SEEDS:
        run = finished_run / f"results/seed{seed}"
        behavior = pd.read_parquet(run / "data/behavior.parquet")
        train = behavior[behavior["split"] == "train"]
        x = np.hstack(
            [train[[f"x_{i:02d}" for i in range(N_INPUTS)]].to_numpy(np.float64), np.ones((len(train), 1))]
        )
        y = train["y"].to_numpy(np.float64)
        silenced = np.array([int(name[5:]) if name else -1 for name in train["silenced"]])
        # unit j's columns are [x, 1], zeroed on rows of the set where unit j was silenced
        design = np.hstack([x * (silenced != j)[:, None] for j in range(N_HIDDEN)] + [np.ones((len(x), 1))])
        theta = np.linalg.lstsq(design, y, rcond=None)[0]
        optimum = load_state(run / "models/optimum.pt")
        products = np.hstack([optimum["hidden.weight"], optimum["hidden.bias"][:, None]])
        products = optimum["output.weight"][0][:, None] * products
        np.testing.assert_allclose(products.ravel(), theta[:-1], atol=1e-5)
        assert optimum["output.bias"][0] == pytest.approx(theta[-1], abs=1e-5)
        ko = load_state(run / "models/ko.pt")
        ko_products = ko["output.weight"][0][:, None] * np.hstack(
            [ko["hidden.weight"], ko["hidden.bias"][:, None]]
        )
        ko_theta = np.append(ko_products.ravel(), ko["output.bias"][0])
        losses = pd.read_parquet(run / "eval/knockout_loss.parquet").set_index("model")["knockout_mse"]
        assert sorted(losses.index) == sorted(EVALUATED)
        optimum_mse, ko_mse = np.mean((design @ theta - y) ** 2), np.mean((design @ ko_theta - y) ** 2)
        assert losses["optimum"] == pytest.approx(optimum_mse, rel=1e-7)  # its float32 weights
        assert losses["ko"] == pytest.approx(ko_mse, rel=1e-6)
        assert (
            0 <= losses["ko"] - losses["optimum"] == pytest.approx(ko_mse - optimum_mse, rel=1e-2, abs=1e-9)
        )
        assert losses["noko"] > losses["ko"]  # noko never trained with masks


def test_summaries_are_means_over_seeds_with_intervals_in_range_and_chance_levels(finished_run):
    models = pd.read_parquet(finished_run / "results/summary/models.parquet").set_index(["model", "measure"])
    per_seed = [
        pd.read_parquet(finished_run / f"results/seed{seed}/eval/neural.parquet")
        .groupby("model")["r2"]
        .median()
        for seed in SEEDS
    ]
    for model in EVALUATED:
        values = np.array([medians[model] for medians in per_seed])
        row = models.loc[(model, "r2_median")]
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert values.min() <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= values.max()
        assert row["n_seeds"] == len(SEEDS)
    neural_rows = models[models.index.get_level_values("measure").str.startswith("r2")]
    assert ((neural_rows["ci_low"] >= 0) & (neural_rows["ci_high"] <= N_HIDDEN)).all()
    # the chance level, recomputed from every seed's chance table: the 95th percentile over
    # untrained networks of the median over units of matched R²
    per_draw = [
        pd.read_parquet(finished_run / f"results/seed{seed}/eval/chance.parquet")
        .query("null == 'untrained' and measure == 'r2_matched'")
        .groupby("draw")["score"]
        .median()
        for seed in SEEDS
    ]
    pooled = pd.concat(per_draw)
    assert models.loc[("ko", "r2_matched_median"), "chance_p95"] == pytest.approx(pooled.quantile(0.95))
    assert models.loc[("ko", "r2_matched_median"), "chance_mean"] == pytest.approx(pooled.mean())
    assert (
        models.loc[("ko", "r2_matched_median"), "mean"]
        > models.loc[("ko", "r2_matched_median"), "chance_p95"]
    )
    losses = [
        pd.read_parquet(finished_run / f"results/seed{s}/eval/knockout_loss.parquet").set_index("model")
        for s in SEEDS
    ]
    gaps = [loss.loc["ko", "knockout_mse"] - loss.loc["optimum", "knockout_mse"] for loss in losses]
    assert models.loc[("ko", "gap"), "mean"] == pytest.approx(np.mean(gaps))
    behavior = pd.read_parquet(finished_run / "results/summary/behavior.parquet")
    # r2 and noise ceiling per model, set and silencing mode
    assert len(behavior) == len(EVALUATED) * (N_HIDDEN + 1) * 2 * 2


def test_knockout_training_recovers_the_units_and_the_others_do_not(finished_run):
    for seed in SEEDS:
        neural = pd.read_parquet(finished_run / f"results/seed{seed}/eval/neural.parquet")
        median = neural.groupby("model")["r2"].median()
        assert median["ko"] > 0.95, median
        # the models whose masking gives no unit a silenced unit's role (control, noko, do)
        for other in [m for m in MODELS if not registry.spec(m).train_masking.assigns_roles]:
            assert median[other] < median["ko"] - 0.3, median
        behavior = pd.read_parquet(finished_run / f"results/seed{seed}/eval/behavior.parquet")
        behavior = behavior[(behavior["silenced_units"] != "") & (behavior["silencing"] == "zero")]
        silenced = behavior.pivot(index="set", columns="model", values="r2")
        assert (silenced["ko"] > silenced["do"]).all(), silenced


def test_figures_are_written_each_with_its_caption(finished_run):
    folder = finished_run / "results/figures"
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(f"{name}.{kind}" for name in FIGURES for kind in ["png", "rst"])
    for name in FIGURES:
        assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        caption = (folder / f"{name}.rst").read_text()
        assert f"seeds: {SEEDS}" in caption, caption


def test_nothing_to_do_after_a_finished_run(finished_run):
    result = snakemake(finished_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_rerun_reproduces_the_tables_byte_for_byte(finished_run):
    outputs = [
        f"results/seed{s}/{kind}"
        for s in SEEDS
        for kind in [
            "data/behavior.parquet",
            "eval/behavior.parquet",
            "eval/neural.parquet",
            "eval/chance.parquet",
            "models/ko.pt",
        ]
    ]
    before = {p: (finished_run / p).read_bytes() for p in outputs}
    snakemake(finished_run, "--forceall", "--cores", "2")
    assert {p: (finished_run / p).read_bytes() for p in outputs} == before


@pytest.mark.parametrize("layout", ["seed", "model"])
def test_every_job_layout_writes_the_same_files_byte_for_byte(finished_run, tmp_path, layout):
    """One job per experiment (the finished run), per seed or per seed and model: the same
    networks and tables, whichever networks were trained together."""
    config = copy.deepcopy(TINY_CONFIG)
    config["train"]["one_job_per"] = layout
    workdir = copy_workflow(tmp_path, config)
    expected = len(SEEDS) * (len(MODELS) if layout == "model" else 1)
    assert scheduled_jobs(workdir)["train_models"] == expected
    snakemake(workdir)
    outputs = sorted(p.relative_to(finished_run) for p in (finished_run / "results").glob("seed*/*/*"))
    assert len(outputs) == len(SEEDS) * (2 + 2 * len(MODELS) + 1 + 6)  # data; models, optimum; eval
    for path in outputs:
        assert (workdir / path).read_bytes() == (finished_run / path).read_bytes(), path


def test_a_bad_sweep_value_stops_the_sweeps_naming_its_point_but_not_the_main_run(tmp_path):
    sweeps = {"noise": {"key": "fly.noise_sd", "values": [0.1, -1]}}
    workdir = copy_workflow(tmp_path, TINY_CONFIG | {"sweeps": sweeps})
    assert snakemake(workdir, "-n").returncode == 0
    result = snakemake(workdir, "sweeps", "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid config for sweeps.noise.values[1] (fly.noise_sd = -1)" in output
    assert "-1 is less than the minimum of 0" in output


def test_sweeps_without_ko_or_do_are_refused_but_the_main_run_is_not(tmp_path):
    config = TINY_CONFIG | {
        "models": ["control", "ko"],
        "sweeps": {"noise": {"key": "fly.noise_sd", "values": [0.1]}},
    }
    workdir = copy_workflow(tmp_path, config)
    result = snakemake(workdir, "-n", "sweeps", check=False)
    assert result.returncode != 0
    assert (
        "sweep noise compares ko with do, but models (control, ko) lacks do" in result.stdout + result.stderr
    )
    assert scheduled_jobs(workdir)["train_models"] == 1


def test_bad_config_is_refused_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path, TINY_CONFIG | {"models": ["ko", "knockout"]})
    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    assert "knockout" in result.stderr and "models" in result.stderr
    assert not (workdir / "results").exists()


def test_a_sweep_of_model_sizes_runs_end_to_end(tmp_path):
    """Fitted networks with fewer and more units than the fly's 4, each in its own folder."""
    config = copy.deepcopy(TINY_CONFIG) | {
        "sweep_seeds": [0, 1],
        "sweeps": {"model_hidden": {"key": "model.n_hidden", "values": [3, 6]}},
    }
    workdir = copy_workflow(tmp_path, config)
    snakemake(workdir, "sweeps")
    assert not (workdir / "results/seed0").exists()  # the main experiment did not run
    for size in (3, 6):
        ko = torch.load(workdir / f"results/sweeps/model_hidden/{size}/seed1/models/ko.pt", weights_only=True)
        assert ko["hidden.weight"].shape == (size, N_INPUTS)
        neural = pd.read_parquet(workdir / f"results/sweeps/model_hidden/{size}/seed1/eval/neural.parquet")
        assert len(neural) == len(EVALUATED) * N_HIDDEN  # one row per fly unit
        if size == 3:  # the fly's last unit has no model unit of its index
            assert (neural.loc[neural["unit"] == 3, "r2"] == 0).all()
    summary = pd.read_parquet(workdir / "results/sweeps/model_hidden/summary.parquet")
    assert sorted(set(summary["value"])) == ["3", "6"] and set(summary["model"]) == {"ko", "do", "ko - do"}
    assert (summary["n_seeds"] == 2).all() and (summary["key"] == "model.n_hidden").all()
    convergence = pd.read_parquet(workdir / "results/sweeps/model_hidden/convergence.parquet")
    assert len(convergence) == 2 * 2 * len(MODELS)  # values x seeds x models
    # each summary row is marked with its model's convergence in every seed at that value
    for row in summary[summary["model"] == "ko"].itertuples():
        ko = convergence[(convergence["value"] == row.value) & (convergence["model"] == "ko")]
        assert row.converged == ko["converged"].min()
    # each value's chance level, recomputed from its points' chance tables: the 95th
    # percentile over untrained networks of their mean same-index R² over units
    for size in (3, 6):
        chance = pd.concat(
            pd.read_parquet(
                workdir / f"results/sweeps/model_hidden/{size}/seed{seed}/eval/chance.parquet"
            ).assign(seed=seed)
            for seed in (0, 1)
        )
        untrained = chance[(chance["null"] == "untrained") & (chance["measure"] == "r2")]
        expected = untrained.groupby(["seed", "draw"])["score"].mean().quantile(0.95)
        rows = summary[(summary["value"] == str(size)) & (summary["measure"] == "r2_mean")].set_index("model")
        assert rows.loc["ko", "chance_p95"] == pytest.approx(expected) == rows.loc["do", "chance_p95"]
        assert np.isnan(rows.loc["ko - do", "chance_p95"])  # a difference has no chance level
    assert (workdir / "results/sweeps/model_hidden/ko_minus_do.png").read_bytes()[:4] == b"\x89PNG"
