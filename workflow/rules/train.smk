rule train_model:
    input:
        train=rules.generate_fly_data.output.train,
        code=core_modules("train_model.py"),
    output:
        model="results/seed{seed}/models/{model}.pt",
        losses="results/seed{seed}/models/{model}_loss.parquet",
    log:
        "logs/train_model/seed{seed}_{model}.log",
    benchmark:
        "benchmarks/train_model/seed{seed}_{model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        train=train_settings,
        network=fly_shape(),
    script:
        "../scripts/train_model.py"
