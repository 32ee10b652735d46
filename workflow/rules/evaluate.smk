# The evaluation of one job's trained models. Where the knockout objective has an exact
# optimum (linear simulated networks), the job fits it first, from the training data alone
# (a fraction of a second a seed, where a job of its own would pay seconds of start-up), and
# scores it beside the models: the rule with the optimum's network among its outputs.


rule evaluate_models:
    input:
        unpack(data_files("behavior", "neurons", "stimuli", "fly")),
        models=model_files,
    output:
        **outputs_of(EVALUATION_FILES, config["seeds"]),
    log:
        f"logs/evaluate_models/{REPLICATES_JOB}.log",
    benchmark:
        f"benchmarks/evaluate_models/{REPLICATES_JOB}.tsv"
    wildcard_constraints:
        experiment=evaluated_with_optimum(MAIN_EXPERIMENTS, False),
    conda:
        "../../envs/torch.yaml"
    params:
        code=core_code("evaluate_models.py"),
        data_digests=data_digests("behavior", "neurons", "stimuli"),
        seeds=job_seeds,
        models=MODELS,
        layout=lambda wildcards: data_layout(wildcards.experiment).as_dict(),
        test_fraction=lambda wildcards: behavior_reading(wildcards)["test_fraction"],
        architectures=architectures,
        init=lambda wildcards: experiment_config(wildcards)["train"]["init"],
        silencing=lambda wildcards: experiment_config(wildcards)["evaluate"]["silencing"],
        design=data_design,
    script:
        "../scripts/evaluate_models.py"


use rule evaluate_models as evaluate_models_with_optimum with:
    output:
        **outputs_of(EVALUATION_FILES | OPTIMUM_FILES, config["seeds"]),
    log:
        f"logs/evaluate_models_with_optimum/{REPLICATES_JOB}.log",
    benchmark:
        f"benchmarks/evaluate_models_with_optimum/{REPLICATES_JOB}.tsv"
    wildcard_constraints:
        experiment=evaluated_with_optimum(MAIN_EXPERIMENTS, True),


if ONE_JOB_PER_EXPERIMENT:

    use rule evaluate_models as evaluate_models_sweep with:
        output:
            **outputs_of(EVALUATION_FILES, config["sweep_seeds"]),
        wildcard_constraints:
            experiment=evaluated_with_optimum(SWEEP_EXPERIMENTS, False),

    use rule evaluate_models as evaluate_models_with_optimum_sweep with:
        output:
            **outputs_of(EVALUATION_FILES | OPTIMUM_FILES, config["sweep_seeds"]),
        log:
            f"logs/evaluate_models_with_optimum/{REPLICATES_JOB}.log",
        benchmark:
            f"benchmarks/evaluate_models_with_optimum/{REPLICATES_JOB}.tsv"
        wildcard_constraints:
            experiment=evaluated_with_optimum(SWEEP_EXPERIMENTS, True),
