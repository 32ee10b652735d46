# Before Snakemake merges the config files: each must be plain data (knockout.config_files).
# Files given with --configfile were read at start-up; they are checked here, before the
# merge and the validation that walk them.
import os
import sys

sys.path.insert(0, f"{workflow.basedir}/src")  # the core, for every include after this one
from knockout.config_files import check_config_file
from knockout.errors import InputFileError
from snakemake.exceptions import WorkflowError

for _path in ["config/config.yaml", *workflow.overwrite_configfiles]:
    if os.path.exists(_path) or _path != "config/config.yaml":
        try:
            check_config_file(_path)
        except InputFileError as error:
            raise WorkflowError(f"invalid config file: {error}") from None
