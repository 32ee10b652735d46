"""A throw-away copy of the workflow, for the tests and the benchmark to run Snakemake in.

The copy holds the workflow's own files (no results, logs or virtualenv) with a config of
the caller's; its jobs import the installed packages, as the project's own runs do.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[3]
"""The project's folder (this file is workflow/lib/knockout_workflow/copies.py in it)."""
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
"""The Snakemake of the interpreter running this, the one the project's venv installs."""
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs", "profiles")


def copy_workflow(destination: Path, config: dict, extra: tuple[str, ...] = ()) -> Path:
    """The workflow's files, and the project's files named in ``extra`` (``src``), in
    ``destination``, with ``config`` as its config file; returns ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in (*WORKFLOW_FILES, *extra):
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(
                source,
                destination / name,
                symlinks=True,
                copy_function=shutil.copy,  # fresh mtimes, as in a clone
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy(source, destination / name)
    (destination / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return destination
