"""``make bench``: how fast training and the pipeline are on the machine at hand.

Measures, in one run:

- training one ko network of the default config with the project's trainer (its
  closed-form fast path), its autograd trainer (what every other architecture uses), with
  the plain per-batch PyTorch loop (``plain_loop.py``), and the arithmetic floor
  (the step's floating-point operations at this machine's measured matmul rate);
  both trainers' median neural R², so the speed-up is for the same result;
- the pipeline's wall time: a full run, a no-op rerun, a plot-only rerun;
- scaling: full runs of 1, 4 and 16 seeds (x 4 models), and each job's time split
  into start-up (interpreter, imports) and work, from Snakemake's benchmark files
  and the time every job logs when it finishes;
- the import time of each heavy module, in a fresh interpreter.

Tables go to ``results/benchmarks/*.parquet``, a figure to
``results/benchmarks/benchmark.png``, and a summary in Markdown to stdout.
Timings are measurements of this machine, not assertions. Run it with ``src`` and
``tests`` on ``PYTHONPATH`` (the Makefile does).
"""

from __future__ import annotations

import argparse
import copy
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

import numpy as np
import pandas as pd
import torch
import yaml
from matplotlib.figure import Figure
from plain_loop import train_plain_loop
from workflow_helpers import REPO, SNAKEMAKE, copy_workflow

from knockout import metrics, tables
from knockout.behavior_data import BehaviorData
from knockout.config_checks import model_train_settings
from knockout.dataset import simulated_layout
from knockout.jobs import FINISHED
from knockout.simulation import DataSettings, FlySettings, simulate
from knockout.training import TrainSettings, epoch_plans, initial_networks, train, train_restarts

TRAIN_JOB_LAYOUTS = ["model", "seed"]
"""``train.one_job_per``: a training job per seed and model (the default), or per seed."""
HEAVY_IMPORTS = ["torch", "pandas", "pyarrow.parquet", "matplotlib.pyplot", "snakemake.script"]


def machine(device: str) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cpu = models[0] if models else platform.processor() or "unknown"
    description = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "snakemake": subprocess.run([SNAKEMAKE, "--version"], capture_output=True, text=True).stdout.strip(),
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
    }
    return description


# ------------------------------------------------------------------------------------------- trainer


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_flops_per_second(device: str, size: int = 1024, seconds: float = 1.0) -> float:
    """The machine's dense float32 matmul rate: the best this arithmetic could run at."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    synchronize(device)
    products, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        products += 1
    synchronize(device)
    return products * 2 * size**3 / (time.perf_counter() - started)


def step_flops(batch: int, n_inputs: int, n_hidden: int) -> int:
    """Floating-point operations of one training step (forward, gradients, Adam)."""
    d, h = n_inputs + 1, n_hidden + 1  # with the bias
    n_parameters = n_hidden * d + h
    forward = 2 * batch * d * n_hidden + batch * h + 2 * batch * h
    gradients = 2 * batch * h + 2 * batch * d + n_hidden * d + n_hidden
    adam = 12 * n_parameters
    return forward + gradients + adam


def project_trainer(model, data, architecture, settings, seed, device):
    """``train`` (the closed-form fast path here), returning the network only, as the plain loop does."""
    return train(model, data, architecture, settings, seed, device).network


def autograd_trainer(model, data, architecture, settings, seed, device):
    """The project's autograd trainer (stacked parameters), which every other architecture uses."""
    starts = initial_networks(architecture, settings, seed)
    return train_restarts(model, data, starts, settings, seed, device).network


def median_neural_r2(fly, net, probe: pd.DataFrame) -> float:
    layout = simulated_layout(fly.architecture.n_inputs, fly.n_hidden, 1, None)
    return float(metrics.neural_scores({"model": net}, probe, layout, fly)["r2"].median())


def time_trainers(config: dict, seeds: list[int], device: str) -> pd.DataFrame:
    """Project trainer and plain loop on the default config's ko network, per seed."""
    torch.set_num_threads(1)  # as the train_model rule runs
    fly_settings = FlySettings(**config["fly"])
    data_settings = DataSettings(**{key: config["data"][key] for key in ("n_train", "n_test", "n_probe")})
    settings = TrainSettings(**model_train_settings(config["train"], "ko"))
    n_hidden = fly_settings.n_hidden
    rows = []
    for seed in seeds:
        fly, train_table, _, probe = simulate(fly_settings, data_settings, seed)
        data = BehaviorData.from_table(
            train_table, simulated_layout(fly_settings.n_inputs, n_hidden, 1, None)
        )
        architecture = fly_settings.architecture
        # Every epoch has the same batch sizes; the first epoch's give the counts.
        _, batch_rows, _ = next(epoch_plans("ko", data, n_hidden, settings, seed))
        steps = len(batch_rows) * settings.epochs
        flops = settings.epochs * sum(step_flops(len(r), fly_settings.n_inputs, n_hidden) for r in batch_rows)
        trainers = [
            ("project", project_trainer),
            ("autograd", autograd_trainer),
            ("plain_loop", train_plain_loop),
        ]
        for name, fit in trainers:
            synchronize(device)
            started = time.perf_counter()
            net = fit("ko", data, architecture, settings, seed, device)
            synchronize(device)
            seconds = time.perf_counter() - started
            rows.append((name, seed, seconds, steps, flops, median_neural_r2(fly, net, probe)))
        floor = flops / matmul_flops_per_second(device)
        rows.append(("arithmetic_floor", seed, floor, steps, flops, np.nan))
    table = pd.DataFrame(rows, columns=["trainer", "seed", "seconds", "steps", "flops", "median_neural_r2"])
    table["us_per_step"] = table["seconds"] / table["steps"] * 1e6
    return table


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


def run_snakemake(workdir: Path, cores: int) -> tuple[float, int]:
    """Wall time of one ``snakemake`` run, and the number of jobs it ran."""
    started = time.perf_counter()
    result = subprocess.run([SNAKEMAKE, "--cores", str(cores)], cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{result.stderr[-3000:]}")
    totals = re.findall(r"^total\s+(\d+)", result.stderr + result.stdout, flags=re.MULTILINE)
    jobs = int(totals[0]) - 1 if totals else 0  # the target rule "all" is not a job that runs anything
    return seconds, jobs


def time_pipeline(config: dict, seed_counts: list[int], cores: int, scratch: Path) -> pd.DataFrame:
    """Per ``train.one_job_per`` layout and seed count, a full run in a fresh copy of the
    workflow (``scratch/{layout}_seeds{n}``); after the first, a no-op and a plot-only rerun."""
    rows = []
    for layout in TRAIN_JOB_LAYOUTS:
        for n_seeds in seed_counts:
            run_config = copy.deepcopy(config)
            run_config["seeds"] = list(range(n_seeds))
            run_config["train"]["one_job_per"] = layout
            workdir = copy_workflow(scratch / f"{layout}_seeds{n_seeds}", run_config)
            rows.append((layout, "full run", n_seeds, *run_snakemake(workdir, cores)))
            if n_seeds == seed_counts[0]:
                rows.append((layout, "no-op rerun", n_seeds, *run_snakemake(workdir, cores)))
                run_config["plot"]["dpi"] += 1
                (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(run_config))
                rows.append((layout, "plot-only rerun", n_seeds, *run_snakemake(workdir, cores)))
    table = pd.DataFrame(rows, columns=["one_job_per", "scenario", "seeds", "wall_s", "jobs"])
    first_full_run = table[table["scenario"] == "full run"].groupby("one_job_per")["wall_s"].first()
    table["vs_first_full_run"] = table["wall_s"] / table["one_job_per"].map(first_full_run)
    table["cores"] = cores
    return table


def job_times(workdir: Path, layout: str) -> pd.DataFrame:
    """Per job: total time (Snakemake's benchmark file) and work (logged by the job itself)."""
    rows = []
    for benchmark in sorted((workdir / "benchmarks").glob("*/*.tsv")):
        rule = benchmark.parent.name
        total = float(pd.read_csv(benchmark, sep="\t")["s"].iloc[0])
        log = (workdir / "logs" / rule / benchmark.name).with_suffix(".log").read_text()
        work = float(re.search(re.escape(FINISHED) + r" ([0-9.]+) s", log).group(1))
        rows.append((layout, rule, benchmark.stem, total, work))
    table = pd.DataFrame(rows, columns=["one_job_per", "rule", "job", "total_s", "work_s"])
    table["startup_s"] = table["total_s"] - table["work_s"]
    return table


# ------------------------------------------------------------------------------------------- figure


def figure(trainer: pd.DataFrame, pipeline: pd.DataFrame, jobs: pd.DataFrame, title: str, path: Path) -> None:
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    ax_train, ax_scale, ax_jobs = fig.subplots(1, 3)
    per_trainer = trainer.groupby("trainer", sort=False)["seconds"].mean()
    ax_train.bar(per_trainer.index, per_trainer.values, color=["#D55E00", "#E69F00", "#999999", "#0072B2"])
    ax_train.set_yscale("log")
    ax_train.set_ylabel("seconds per network (log scale)")
    ax_train.set_title("Training one ko network (default config)")
    for x, seconds in enumerate(per_trainer.values):
        ax_train.annotate(f"{seconds:.3g} s", (x, seconds), ha="center", va="bottom")

    for layout, runs in pipeline.groupby("one_job_per"):
        full = runs[runs["scenario"] == "full run"]
        line = ax_scale.plot(full["seeds"], full["wall_s"], "o-", label=f"full run, one job per {layout}")
        if layout == TRAIN_JOB_LAYOUTS[0]:
            first = full["wall_s"].iloc[0]
            ax_scale.plot(full["seeds"], first * full["seeds"], ":", color="grey", label="1 seed x seeds")
            for scenario, marker in [("no-op rerun", "s"), ("plot-only rerun", "^")]:
                row = runs[runs["scenario"] == scenario]
                ax_scale.plot(row["seeds"], row["wall_s"], marker, color=line[0].get_color(), label=scenario)
    ax_scale.set_xscale("log", base=2)
    counts = sorted(pipeline["seeds"].unique())
    ax_scale.set_xticks(counts, [str(n) for n in counts])
    ax_scale.set_yscale("log")
    ax_scale.set_xlabel("seeds (x 4 models)")
    ax_scale.set_ylabel("wall time (s)")
    ax_scale.set_title(f"Pipeline on {int(pipeline['cores'].iloc[0])} cores")
    ax_scale.legend()

    # Every rule's jobs in the default layout, and the per-seed training job for comparison.
    means = jobs.groupby(["one_job_per", "rule"], sort=False)[["startup_s", "work_s"]].mean()
    shown = [
        (f"{rule} (per {layout})" if rule == "train_model" else rule, row)
        for (layout, rule), row in means.iterrows()
        if layout == TRAIN_JOB_LAYOUTS[0] or rule == "train_model"
    ]
    labels = [label for label, _ in shown]
    startup = [row.startup_s for _, row in shown]
    ax_jobs.barh(labels, startup, label="start-up (interpreter, imports)", color="#7f7f7f")
    ax_jobs.barh(labels, [row.work_s for _, row in shown], left=startup, label="work", color="#1f77b4")
    ax_jobs.set_xlabel("seconds per job (mean)")
    ax_jobs.set_title("Where a job's time goes")
    ax_jobs.legend(loc="lower right")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def summary(trainer: pd.DataFrame, pipeline: pd.DataFrame, jobs: pd.DataFrame, imports: pd.DataFrame) -> str:
    """The tables docs/performance.md and the closing notes quote."""
    mean = trainer.groupby("trainer")[["seconds", "us_per_step", "median_neural_r2"]].mean()
    project = mean.loc["project", "seconds"]
    trainer_rows = [
        [
            name,
            f"{row.seconds:.3g}",
            f"{row.us_per_step:.3g}",
            f"{row.seconds / project:.3g}",
            "" if np.isnan(row.median_neural_r2) else f"{row.median_neural_r2:.4f}",
        ]
        for name, row in mean.iterrows()
    ]
    pipeline_rows = [
        [
            row.one_job_per,
            row.scenario,
            str(row.seeds),
            str(row.jobs),
            f"{row.wall_s:.1f}",
            f"{row.vs_first_full_run:.2f}",
        ]
        for row in pipeline.itertuples()
    ]
    per_rule = jobs.groupby(["one_job_per", "rule"], sort=False)
    means, counts = per_rule[["total_s", "startup_s", "work_s"]].mean(), per_rule.size()
    job_rows = [
        [*key, str(counts[key]), f"{row.total_s:.2f}", f"{row.startup_s:.2f}", f"{row.work_s:.2f}"]
        for key, row in means.iterrows()
    ]
    return "\n\n".join(
        [
            markdown(
                ["trainer", "s per network", "µs per step", "× project", "median neural R²"], trainer_rows
            ),
            markdown(
                ["one job per", "scenario", "seeds", "jobs", "wall s", "× 1-seed full run"], pipeline_rows
            ),
            markdown(["one job per", "rule", "jobs", "mean s", "start-up s", "work s"], job_rows),
            markdown(["import", "s"], [[row.module, f"{row.seconds:.2f}"] for row in imports.itertuples()]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", type=Path, default=REPO / "config" / "config.yaml", help="the workflow config to time"
    )
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks", help="output folder")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="device of the trainers")
    parser.add_argument("--trainer-seeds", type=int, default=3, help="seeds timed for each trainer")
    parser.add_argument("--seed-counts", type=int, nargs="+", default=[1, 4, 16], help="pipeline sizes")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores for the pipeline runs")
    parser.add_argument("--no-pipeline", action="store_true", help="time the trainers and imports only")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no GPU visible")

    config = yaml.safe_load(args.config.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    described = machine(args.device)
    print("machine:", ", ".join(f"{key} {value}" for key, value in described.items()), flush=True)
    trainer = time_trainers(config, list(range(args.trainer_seeds)), args.device)
    print(trainer.to_string(index=False), flush=True)
    imports = time_imports()
    results = {"machine": pd.DataFrame(described.items(), columns=["key", "value"]), "trainer": trainer}
    results["imports"] = imports
    if not args.no_pipeline:
        scratch = Path(tempfile.mkdtemp(prefix="knockout-bench-"))
        try:
            pipeline = time_pipeline(config, args.seed_counts, args.cores, scratch)
            largest = max(args.seed_counts)
            jobs = pd.concat(
                [job_times(scratch / f"{layout}_seeds{largest}", layout) for layout in TRAIN_JOB_LAYOUTS]
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        results["pipeline"], results["jobs"] = pipeline, jobs
        title = f"{described['cpu']}, {described['cores']} cores; trainer on {described['device']}"
        figure(trainer, pipeline, jobs, title, args.out / "benchmark.png")
        print(summary(trainer, pipeline, jobs, imports))
    for name, table in results.items():
        tables.write_table(table, args.out / f"{name}.parquet")
    print(f"tables in {args.out}")


if __name__ == "__main__":
    main()
