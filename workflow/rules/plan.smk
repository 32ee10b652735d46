# The experiment planner (`snakemake plan`; knockout.planning, the config's plan section):
# from a pilot, per unit and design the neural R² knockout training can reach, with its
# interval and the probability of reaching plan.target_r2, the smallest design per unit,
# a figure and its caption, in results/<MAIN>plan/. The pilot and the checks that stop a
# plan before any job are in data.smk.
PLAN_FOLDER = f"results/{MAIN}plan/"
PLAN_FIGURE = f"{PLAN_FOLDER}plan"


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
        mem_mb=lambda wildcards: int(config["limits"]["memory_gb"] * 1024),
    params:
        code=core_code("make_plan.py"),
        plan={key: value for key, value in config["plan"].items() if key != "units"},
        pilot=pilot_reading,
        architecture=lambda wildcards: plan_setup()[1],
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
        **{kind: f"{PLAN_FIGURE}.{kind}" for kind in VECTOR_FORMATS},
        figure=report(
            f"{PLAN_FIGURE}.png",
            caption=report_caption(f"{PLAN_FIGURE}.rst"),
            category="Plan",
            labels={"figure": "plan"},
        ),
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
        made_with={"plan": config["plan"]} | pilot_drawn_from(),
    script:
        "../scripts/plot_plan.py"
