"""The few lines a run ends with (the Snakefile's ``onsuccess``/``onerror``): the networks
that did not converge, where the figures are, and the command that builds the report.

Read from the files the run left (the convergence tables the summaries wrote), never
recomputed; a file that is missing (a run of another target) is left out, and one that
cannot be read is named, so the summary itself never fails. Snakemake calls neither
hook on a dry run or when there was nothing to do.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable

import pandas as pd

from knockout.convergence import LAST_FRACTION

SHOWN_NETWORKS = 4
"""Unconverged networks named per table; the rest are counted."""


def path_shown(launch_dir: str | None) -> Callable[[str], str]:
    """How to write a path for the user: relative to the working directory when they ran
    snakemake there (``launch_dir``: where they did; None: unknown, assumed so), else absolute."""
    here = os.getcwd()
    if launch_dir is None or os.path.realpath(launch_dir) == os.path.realpath(here):
        return os.path.relpath
    return os.path.abspath


def _percent(share: float) -> str:
    return f"{100 * share:.3g}%"


def _network(row) -> str:
    """``seed 3 'ko' (loss 1.2% above the exact optimum's)``, from a convergence table's row
    (a sweep's: ``value 0.1, seed 3 ...``)."""
    if not math.isnan(row.relative_gap):
        why = f"loss {_percent(row.relative_gap)} above the exact optimum's"
    else:
        why = f"loss still fell {_percent(row.late_improvement)} over the last {LAST_FRACTION:.0%} of epochs"
    where = f"value {row.value}, " if hasattr(row, "value") else ""
    return f"{where}seed {row.seed} {row.model!r} ({why})"


def convergence_line(label: str, path: str, shown: Callable[[str], str] = str) -> str | None:
    """One line on the networks a convergence table marks as not converged (None: every
    network converged, or there is no such table)."""
    if not os.path.exists(path):
        return None
    try:
        table = pd.read_parquet(path)
        unconverged = table[table["converged"] == 0]
        networks = [_network(row) for row in unconverged.head(SHOWN_NETWORKS).itertuples()]
    except (OSError, ValueError, KeyError, AttributeError) as error:
        return f"WARNING: {label}: could not read {shown(path)} ({error})"
    if not networks:
        return None
    more = len(unconverged) - len(networks)
    listed = "; ".join(networks) + (f"; and {more} more" if more else "")
    return (
        f"WARNING: {label}: {len(unconverged)} of {len(table)} networks did not converge: {listed} "
        f"({shown(path)}); read their numbers as unfinished"
    )


def run_summary(
    convergence: dict[str, str],
    figures: dict[str, list[str]],
    report: str,
    configfiles: list[str] = (),
    launch_dir: str | None = None,
) -> list[str]:
    """The run's closing lines: per convergence table (``{label: path}``) the networks that
    did not converge; the figures of each report target (``{target: [files]}``) that exist;
    and the command building ``report`` from the targets whose figures all exist, with the
    run's ``configfiles`` (and its working directory, where snakemake ran in another:
    ``launch_dir``). Paths are relative to the working directory (the run's)."""
    shown = path_shown(launch_dir)
    lines = [line for label, path in convergence.items() if (line := convergence_line(label, path, shown))]
    made = {target: files for target, files in figures.items() if files and all(map(os.path.exists, files))}
    for target, files in made.items():
        folders = sorted({shown(os.path.dirname(path) or ".") for path in files})
        lines.append(f"Figures ({target}): {', '.join(folders[:3])}{' ...' if len(folders) > 3 else ''}")
    if made:
        options = [] if shown is os.path.relpath else ["--directory", os.getcwd()]
        options += [part for path in configfiles for part in ("--configfile", shown(path))]
        command = ["snakemake", *options, "--report", report, *made]
        lines.append(f"Report: {shlex.join(command)}")
    return lines


def error_line(logs: list[str]) -> str:
    """What to do when a run stopped, and where its logs are (``logs``: snakemake's own)."""
    own = f"; snakemake's own log: {', '.join(map(str, logs))}" if logs else ""
    return (
        f"The run stopped: the first error above says why; the failed job's full log is under "
        f"logs/<rule>/{own}. What finished is kept: after a fix, run snakemake again"
    )
