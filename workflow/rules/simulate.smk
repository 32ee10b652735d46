rule generate_fly_data:
    input:
        code=core_modules("generate_fly_data.py"),
    output:
        fly="results/seed{seed}/fly.pt",
        train="results/seed{seed}/data/train.parquet",
        test="results/seed{seed}/data/test.parquet",
        probe="results/seed{seed}/data/probe.parquet",
    log:
        "logs/generate_fly_data/seed{seed}.log",
    benchmark:
        "benchmarks/generate_fly_data/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        fly=lookup(dpath="fly", within=config),
        data=lookup(dpath="data", within=config),
    script:
        "../scripts/generate_fly_data.py"
