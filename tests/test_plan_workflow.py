"""`snakemake plan` end to end: a simulated pilot and a pilot folder planned, the tables,
figure and caption written; bad plans refused before any job, and never the main run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import N_HIDDEN, N_INPUTS, SEEDS, TINY_CONFIG, copy_workflow, scheduled_jobs, snakemake

from knockout import planning, simulation

pytestmark = pytest.mark.slow

DESIGNS = [100, 400]
PLAN = {"n_per_set": DESIGNS, "pilot_n": 60, "resamples": 200}


def planned_copy(tmp_path, **sections):
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG)) | {"plan": PLAN}
    for section, values in sections.items():
        config[section] = config.get(section, {}) | values
    return copy_workflow(tmp_path / "project", config)


def pilot_folder(path, n_per_set=80, seed=3, sets=None):
    """A pilot folder under the import contract from a linear fly (every unit silenced
    alone, or the sets ``sets`` keeps)."""
    settings = simulation.FlySettings(n_inputs=N_INPUTS, n_hidden=N_HIDDEN, noise_sd=0.05)
    table = simulation.pilot_table(settings, n_per_set, seed)
    if sets is not None:
        table = table[table["set"].isin(sets)]
    path.mkdir(parents=True)
    table.to_parquet(path / "behavior.parquet", index=False)
    return path


def test_a_simulated_pilot_is_planned_per_seed_with_figure_and_caption(tmp_path):
    workdir = planned_copy(tmp_path)
    snakemake(workdir, "plan")
    planned = pd.read_parquet(workdir / "results/plan/plan.parquet")
    smallest = pd.read_parquet(workdir / "results/plan/min_n.parquet")
    assert list(planned.columns) == ["seed", *planning.PLAN_COLUMNS]
    assert list(smallest.columns) == ["seed", *planning.MIN_N_COLUMNS]
    assert sorted(planned["seed"].unique()) == SEEDS and set(planned["method"]) == {planning.FORMULA}
    assert len(planned) == len(SEEDS) * N_HIDDEN * len(DESIGNS) and len(smallest) == len(SEEDS) * N_HIDDEN
    numbers = planned[["predicted_r2", "lower", "upper", "p_identified"]].to_numpy()
    assert np.all((numbers >= 0) & (numbers <= 1))
    for name in ("plan.png", "plan.rst"):
        assert (workdir / "results/plan" / name).stat().st_size > 0
    assert "target" in (workdir / "results/plan/plan.rst").read_text(encoding="utf-8").lower()
    assert scheduled_jobs(workdir, "plan") == {}


def test_editing_the_plan_reruns_the_plan_only(tmp_path):
    workdir = planned_copy(tmp_path)
    snakemake(workdir, "plan")
    config = yaml.safe_load((workdir / "config/config.yaml").read_text(encoding="utf-8"))
    config["plan"]["target_r2"] = 0.8
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert set(scheduled_jobs(workdir, "plan")) == {"make_plan", "plot_plan", "plan"}
    config["train"]["lr"] = 0.02  # the formula trains nothing
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert set(scheduled_jobs(workdir, "plan")) == {"make_plan", "plot_plan", "plan"}
    snakemake(workdir, "plan")
    assert scheduled_jobs(workdir, "plan") == {}


def test_a_pilot_folder_is_planned_once_with_reasons_for_units_it_cannot_speak_for(tmp_path):
    folder = pilot_folder(tmp_path / "pilot", sets=["control", "unit_00", "unit_01"])
    units = [f"unit_{unit:02d}" for unit in range(N_HIDDEN)]
    workdir = planned_copy(tmp_path, plan=PLAN | {"pilot": str(folder), "units": units})
    snakemake(workdir, "plan")
    planned = pd.read_parquet(workdir / "results/plan/plan.parquet")
    assert planned["seed"].isna().all() and len(planned) == N_HIDDEN * len(DESIGNS)
    reasons = planned.groupby("unit")["reason"].first()
    assert (reasons[["unit_00", "unit_01"]] == "").all()
    assert (reasons[["unit_02", "unit_03"]] == planning.NEVER_SILENCED).all()
    caption = (workdir / "results/plan/plan.rst").read_text(encoding="utf-8")
    assert "recorded pilot" in " ".join(caption.split())


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"n_per_set": [20, 400]}, "plan.n_per_set: 20 is below ko's train.batch_size = 32"),
        ({"pilot_n": 8}, "plan.pilot_n = 8: the formula fits each pilot set by least squares"),
        ({"method": "formula", "pilot_n": 60}, None),  # fine for a linear fly
        ({"target_r2": 1.0}, "target_r2"),
        ({"pilot": "missing_pilot", "units": ["a"]}, "plan.pilot"),
        ({"pilot": "PILOT"}, "plan.units: missing"),
        ({"pilot": "PILOT_WITHOUT_CONTROL", "units": [f"unit_{u:02d}" for u in range(N_HIDDEN)]}, "control"),
    ],
)
def test_a_bad_plan_stops_the_plan_before_any_job_but_not_the_main_run(tmp_path, plan, message):
    pilot_folder(tmp_path / "pilot")
    pilot_folder(tmp_path / "no_control", sets=["unit_00", "unit_01"])
    paths = {"PILOT": str(tmp_path / "pilot"), "PILOT_WITHOUT_CONTROL": str(tmp_path / "no_control")}
    plan = {key: paths.get(value, value) if isinstance(value, str) else value for key, value in plan.items()}
    workdir = planned_copy(tmp_path, plan=PLAN | plan)
    result = snakemake(workdir, "-n", "plan", check=False)
    if message is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert not (workdir / "results").exists()
    if "target_r2" not in message:  # the schema refuses a target outside (0, 1) for every run
        assert "train_models" in scheduled_jobs(workdir)


def test_a_relu_fly_is_planned_by_simulation(tmp_path):
    workdir = planned_copy(
        tmp_path,
        fly={"activation": "relu"},
        plan=PLAN | {"n_per_set": [100], "simulation": {"seeds": 2, "restarts": 2}},
        train={"epochs": 5, "min_steps": 300},
    )
    snakemake(workdir, "plan")
    planned = pd.read_parquet(workdir / "results/plan/plan.parquet")
    assert set(planned["method"]) == {planning.SIMULATION} and planned["predicted_r2"].notna().all()
    assert (workdir / "benchmarks/plan/make_plan.tsv").is_file()
