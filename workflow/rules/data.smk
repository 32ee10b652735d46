# The data seam: which files an experiment's steps read, and what they hold, as its data
# source (SOURCES, knockout_workflow.data_sources) gives them.
from knockout.errors import InputFileError
import functools

from knockout.models import KNOCKOUT
from knockout.optimum_conditions import optimum_problem
from knockout_workflow import plan_settings, step_settings

# An experiment's data are the import contract's files (knockout.data_folder): a user's folder
# (data.source), or the simulated fly's, which generate_fly_data writes per seed. Every
# rule that reads data gets its files from data_files and its layout from data_layout,
# which ask the experiment's source; adding a source is a class in
# knockout_workflow.data_sources (its docstring lists the steps), not a branch here.


def data_layout(experiment):
    """What the experiment's files hold (knockout.data_folder.Layout), before any job runs:
    from the config for the simulated fly, from the checked files for a folder (read
    once per workflow start)."""
    try:
        return SOURCES[experiment].layout()
    except InputFileError as error:
        raise WorkflowError(f"data.source: {error}") from None


for _experiment in EXPERIMENTS:  # bad files stop the run here, before any job
    data_layout(_experiment)


def data_files(*kinds):
    """An input function: per kind (behavior, neurons, stimuli, fly) that the experiment's source
    gives, its files for the job's seeds (for ``unpack``): one per seed of the simulated
    fly, or the data folder's one file, which every seed splits anew."""

    def files(wildcards):
        source = SOURCES[wildcards.experiment]
        return source.files(kinds, wildcards.experiment, job_seeds(wildcards))

    return files


def data_digests(*kinds):
    """A ``params`` function: the content digests of the files of ``kinds`` that a job
    reads, where its source pins them (a data folder's; {} for the simulated fly, whose
    files the workflow writes). A file rewritten after planning then reruns exactly the
    jobs that read it, on the next run (their parameters changed), and a job that reads it
    mid-run stops (knockout_workflow.jobs.expect_planned_content) instead of mixing two
    versions of the data."""

    def digests(wildcards):
        return SOURCES[wildcards.experiment].digests(data_files(*kinds)(wildcards))

    return digests


def behavior_reading(wildcards):
    """What a step reading the behaviour file needs: its layout (without the neurons
    file's part, so that editing that file does not rerun training) and, for data without
    a split column, the test fraction the seeded split uses."""
    layout = data_layout(wildcards.experiment)
    test_fraction = experiment_config(wildcards)["data"]["test_fraction"]
    return {
        "layout": layout.as_dict(behavior_only=True),
        "test_fraction": None if layout.has_split else test_fraction,
    }


def data_design(wildcards):
    """How the experiment's data were drawn from its true network (metrics.DataDesign
    fields); None without a ground truth, so that the fly's keys do not touch its steps."""
    return SOURCES[wildcards.experiment].design()


def architectures_of(experiment):
    """The true network's (None without a ground truth) and the fitted models'
    architectures (knockout.network.Architecture fields). A model key left null takes the
    fly's value; the inputs, outputs and units are the data's."""
    source = SOURCES[experiment]
    return {"fly": source.true_architecture(), "model": source.fitted_architecture()}


def architectures(wildcards):
    return architectures_of(wildcards.experiment)


def has_knockout_optimum(experiment):
    """The knockout objective's exact optimum is compared with trained ko, so it is computed
    where ko is trained as the optimum's conditions ask (knockout.optimum_conditions), on
    data with a ground truth (where the optimum's units can be scored against the true
    network's)."""
    settings = EXPERIMENTS[experiment]
    silencing = step_settings.model_train_settings(settings["train"], KNOCKOUT)["silencing"]
    networks = [network for network in architectures_of(experiment).values() if network]
    return (
        settings["optimum"]
        and KNOCKOUT in MODELS
        and all(optimum_problem(network, silencing=silencing) is None for network in networks)
        and SOURCES[experiment].has_ground_truth
    )


# ------------------------------------------------ the experiment planner's pilot (plan.smk)
PILOT = plan_settings.pilot_source(config)
"""The pilot as a data source (plan.pilot as data.source): one with a true network draws a
pilot from each seed's network in the plan's job, a folder is read."""


@functools.cache
def plan_setup():
    """(the pilot's layout, the model's architecture as the data sources give it, the
    method), checked: a plan that cannot be made stops with its problems. Asked only by the
    plan's jobs (their input function), so a plan section that does not fit stops
    `snakemake plan` before any job, and never the main run."""

    def stop(problems):
        raise WorkflowError("invalid plan:\n" + "\n".join(f"  {problem}" for problem in problems))

    if problems := plan_settings.pilot_problems(config):
        stop(problems)
    try:
        layout, set_rows = PILOT.layout(), PILOT.set_rows()
    except InputFileError as error:
        raise WorkflowError(f"plan.pilot: {error}") from None
    architecture = PILOT.fitted_architecture()
    if problems := plan_settings.plan_problems(config, layout, architecture, set_rows):
        stop(problems)
    return layout, architecture, plan_settings.plan_method(config, architecture)


def pilot_files(wildcards):
    """The pilot folder's behaviour file (a pilot from a true network is drawn in the job)."""
    plan_setup()
    return {} if PILOT.has_ground_truth else PILOT.files(["behavior"], MAIN, [])


def pilot_drawn_from():
    """What a pilot drawn from a true network is drawn from (the seeds, each a fly, and the
    fly section); {} for a pilot folder."""
    if not PILOT.has_ground_truth:
        return {}
    return {"seeds": config["seeds"], "fly": config["fly"]}


def pilot_reading(wildcards):
    """What make_plan needs to have its pilots: their layout, and for pilots drawn from a
    true network the seeds, the fly and its silenced units (None each for a folder)."""
    drawn = pilot_drawn_from()
    return {
        "seeds": drawn.get("seeds"),
        "fly": drawn.get("fly"),
        "n_silenced": config["data"]["n_silenced"] if drawn else None,
        "layout": plan_setup()[0].as_dict(behavior_only=True),
    }


def plan_training(wildcards):
    """The training settings of what the plan trains (None where it trains nothing: the
    formula without its training check, so that editing train reruns no such plan)."""
    trains = plan_settings.plan_trains(config, plan_setup()[2])
    return plan_settings.plan_training_settings(config) if trains else None
