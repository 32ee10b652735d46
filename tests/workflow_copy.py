"""A throw-away copy of the workflow with its own config, for end-to-end runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def copy_workflow(destination: Path, config: dict) -> Path:
    """The workflow's own files (no results, logs or virtualenv) with ``config`` as its config."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ["Snakefile", "workflow", "src", "config", "envs", "profiles"]:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source,
                destination / name,
                symlinks=True,
                copy_function=shutil.copy,  # fresh mtimes, as in a clone
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            shutil.copy(source, destination / name)
    (destination / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return destination
