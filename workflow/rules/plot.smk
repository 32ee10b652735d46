rule plot:
    input:
        behavior=expand("results/seed{seed}/eval/behavior.parquet", seed=SEEDS),
        neural=expand("results/seed{seed}/eval/neural.parquet", seed=SEEDS),
        code=core_modules("plot.py"),
    output:
        behavior=report(
            "results/figures/behavior_r2.png",
            caption="../report/behavior_r2.rst",
            category="Figures",
            labels={"figure": "behaviour R²"},
        ),
        neural=report(
            "results/figures/neural_r2.png",
            caption="../report/neural_r2.rst",
            category="Figures",
            labels={"figure": "neural R²"},
        ),
    log:
        "logs/plot/plot.log",
    benchmark:
        "benchmarks/plot/plot.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        plot=lookup(dpath="plot", within=config),
        seeds=SEEDS,
        noise_sd=lookup(dpath="fly/noise_sd", within=config),
    script:
        "../scripts/plot.py"
