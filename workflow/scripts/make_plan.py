"""Plan an experiment from its pilot (knockout.planning): per unit and design the neural R²
knockout training can reach, with its interval and probability of reaching the target,
and per unit the smallest design that does; for a simulated pilot, one plan per seed's fly."""

import logging
import time

import pandas as pd
import torch

from knockout import planning, simulation, tables
from knockout.data_folder import Layout, read_job_folder
from knockout.network import Architecture
from knockout.training import TrainSettings
from knockout_workflow.jobs import expect_planned_content, run_job

MB = 1 << 20
RUNTIME_MB = 400


def pilots(snakemake, layout: Layout) -> tuple[list[planning.PilotTable], list[int | None], float]:
    """The pilots (one per seed's fly, or the folder's), their seeds (None: a recorded
    pilot) and the silenced activity they were drawn with."""
    pilot, plan = snakemake.params.pilot, snakemake.params.plan
    if pilot["seeds"] is None:
        folder = read_job_folder(snakemake.input.behavior[0], layout)
        expect_planned_content(snakemake.params.data_digests)
        return [planning.PilotTable(folder.behavior, folder.layout, folder.inputs)], [None], 0.0
    fly = simulation.FlySettings(**pilot["fly"])
    drawn = [
        planning.PilotTable(simulation.pilot_table(fly, plan["pilot_n"], seed, pilot["n_silenced"]), layout)
        for seed in pilot["seeds"]
    ]
    return drawn, list(pilot["seeds"]), fly.silenced_activity


def with_seed(table: pd.DataFrame, seed: int | None) -> pd.DataFrame:
    return table.assign(seed=pd.array([seed] * len(table), dtype="Int64"))[["seed", *table.columns]]


def main(snakemake) -> None:
    torch.set_num_threads(snakemake.threads)
    params, plan = snakemake.params, snakemake.params.plan
    layout = Layout.from_dict(params.pilot["layout"])
    architecture = Architecture(**params.architecture)
    drawn, seeds, silenced_activity = pilots(snakemake, layout)
    logging.info(
        "%s method, %d pilot(s) of %s, designs %s, target R² %g",
        params.method,
        len(drawn),
        architecture,
        plan["n_per_set"],
        plan["target_r2"],
    )
    started = time.perf_counter()
    planned = planning.plan_pilots(
        drawn,
        [seed or 0 for seed in seeds],
        architecture,
        TrainSettings(**params.train) if params.train is not None else None,
        plan["n_per_set"],
        plan["target_r2"],
        params.method,
        plan["resamples"],
        plan["simulation"]["seeds"],
        plan["check_training"],
        silenced_activity,
        memory_bytes=max(0, snakemake.resources.mem_mb - RUNTIME_MB) * MB,
        progress=lambda p: logging.info("%s", p),
    )
    logging.info("planned in %.2f s", time.perf_counter() - started)
    smallest = [planning.smallest_designs(table, plan["probability"]) for table in planned]
    tables.write_table(
        pd.concat([with_seed(t, s) for t, s in zip(planned, seeds, strict=True)], ignore_index=True),
        snakemake.output.plan,
    )
    tables.write_table(
        pd.concat([with_seed(t, s) for t, s in zip(smallest, seeds, strict=True)], ignore_index=True),
        snakemake.output.min_n,
    )


run_job(snakemake.log[0], lambda: main(snakemake))  # noqa: F821 (injected by Snakemake)
