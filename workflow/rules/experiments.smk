# The config, checked as a whole (knockout_workflow.config_checks), and the experiments it
# declares: the main run and every sweep point, each by its folder under results/ and
# with its data source.
import json
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from knockout_workflow import config_checks
from knockout_workflow.config_checks import sweep_points
from knockout_workflow.data_sources import data_source

SCHEMA = "../schemas/config.schema.yaml"


def checked_config(settings, where="config"):
    """knockout_workflow.config_checks.checked_config, its refusal as Snakemake's error."""
    try:
        return config_checks.checked_config(settings, where)
    except config_checks.ConfigError as error:
        raise WorkflowError(str(error)) from None


validate(config, SCHEMA)  # Snakemake's own check first: its messages name the config file
checked_config(config)

MODELS = config["models"]
SCRIPTS = WORKFLOW_ROOT / "workflow" / "scripts"


MAIN = data_source(config).results_folder
"""The main experiment's folder under results/ ("" for the simulated fly, data/<name>/ for a
data folder: knockout_workflow.data_sources), each with its own sweeps/ inside."""
DATA_SOURCE_RECORD = f"results/{MAIN}data_source.txt"
"""A data folder's results folder names the folder it holds the results of (written when a
run starts), so that another folder of the same name is refused instead of overwriting them."""


# Every experiment by its folder under results/: MAIN is config/config.yaml itself; a sweep
# point "<MAIN>sweeps/<sweep>/<value>/" is the same config with one key set to the value. A
# point's problems stop only the sweeps target (sweep_tables), not the main run.
# A point whose whole config equals an earlier point's (the default value of several
# sweeps, or two sweeps that reach one config) is run once, in the earlier point's folder.
EXPERIMENTS = {MAIN: config}
SWEEP_VALUES = {}
SWEEP_PROBLEMS = {}
SWEEP_POINT_FOLDERS = {}
"""(sweep, value) -> the folder under results/ that holds that point's results."""
_FOLDER_OF_CONFIG = {}
for sweep, value, where, point in sweep_points(config):
    SWEEP_VALUES.setdefault(sweep, []).append(value)
    try:
        checked = checked_config(point, f"config for {where}")
    except WorkflowError as error:
        SWEEP_PROBLEMS.setdefault(sweep, str(error))
        continue
    folder = _FOLDER_OF_CONFIG.setdefault(
        json.dumps(checked, sort_keys=True), f"{MAIN}sweeps/{sweep}/{value}/"
    )
    SWEEP_POINT_FOLDERS[sweep, value] = folder
    EXPERIMENTS.setdefault(folder, checked)

SOURCES = {folder: data_source(settings) for folder, settings in EXPERIMENTS.items()}
"""Each experiment's data source (knockout_workflow.data_sources), looked up once: every
rule asks it what the data are and what they know, never which kind it is."""


def data_source_problem():
    """One line if the main experiment's results folder holds another data folder's results."""
    record = Path(DATA_SOURCE_RECORD)
    recorded = record.read_text(encoding="utf-8").strip() if record.is_file() else None
    return SOURCES[MAIN].results_folder_problem(recorded)


def record_data_source():
    """At the start of a run (not a dry run): name the data source in its results folder,
    where another source could land in the same folder."""
    if (record := SOURCES[MAIN].results_record()) is not None:
        Path(DATA_SOURCE_RECORD).parent.mkdir(parents=True, exist_ok=True)
        Path(DATA_SOURCE_RECORD).write_text(record + "\n", encoding="utf-8")


if problem := data_source_problem():
    raise WorkflowError(problem)


wildcard_constraints:
    experiment="(?:{})".format("|".join(re.escape(folder) for folder in EXPERIMENTS)),
    sweep="|".join(re.escape(sweep) for sweep in SWEEP_VALUES) or "(?!)",
    seed=r"\d+",
    model="|".join(MODELS),


def experiment_config(wildcards):
    return EXPERIMENTS[wildcards.experiment]


def experiment_seeds(experiment):
    """Replicates of an experiment: ``seeds``, or ``sweep_seeds`` for a sweep point."""
    return config["seeds"] if experiment == MAIN else config["sweep_seeds"]


def config_slice(section):
    """A rule's ``params`` function: one section of its experiment's config."""
    return lambda wildcards: experiment_config(wildcards)[section]
