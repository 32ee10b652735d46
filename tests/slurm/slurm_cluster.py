"""Run the workflow on a real one-node SLURM cluster through profiles/slurm, and check
from the scheduler's own records where every job ran.

Run as root (`make test-slurm`; CI does): installs Debian's slurm-wlm and munge if
missing, writes /etc/slurm/{slurm,gres}.conf (the plugin's job steps clear SLURM_*,
so the config must sit where Slurm looks by default), starts munged, slurmctld and
slurmd in the foreground so their PIDs are ours, and submits the workflow on a tiny
config with a variant of profiles/slurm that names this cluster's partitions `cpu`
(default) and `gpu` and turns off what this machine cannot do (conda channels,
accounting). Then `scontrol show job` must show every train_models job in partition
`gpu` with a GPU allocated, and every other job in `cpu` without one. Every wait has
a deadline; the daemons are stopped by PID whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from knockout import models
from knockout_workflow.copies import PROJECT as REPO
from knockout_workflow.copies import copy_workflow

SLURM_DIR = Path("/etc/slurm")
FAKE_GPU = Path("/dev/knockout-test-gpu0")
LOG_DIR = Path("/var/log/knockout-slurm-test")
MARKER = "# written by knockout-pipeline tests/slurm/slurm_cluster.py"
CONFIG = {
    "seeds": [0],
    "models": list(models.TRAINED),
    "fly": {"n_inputs": 8, "n_hidden": 3},
    "data": {"n_train": 200, "n_test": 100, "n_probe": 200},
    "train": {"epochs": 10},
    "plot": {"dpi": 50},
}
GPU_RULES = {"train_models", "train_models_sweep"}


def run(command: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def wait_for(what: str, ready, deadline_s: float, daemons: dict[str, subprocess.Popen]) -> None:
    """Poll ``ready()`` until true; fail fast when a daemon died or the deadline passed."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for name, process in daemons.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {LOG_DIR}/{name}.log")
        if ready():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {deadline_s:.0f} s; logs in {LOG_DIR}")


def install_slurm() -> None:
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        result = run(command, timeout=900, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def write_cluster_config(host: str) -> None:
    """One node on 127.0.0.1 with its real CPUs and memory, a GPU gres, two partitions."""
    SLURM_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("slurm.conf", "gres.conf"):
        existing = SLURM_DIR / name
        if existing.exists() and MARKER not in existing.read_text():
            raise RuntimeError(f"{existing} exists and was not written by this test; not overwriting it")
    if not FAKE_GPU.exists():  # a gres line needs File=; a character device stands in for /dev/nvidia0
        subprocess.run(["mknod", str(FAKE_GPU), "c", "1", "3"], check=True)
    node = run(["slurmd", "-C"]).stdout.splitlines()[0]
    node = re.sub(r"RealMemory=(\d+)", lambda m: f"RealMemory={int(m.group(1)) * 9 // 10}", node)
    spool = Path("/var/spool/knockout-slurm-test")
    (spool / "ctld").mkdir(parents=True, exist_ok=True)
    (spool / "d").mkdir(parents=True, exist_ok=True)
    (SLURM_DIR / "slurm.conf").write_text(
        f"""{MARKER}
ClusterName=knockout-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={spool}/ctld
SlurmdSpoolDir={spool}/d
SlurmctldPidFile={spool}/slurmctld.pid
SlurmdPidFile={spool}/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
DefMemPerCPU=500
MinJobAge=3600
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldLogFile={LOG_DIR}/slurmctld.log
SlurmdLogFile={LOG_DIR}/slurmd.log
{node} NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP
"""
    )
    (SLURM_DIR / "gres.conf").write_text(f"{MARKER}\nNodeName={host} Name=gpu File={FAKE_GPU}\n")


def start_daemons(host: str, daemons: dict[str, subprocess.Popen]) -> None:
    """Start each daemon into ``daemons`` (so the caller can stop whatever did start)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    commands = {
        "munged": ["munged", "--foreground", "--force"],
        "slurmctld": ["slurmctld", "-D", "-c", "-i"],  # -c: a cold start, no jobs of earlier runs
        "slurmd": ["slurmd", "-D", "-N", host],
    }
    for name, command in commands.items():
        with open(LOG_DIR / f"{name}.log", "a") as log:
            daemons[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        if name == "munged":
            wait_for("munge", lambda: run(["munge", "-n"]).returncode == 0, 20, daemons)
        if name == "slurmctld":
            wait_for("slurmctld", lambda: "UP" in run(["scontrol", "ping"]).stdout, 30, daemons)
    wait_for(
        "the node",
        lambda: run(["sinfo", "-h", "-N", "-o", "%T"]).stdout.split()[:1] == ["idle"],
        60,
        daemons,
    )


def remove_cluster_config() -> None:
    """Leave the machine as found: with a slurm.conf whose controller is down, every
    `snakemake` start waits ~10 s (the SLURM plugin runs `scontrol show config` on import)."""
    for name in ("slurm.conf", "gres.conf"):
        path = SLURM_DIR / name
        if path.exists() and MARKER in path.read_text():
            path.unlink()
    FAKE_GPU.unlink(missing_ok=True)


def stop_daemons(daemons: dict[str, subprocess.Popen]) -> None:
    for process in reversed(list(daemons.values())):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in daemons.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def make_test_profile(destination: Path) -> dict:
    """profiles/slurm with this cluster's partition names and this machine's limits."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "cpu"
    profile["default-resources"]["mem_mb"] = 500
    for rule in GPU_RULES:
        profile["set-resources"][rule]["slurm_partition"] = "gpu"
        profile["set-resources"][rule]["mem_mb"] = 500
    del profile["software-deployment-method"]  # conda channels are not reachable here
    profile |= {
        "slurm-status-command": "squeue",  # no slurmdbd, so no sacct
        "slurm-no-account": True,
        "slurm-init-seconds-before-status-checks": 2,
        "latency-wait": 5,
        "slurm-logdir": str(destination.parent / "slurm-logs"),
        "slurm-keep-successful-logs": True,
    }
    destination.mkdir(parents=True)
    (destination / "config.yaml").write_text(yaml.safe_dump(profile))
    return profile


def job_records() -> list[dict[str, str]]:
    """slurmctld's record of every job it knows (MinJobAge keeps finished ones)."""
    output = run(["scontrol", "show", "job", "--details", "--oneliner"]).stdout
    records = []
    for line in output.splitlines():
        if not line.startswith("JobId="):
            continue
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        # JOB_GRES= and the per-node GRES= of --details are what was allocated; the
        # request is TresPerJob=gres:gpu:1. "(null)" means nothing.
        allocated = re.findall(r"(?:JOB_)?GRES=(\S+)", line)
        fields["allocated_gres"] = ",".join(sorted({g for g in allocated if g != "(null)"}))
        records.append(fields)
    return records


def training_device_lines(workdir: Path) -> dict[str, str]:
    """Each training log's line on the device it used (Slurm sets CUDA_VISIBLE_DEVICES)."""
    lines = {}
    for log in sorted((workdir / "logs" / "train_models").glob("*.log")):
        found = [line for line in log.read_text().splitlines() if "CUDA_VISIBLE_DEVICES" in line]
        lines[log.name] = found[0].split(" ", 3)[-1] if found else "(no device line)"
    return lines


def requested(profile: dict, rule: str) -> dict[str, str]:
    """What the profile asks for ``rule``, as scontrol prints it (TimeLimit, MinMemoryNode)."""
    resources = profile["default-resources"] | profile["set-resources"].get(rule, {})
    hours, minutes = divmod(int(resources["runtime"]), 60)
    return {
        "Partition": resources["slurm_partition"],
        "TimeLimit": f"{hours:02d}:{minutes:02d}:00",
        "MinMemoryNode": f"{resources['mem_mb']}M",
    }


def _minutes(limit: str) -> int:
    hours, minutes, _ = (int(part) for part in limit.split(":"))
    return 60 * hours + minutes


def check_jobs(records: list[dict[str, str]], profile: dict) -> list[str]:
    """Problems with where and how the workflow's jobs ran (empty when all is right).

    Every submission must have completed in its partition with the profile's time and
    memory limits (a profile block silently replaced by another shows up here); a group
    submission (the profile's ``groups``) with at least each member's. A GPU must be
    allocated to exactly the training jobs. The submissions must be as few as the profile
    promises: per experiment (one job each, train.one_job_per's default), the data, the
    training of every model, and the evaluations (which fit the optimum); the summaries
    and figures run locally (``localrules``).
    """
    problems = []
    groups = {}
    for entry in profile.get("groups", []):
        rule, group = entry.split("=")
        groups.setdefault(group, []).append(rule)
    jobs = []
    for record in records:
        comment = record.get("Comment", "")
        group = next((g for g in groups if comment.startswith(f"rule_{g}_")), None)
        if group is not None:
            jobs.append((groups[group], record))
        elif match := re.match(r"rule_(\w+?)(?:_wildcards_|$)", comment):
            jobs.append(([match.group(1)], record))
    if not any(set(rules) & GPU_RULES for rules, _ in jobs):
        problems.append("no train_models job was found in the scheduler's records")
    for rules, record in jobs:
        where = f"job {record['JobId']} ({record['Comment']})"
        if record.get("JobState") != "COMPLETED":
            problems.append(f"{where}: state {record.get('JobState')}")
        for rule in rules:
            expected = requested(profile, rule)
            if record.get("Partition") != expected["Partition"]:
                problems.append(
                    f"{where}: Partition {record.get('Partition')}, expected {expected['Partition']}"
                )
            exact = len(rules) == 1
            for field, parse in (("TimeLimit", _minutes), ("MinMemoryNode", lambda m: int(m.rstrip("M")))):
                got, want = (
                    parse(record.get(field, "0:0:0" if field == "TimeLimit" else "0M")),
                    parse(expected[field]),
                )
                if got != want if exact else got < want:
                    problems.append(f"{where}: {field} {record.get(field)}, expected {expected[field]}")
        if bool(set(rules) & GPU_RULES) != ("gpu" in record["allocated_gres"]):
            problems.append(f"{where}: GPU allocated {record['allocated_gres']!r}")
    expected_count = 3
    if len(records) != expected_count:
        problems.append(f"{len(records)} submissions, expected {expected_count} (data, training, evaluation)")
    local = {"summarize", "plot"}
    if submitted := local & {rule for rules, _ in jobs for rule in rules}:
        problems.append(f"{', '.join(sorted(submitted))} submitted; they are localrules")
    return problems


def main() -> int:
    if os.geteuid() != 0:
        print("the SLURM test must run as root (it installs and starts Slurm)", file=sys.stderr)
        return 2
    started = time.monotonic()
    host = socket.gethostname()
    install_slurm()
    write_cluster_config(host)
    daemons: dict[str, subprocess.Popen] = {}
    try:
        start_daemons(host, daemons)
        with tempfile.TemporaryDirectory(prefix="knockout-slurm-") as tmp:
            workdir = copy_workflow(Path(tmp) / "workflow", CONFIG)
            profile = make_test_profile(Path(tmp) / "profile")
            snakemake = Path(sys.executable).with_name("snakemake")
            command = [str(snakemake), "--profile", str(Path(tmp) / "profile")]
            result = run(command, timeout=900, cwd=workdir)
            print(result.stdout[-3000:], result.stderr[-6000:], sep="\n")
            if result.returncode != 0:
                print(f"snakemake on SLURM failed with {result.returncode}", file=sys.stderr)
                return 1
            device_lines = training_device_lines(workdir)
        records = job_records()
        columns = [
            "JobId",
            "Partition",
            "JobState",
            "TimeLimit",
            "MinMemoryNode",
            "allocated_gres",
            "Comment",
        ]
        print("  ".join(columns))
        for record in records:
            print("  ".join(record.get(column) or "-" for column in columns))
        problems = check_jobs(records, profile)
        for log, line in device_lines.items():
            print(f"{log}: {line}")
            if "CUDA_VISIBLE_DEVICES=(unset)" in line:
                problems.append(f"{log}: the training job saw no GPU allocation ({line})")
        for problem in problems:
            print(f"FAIL: {problem}", file=sys.stderr)
        print(f"SLURM test: {len(records)} jobs, {time.monotonic() - started:.0f} s")
        return 1 if problems else 0
    finally:
        stop_daemons(daemons)
        remove_cluster_config()


if __name__ == "__main__":
    sys.exit(main())
