rule plot:
    input:
        behavior=seed_tables("behavior", ""),
        neural=seed_tables("neural", ""),
        losses=loss_tables(""),
        code=core_modules("plot.py"),
    output:
        **{
            figure: report(
                f"results/figures/{figure}.png",
                caption=f"../report/{figure}.rst",
                category="Replicates",
                labels={"figure": label},
            )
            for figure, label in FIGURES.items()
        },
        **{
            f"{figure}_{kind}": f"results/figures/{figure}.{kind}"
            for figure in FIGURES
            for kind in VECTOR_FORMATS
        },
    log:
        "logs/plot/plot.log",
    benchmark:
        "benchmarks/plot/plot.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        plot=lookup(dpath="plot", within=config),
        seeds=config["seeds"],
        models=MODELS,
        noise_sd=config["fly"]["noise_sd"] if is_simulated("") else None,
    script:
        "../scripts/plot.py"
