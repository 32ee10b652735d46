"""Draw one replicate's fly and its training, test and probe data."""

import logging

from knockout import tables, weights
from knockout.jobs import run_job
from knockout.simulation import DataSettings, FlySettings, simulate


def main(snakemake) -> None:
    seed = int(snakemake.wildcards.seed)
    fly, train, test, probe = simulate(
        FlySettings(**snakemake.params.fly), DataSettings(**snakemake.params.data), seed
    )
    logging.info("seed %d: %d training, %d test, %d probe rows", seed, len(train), len(test), len(probe))
    weights.save_network(fly, snakemake.output.fly)
    tables.write_table(train, snakemake.output.train)
    tables.write_table(test, snakemake.output.test)
    tables.write_table(probe, snakemake.output.probe)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
