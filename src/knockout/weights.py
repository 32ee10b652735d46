"""Saving and loading fly and model weights (``state_dict`` files).

Loading uses ``weights_only=True``: a file that carries pickled code is refused.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import torch

from knockout.errors import InputFileError, one_line
from knockout.network import Architecture, KnockoutNet
from knockout.tables import write_atomically


def save_network(net: KnockoutNet, path: str | os.PathLike) -> None:
    """Atomically, and byte-for-byte reproducibly.

    Serialised in memory first: ``torch.save`` to a path names the archive after the
    file, and the temporary file's name is random.
    """
    buffer = io.BytesIO()
    torch.save({key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}, buffer)
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def load_network(path: str | os.PathLike, architecture: Architecture) -> KnockoutNet:
    """A fly or model ``state_dict``, checked for keys, shapes and finite values against
    the ``architecture`` the config describes (not against the file's own shapes). The
    file holds weights only: the activation comes from the config too.

    Before anything is unpacked, the archive's declared sizes are checked against what the
    architecture needs (a small file can declare gigabytes of compressed contents)."""
    _check_archive(path, architecture)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except Exception as error:  # torch raises many types for damaged or unsafe files
        raise InputFileError(
            f"{path}: not a loadable weights file (saved with torch.save(state_dict); "
            f"files carrying pickled code are refused): {one_line(error)}"
        ) from None
    expected = architecture.expected_shapes()
    if not isinstance(state, dict) or set(state) != set(expected):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise InputFileError(
            f"{path}: state_dict keys {found} differ from the expected {sorted(expected)} "
            f"(does the file match the config's network?)"
        )
    for key, shape in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputFileError(f"{path}: {key} has shape {got}, expected {shape} from the config")
        if not torch.isfinite(value).all():
            raise InputFileError(f"{path}: {key} holds NaN or infinite values")
    net = KnockoutNet(architecture)
    net.load_state_dict({key: value.float() for key, value in state.items()})
    return net.eval()


ARCHIVE_SLACK_BYTES = 1 << 20
"""What a weights archive may hold beyond its tensors (the pickled index, names, padding)."""


def _check_archive(path: str | os.PathLike, architecture: Architecture) -> None:
    """A ``torch.save`` zip archive whose contents, uncompressed, fit the architecture's
    tensors in float64 plus a little (a file saved from this config is about half that)."""
    if not Path(path).is_file():
        raise InputFileError(f"{path}: file not found")
    n_values = sum(int(torch.Size(shape).numel()) for shape in architecture.expected_shapes().values())
    allowed = 8 * n_values + ARCHIVE_SLACK_BYTES
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise InputFileError(
            f"{path}: not a loadable weights file (saved with torch.save(state_dict), a zip archive): {error}"
        ) from None
    if declared > allowed:
        raise InputFileError(
            f"{path}: its contents would take {declared} bytes unpacked; the config's network needs at "
            f"most {allowed} (does the file match the config? it is refused unread)"
        )


def load_models(
    model_paths: dict[str, str | os.PathLike], architecture: Architecture
) -> dict[str, KnockoutNet]:
    """Every model, each checked against the architecture from the config."""
    return {name: load_network(path, architecture) for name, path in model_paths.items()}
