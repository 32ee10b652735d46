"""Fit one model (control, noko, ko or do) of one replicate, or all of them (train.one_job_per)."""

import logging
import os
import time

import pandas as pd
import torch

from knockout import tables, weights
from knockout.behavior_data import BehaviorData
from knockout.convergence import Tolerances, training_warning
from knockout.dataset import Layout, read_rows
from knockout.jobs import run_job, warn
from knockout.network import Architecture
from knockout.training import TrainSettings, train


def pick_device() -> torch.device:
    """CUDA when this job sees a GPU, else CPU: a runtime choice, not a config value.

    The scheduler (or the user) decides which GPUs a job sees, via CUDA_VISIBLE_DEVICES.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")
    if torch.cuda.is_available():
        logging.info("CUDA_VISIBLE_DEVICES=%s; using %s", visible, torch.cuda.get_device_name(0))
        return torch.device("cuda")
    logging.info("no GPU visible (CUDA_VISIBLE_DEVICES=%s); using the CPU", visible)
    return torch.device("cpu")


def loss_table(losses: list[list[float]], chosen: int) -> pd.DataFrame:
    """Every restart's loss per epoch (the file contract of convergence.LOSS_COLUMNS)."""
    rows = [
        (epoch, restart, loss, int(restart == chosen))
        for epoch, per_restart in enumerate(losses, start=1)
        for restart, loss in enumerate(per_restart)
    ]
    return pd.DataFrame(rows, columns=["epoch", "restart", "train_mse", "chosen"])


def main(snakemake) -> None:
    torch.set_num_threads(snakemake.threads)
    seed = int(snakemake.wildcards.seed)
    behavior = snakemake.params.behavior
    layout = Layout.from_dict(behavior["layout"])
    architecture = Architecture(**snakemake.params.architectures["model"])
    train_rows, _ = read_rows(snakemake.input.behavior, layout, behavior["test_fraction"], seed)
    data = BehaviorData.from_table(train_rows, layout)
    device = pick_device()
    tolerances = Tolerances(**snakemake.params.convergence)
    outputs = zip(snakemake.params.models, snakemake.output.models, snakemake.output.losses, strict=True)
    for model, model_path, losses_path in outputs:
        settings = TrainSettings(**snakemake.params.train[model])
        logging.info("seed %d, model %s, %s, %s on %s", seed, model, architecture, settings, device)
        started = time.perf_counter()
        result = train(model, data, architecture, settings, seed, device)
        final = [f"{loss:.5g}" for loss in result.losses[-1]]  # the schema asks epochs >= 1
        relabelled = result.relabelled[result.chosen]
        logging.info(
            "trained in %.2f s; final training MSE per restart %s; kept restart %d%s",
            time.perf_counter() - started,
            ", ".join(final),
            result.chosen,
            f"; its units relabelled after epochs {', '.join(map(str, relabelled))}" if relabelled else "",
        )
        if warning := training_warning(model, seed, result.chosen_losses, tolerances):
            warn(warning)
        tables.write_table(loss_table(result.losses, result.chosen), losses_path)
        weights.save_network(result.network, model_path)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
