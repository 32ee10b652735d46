rule evaluate_behavior:
    input:
        unpack(data_files("behavior", "fly")),
        models=model_files,
    output:
        behavior="results/{experiment}seed{seed}/eval/behavior.parquet",
        silencing="results/{experiment}seed{seed}/eval/silencing.parquet",
    log:
        "logs/evaluate_behavior/{experiment}seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_behavior/{experiment}seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=core_code("evaluate_behavior.py"),
        models=evaluated_models,
        behavior=behavior_reading,
        architectures=architectures,
        silenced_activity=lambda wildcards: (fly_design(wildcards) or {}).get(
            "silenced_activity", 0.0
        ),
    script:
        "../scripts/evaluate_behavior.py"


rule evaluate_neural:
    input:
        unpack(neural_inputs),
        models=model_files,
    output:
        neural="results/{experiment}seed{seed}/eval/neural.parquet",
        responses="results/{experiment}seed{seed}/eval/responses.parquet",
    log:
        "logs/evaluate_neural/{experiment}seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_neural/{experiment}seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=core_code("evaluate_neural.py"),
        models=evaluated_models,
        layout=lambda wildcards: data_layout(wildcards.experiment).as_dict(),
        test_fraction=lambda wildcards: behavior_reading(wildcards)["test_fraction"],
        architectures=architectures,
        design=fly_design,
    script:
        "../scripts/evaluate_neural.py"
