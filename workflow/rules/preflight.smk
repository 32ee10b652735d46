# Before anything else: each config file plain data (knockout_workflow.config_files),
# checked before Snakemake merges it; conda there if asked for. The core (knockout) and the
# workflow's plumbing (knockout_workflow) are installed packages (make venv).
# Files given with --configfile were read at start-up; they are checked here, before the
# merge and the validation that walk them.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

try:
    import knockout
    import knockout_workflow
except ModuleNotFoundError as error:
    raise WorkflowError(
        f"{error.name} is not installed for the Python that runs Snakemake ({sys.executable}): "
        "run `make venv` and use .venv/bin/snakemake, or `pip install -e . -e workflow/lib` "
        "from the project's folder in this environment"
    ) from None

# The project's files (schema, caption templates), found from this file's own folder (not
# from workflow.basedir, which is the outer workflow's when this one is used as a module).
WORKFLOW_ROOT = Path(workflow.current_basedir).resolve().parents[1]
from knockout_workflow.config_files import check_config_file
from knockout.errors import InputFileError

for _path in ["config/config.yaml", *workflow.overwrite_configfiles]:
    if os.path.exists(_path) or _path != "config/config.yaml":
        try:
            check_config_file(_path)
        except InputFileError as error:
            raise WorkflowError(f"invalid config file: {error}") from None


# --sdm conda without conda: one sentence here, not "conda: command not found" from a job.
_methods = {str(method).lower() for method in workflow.deployment_settings.deployment_method}
if (
    any("conda" in method for method in _methods)
    and not workflow.deployment_settings.conda_base_path
):
    import shutil

    if not (shutil.which("conda") or shutil.which("mamba")):
        raise WorkflowError(
            "--sdm conda (--use-conda) needs conda on PATH, and none is found: install Miniforge "
            "(https://conda-forge.org/download/) and open a new shell, or run without it in the "
            'project\'s virtualenv (make venv; README, "Setting up conda")'
        )
