"""The knockout objective's exact optimum on one replicate's training data, and trained
ko's optimisation gap (linear networks only)."""

import logging

import pandas as pd

from knockout import tables, weights
from knockout.behavior_data import BehaviorData
from knockout.convergence import Tolerances, gap_warning
from knockout.dataset import Layout, read_rows
from knockout.identifiability import KnockoutStatistics, UnitProducts, knockout_optimum
from knockout.jobs import run_job, warn
from knockout.network import Architecture


def main(snakemake) -> None:
    behavior = snakemake.params.behavior
    layout = Layout.from_dict(behavior["layout"])
    architecture = Architecture(**snakemake.params.architectures["model"])
    seed = int(snakemake.wildcards.seed)
    train_rows, _ = read_rows(snakemake.input.behavior, layout, behavior["test_fraction"], seed)
    data = BehaviorData.from_table(train_rows, layout)
    statistics = KnockoutStatistics.of(
        data.x.numpy(), data.y[:, 0].numpy(), data.silenced_unit(), architecture.n_hidden
    )
    optimum = knockout_optimum(statistics)
    ko = weights.load_network(snakemake.input.ko, architecture)
    optimum_mse = optimum.knockout_mse(statistics)
    ko_mse = UnitProducts.of_net(ko).knockout_mse(statistics)
    logging.info(
        "knockout MSE: optimum %.8g, trained ko %.8g, gap %.3g", optimum_mse, ko_mse, ko_mse - optimum_mse
    )
    tolerances = Tolerances(**snakemake.params.convergence)
    if warning := gap_warning(seed, ko_mse - optimum_mse, optimum_mse, tolerances):
        warn(warning)
    gap = pd.DataFrame(
        {"knockout_mse_ko": [ko_mse], "knockout_mse_optimum": [optimum_mse], "gap": [ko_mse - optimum_mse]}
    )
    weights.save_network(optimum.as_network(), snakemake.output.network)
    tables.write_table(gap, snakemake.output.gap)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
