# Set-up and everyday commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: venv run example example-frames figures sweeps plan report chromium test test-fast test-slurm bench lint format clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml workflow/lib/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

## run: the whole pipeline on config/config.yaml (only stale steps rerun)
run: venv
	$(BIN)/snakemake --cores $(CORES)

## example: the worked example, knockout training on the recorded experiment in
## examples/lc_lines/ (README, "Your own data"); runs in examples/, results in examples/results/data/lc_lines/
example: venv
	$(BIN)/snakemake --cores $(CORES) --directory examples --configfile examples/config.yaml

## example-frames: the second worked example, frames over time, song pulses and a centered
## evaluation (README, "Stimuli over time"): makes examples/courtship/, then runs it in examples/
example-frames: venv
	$(BIN)/python examples/make_courtship.py
	$(BIN)/snakemake --cores $(CORES) --directory examples --configfile examples/courtship.yaml

## figures: bring the figures up to date after a config or code change
figures: venv
	$(BIN)/snakemake --cores $(CORES) plot

## sweeps: every sweep declared in the config (each point in results/sweeps/<name>/<value>/)
sweeps: venv
	$(BIN)/snakemake --cores $(CORES) sweeps

## plan: the experiment planner on the config's plan section (results/plan/: plan.parquet,
## min_n.parquet, plan.png; README, "Planning an experiment")
plan: venv
	$(BIN)/snakemake --cores $(CORES) plan

## report: results/report.html, every figure of REPORT_TARGETS' runs with its caption
## (after `make run`; REPORT_TARGETS="all sweeps plan" adds the sweep figures and the plan,
## after `make sweeps` and `make plan`)
REPORT_TARGETS ?= all
report: venv
	$(BIN)/snakemake --cores $(CORES) --report results/report.html $(REPORT_TARGETS)

## chromium: install the headless browser the report test opens the report in (Debian
## package, as root; without root and without it, that test is skipped outside CI)
chromium:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] \
		|| (apt-get update -qq && apt-get install -y -qq chromium)

## test: lint, formatting check and the whole test suite (unit + end-to-end)
test: venv lint chromium
	$(BIN)/pytest

## test-fast: the unit tests only (the core, no workflow runs), one worker per core (about
## 25 s on 2 cores, 35 s on one)
test-fast: venv
	$(BIN)/pytest -m "not slow" -n auto

## test-slurm: as root, start a one-node SLURM cluster and run the workflow through
## profiles/slurm; checks where the scheduler ran every job (about 2 minutes)
test-slurm: venv
	$(BIN)/python tests/slurm/slurm_cluster.py

## bench: networks/s of the batched trainer against networks per batch (CPU, and a GPU where
## one is visible), the default study's training against a plain PyTorch loop, the pipeline
## per train.one_job_per layout (full, no-op, plot-only) and the sweeps; tables and figure in
## results/benchmarks (about 20 minutes on 2 cores; BENCH_ARGS="--no-sweeps" skips the sweeps)
bench: venv
	$(BIN)/python bench/benchmark.py --cores $(CORES) $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check src workflow/scripts workflow/lib tests bench
	$(BIN)/ruff format --check src workflow/scripts workflow/lib tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: venv
	$(BIN)/ruff check --fix src workflow/scripts workflow/lib tests bench
	$(BIN)/ruff format src workflow/scripts workflow/lib tests bench
	$(BIN)/snakefmt Snakefile workflow/rules

clean:
	rm -rf results logs benchmarks .snakemake
	rm -rf examples/results examples/logs examples/benchmarks examples/.snakemake examples/courtship
