rule plot:
    input:
        **figure_tables(MAIN),
    output:
        **{
            figure: report(
                f"{FIGURE_FOLDER}{figure}.png",
                caption=report_caption(f"{FIGURE_FOLDER}{figure}.rst"),
                category="Replicates",
                labels={"figure": label},
            )
            for figure, label in FIGURES.items()
        },
        **{
            f"{figure}_{kind}": f"{FIGURE_FOLDER}{figure}.{kind}"
            for figure in FIGURES
            for kind in VECTOR_FORMATS
        },
        **{f"{figure}_caption": f"{FIGURE_FOLDER}{figure}.rst" for figure in FIGURES},
    log:
        f"logs/plot/{MAIN}plot.log",
    benchmark:
        f"benchmarks/plot/{MAIN}plot.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        code=core_code("plot.py"),
        plot=lookup(dpath="plot", within=config),
        seeds=config["seeds"],
        models=MODELS,
        noise_sd=SOURCES[MAIN].noise_sd,
        has_ground_truth=SOURCES[MAIN].has_ground_truth,
        captions={figure: caption_template(figure) for figure in FIGURES},
        made_with=made_with(MAIN),
    script:
        "../scripts/plot.py"
