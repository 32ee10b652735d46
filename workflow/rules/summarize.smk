rule summarize:
    input:
        unpack(experiment_tables),
    output:
        **{table: f"results/{{experiment}}summary/{table}.parquet" for table in SUMMARY_TABLES},
    log:
        "logs/summarize/{experiment}replicates.log",
    benchmark:
        "benchmarks/summarize/{experiment}replicates.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        code=core_code("summarize.py"),
        seeds=lambda wildcards: experiment_seeds(wildcards.experiment),
        models=MODELS,
        convergence=convergence_tolerances,
    script:
        "../scripts/summarize.py"
