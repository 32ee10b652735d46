rule train_models:
    input:
        unpack(data_files("behavior", "stimuli")),
    output:
        **outputs_of(TRAINED_FILES, config["seeds"]),
    log:
        f"logs/train_models/{TRAIN_JOB}.log",
    benchmark:
        f"benchmarks/train_models/{TRAIN_JOB}.tsv"
    wildcard_constraints:
        experiment=MAIN_FOLDERS,
    conda:
        TRAINING_ENV
    threads: 1
    resources:
        gpu=1,
        mem_mb=training_memory_mb,
    params:
        code=core_code("train_models.py"),
        data_digests=data_digests("behavior", "stimuli"),
        seeds=job_seeds,
        models=trained_models,
        train=train_settings,
        behavior=behavior_reading,
        architectures=architectures,
    script:
        "../scripts/train_models.py"


if ONE_JOB_PER_EXPERIMENT:

    use rule train_models as train_models_sweep with:
        output:
            **outputs_of(TRAINED_FILES, config["sweep_seeds"]),
        wildcard_constraints:
            experiment=SWEEP_FOLDERS,
