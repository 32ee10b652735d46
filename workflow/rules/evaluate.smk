rule evaluate_behavior:
    input:
        fly=rules.generate_fly_data.output.fly,
        test=rules.generate_fly_data.output.test,
        models=model_files,
        code=core_modules("evaluate_behavior.py"),
    output:
        "results/seed{seed}/eval/behavior.parquet",
    log:
        "logs/evaluate_behavior/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_behavior/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        models=MODELS,
    script:
        "../scripts/evaluate_behavior.py"


rule evaluate_neural:
    input:
        fly=rules.generate_fly_data.output.fly,
        probe=rules.generate_fly_data.output.probe,
        models=model_files,
        code=core_modules("evaluate_neural.py"),
    output:
        "results/seed{seed}/eval/neural.parquet",
    log:
        "logs/evaluate_neural/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_neural/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        models=MODELS,
    script:
        "../scripts/evaluate_neural.py"
