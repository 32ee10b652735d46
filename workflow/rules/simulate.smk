# The simulated fly's data: the import contract's files per seed, where its data source
# (knockout_workflow.data_sources.SimulatedFly) says they are.
from knockout_workflow.data_sources import SimulatedFly


rule generate_fly_data:
    output:
        **outputs_of(SimulatedFly.FILES, config["seeds"]),
    log:
        f"logs/generate_fly_data/{REPLICATES_JOB}.log",
    benchmark:
        f"benchmarks/generate_fly_data/{REPLICATES_JOB}.tsv"
    wildcard_constraints:
        experiment=MAIN_FOLDERS,
    conda:
        "../../envs/torch.yaml"
    params:
        code=core_code("generate_fly_data.py"),
        seeds=job_seeds,
        fly=config_slice("fly"),
        data=lambda wildcards: {
            key: experiment_config(wildcards)["data"][key]
            for key in ("n_train", "n_test", "n_probe", "n_silenced")
        },
    script:
        "../scripts/generate_fly_data.py"


if ONE_JOB_PER_EXPERIMENT:

    use rule generate_fly_data as generate_fly_data_sweep with:
        output:
            **outputs_of(SimulatedFly.FILES, config["sweep_seeds"]),
        wildcard_constraints:
            experiment=SWEEP_FOLDERS,
