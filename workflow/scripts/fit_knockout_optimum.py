"""The knockout objective's exact optimum on one replicate's training data, and trained
ko's optimisation gap (linear networks only)."""

import logging

import pandas as pd

from knockout import tables, weights
from knockout.behavior_data import BehaviorData
from knockout.identifiability import UnitProducts, knockout_optimum
from knockout.jobs import run_job


def main(snakemake) -> None:
    shape, networks = snakemake.params.data_shape, snakemake.params.networks
    table = tables.read_behavior_table(snakemake.input.train, **shape)
    data = BehaviorData.from_table(table, shape["n_inputs"])
    x, y = data.x.double().numpy(), data.y.double().numpy()
    silenced = data.silenced_unit.numpy()
    optimum = knockout_optimum(x, y, silenced, networks["model_hidden"])
    ko = weights.load_network(snakemake.input.ko, shape["n_inputs"], networks["model_hidden"])
    optimum_mse = optimum.knockout_mse(x, y, silenced)
    ko_mse = UnitProducts.of_net(ko).knockout_mse(x, y, silenced)
    logging.info(
        "knockout MSE: optimum %.8g, trained ko %.8g, gap %.3g", optimum_mse, ko_mse, ko_mse - optimum_mse
    )
    gap = pd.DataFrame(
        {"knockout_mse_ko": [ko_mse], "knockout_mse_optimum": [optimum_mse], "gap": [ko_mse - optimum_mse]}
    )
    weights.save_network(optimum.as_network(), snakemake.output.network)
    tables.write_table(gap, snakemake.output.gap)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
