"""Start-up and error reporting shared by the workflow's scripts.

A job's log receives everything; an error the user can act on (a bad input file,
a diverged training) is also printed as one line on the console, without a
traceback, and the job exits non-zero so the workflow stops.
"""

from __future__ import annotations

import atexit
import errno
import gc
import logging
import sys
import time
from collections.abc import Callable

from knockout.errors import InputFileError, ResourceLimit, TrainingDiverged
from knockout_workflow.sources import file_digest

USER_ERRORS = (InputFileError, ResourceLimit, TrainingDiverged)
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
FINISHED = "job finished; time after start-up and imports:"
"""Closes every successful job's log, so the benchmark can split a job's time into its
start-up (interpreter, imports) and its work."""


def warn(message: str) -> None:
    """A warning the user must see: in the job's log and, as one line, on the console."""
    logging.warning("%s", message)
    print(f"WARNING: {message}", file=sys.__stderr__)


def expect_planned_content(planned: dict[str, str]) -> None:
    """Stop if a data file a job has just read is not the content the run was planned with.

    The workflow gives each job reading a data folder's files their content digests, taken
    when the run was planned, as a parameter: a file rewritten later makes those jobs stale
    for the next run (Snakemake reruns a job whose parameters changed, even where the new
    file is older than the job's outputs). Checked after the job has read the files, this
    stops a job that read a file rewritten during the run, instead of mixing old and new data.
    """
    for path, digest in planned.items():
        if file_digest(path) != digest:
            raise InputFileError(
                f"data.source: {path} changed since this run started (its content is not what the "
                f"run was planned with); run snakemake again: it redoes the steps that read it"
            )


def _user_message(error: Exception) -> str | None:
    """The one line a user can act on for ``error``; None for one that needs its traceback."""
    if isinstance(error, USER_ERRORS):
        return str(error)
    if isinstance(error, MemoryError):
        return (
            "out of memory: this step needs more than the machine (or the job's memory limit) "
            "allows; make the data or networks smaller, or lower limits.memory_gb to what the "
            "machine has so that the config check catches it first"
        )
    if isinstance(error, OSError) and error.errno in FULL_DISK:
        return (
            f"no space left writing {error.filename or 'an output'} ({error.strerror}); free some "
            f"space and rerun: outputs are written whole or not at all, so nothing is half-written"
        )
    return None


def run_job(log_path: str, job: Callable[[], None]) -> None:
    """Run ``job`` with logging sent to ``log_path``; turn user errors into one line."""
    console = sys.stderr
    with open(log_path, "w", buffering=1) as log:
        sys.stderr = log
        logging.basicConfig(
            stream=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
        )
        started = time.perf_counter()
        try:
            job()
            logging.info("%s %.3f s", FINISHED, time.perf_counter() - started)
            # Every output is written and closed. Python's teardown would then search the
            # ~200,000 objects the imports made (torch, pandas) for cycles, 0.4-0.45 s a job
            # (measured, a fifth of a short job's time): frozen, they are left to the OS.
            atexit.register(gc.freeze)
        except Exception as error:
            message = _user_message(error)
            if message is None:
                logging.exception("unexpected error")
                raise
            # where memory ran out is worth a traceback in the log; the others say it all
            logging.error("%s", message, exc_info=isinstance(error, MemoryError))
            print(f"ERROR: {message}", file=console)
            sys.exit(1)
        finally:
            sys.stderr = console
