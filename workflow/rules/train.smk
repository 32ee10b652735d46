rule train_model:
    input:
        unpack(data_files("behavior")),
    output:
        models=train_job_files("results/{experiment}seed{seed}/models/{model}.pt"),
        losses=train_job_files("results/{experiment}seed{seed}/models/{model}_loss.parquet"),
    log:
        f"logs/train_model/{TRAIN_JOB}.log",
    benchmark:
        f"benchmarks/train_model/{TRAIN_JOB}.tsv"
    conda:
        TRAINING_ENV
    threads: 1
    resources:
        gpu=1,
    params:
        code=core_code("train_model.py"),
        models=trained_models,
        train=train_settings,
        behavior=behavior_reading,
        architectures=architectures,
        convergence=convergence_tolerances,
    script:
        "../scripts/train_model.py"


rule fit_knockout_optimum:
    input:
        unpack(data_files("behavior")),
        ko="results/{experiment}seed{seed}/models/ko.pt",
    output:
        network="results/{experiment}seed{seed}/models/optimum.pt",
        gap="results/{experiment}seed{seed}/eval/optimum.parquet",
    log:
        "logs/fit_knockout_optimum/{experiment}seed{seed}.log",
    benchmark:
        "benchmarks/fit_knockout_optimum/{experiment}seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=core_code("fit_knockout_optimum.py"),
        behavior=behavior_reading,
        architectures=architectures,
        convergence=convergence_tolerances,
    script:
        "../scripts/fit_knockout_optimum.py"
