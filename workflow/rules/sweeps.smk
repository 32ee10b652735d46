rule summarize_sweep:
    input:
        unpack(sweep_tables),
    output:
        summary=f"results/{MAIN}sweeps/{{sweep}}/summary.parquet",
        convergence=f"results/{MAIN}sweeps/{{sweep}}/convergence.parquet",
    log:
        f"logs/summarize_sweep/{MAIN}{{sweep}}.log",
    benchmark:
        f"benchmarks/summarize_sweep/{MAIN}{{sweep}}.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        code=core_code("summarize_sweep.py"),
        key=lambda wildcards: config["sweeps"][wildcards.sweep]["key"],
        values=lambda wildcards: SWEEP_VALUES[wildcards.sweep],
        seeds=config["sweep_seeds"],
        models=MODELS,
        convergence=lambda wildcards: [
            EXPERIMENTS[point]["train"]["convergence"] for point in sweep_folders(wildcards.sweep)
        ],
    script:
        "../scripts/summarize_sweep.py"


rule plot_sweep:
    input:
        summary=rules.summarize_sweep.output.summary,
    output:
        **{kind: f"{SWEEP_FIGURE}.{kind}" for kind in VECTOR_FORMATS},
        figure=f"{SWEEP_FIGURE}.png",
        caption=f"{SWEEP_FIGURE}.rst",
    log:
        f"logs/plot_sweep/{MAIN}{{sweep}}.log",
    benchmark:
        f"benchmarks/plot_sweep/{MAIN}{{sweep}}.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        code=core_code("plot_sweep.py"),
        plot=lookup(dpath="plot", within=config),
        key=lambda wildcards: config["sweeps"][wildcards.sweep]["key"],
        values=lambda wildcards: config["sweeps"][wildcards.sweep]["values"],
        names=lambda wildcards: SWEEP_VALUES[wildcards.sweep],
        seeds=config["sweep_seeds"],
        recorded=not SOURCES[MAIN].has_ground_truth,
        caption=lambda wildcards: caption_template("sweep"),  # its braces are not wildcards
        made_with=made_with(MAIN) | {"seeds": config["sweep_seeds"]},
    script:
        "../scripts/plot_sweep.py"
