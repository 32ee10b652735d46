rule summarize_sweep:
    input:
        unpack(sweep_tables),
        code=core_modules("summarize_sweep.py"),
    output:
        "results/sweeps/{sweep}/summary.parquet",
    log:
        "logs/summarize_sweep/{sweep}.log",
    benchmark:
        "benchmarks/summarize_sweep/{sweep}.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        key=lambda wildcards: config["sweeps"][wildcards.sweep]["key"],
        values=lambda wildcards: SWEEP_VALUES[wildcards.sweep],
        seeds=config["sweep_seeds"],
    script:
        "../scripts/summarize_sweep.py"


rule plot_sweep:
    input:
        summary=rules.summarize_sweep.output[0],
        code=core_modules("plot_sweep.py"),
    output:
        report(
            "results/sweeps/{sweep}/ko_minus_do.png",
            caption="../report/sweep.rst",
            category="Sweeps",
            labels={"sweep": "{sweep}"},
        ),
    log:
        "logs/plot_sweep/{sweep}.log",
    benchmark:
        "benchmarks/plot_sweep/{sweep}.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        plot=lookup(dpath="plot", within=config),
        key=lambda wildcards: config["sweeps"][wildcards.sweep]["key"],
        values=lambda wildcards: config["sweeps"][wildcards.sweep]["values"],
        names=lambda wildcards: SWEEP_VALUES[wildcards.sweep],
        seeds=config["sweep_seeds"],
    script:
        "../scripts/plot_sweep.py"
