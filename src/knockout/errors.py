"""Errors a user can act on; the workflow's scripts print them as one line."""


class InputFileError(ValueError):
    """A file this step reads is missing, damaged, or does not match the config."""


class TrainingDiverged(RuntimeError):
    """The loss or the weights stopped being finite (learning rate too high)."""


class ResourceLimit(RuntimeError):
    """A step would need more memory than the data or config allow."""
