"""Bad, hostile and huge-but-valid configs, end to end: each is refused by `snakemake` before
any job, within seconds, with a message naming the key or file, and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO, TINY_CONFIG, copy_workflow, scheduled_jobs, snakemake

pytestmark = pytest.mark.slow


def merged(**sections) -> str:
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    for section, values in sections.items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    return yaml.safe_dump(config)


CASES = [
    (
        "alias bomb",
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\n",
        "YAML anchors and aliases",
    ),
    ("yte", "__use_yte__: true\nseeds: [0]\n", "__use_yte__ turns the file into a YTE template"),
    ("not utf-8", b"seeds: [0]\n# caf\xe9\n", "config/config.yaml: not UTF-8 text"),
    ("invalid yaml", "seeds: [0, 1\n", "config/config.yaml, line 2, column 1: not valid YAML"),
    ("nan", merged(fly={"noise_sd": float("nan")}), "fly.noise_sd: nan is not a finite number"),
    ("inf", merged(train={"lr": float("inf")}), "lr"),
    ("float for an integer", merged(data={"n_train": 200.0}), "data.n_train: 200.0 must be an integer"),
    ("huge data", merged(data={"n_train": 100_000_000}), "generate_fly_data would need about"),
    ("huge network", merged(fly={"n_inputs": 10000, "n_hidden": 1000}), "would need about"),
    (
        "sweep named ..",
        merged(sweeps={"..": {"key": "fly.noise_sd", "values": [0.1]}}),
        "'..' does not match",
    ),
    ("unknown key", merged(fly={"noise": 0.1}), "noise"),
]


@pytest.mark.parametrize(("config", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_config_is_refused_before_any_job_naming_the_key_or_file(tmp_path, config, message):
    workdir = copy_workflow(tmp_path, TINY_CONFIG)
    path = workdir / "config" / "config.yaml"
    path.write_bytes(config if isinstance(config, bytes) else config.encode())
    started = time.monotonic()
    result = snakemake(workdir, check=False)
    assert time.monotonic() - started < 60
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output, output[-2000:]
    assert not (workdir / "results").exists()


def test_an_overlay_config_is_checked_on_its_own_and_the_shipped_sweeps_only_for_sweeps(tmp_path):
    """The authors' 8 units, over the shipped config: its sweep of 16 silenced units no
    longer stops the main run; it stops the sweeps target, naming the point."""
    workdir = copy_workflow(tmp_path, TINY_CONFIG)
    (workdir / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (workdir / "small.yaml").write_text(yaml.safe_dump({"seeds": [0], "fly": {"n_hidden": 8}}))
    assert snakemake(workdir, "-n", "--configfile", "small.yaml").returncode == 0
    sweeps = snakemake(workdir, "sweeps", "-n", "--configfile", "small.yaml", check=False)
    assert sweeps.returncode != 0
    assert "sweeps.n_silenced.values[2] (data.n_silenced = 12)" in sweeps.stdout + sweeps.stderr
    (workdir / "off.yaml").write_text(yaml.safe_dump({"seeds": [0], "fly": {"n_hidden": 8}, "sweeps": None}))
    assert snakemake(workdir, "sweeps", "-n", "--configfile", "off.yaml").returncode == 0


def test_the_optimum_can_be_switched_off(tmp_path):
    workdir = copy_workflow(tmp_path, TINY_CONFIG | {"optimum": False})
    jobs = scheduled_jobs(workdir)
    assert "evaluate_models_with_optimum" not in jobs and jobs["evaluate_models"] == 1


def test_asking_for_conda_without_conda_is_one_sentence(tmp_path):
    workdir = copy_workflow(tmp_path, TINY_CONFIG)
    bare_path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    result = subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), "-n", "--sdm", "conda"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=os.environ | {"PATH": bare_path},
        timeout=120,
    )
    assert result.returncode != 0
    assert "--sdm conda (--use-conda) needs conda on PATH, and none is found" in result.stdout + result.stderr
