rule train_model:
    input:
        train=rules.generate_fly_data.output.train,
        code=core_modules("train_model.py"),
    output:
        models=train_job_files("results/seed{seed}/models/{model}.pt"),
        losses=train_job_files("results/seed{seed}/models/{model}_loss.parquet"),
    log:
        f"logs/train_model/{TRAIN_JOB}.log",
    benchmark:
        f"benchmarks/train_model/{TRAIN_JOB}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        models=trained_models,
        train=train_settings,
        network=fly_shape(),
    script:
        "../scripts/train_model.py"
