rule generate_fly_data:
    output:
        **SIMULATED_FILES,
    log:
        "logs/generate_fly_data/{experiment}seed{seed}.log",
    benchmark:
        "benchmarks/generate_fly_data/{experiment}seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=core_code("generate_fly_data.py"),
        fly=config_slice("fly"),
        data=lambda wildcards: {
            key: experiment_config(wildcards)["data"][key]
            for key in ("n_train", "n_test", "n_probe", "n_silenced")
        },
    script:
        "../scripts/generate_fly_data.py"
