"""The plan section as the workflow reads it (knockout_workflow.plan_settings): the pilot as
a data source, the simulation's training, and the problems that stop a plan."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys

import pytest
import yaml
from workflow_helpers import REPO

from knockout import memory, planning
from knockout.network import Architecture
from knockout_workflow import plan_settings
from knockout_workflow.config_checks import checked_config
from knockout_workflow.data_sources import DataFolder, SimulatedFly

DEFAULT = checked_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
LINEAR = dataclasses.asdict(Architecture(n_inputs=50, n_hidden=16))  # as the data sources give it
WIDE = LINEAR | {"n_inputs": 100}
RELU = LINEAR | {"activation": "relu"}


def with_plan(**plan) -> dict:
    config = copy.deepcopy(DEFAULT)
    config["plan"] |= plan
    return config


def layout_of(config):
    return plan_settings.pilot_source(config).layout()


def problems(config, architecture=LINEAR):
    """The problems of a plan whose pilot is drawn from the fly (its rows: plan.pilot_n a set)."""
    pilot = plan_settings.pilot_source(config)
    return plan_settings.plan_problems(config, pilot.layout(), architecture, pilot.set_rows())


def test_the_default_plan_is_fine_and_a_simulated_pilot_is_the_fly_at_pilot_n():
    assert problems(DEFAULT) == []
    pilot = plan_settings.pilot_source(DEFAULT)
    assert isinstance(pilot, SimulatedFly) and pilot.has_ground_truth
    assert set(pilot.set_rows().values()) == {DEFAULT["plan"]["pilot_n"]}
    assert len(pilot.layout().sets) == DEFAULT["fly"]["n_hidden"] + 1


def test_a_pilot_folder_is_a_data_folder_with_the_plan_s_units_or_the_data_s():
    config = with_plan(pilot="lab/pilot", units=["LC4", "LC6"])
    pilot = plan_settings.pilot_source(config)
    assert isinstance(pilot, DataFolder) and pilot.settings["data"]["units"] == ["LC4", "LC6"]
    config = with_plan(pilot="lab/pilot")
    config["data"]["units"] = ["LC9"]
    assert plan_settings.pilot_source(config).settings["data"]["units"] == ["LC9"]
    assert plan_settings.pilot_problems(config) == []
    assert "plan.units: missing" in plan_settings.pilot_problems(with_plan(pilot="lab/pilot"))[0]
    assert "plan.units is for a pilot folder" in plan_settings.pilot_problems(with_plan(units=["a"]))[0]


@pytest.mark.parametrize(
    ("plan", "architecture", "expected"),
    [
        ({"n_per_set": [60, 1000]}, LINEAR, "plan.n_per_set: 60 is below ko's train.batch_size = 64"),
        ({"n_per_set": [80]}, WIDE, "plan.n_per_set: 80 leaves no residual degrees of freedom"),
        ({"pilot_n": 40}, LINEAR, "plan.pilot_n = 40: the formula fits each pilot set by least squares"),
        ({"pilot_n": 40}, RELU, "plan.pilot_n = 40: the simulation fits ko to the pilot"),
        ({"method": "formula"}, RELU, "plan.method formula: the formula is derived for linear networks"),
        (
            {"n_per_set": [1_000_000], "method": "simulation"},
            LINEAR,
            "plan: its simulated experiments would hold about",
        ),
    ],
)
def test_each_bad_plan_is_one_line_naming_its_key(plan, architecture, expected):
    found = problems(with_plan(**plan), architecture)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_pilot_folder_needs_a_control_set_a_unit_alone_and_rows_enough():
    layout = layout_of(DEFAULT)
    without_control = type(layout)(**{**layout.__dict__, "sets": layout.sets[1:]})
    together = type(layout)(**{**layout.__dict__, "sets": (layout.sets[0], ("pair", (0, 1)))})
    config = with_plan(pilot="lab/pilot", units=list(layout.units))
    rows = {name: 500 for name, _ in layout.sets} | {"unit_03": 12, "unit_04": 30}
    assert "1 control sets" not in " ".join(plan_settings.pilot_layout_problems(layout))
    assert "0 control sets" in plan_settings.pilot_layout_problems(without_control)[0]
    assert "no set silencing one unit alone" in plan_settings.pilot_layout_problems(together)[0]
    (short,) = plan_settings.plan_problems(config, layout, LINEAR, rows)
    assert short.startswith("plan.pilot: set unit_03 has 12 rows (2 sets are short)")


def test_the_simulation_trains_as_ko_with_its_own_restarts_if_given():
    config = with_plan()
    config["train"]["per_model"] = {"ko": {"epochs": 7}}
    assert plan_settings.plan_training_settings(config)["epochs"] == 7
    assert plan_settings.plan_training_settings(config)["restarts"] == DEFAULT["train"]["restarts"]
    config["plan"]["simulation"]["restarts"] = 5
    assert plan_settings.plan_training_settings(config)["restarts"] == 5
    assert plan_settings.plan_method(config, RELU) == planning.SIMULATION
    assert plan_settings.plan_trains(config, planning.FORMULA)  # its training check
    config["plan"]["check_training"] = False
    assert not plan_settings.plan_trains(config, planning.FORMULA)


def test_checking_a_plan_imports_no_pytorch():
    """Every start of the workflow imports plan_settings: it must not cost PyTorch's import."""
    code = "import sys, knockout_workflow.plan_settings; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_simulation_s_memory_grows_with_designs_seeds_and_pilots():
    layout = layout_of(DEFAULT)
    small = plan_settings.plan_memory(DEFAULT, layout, RELU)
    more = with_plan(simulation={"seeds": 8, "restarts": None})
    assert memory.RUNTIME_BYTES < small < plan_settings.plan_memory(more, layout, RELU)
    folder = with_plan(pilot="lab/pilot", units=list(layout.units))
    assert plan_settings.plan_memory(folder, layout, RELU) < small  # one pilot, not one per seed
