"""The knockout objective's exact optimum on each replicate's training data (linear
networks only): the best any training of ko can reach, scored beside the trained models."""

import logging

from knockout import weights
from knockout.behavior_data import BehaviorData
from knockout.dataset import Layout, read_rows
from knockout.identifiability import KnockoutStatistics, knockout_optimum
from knockout.jobs import run_job
from knockout.network import Architecture


def main(snakemake) -> None:
    behavior = snakemake.params.behavior
    layout = Layout.from_dict(behavior["layout"])
    architecture = Architecture(**snakemake.params.architectures["model"])
    files = snakemake.input.behavior
    for number, (seed, path) in enumerate(zip(snakemake.params.seeds, snakemake.output.network, strict=True)):
        train_rows, _ = read_rows(
            files[number if len(files) > 1 else 0], layout, behavior["test_fraction"], seed
        )
        data = BehaviorData.from_table(train_rows, layout)
        statistics = KnockoutStatistics.of(
            data.x.numpy(), data.y[:, 0].numpy(), data.silenced_unit(), architecture.n_hidden
        )
        optimum = knockout_optimum(statistics)
        logging.info("seed %d: the optimum's knockout MSE %.8g", seed, optimum.knockout_mse(statistics))
        weights.save_network(optimum.as_network(), path)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
