"""Draw one replicate's fly and write its data as the import contract's files."""

import logging

from knockout import tables, weights
from knockout.jobs import run_job
from knockout.simulation import DataSettings, FlySettings, behavior_file, simulate


def main(snakemake) -> None:
    seed = int(snakemake.wildcards.seed)
    fly, train, test, neurons = simulate(
        FlySettings(**snakemake.params.fly), DataSettings(**snakemake.params.data), seed
    )
    logging.info(
        "seed %d: %d training, %d test, %d neuron stimuli", seed, len(train), len(test), len(neurons)
    )
    weights.save_network(fly, snakemake.output.fly)
    tables.write_table(behavior_file(train, test), snakemake.output.behavior)
    tables.write_table(neurons, snakemake.output.neurons)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
