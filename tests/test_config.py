"""Bad configs are refused before any job, with the offending key named.

Runs the workflow's own schema (via Snakemake's validate, which also fills defaults)
and the cross-key rules on a table of bad values.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate
from workflow_helpers import REPO

from knockout.config_checks import config_problems, model_train_settings

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


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
    config = copy.deepcopy(DEFAULT)
    validate(config, SCHEMA)
    assert config_problems(config) == []


def test_an_empty_config_gets_every_default():
    config = {}
    validate(config, SCHEMA)
    assert config["seeds"] == [0] and config["train"]["epochs"] == DEFAULT["train"]["epochs"]
    assert config["fly"] == DEFAULT["fly"] and config["data"] == DEFAULT["data"]


SCHEMA_REFUSES = [
    ("seeds", [0, 0], "seeds"),
    ("seeds", [], "seeds"),
    ("seeds", [-1], "seeds"),
    ("seeds", ["0"], "seeds"),
    ("models", ["ko", "knockout"], "models"),
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
    ("train.per_model", {"knockout": {"epochs": 5}}, "knockout"),
    ("train.per_model", {"ko": {"epoch": 5}}, "epoch"),
    ("plot.dpi", 5, "dpi"),
    ("plot.colour", {"ko": "red"}, "colour"),
    ("typo_key", 1, "typo_key"),
]


@pytest.mark.parametrize(
    ("path", "value", "named"), SCHEMA_REFUSES, ids=[f"{p}={v}" for p, v, _ in SCHEMA_REFUSES]
)
def test_the_schema_refuses_a_bad_value_and_names_it(path, value, named):
    with pytest.raises(WorkflowError) as error:
        validate(with_change(path, value), SCHEMA)
    assert named in str(error.value)


def test_a_batch_larger_than_a_data_set_is_refused():
    config = with_change("train.batch_size", 2000)
    validate(config, SCHEMA)
    assert config_problems(config) == [
        "train.batch_size = 2000 is larger than data.n_train = 1000; every batch comes from one "
        "data set, so use at most 1000"
    ]


def test_a_per_model_batch_larger_than_a_data_set_is_refused():
    config = with_change("train.per_model", {"ko": {"batch_size": 1001}})
    validate(config, SCHEMA)
    assert [p.split(" =")[0] for p in config_problems(config)] == ["train.per_model.ko.batch_size"]


def test_an_override_for_a_model_not_run_is_refused():
    config = with_change("models", ["control", "ko"])
    config["train"]["per_model"] = {"do": {"epochs": 5}}
    validate(config, SCHEMA)
    assert config_problems(config) == [
        "train.per_model names do, which is not in models (control, ko); add it to models or remove "
        "the override"
    ]


def test_a_models_training_settings_hold_no_workflow_keys():
    """How training is cut into jobs is not a setting of the network's training."""
    train = {"lr": 0.01, "epochs": 60, "one_job_per": "seed", "per_model": {"ko": {"epochs": 5}}}
    assert model_train_settings(train, "ko") == {"lr": 0.01, "epochs": 5}
    assert model_train_settings(train, "do") == {"lr": 0.01, "epochs": 60}
