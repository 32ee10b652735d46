rule evaluate_behavior:
    input:
        fly=rules.generate_fly_data.output.fly,
        test=rules.generate_fly_data.output.test,
        models=model_files,
        code=core_modules("evaluate_behavior.py"),
    output:
        "results/{experiment}seed{seed}/eval/behavior.parquet",
    log:
        "logs/evaluate_behavior/{experiment}seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_behavior/{experiment}seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        models=evaluated_models,
        data_shape=data_shape,
        architectures=architectures,
        silenced_activity=lambda wildcards: experiment_config(wildcards)["fly"]["silenced_activity"],
    script:
        "../scripts/evaluate_behavior.py"


rule evaluate_neural:
    input:
        fly=rules.generate_fly_data.output.fly,
        probe=rules.generate_fly_data.output.probe,
        models=model_files,
        code=core_modules("evaluate_neural.py"),
    output:
        "results/{experiment}seed{seed}/eval/neural.parquet",
    log:
        "logs/evaluate_neural/{experiment}seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_neural/{experiment}seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        models=evaluated_models,
        data_shape=data_shape,
        architectures=architectures,
        design=lambda wildcards: {
            "noise_sd": experiment_config(wildcards)["fly"]["noise_sd"],
            "n_train": experiment_config(wildcards)["data"]["n_train"],
            "silenced_activity": experiment_config(wildcards)["fly"]["silenced_activity"],
        },
    script:
        "../scripts/evaluate_neural.py"
