"""Data sources (knockout_workflow.data_sources): every registered kind gives the files its
kinds need, a layout, whether it has a ground truth, and its results folder; then what
the simulated fly and a data folder each do of their own.

A kind in KINDS without an example config in EXAMPLES fails here, so a new source is
tested by being registered."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from test_data_folder import UNITS, behavior_table, neurons_table, write_folder
from workflow_helpers import REPO, TINY_CONFIG

from knockout.data_folder import Layout
from knockout.errors import InputFileError
from knockout.metrics import DataDesign
from knockout_workflow import data_sources
from knockout_workflow.config_checks import (
    SCHEMA,
    ConfigError,
    checked_config,
    config_problems,
)
from knockout_workflow.data_sources import (
    ARCHITECTURE_KEYS,
    KINDS,
    DataFolder,
    DataSource,
    SimulatedFly,
    data_source,
)
from knockout_workflow.sources import file_digest
from knockout_workflow.step_settings import training_estimates

FILE_KINDS = ("behavior", "neurons", "stimuli", "fly")
"""Every kind of file a rule asks a source for (knockout.data_folder's two, and the true network)."""
SEEDS = [0, 1]


def fly_config(tmp_path: Path) -> dict:
    return checked_config(copy.deepcopy(TINY_CONFIG))


def folder_config(tmp_path: Path, name: str = "experiment", neurons: bool = True) -> dict:
    folder = write_folder(tmp_path / name, behavior_table(), neurons_table() if neurons else None)
    config = copy.deepcopy(TINY_CONFIG)
    del config["fly"], config["data"]
    return checked_config(config | {"data": {"source": str(folder), "units": UNITS}})


EXAMPLES: dict[type[DataSource], Callable[[Path], dict]] = {
    SimulatedFly: fly_config,
    DataFolder: folder_config,
}
"""A valid config for each kind of source (made in the test's folder)."""


def test_every_registered_kind_has_an_example_and_a_folder_path_is_the_last_resort():
    assert set(EXAMPLES) == set(KINDS), "give the new kind an example config in EXAMPLES"
    assert KINDS[-1] is DataFolder  # any value no other kind accepts is a folder's path
    assert all(issubclass(kind, DataSource) for kind in KINDS)


@pytest.fixture(params=KINDS, ids=lambda kind: kind.__name__)
def source(request, tmp_path, monkeypatch) -> DataSource:
    monkeypatch.chdir(tmp_path)
    return data_source(EXAMPLES[request.param](tmp_path))


def test_the_config_picks_its_kind_the_first_that_accepts_it(source):
    value = source.settings["data"]["source"]
    earlier = KINDS[: KINDS.index(type(source))]
    assert type(source).accepts(value) and not any(kind.accepts(value) for kind in earlier)


def test_it_gives_the_files_of_the_kinds_it_has(source, tmp_path):
    files = source.files(FILE_KINDS, "sweeps/s/1/", SEEDS)
    assert "behavior" in files and set(files) <= set(source.kinds) <= set(FILE_KINDS)
    for kind, paths in files.items():
        assert paths and all(isinstance(path, str) for path in paths), (kind, paths)
        assert len(paths) in (1, len(SEEDS)), (kind, paths)  # one for every seed, or one a seed
        if not source.content_pinned:  # the workflow writes them: its own outputs
            assert all(path.startswith("results/sweeps/s/1/") for path in paths), paths
        else:  # the user's: they exist
            assert all(Path(path).is_file() for path in paths), paths
    assert source.files(["behavior"], "", SEEDS).keys() == {"behavior"}


def test_its_layout_is_known_before_any_job_and_sizes_the_fitted_networks(source):
    layout = source.layout()
    assert isinstance(layout, Layout) and layout.inputs and layout.outputs and layout.units
    assert Layout.from_dict(layout.as_dict()) == layout  # passes through params unchanged
    fitted = source.fitted_architecture()
    assert list(fitted) == list(ARCHITECTURE_KEYS)
    assert (fitted["n_inputs"], fitted["n_outputs"]) == (len(layout.inputs), len(layout.outputs))
    if source.settings["model"]["n_hidden"] is None:
        assert fitted["n_hidden"] == len(layout.units)


def test_it_says_whether_there_is_a_ground_truth_and_describes_it_only_then(source):
    assert isinstance(source.has_ground_truth, bool)
    truth = [source.true_architecture(), source.design(), source.noise_sd]
    if source.has_ground_truth:
        assert "fly" in source.kinds  # the true network's weights, for every seed
        assert list(source.true_architecture()) == list(ARCHITECTURE_KEYS)
        DataDesign(**source.design())  # what the evaluation builds from it
        assert source.noise_sd == source.design()["noise_sd"]
    else:
        assert "fly" not in source.kinds and truth == [None, None, None]


def test_its_results_folder_is_its_own_under_results(source):
    folder = source.results_folder
    assert folder == "" or (folder.endswith("/") and not folder.startswith("/")), folder
    assert ".." not in Path(folder).parts
    record = source.results_record()
    assert source.results_folder_problem(None) is None  # nothing recorded yet
    assert source.results_folder_problem(record) is None  # its own record
    if record is None:  # a folder no other source lands in
        assert source.results_folder_problem("elsewhere") is None
    else:
        assert "holds the results of another" in source.results_folder_problem("elsewhere")


def test_the_files_it_pins_are_pinned_by_content(source):
    files = source.files(FILE_KINDS, "", SEEDS)
    digests = source.digests(files)
    if source.content_pinned:
        assert digests == {path: file_digest(path) for paths in files.values() for path in paths}
    else:
        assert digests == {}


def test_its_config_rules_pass_its_example_and_it_reads_keys_the_schema_has(source):
    assert source.config_problems() == []
    estimate = source.training_estimate()
    assert estimate is None or estimate > 0
    data_keys = SCHEMA["properties"]["data"]["properties"]
    assert "source" in source.data_keys and set(source.data_keys) <= set(data_keys)
    assert set(source.own_sections) <= set(SCHEMA["properties"])


def test_every_data_key_is_read_by_some_source():
    read = {key for kind in KINDS for key in kind.data_keys}
    assert read == set(SCHEMA["properties"]["data"]["properties"])


def test_a_kind_missing_part_of_the_interface_fails_loudly():
    class Partial(DataSource):
        kinds, has_ground_truth, content_pinned, data_keys = ("behavior",), False, True, ("source",)

        @classmethod
        def accepts(cls, source):
            return False

    with pytest.raises(TypeError, match="abstract"):
        Partial({})


def test_no_rule_or_plumbing_asks_which_kind_of_source_an_experiment_has():
    """Every site asks the experiment's source (SOURCES) what it gives or knows."""
    files = [
        *REPO.glob("workflow/rules/*.smk"),
        REPO / "Snakefile",
        *REPO.glob("workflow/lib/knockout_workflow/*.py"),
    ]
    asking = re.compile(
        r"is_simulated|SIMULATED\b|[\"']simulate[\"']|\[\"source\"\]\s*[!=]=|isinstance\([^)]*Simulated"
    )
    for path in files:
        if path.name == "data_sources.py":
            continue
        assert not asking.search(path.read_text()), (
            f"{path.relative_to(REPO)} asks which kind of source it is"
        )


# ---------------------------------------------------------------------------- the simulated fly


def test_the_fly_s_files_are_generate_fly_data_s_outputs_one_a_seed():
    source = data_source(fly_config(Path()))
    assert isinstance(source, SimulatedFly) and source.results_folder == ""
    assert source.files(FILE_KINDS, "", [3]) == {
        "behavior": ["results/seed3/data/behavior.parquet"],
        "neurons": ["results/seed3/data/neurons.parquet"],
        "fly": ["results/seed3/fly.pt"],
    }
    rules = (REPO / "workflow/rules/simulate.smk").read_text()
    assert "outputs_of(SimulatedFly.FILES" in rules  # the rule writes where the source says


def test_the_fly_s_layout_and_architectures_come_from_its_config():
    config = fly_config(Path())
    config["data"]["n_silenced"] = 2
    config["model"]["n_hidden"] = 6
    source = data_source(config)
    layout = source.layout()
    assert len(layout.inputs) == config["fly"]["n_inputs"] and len(layout.units) == config["fly"]["n_hidden"]
    assert [units for _, units in layout.sets] == [(), (0,), (1,)]  # control, then 2 silenced
    assert source.true_architecture()["n_hidden"] == config["fly"]["n_hidden"]
    assert source.fitted_architecture()["n_hidden"] == 6  # the model's own, the fly's kept apart
    assert source.training_estimate() == training_estimates(config)[1]


def test_the_fly_s_own_rules():
    config = fly_config(Path())
    config["data"]["units"] = ["A"]
    config["data"]["n_silenced"] = config["fly"]["n_hidden"] + 1
    problems = data_source(config).config_problems()
    assert problems[0].startswith("data.units is for a data folder")
    assert problems[1].startswith("data.n_silenced = 5 is larger than fly.n_hidden = 4")
    assert problems == config_problems(config)  # the config's check asks the source


# ------------------------------------------------------------------------------- a data folder


def test_a_folder_is_read_and_checked_once_per_start_for_every_experiment(tmp_path, monkeypatch):
    config = folder_config(tmp_path)
    calls = []
    load = data_sources.data_folder.load
    monkeypatch.setattr(
        data_sources.data_folder, "load", lambda *args, **kwargs: calls.append(args) or load(*args, **kwargs)
    )
    point = copy.deepcopy(config)
    point["train"]["lr"] = 0.5  # a sweep point on the same folder
    layouts = [data_source(settings).layout() for settings in (config, point, config)]
    assert len(calls) == 1 and layouts[0] is layouts[1] is layouts[2]
    assert layouts[0].units == tuple(UNITS) and layouts[0].recorded == ("A", "C")


def test_a_folder_s_architecture_is_its_files_and_it_has_no_truth(tmp_path):
    config = folder_config(tmp_path)
    config["model"] |= {"activation": "relu", "decoder": [8]}
    source = data_source(config)
    assert source.fitted_architecture() | {"encoder": []} == {
        "n_inputs": 3,
        "n_hidden": 3,
        "encoder": [],
        "decoder": [8],
        "n_outputs": 2,
        "binary_outputs": 0,
        "activation": "relu",
    }
    assert source.true_architecture() is None and source.design() is None
    assert source.training_estimate() is None  # its size is checked when its files are read


def test_a_folder_gives_the_files_it_holds_once_for_every_seed(tmp_path):
    source = data_source(folder_config(tmp_path, neurons=False))
    assert source.files(FILE_KINDS, "", SEEDS) == {
        "behavior": [str(tmp_path / "experiment/behavior.parquet")]
    }
    with_neurons = data_source(folder_config(tmp_path, name="other"))
    assert set(with_neurons.files(FILE_KINDS, "", SEEDS)) == {"behavior", "neurons"}


def test_a_folder_s_digests_are_what_was_planned_when_the_workflow_started(tmp_path):
    source = data_source(folder_config(tmp_path))
    files = source.files(["behavior"], "", SEEDS)
    (path,) = files["behavior"]
    planned = source.digests(files)
    assert planned == {path: file_digest(path)}
    Path(path).write_bytes(b"rewritten mid-run")  # the job that reads it stops (test_experiment_folders)
    assert source.digests(files) == planned


def test_a_bad_folder_is_named_when_its_layout_is_asked(tmp_path):
    config = folder_config(tmp_path)
    config["data"]["units"] = ["A", "B"]  # C is silenced in the file
    with pytest.raises(InputFileError, match=r"behavior\.parquet: column silenced"):
        data_source(config).layout()


def test_a_folder_s_results_go_under_its_name_and_another_of_that_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside = data_source(folder_config(tmp_path / "project", name="my data+1"))
    assert inside.results_folder == "data/my_data_1/"
    here = data_source(folder_config(tmp_path, name="experiment"))
    other = data_source(folder_config(tmp_path / "elsewhere", name="experiment"))
    assert here.results_folder == other.results_folder == "data/experiment/"
    assert here.results_record() == "experiment"  # relative: moving the project keeps its results
    assert other.results_record() == "elsewhere/experiment"
    problem = other.results_folder_problem(here.results_record())
    assert problem == (
        "data.source elsewhere/experiment: results/data/experiment/ holds the results of another "
        "folder of the same name, experiment; rename one of the two folders, or delete "
        "results/data/experiment/ to start this one's afresh"
    )
    monkeypatch.chdir(tmp_path / "project")
    assert here.results_record() == str(tmp_path / "experiment")  # outside: absolute


def test_a_folder_needs_its_units(tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    del config["fly"], config["data"]
    config["data"] = {"source": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"data\.units: missing; data\.source .* is a data folder"):
        checked_config(config)
