# The experiment planner (`snakemake plan`; knockout.planning, the config's plan section):
# from a pilot, per unit and design the neural R² knockout training can reach, with its
# interval and the probability of reaching plan.target_r2, the smallest design per unit,
# a figure and its caption, in results/<MAIN>plan/.
import dataclasses
import functools

from knockout.network import Architecture
from knockout_workflow import plan_settings

PLAN_FOLDER = f"results/{MAIN}plan/"
PLAN_FIGURE = f"{PLAN_FOLDER}plan"
PILOT = plan_settings.pilot_source(config)
"""The pilot as a data source: the fly (plan.pilot: simulate) or a folder."""
PILOT_SIMULATED = plan_settings.simulated_pilot(config)


@functools.cache
def plan_setup():
    """(the pilot's layout, the model's architecture, the method), checked: a plan that
    cannot be made stops with its problems. Asked only by the plan's jobs (their input
    function), so a plan section that does not fit stops `snakemake plan` before any job,
    and never the main run."""
    try:
        layout = PILOT.layout()
    except InputFileError as error:
        raise WorkflowError(f"plan.pilot: {error}") from None
    pilot = checked_config(plan_settings.pilot_config(config), "config for plan.pilot")
    architecture = Architecture(**data_source(pilot).fitted_architecture())
    if problems := plan_settings.plan_problems(config, layout, architecture):
        raise WorkflowError("invalid plan:\n" + "\n".join(f"  {problem}" for problem in problems))
    return layout, architecture, plan_settings.plan_method(config, architecture)


def pilot_files(wildcards):
    """The pilot folder's behaviour file (a simulated pilot is drawn in the job)."""
    plan_setup()
    return {} if PILOT_SIMULATED else PILOT.files(["behavior"], MAIN, [])


def plan_training(wildcards):
    """The simulation's training settings (None for the formula, which trains nothing, so
    that editing train reruns no formula plan)."""
    method = plan_setup()[2]
    return plan_settings.simulation_settings(config) if method == "simulation" else None


rule make_plan:
    input:
        unpack(pilot_files),
    output:
        plan=f"{PLAN_FOLDER}plan.parquet",
        min_n=f"{PLAN_FOLDER}min_n.parquet",
    log:
        f"logs/plan/{MAIN}make_plan.log",
    benchmark:
        f"benchmarks/plan/{MAIN}make_plan.tsv"
    conda:
        TRAINING_ENV
    threads: 1
    resources:
        gpu=1,
        mem_mb=lambda wildcards: config["limits"]["memory_gb"] * 1024,
    params:
        code=core_code("make_plan.py"),
        plan={key: value for key, value in config["plan"].items() if key != "units"},
        pilot=lambda wildcards: {
            "seeds": config["seeds"] if PILOT_SIMULATED else None,
            "fly": config["fly"] if PILOT_SIMULATED else None,
            "n_silenced": config["data"]["n_silenced"] if PILOT_SIMULATED else None,
            "layout": plan_setup()[0].as_dict(behavior_only=True),
        },
        architecture=lambda wildcards: dataclasses.asdict(plan_setup()[1]),
        method=lambda wildcards: plan_setup()[2],
        train=plan_training,
        data_digests=lambda wildcards: PILOT.digests(pilot_files(wildcards)),
    script:
        "../scripts/make_plan.py"


rule plot_plan:
    input:
        plan=rules.make_plan.output.plan,
        min_n=rules.make_plan.output.min_n,
    output:
        figure=report(
            f"{PLAN_FIGURE}.png",
            caption=report_caption(f"{PLAN_FIGURE}.rst"),
            category="Plan",
            labels={"figure": "plan"},
        ),
        **{kind: f"{PLAN_FIGURE}.{kind}" for kind in VECTOR_FORMATS},
        caption=f"{PLAN_FIGURE}.rst",
    log:
        f"logs/plan/{MAIN}plot_plan.log",
    benchmark:
        f"benchmarks/plan/{MAIN}plot_plan.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        code=core_code("plot_plan.py"),
        plot=lookup(dpath="plot", within=config),
        target_r2=config["plan"]["target_r2"],
        probability=config["plan"]["probability"],
        caption=lambda wildcards: caption_template("plan"),  # its braces are not wildcards
        made_with={"plan": config["plan"]}
        | ({"seeds": config["seeds"], "fly": config["fly"]} if PILOT_SIMULATED else {}),
    script:
        "../scripts/plot_plan.py"
