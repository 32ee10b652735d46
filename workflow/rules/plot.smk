rule plot:
    input:
        behavior=seed_tables("behavior", ""),
        neural=seed_tables("neural", ""),
        chance=seed_tables("chance", ""),
        losses=loss_tables(""),
    output:
        **{
            figure: report(
                f"results/figures/{figure}.png",
                caption=report_caption(f"results/figures/{figure}.rst"),
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
        **{f"{figure}_caption": f"results/figures/{figure}.rst" for figure in FIGURES},
    log:
        "logs/plot/plot.log",
    benchmark:
        "benchmarks/plot/plot.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        code=core_code("plot.py"),
        plot=lookup(dpath="plot", within=config),
        seeds=config["seeds"],
        models=MODELS,
        noise_sd=config["fly"]["noise_sd"] if is_simulated("") else None,
        captions={figure: caption_template(figure) for figure in FIGURES},
        made_with=made_with(""),
    script:
        "../scripts/plot.py"
