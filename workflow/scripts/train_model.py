"""Fit one model (control, noko, ko or do) of one replicate, or all of them (train.one_job_per)."""

import logging
import os
import time

import pandas as pd
import torch

from knockout import tables, weights
from knockout.behavior_data import BehaviorData
from knockout.jobs import run_job
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


def main(snakemake) -> None:
    torch.set_num_threads(snakemake.threads)
    seed = int(snakemake.wildcards.seed)
    shape, networks = snakemake.params.data_shape, snakemake.params.networks
    table = tables.read_behavior_table(snakemake.input.train, **shape)
    data = BehaviorData.from_table(table, shape["n_inputs"])
    n_hidden, activation = networks["model_hidden"], networks["model_activation"]
    device = pick_device()
    outputs = zip(snakemake.params.models, snakemake.output.models, snakemake.output.losses, strict=True)
    for model, model_path, losses_path in outputs:
        settings = TrainSettings(**snakemake.params.train[model])
        logging.info(
            "seed %d, model %s (%d %s units), %s on %s", seed, model, n_hidden, activation, settings, device
        )
        started = time.perf_counter()
        net, losses = train(model, data, n_hidden, settings, seed, device, activation)
        logging.info("trained in %.2f s; final training MSE %.5f", time.perf_counter() - started, losses[-1])
        epochs = pd.DataFrame({"epoch": range(1, len(losses) + 1), "train_mse": losses})
        tables.write_table(epochs, losses_path)
        weights.save_network(net, model_path)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
