"""Errors a user can act on; the workflow's scripts print them as one line."""


class InputFileError(ValueError):
    """A file this step reads is missing, damaged, or does not match the config."""


class TrainingDiverged(RuntimeError):
    """The loss or the weights stopped being finite (learning rate too high)."""


class ResourceLimit(RuntimeError):
    """A step would need more memory than the data or config allow."""


def one_line(error: Exception) -> str:
    """A library's error message in one line (pyarrow's and torch's can run over several):
    its first non-empty line, or the error's type where it has no message."""
    return next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
