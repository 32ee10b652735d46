"""``make bench``: how fast training and the pipeline are on the machine at hand.

Measures, in one run:

- the batched trainer: networks per second against networks per batch (1 ... 4096), for
  the default linear network (its closed-form gradient, and autograd) and a ReLU one, on
  the CPU and, where one is visible, on a GPU; beside it the plain per-batch PyTorch loop
  (``plain_loop.py``) on one network. A batch is timed over one epoch of the default
  config's ko plan and scaled to a full training (the default config's step count);
- the default study's 40 networks trained as the pipeline trains them (one call), with
  ko's median neural R² against the plain loop's, so the speed-up is for the same result;
- the pipeline: a full run of the config, a no-op rerun and a plot-only rerun, per
  ``train.one_job_per`` layout, each job's time split into start-up (interpreter,
  imports) and work from Snakemake's benchmark files and the time every job logs;
- the sweeps the config declares (``snakemake sweeps``), from a fresh copy;
- the import time of each heavy module, in a fresh interpreter.

Tables go to ``results/benchmarks/*.parquet``, a figure to
``results/benchmarks/benchmark.png``, and a summary in Markdown to stdout. Timings are
measurements of this machine, not assertions. Run it in the project's venv (``make bench``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml
from matplotlib.figure import Figure
from plain_loop import train_plain_loop

from knockout import metrics, models, tables
from knockout.behavior_data import BehaviorData
from knockout.data_folder import simulated_layout
from knockout.network import Architecture
from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.training import Fit, TrainSettings, initial_networks, train, train_fits
from knockout.training.plan import FitPlan
from knockout_workflow.copies import PROJECT as REPO
from knockout_workflow.copies import SNAKEMAKE, copy_workflow
from knockout_workflow.jobs import FINISHED
from knockout_workflow.step_settings import model_train_settings

LAYOUTS = ["experiment", "seed", "model"]
"""``train.one_job_per``: a job per experiment, per seed, or a training job per seed and model."""
KINDS = {
    "linear, closed form": ("linear", True),
    "linear, autograd": ("linear", False),
    "ReLU, autograd": ("relu", False),
}
"""The networks timed: the default config's shape with each activation and gradient."""
HEAVY_IMPORTS = ["torch", "pandas", "pyarrow.parquet", "matplotlib.pyplot", "snakemake.script"]


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "cpu": names[0] if names else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "snakemake": subprocess.run([SNAKEMAKE, "--version"], capture_output=True, text=True).stdout.strip(),
    }


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def replicate(config: dict, seed: int, activation: str = "linear"):
    """(fly, training data, probe table) of one seed of the config's fly, with ``activation``."""
    fly_settings = FlySettings(**(config["fly"] | {"activation": activation}))
    data_settings = DataSettings(**{key: config["data"][key] for key in ("n_train", "n_test", "n_probe")})
    fly, train_table, _, probe = simulate(fly_settings, data_settings, seed)
    layout = simulated_layout(fly_settings.n_inputs, fly_settings.n_hidden, fly_settings.n_outputs, None)
    return fly, BehaviorData.from_table(train_table, layout), probe


# --------------------------------------------------------------------------------------- the trainer


def time_batches(config: dict, sizes: list[int], devices: list[str]) -> pd.DataFrame:
    """Per device, kind of network and networks per batch: one epoch of ko's plan for that
    many networks (restarts of one fit, relabelling off), and what it means for a whole
    training of the config's length."""
    settings = TrainSettings(**model_train_settings(config["train"], "ko"))
    rows = []
    for kind, (activation, closed_form) in KINDS.items():
        _, data, _ = replicate(config, 0, activation)
        architecture = Architecture(
            config["fly"]["n_inputs"], config["fly"]["n_hidden"], n_outputs=1, activation=activation
        )
        full = FitPlan(models.spec("ko"), data, architecture, settings, 0)
        steps_per_network = full.n_epochs * full.batches_per_epoch
        for device in devices:
            for size in sizes:
                one_epoch = dataclasses.replace(
                    settings, epochs=1, min_steps=0, restarts=size, relabel="never"
                )
                fit = Fit("ko", data, one_epoch, 0)
                train_fits([fit], architecture, device, closed_form=closed_form)  # warm-up
                synchronize(device)
                started = time.perf_counter()
                train_fits([fit], architecture, device, closed_form=closed_form)
                synchronize(device)
                seconds = time.perf_counter() - started
                us_per_step = seconds / full.batches_per_epoch * 1e6
                networks_per_s = size / (us_per_step * 1e-6 * steps_per_network)
                rows.append((device, kind, size, us_per_step, networks_per_s))
    return pd.DataFrame(rows, columns=["device", "kind", "networks", "us_per_step", "networks_per_s"])


def time_default_study(config: dict, device: str) -> pd.DataFrame:
    """The config's seeds x models trained as the pipeline trains them (one batched call),
    against the plain loop on ko of seed 0 alone; ko's median neural R² for both."""
    seeds, models_ = config["seeds"], config["models"]
    fits, flies, probes = [], {}, {}
    for seed in seeds:
        flies[seed], data, probes[seed] = replicate(config, seed)
        fits += [
            Fit(model, data, TrainSettings(**model_train_settings(config["train"], model)), seed)
            for model in models_
        ]
    architecture = flies[seeds[0]].architecture
    synchronize(device)
    started = time.perf_counter()
    results = train_fits(fits, architecture, device)
    synchronize(device)
    batched = time.perf_counter() - started
    layout = simulated_layout(architecture.n_inputs, architecture.n_hidden, 1, None)
    ko = [r.network for f, r in zip(fits, results, strict=True) if f.model == models.KNOCKOUT]
    r2 = [
        float(metrics.neural_scores({"ko": net}, probes[seed], layout, flies[seed])["r2"].median())
        for seed, net in zip(seeds, ko, strict=True)
    ]
    first_ko = next(f for f in fits if f.model == models.KNOCKOUT and f.seed == seeds[0])
    started = time.perf_counter()
    plain = train_plain_loop("ko", first_ko.data, architecture, first_ko.settings, seeds[0], device)
    plain_seconds = time.perf_counter() - started
    plain_r2 = float(
        metrics.neural_scores({"ko": plain}, probes[seeds[0]], layout, flies[seeds[0]])["r2"].median()
    )
    return pd.DataFrame(
        [
            ("batched trainer, every network of the study", len(fits), batched, len(fits) / batched, r2[0]),
            ("plain loop, one ko network", 1, plain_seconds, 1 / plain_seconds, plain_r2),
        ],
        columns=["trainer", "networks", "seconds", "networks_per_s", "ko_median_neural_r2_seed0"],
    )


def baseline_agreement() -> pd.DataFrame:
    """The plain loop is a fair baseline only if it trains what the project's trainer
    trains: per model, both trained from the same initial weights, batches and masks on a
    tiny problem (3 epochs), their largest weight difference, and how far the project's
    network moved from its initial weights (so that agreement is not two untrained nets)."""
    fly = FlySettings(n_inputs=6, n_hidden=4)
    _, train_table, _, _ = simulate(fly, DataSettings(40, 2, 2), seed=0)
    layout = simulated_layout(6, 4, 1, None)
    data = BehaviorData.from_table(train_table, layout)
    architecture = Architecture(6, 4)
    settings = TrainSettings(lr=0.01, batch_size=8, epochs=3, min_steps=0)
    rows = []
    for model in models.TRAINED:
        project = train(model, data, architecture, settings, seed=1).network
        plain = train_plain_loop(model, data, architecture, settings, seed=1)
        start = initial_networks(architecture, settings, 1)[0]
        difference = max(
            (value - plain.state_dict()[key]).abs().max().item()
            for key, value in project.state_dict().items()
        )
        moved = (project.hidden.weight - start.hidden.weight).abs().max().item()
        rows.append((model, difference, moved))
    return pd.DataFrame(rows, columns=["model", "largest_weight_difference", "largest_weight_change"])


# ------------------------------------------------------------------------------------------ imports


def time_imports(repeats: int = 3) -> pd.DataFrame:
    """Seconds to import each heavy module in a fresh interpreter (median of ``repeats``)."""
    rows = []
    for module in ["(nothing)", *HEAVY_IMPORTS]:
        statement = "pass" if module == "(nothing)" else f"import {module}"
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True)
            runs.append(time.perf_counter() - started)
        rows.append((module, statistics.median(runs)))
    return pd.DataFrame(rows, columns=["module", "seconds"])


# ----------------------------------------------------------------------------------------- pipeline


def run_snakemake(workdir: Path, cores: int, *targets: str) -> tuple[float, int]:
    """Wall time of one ``snakemake`` run, and the number of jobs it ran."""
    started = time.perf_counter()
    command = [SNAKEMAKE, "--cores", str(cores), *targets]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{result.stderr[-3000:]}")
    totals = re.findall(r"^total\s+(\d+)", result.stderr + result.stdout, flags=re.MULTILINE)
    jobs = int(totals[0]) - 1 if totals else 0  # the target rule is not a job that runs anything
    return seconds, jobs


def time_pipeline(config: dict, cores: int, scratch: Path) -> pd.DataFrame:
    """Per ``train.one_job_per`` layout, a full run of the config in a fresh copy of the
    workflow (``scratch/{layout}``), a no-op rerun and a plot-only rerun."""
    rows = []
    for layout in LAYOUTS:
        run_config = copy.deepcopy(config)
        run_config["train"]["one_job_per"] = layout
        workdir = copy_workflow(scratch / layout, run_config)
        rows.append((layout, "full run", *run_snakemake(workdir, cores)))
        rows.append((layout, "no-op rerun", *run_snakemake(workdir, cores)))
        run_config["plot"]["dpi"] = run_config["plot"].get("dpi", 150) + 1
        (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(run_config))
        rows.append((layout, "plot-only rerun", *run_snakemake(workdir, cores)))
    table = pd.DataFrame(rows, columns=["one_job_per", "scenario", "wall_s", "jobs"])
    table["cores"] = cores
    return table


def time_sweeps(config: dict, cores: int, scratch: Path) -> pd.DataFrame:
    """``snakemake sweeps`` from a fresh copy (the config's layout)."""
    workdir = copy_workflow(scratch / "sweeps", config)
    seconds, jobs = run_snakemake(workdir, cores, "sweeps")
    return pd.DataFrame(
        [(config["train"].get("one_job_per", "experiment"), seconds, jobs, cores)],
        columns=["one_job_per", "wall_s", "jobs", "cores"],
    )


def job_times(workdir: Path, layout: str) -> pd.DataFrame:
    """Per job: total time (Snakemake's benchmark file) and work (logged by the job itself)."""
    rows = []
    for benchmark in sorted((workdir / "benchmarks").rglob("*.tsv")):
        rule = benchmark.relative_to(workdir / "benchmarks").parts[0]
        total = float(pd.read_csv(benchmark, sep="\t")["s"].iloc[0])
        log = (
            (workdir / "logs" / benchmark.relative_to(workdir / "benchmarks")).with_suffix(".log").read_text()
        )
        work = float(re.search(re.escape(FINISHED) + r" ([0-9.]+) s", log).group(1))
        rows.append((layout, rule, benchmark.stem, total, work))
    table = pd.DataFrame(rows, columns=["one_job_per", "rule", "job", "total_s", "work_s"])
    table["startup_s"] = table["total_s"] - table["work_s"]
    return table


# ------------------------------------------------------------------------------------------- figure


def figure(
    batches: pd.DataFrame, pipeline: pd.DataFrame | None, jobs: pd.DataFrame | None, title: str, path: Path
) -> None:
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    ax_batch, ax_pipeline, ax_jobs = fig.subplots(1, 3)
    markers = dict(zip(KINDS, ["o", "s", "^"], strict=True))
    for (device, kind), rows in batches.groupby(["device", "kind"], sort=False):
        style = "-" if device == "cpu" else "--"
        ax_batch.plot(
            rows["networks"], rows["networks_per_s"], style, marker=markers[kind], label=f"{kind} ({device})"
        )
    ax_batch.set_xscale("log", base=2)
    ax_batch.set_yscale("log")
    ax_batch.set_xlabel("networks per batch")
    ax_batch.set_ylabel("networks trained per second (a full training)")
    ax_batch.set_title("The batched trainer")
    ax_batch.legend(fontsize=8)
    if pipeline is not None:
        full = pipeline[pipeline["scenario"] == "full run"]
        ax_pipeline.bar(full["one_job_per"], full["wall_s"], color="#0072B2")
        for x, row in enumerate(full.itertuples()):
            ax_pipeline.annotate(
                f"{row.wall_s:.0f} s\n{row.jobs} jobs", (x, row.wall_s), ha="center", va="bottom"
            )
        ax_pipeline.margins(y=0.2)
        ax_pipeline.set_xlabel("train.one_job_per")
        ax_pipeline.set_ylabel("wall time of a full run (s)")
        ax_pipeline.set_title(f"The config's study on {int(pipeline['cores'].iloc[0])} cores")
        means = (
            jobs[jobs["one_job_per"] == LAYOUTS[0]]
            .groupby("rule", sort=False)[["startup_s", "work_s"]]
            .mean()
        )
        ax_jobs.barh(
            means.index, means["startup_s"], label="start-up (interpreter, imports)", color="#7f7f7f"
        )
        ax_jobs.barh(means.index, means["work_s"], left=means["startup_s"], label="work", color="#1f77b4")
        ax_jobs.set_xlabel("seconds per job (mean)")
        ax_jobs.set_title(f"Where a job's time goes (one job per {LAYOUTS[0]})")
        ax_jobs.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def summary(results: dict[str, pd.DataFrame]) -> str:
    """The tables docs/performance.md and the closing notes quote."""
    batches = results["batches"]
    sizes = sorted(batches["networks"].unique())
    wide = batches.pivot_table(
        index=["device", "kind"], columns="networks", values="networks_per_s", sort=False
    )
    parts = [
        markdown(
            ["device", "network", *(f"{n}" for n in sizes)],
            [
                [device, kind, *(f"{wide.loc[(device, kind), n]:.3g}" for n in sizes)]
                for device, kind in wide.index
            ],
        ),
        markdown(
            ["trainer", "networks", "s", "networks/s", "ko median neural R² (seed 0)"],
            [
                [
                    row.trainer,
                    str(row.networks),
                    f"{row.seconds:.2f}",
                    f"{row.networks_per_s:.3g}",
                    f"{row.ko_median_neural_r2_seed0:.4f}",
                ]
                for row in results["study"].itertuples()
            ],
        ),
    ]
    if "pipeline" in results:
        parts.append(
            markdown(
                ["one job per", "scenario", "jobs", "wall s"],
                [
                    [row.one_job_per, row.scenario, str(row.jobs), f"{row.wall_s:.1f}"]
                    for row in results["pipeline"].itertuples()
                ],
            )
        )
        per_rule = results["jobs"].groupby(["one_job_per", "rule"], sort=False)
        means, counts = per_rule[["total_s", "startup_s", "work_s"]].mean(), per_rule.size()
        parts.append(
            markdown(
                ["one job per", "rule", "jobs", "mean s", "start-up s", "work s"],
                [
                    [
                        *key,
                        str(counts[key]),
                        f"{row.total_s:.2f}",
                        f"{row.startup_s:.2f}",
                        f"{row.work_s:.2f}",
                    ]
                    for key, row in means.iterrows()
                ],
            )
        )
    if "sweeps" in results:
        row = results["sweeps"].iloc[0]
        parts.append(
            markdown(
                ["sweeps", "jobs", "wall s"],
                [[f"one job per {row.one_job_per}", str(row.jobs), f"{row.wall_s:.0f}"]],
            )
        )
    parts.append(
        markdown(
            ["import", "s"], [[row.module, f"{row.seconds:.2f}"] for row in results["imports"].itertuples()]
        )
    )
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", type=Path, default=REPO / "config" / "config.yaml", help="the workflow config to time"
    )
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks", help="output folder")
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[1, 4, 16, 64, 256, 1024, 4096],
        help="networks per batch timed",
    )
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores for the pipeline runs")
    parser.add_argument("--no-pipeline", action="store_true", help="time the trainer and imports only")
    parser.add_argument("--no-sweeps", action="store_true", help="do not time the config's sweeps")
    args = parser.parse_args()

    torch.set_num_threads(1)  # as the training rule runs
    config = yaml.safe_load(args.config.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    described = machine()
    print("machine:", ", ".join(f"{key} {value}" for key, value in described.items()), flush=True)
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    results = {"machine": pd.DataFrame(described.items(), columns=["key", "value"])}
    results["batches"] = time_batches(config, args.batch_sizes, devices)
    print(results["batches"].to_string(index=False), flush=True)
    results["baseline"] = baseline_agreement()
    print(results["baseline"].to_string(index=False), flush=True)
    results["study"] = time_default_study(config, devices[-1])
    results["imports"] = time_imports()
    pipeline = jobs = None
    if not args.no_pipeline:
        scratch = Path(tempfile.mkdtemp(prefix="knockout-bench-"))
        try:
            pipeline = results["pipeline"] = time_pipeline(config, args.cores, scratch)
            jobs = results["jobs"] = pd.concat([job_times(scratch / layout, layout) for layout in LAYOUTS])
            if not args.no_sweeps and config.get("sweeps"):
                results["sweeps"] = time_sweeps(config, args.cores, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    title = f"{described['cpu']}, {described['cores']} cores; GPU: {described['gpu']}"
    figure(results["batches"], pipeline, jobs, title, args.out / "benchmark.png")
    print(summary(results))
    for name, table in results.items():
        tables.write_table(table, args.out / f"{name}.parquet")
    print(f"tables in {args.out}")


if __name__ == "__main__":
    main()
