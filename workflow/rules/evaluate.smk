rule evaluate_models:
    input:
        unpack(data_files("behavior", "neurons", "fly")),
        models=model_files,
    output:
        **outputs_of(EVALUATION_FILES, config["seeds"]),
    log:
        f"logs/evaluate_models/{REPLICATES_JOB}.log",
    benchmark:
        f"benchmarks/evaluate_models/{REPLICATES_JOB}.tsv"
    wildcard_constraints:
        experiment=MAIN_FOLDERS,
    conda:
        "../../envs/torch.yaml"
    params:
        code=core_code("evaluate_models.py"),
        seeds=job_seeds,
        models=evaluated_models,
        layout=lambda wildcards: data_layout(wildcards.experiment).as_dict(),
        test_fraction=lambda wildcards: behavior_reading(wildcards)["test_fraction"],
        architectures=architectures,
        design=fly_design,
    script:
        "../scripts/evaluate_models.py"


if ONE_JOB_PER_EXPERIMENT:

    use rule evaluate_models as evaluate_models_sweep with:
        output:
            **outputs_of(EVALUATION_FILES, config["sweep_seeds"]),
        wildcard_constraints:
            experiment=SWEEP_FOLDERS,
