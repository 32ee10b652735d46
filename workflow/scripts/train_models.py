"""Fit one job's models: every seed and model of an experiment (or of a seed, or one model
of a seed: train.one_job_per), all their networks as one batched computation."""

import logging
import os
import time

import torch

from knockout import tables, weights
from knockout.behavior_data import BehaviorData
from knockout.data_folder import Layout, job_folders
from knockout.network import Architecture
from knockout.training import Fit, TrainSettings, train_fits
from knockout_workflow.jobs import expect_planned_content, run_job

MB = 1 << 20
RUNTIME_MB = 400
"""What the job holds besides the networks and data (interpreter, PyTorch, pandas); the
networks are given what is left of its memory once the runtime and the frames it holds
are taken off."""


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
    behavior = snakemake.params.behavior
    layout = Layout.from_dict(behavior["layout"])
    architecture = Architecture(**snakemake.params.architectures["model"])
    seeds, models = snakemake.params.seeds, snakemake.params.models
    folders = job_folders(snakemake.input.behavior, layout, len(seeds))
    fits, held = [], {}
    for seed, folder in zip(seeds, folders, strict=True):
        if folder.inputs is not None:  # a folder's frames, held once for every seed
            held[id(folder.inputs)] = folder.inputs.nbytes
        data, _ = BehaviorData.split(folder, behavior["test_fraction"], seed)
        fits += [Fit(model, data, TrainSettings(**snakemake.params.train[model]), seed) for model in models]
    expect_planned_content(snakemake.params.data_digests)
    device = pick_device()
    budget = max(0, (snakemake.resources.mem_mb - RUNTIME_MB) * MB - sum(held.values()))
    logging.info(
        "seeds %s, models %s: %d networks of %s on %s, within %d MB (%d MB of it the frames held)",
        seeds,
        models,
        sum(fit.settings.restarts for fit in fits),
        architecture,
        device,
        snakemake.resources.mem_mb,
        sum(held.values()) // MB,
    )
    started = time.perf_counter()
    # progress (epoch, loss) every PROGRESS_SECONDS, from the engine's chunk ends
    results = train_fits(
        fits, architecture, device, memory_bytes=budget, progress=lambda p: logging.info("%s", p)
    )
    logging.info("trained in %.2f s", time.perf_counter() - started)
    outputs = zip(fits, results, snakemake.output.models, snakemake.output.losses, strict=True)
    for fit, result, model_path, losses_path in outputs:
        final = ", ".join(f"{loss:.5g}" for loss in result.losses[-1]) if result.losses else "none"
        relabelled = result.relabelled[result.chosen]
        logging.info(
            "seed %d, model %s, %s: %d epochs of %d steps; final training loss per restart %s; "
            "kept restart %d%s",
            fit.seed,
            fit.model,
            fit.settings,
            len(result.losses),
            result.steps_per_epoch,
            final,
            result.chosen,
            f"; its units relabelled after epochs {', '.join(map(str, relabelled))}" if relabelled else "",
        )
        tables.write_table(result.loss_table(), losses_path)
        weights.save_network(result.network, model_path)


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
