# Knockout training (Cowley et al., Nature 2024) on a simulated fly or on recorded data
# (data.source): [simulate] -> train the models (control/noko/ko/do) -> evaluate behaviour
# and neurons (+ the knockout optimum where there is one) -> summarise the replicates ->
# plot. `snakemake sweeps` runs the sweeps, `snakemake plan` plans an experiment from a
# pilot. The rules read the experiments, the data seam,
# the job layout and the targets from workflow/rules/{experiments,data,jobs,targets}.smk.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/preflight.smk"


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/experiments.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/jobs.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/summarize.smk"
include: "workflow/rules/plot.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/plan.smk"


onstart:
    record_data_source()


# On a cluster, the cheap steps that read every seed's tables run where snakemake runs.
localrules:
    all,
    sweeps,
    summarize,
    plot,
    summarize_sweep,
    plot_sweep,
    plot_plan,


rule all:
    default_target: True
    input:
        final_outputs(),


rule sweeps:
    input:
        sweep_outputs(),


rule plan:
    input:
        rules.make_plan.output,
        rules.plot_plan.output,


onsuccess:
    from knockout_workflow.run_summary import run_summary

    for line in run_summary(
        convergence={"main run": rules.summarize.output.convergence.format(experiment=MAIN)}
        | {
            f"sweep {sweep}": rules.summarize_sweep.output.convergence.format(sweep=sweep)
            for sweep in SWEEP_VALUES
        },
        figures={
            "all": list(rules.plot.output),
            "sweeps": [rules.plot_sweep.output.figure.format(sweep=s) for s in SWEEP_VALUES],
            "plan": [rules.plot_plan.output.figure],
        },
        report=f"results/{MAIN}report.html",
        configfiles=workflow.overwrite_configfiles,
        launch_dir=os.environ.get("PWD"),
    ):
        print(line)


onerror:
    from knockout_workflow.run_summary import error_line

    print(error_line(log))
