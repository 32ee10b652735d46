"""Draw each replicate's fly of one job (every seed of an experiment, or one seed) and write
its data as the import contract's files."""

import logging

from knockout import tables, weights
from knockout.simulation import DataSettings, FlySettings, behavior_file, simulate
from knockout_workflow.jobs import run_job


def main(snakemake) -> None:
    fly_settings, data_settings = FlySettings(**snakemake.params.fly), DataSettings(**snakemake.params.data)
    outputs = zip(
        snakemake.params.seeds,
        snakemake.output.fly,
        snakemake.output.behavior,
        snakemake.output.neurons,
        strict=True,
    )
    for seed, fly_path, behavior_path, neurons_path in outputs:
        fly, train, test, neurons = simulate(fly_settings, data_settings, seed)
        logging.info(
            "seed %d: %d training, %d test, %d neuron stimuli", seed, len(train), len(test), len(neurons)
        )
        weights.save_network(fly, fly_path)
        tables.write_table(behavior_file(train, test), behavior_path)
        tables.write_table(neurons, neurons_path)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
