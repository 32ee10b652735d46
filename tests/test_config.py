"""Bad configs are refused before any job, with the offending key named.

Runs the workflow's whole check (``checked_config``: the schema, which fills defaults,
then numbers, then the cross-key rules, in the order the workflow runs them) on a table
of bad values.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml
from snakemake.utils import validate
from workflow_helpers import REPO

from knockout.training import TrainSettings
from knockout_workflow.config_checks import (
    SCHEMA,
    SCHEMA_FILE,
    ConfigError,
    checked_config,
    number_problems,
    point_name,
    sweep_points,
)
from knockout_workflow.step_settings import model_train_settings

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def problems(config: dict) -> list[str]:
    """What the workflow's whole check says of ``config`` (filling its defaults in), a
    problem a line; [] when it passes."""
    try:
        checked_config(config)
    except ConfigError as error:
        lines = str(error).splitlines()
        return [line.strip() for line in lines[1:]] or lines
    return []


def with_change(path: str, value) -> dict:
    """The shipped config with the key at dotted ``path`` set to ``value``."""
    config = copy.deepcopy(DEFAULT)
    *parents, key = path.split(".")
    node = config
    for parent in parents:
        node = node.setdefault(parent, {})
    node[key] = value
    return config


def test_the_shipped_config_is_valid():
    assert problems(copy.deepcopy(DEFAULT)) == []


def test_snakemake_s_own_check_fills_the_same_defaults():
    """The workflow runs Snakemake's ``validate`` first (its messages name the config file)."""
    with_snakemake, with_ours = {}, {}
    validate(with_snakemake, str(SCHEMA_FILE))
    assert checked_config(with_ours) == with_snakemake


def overlaid(base: dict, overlay: dict) -> dict:
    """``overlay`` merged into ``base`` key by key, as Snakemake merges a ``--configfile``."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        both_dicts = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = overlaid(merged[key], value) if both_dicts else value
    return merged


@pytest.mark.parametrize(
    "overlay", ["config/quick.yaml", "config/authors.yaml", "examples/config.yaml", "examples/courtship.yaml"]
)
def test_every_shipped_overlay_fits_the_schema(overlay):
    """Each config shipped to be given with ``--configfile`` over config.yaml (the data
    folders they name are made by the examples' generators, so only the schema is checked)."""
    config = overlaid(DEFAULT, yaml.safe_load((REPO / overlay).read_text()))
    validate(config, str(SCHEMA_FILE))
    assert config["model"]["batch_norm"] is (overlay == "config/authors.yaml")


def test_the_schema_comes_before_the_cross_key_rules():
    config = with_change("train.batch_size", 0)  # breaks the schema, not a cross-key rule
    config["data"]["n_silenced"] = 99  # a cross-key problem, never reached
    assert problems(config) == ["invalid config: train.batch_size: 0 is less than the minimum of 1"]


def test_an_empty_config_gets_every_default():
    config = {}
    checked_config(config)
    assert config["seeds"] == DEFAULT["seeds"] and config["train"]["epochs"] == DEFAULT["train"]["epochs"]
    assert config["fly"] == DEFAULT["fly"] and config["data"] == DEFAULT["data"]
    assert config["model"] == DEFAULT["model"]
    assert config["model"] == {
        **{"n_hidden": None, "activation": None, "encoder": None, "decoder": None},
        **{"conv": [], "frame_features": 0, "standardize": "auto", "batch_norm": False},  # frames, norm: off
    }
    assert (
        config["evaluate"] == {"silencing": ["zero", "centered"]} and config["train"]["silencing"] == "zero"
    )
    assert (config["fly"]["encoder"], config["fly"]["decoder"], config["fly"]["n_outputs"]) == ([], [], 1)
    assert config["train"]["restarts"] == 1 and config["train"]["schedule"] == "interleaved"
    assert config["sweeps"] == {}  # sweeps run only where declared


SCHEMA_REFUSES = [
    ("seeds", [0, 0], "seeds"),
    ("seeds", [], "seeds"),
    ("seeds", [-1], "seeds"),
    ("seeds", ["0"], "seeds"),
    ("models", [], "models"),
    ("fly.n_inputs", 0, "n_inputs"),
    ("fly.n_hidden", 5000, "n_hidden"),
    ("fly.n_hidden", 2.5, "n_hidden"),
    ("fly.noise_sd", -0.1, "noise_sd"),
    ("fly.init", "xavier", "init"),
    ("data.n_train", 0, "n_train"),
    ("data.n_test", "500", "n_test"),
    ("train.lr", 0, "lr"),
    ("train.lr", -0.01, "lr"),
    ("train.epochs", 0, "epochs"),
    ("train.batch_size", 0, "batch_size"),
    ("train.lr_schedule", "linear", "lr_schedule"),
    ("train.restarts", 0, "restarts"),
    ("train.schedule", "sequential", "schedule"),
    ("fly.decoder", [0], "decoder"),
    ("fly.encoder", 32, "encoder"),
    ("fly.n_outputs", 0, "n_outputs"),
    ("train.per_model", {"ko": {"epoch": 5}}, "epoch"),
    ("fly.activation", "softsign", "activation"),
    ("fly.silenced_activity", 1.5, "silenced_activity"),
    ("data.n_silenced", 0, "n_silenced"),
    ("data.source", "", "source"),
    ("data.units", ["LC4", "LC4"], "units"),
    ("data.units", ["LC 4"], "units"),
    ("data.units", ["LC4+LC6"], "units"),
    ("data.units", [], "units"),
    ("data.test_fraction", 1.0, "test_fraction"),
    ("data.test_fraction", 0, "test_fraction"),
    ("model.n_hidden", 0, "n_hidden"),
    ("model.activation", "sigmoid", "activation"),
    ("model.batch_norm", "yes", "batch_norm"),
    ("sweeps", {"noise": {"key": "fly.noise", "values": [0.1]}}, "fly.noise"),
    ("sweeps", {"noise": {"key": "fly.noise_sd", "values": []}}, "values"),
    ("sweeps", {"noise": {"key": "fly.noise_sd", "values": ["a/b"]}}, "a/b"),
    ("sweeps", {"noise": {"values": [0.1]}}, "key"),
    ("sweep_seeds", [1, 1], "sweep_seeds"),
    ("plot.dpi", 5, "dpi"),
    ("plot.colour", {"ko": "red"}, "colour"),
    ("typo_key", 1, "typo_key"),
]


@pytest.mark.parametrize(
    ("path", "value", "named"), SCHEMA_REFUSES, ids=[f"{p}={v}" for p, v, _ in SCHEMA_REFUSES]
)
def test_the_schema_refuses_a_bad_value_and_names_it(path, value, named):
    with pytest.raises(ConfigError) as error:
        checked_config(with_change(path, value))
    assert named in str(error.value)


def test_a_batch_larger_than_a_data_set_is_refused():
    config = with_change("train.batch_size", 2000)
    assert problems(config) == [
        "train.batch_size = 2000 is larger than data.n_train = 1000; every batch comes from one "
        "data set, so use at most 1000"
    ]


def test_a_per_model_batch_larger_than_a_data_set_is_refused():
    config = with_change("train.per_model", {"ko": {"batch_size": 1001}})
    assert [p.split(" =")[0] for p in problems(config)] == ["train.per_model.ko.batch_size"]


def test_batch_normalisation_with_batches_of_one_row_is_refused():
    config = with_change("model.batch_norm", True)
    assert problems(config) == []
    config["train"]["per_model"] = {"ko": {"batch_size": 1}}
    assert problems(config) == [
        "train.per_model.ko.batch_size = 1 with model.batch_norm: a batch-normalised layer needs "
        "batches of 2 rows or more (a single row, less the batch's mean, is 0)"
    ]


def test_an_override_for_a_model_not_run_is_refused():
    config = with_change("models", ["control", "ko"])
    config["train"]["per_model"] = {"do": {"epochs": 5}}
    assert problems(config) == [
        "train.per_model names do, which is not in models (control, ko); add it to models or remove "
        "the override"
    ]


def test_a_models_training_settings_hold_no_workflow_keys():
    """How training is cut into jobs is not a setting of the network's training."""
    train = {"lr": 0.01, "epochs": 60, "one_job_per": "seed", "per_model": {"ko": {"epochs": 5}}}
    assert model_train_settings(train, "ko") == {"lr": 0.01, "epochs": 5}
    assert model_train_settings(train, "do") == {"lr": 0.01, "epochs": 60}


def test_more_silenced_units_than_the_fly_has_are_refused():
    config = with_change("data.n_silenced", 17)
    assert problems(config) == [
        "data.n_silenced = 17 is larger than fly.n_hidden = 16; use 1-16, or null to silence every unit"
    ]


def test_a_data_folder_needs_its_units_and_the_simulated_fly_refuses_them():
    folder = with_change("data.source", "my_experiment")
    assert problems(folder) == [
        "data.units: missing; data.source my_experiment is a data folder, so list its silenceable "
        "units in order (the names its silenced column and r_<unit> columns use)"
    ]
    folder["data"]["units"] = ["LC4", "LC6"]
    folder["data"]["n_silenced"] = 40  # a simulated-fly key: not checked against a folder
    assert problems(folder) == []
    simulated = with_change("data.units", ["LC4"])
    assert problems(simulated)[0].startswith("data.units is for a data folder (data.source)")


def test_a_sweep_point_is_the_config_with_one_key_changed():
    config = copy.deepcopy(DEFAULT)
    checked_config(config)
    points = list(sweep_points(config))
    declared = [(name, value) for name, sweep in DEFAULT["sweeps"].items() for value in sweep["values"]]
    assert [(sweep, value) for sweep, value, _, _ in points] == [(n, point_name(v)) for n, v in declared]
    sweep, value, where, point = points[1]
    assert (sweep, value) == ("noise_sd", "0.05")
    assert where == "sweeps.noise_sd.values[1] (fly.noise_sd = 0.05)"
    changed = copy.deepcopy(config)
    changed["fly"]["noise_sd"] = 0.05
    assert point == changed
    assert config["fly"]["noise_sd"] == DEFAULT["fly"]["noise_sd"]  # the main config is left alone


def test_a_sweep_value_that_breaks_a_cross_key_rule_is_caught_at_its_point():
    config = with_change("sweeps", {"batch": {"key": "data.n_train", "values": [1000, 10]}})
    checked_config(config)
    found = {where: problems(point) for _, _, where, point in sweep_points(config)}
    assert found["sweeps.batch.values[0] (data.n_train = 1000)"] == []
    assert "data.n_train = 10" in found["sweeps.batch.values[1] (data.n_train = 10)"][0]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("models", ["ko", "knockout"]),
        ("train.per_model", {"knockout": {"epochs": 5}}),
        ("plot.colors", {"kox": "red"}),
    ],
)
def test_a_model_outside_the_registry_is_refused_naming_it_and_the_known_ones(key, value):
    config = with_change(key, value)
    (problem,) = problems(config)
    assert problem.startswith(key) and "unknown" in problem
    assert "control, noko, ko, do" in problem


def test_a_sweep_sets_its_fixed_keys_at_every_point_and_names_layer_lists():
    sweep = {
        "key": "fly.decoder",
        "values": [[], [32, 16]],
        "set": {"fly.activation": "relu", "train.restarts": 4},
    }
    config = with_change("sweeps", {"deep": sweep})
    checked_config(config)
    points = list(sweep_points(config))
    assert [name for _, name, _, _ in points] == ["none", "32x16"]
    for (_, _, _, point), decoder in zip(points, [[], [32, 16]], strict=True):
        assert point["fly"]["decoder"] == decoder
        assert point["fly"]["activation"] == "relu" and point["train"]["restarts"] == 4
        assert problems(point) == []
    assert config["fly"]["activation"] == "linear"  # the main config is left alone


@pytest.mark.parametrize(
    ("path", "value", "step"),
    [("data.n_train", 10_000_000, "generate_fly_data"), ("fly.n_inputs", 10_000, "train_models")],
)
def test_a_config_whose_steps_would_exceed_the_memory_budget_is_refused_naming_the_keys(path, value, step):
    config = with_change(path, value)
    if path == "fly.n_inputs":
        config["fly"]["n_hidden"] = 1000
    found = problems(config)
    assert any(problem.startswith(f"{step} would need about") for problem in found), found
    assert all("limits.memory_gb = 8" in problem and "data.n_train" in problem for problem in found)
    config["limits"]["memory_gb"] = 10_000
    assert problems(config) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("fly.noise_sd", float("nan"), "fly.noise_sd: nan is not a finite number"),
        ("train.lr", float("inf"), "train.lr: inf is not a finite number"),
        ("plot.width", float("-inf"), "plot.width: -inf is not a finite number"),
        ("data.n_train", 200.0, "data.n_train: 200.0 must be an integer (write 200)"),
        ("seeds", [0, 1.0], "seeds[1]: 1.0 must be an integer (write 1)"),
        ("fly.decoder", [32.0], "fly.decoder[0]: 32.0 must be an integer (write 32)"),
        ("train.per_model", {"ko": {"epochs": 20.0}}, "train.per_model.ko.epochs: 20.0 must be an integer"),
    ],
)
def test_numbers_must_be_finite_and_integers_integers(path, value, message):
    config = with_change(path, value)
    found = number_problems(config, SCHEMA)
    assert any(problem.startswith(message) for problem in found), found
    assert number_problems(copy.deepcopy(DEFAULT), SCHEMA) == []


@pytest.mark.parametrize("name", ["..", ".", ".hidden"])
def test_sweep_names_and_values_are_plain_folder_names(name):
    with pytest.raises(ConfigError):
        checked_config(with_change("sweeps", {name: {"key": "fly.noise_sd", "values": [0.1]}}))
    with pytest.raises(ConfigError):
        checked_config(with_change("sweeps", {"ok": {"key": "fly.init", "values": [name]}}))


def test_sweeps_null_switches_the_shipped_sweeps_off():
    config = with_change("sweeps", None)
    assert problems(config) == [] and list(sweep_points(config)) == []


def test_plot_formats_must_include_the_png_the_report_shows():
    config = with_change("plot.formats", ["pdf", "svg"])
    assert problems(config) == [
        "plot.formats = ['pdf', 'svg'] lacks png, which the report shows; add it (e.g. [png, pdf])"
    ]
    with pytest.raises(ConfigError):
        checked_config(with_change("plot.formats", ["jpg"]))


def test_the_core_s_training_defaults_are_the_schema_s():
    """``knockout.api`` and the tests build ``TrainSettings`` without a config: a key left
    out must train as the workflow would."""
    config = {}
    checked_config(config)
    schema_defaults = model_train_settings(config["train"], "ko")
    core_defaults = {field.name: field.default for field in dataclasses.fields(TrainSettings)}
    assert schema_defaults == core_defaults


@pytest.mark.parametrize("color", ["notacolour", "#12345", "1.5", "$x$"])
def test_a_colour_matplotlib_cannot_draw_is_refused_naming_the_model_and_the_value(color):
    config = with_change("plot.colors", {"ko": color, "do": "tab:green"})
    (problem,) = problems(config)
    assert problem.startswith(f"plot.colors.ko: {color!r} is not a colour")


def test_colours_matplotlib_can_draw_pass():
    config = with_change("plot.colors", {"ko": "#d55e00", "do": "0.5", "noko": "C3", "control": "tab:blue"})
    assert problems(config) == []
