"""Saving and loading fly and model weights (``state_dict`` files).

Loading uses ``weights_only=True``: a file that carries pickled code is refused.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from knockout.errors import InputFileError
from knockout.network import NetworkSettings, TwoLayerNet, expected_shapes
from knockout.tables import write_atomically


def save_network(net: TwoLayerNet, path: str | os.PathLike) -> None:
    """Atomically, and byte-for-byte reproducibly.

    Serialised in memory first: ``torch.save`` to a path names the archive after the
    file, and the temporary file's name is random.
    """
    buffer = io.BytesIO()
    torch.save({key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}, buffer)
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def load_network(
    path: str | os.PathLike,
    n_inputs: int | None = None,
    n_hidden: int | None = None,
    activation: str = "linear",
) -> TwoLayerNet:
    """A fly or model ``state_dict``, checked for keys, shapes and finite values.

    With ``n_inputs``/``n_hidden`` omitted the shapes are taken from the file itself
    (``hidden.weight`` is [n_hidden, n_inputs]) and then checked for consistency. The
    file holds weights only: the hidden units' ``activation`` comes from the config.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except Exception as error:  # torch raises many types for damaged or unsafe files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputFileError(
            f"{path}: not a loadable weights file (saved with torch.save(state_dict); "
            f"files carrying pickled code are refused): {reason}"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("hidden.weight"), torch.Tensor):
        raise InputFileError(f"{path}: expected a state_dict with a 'hidden.weight' tensor")
    if state["hidden.weight"].ndim != 2:
        raise InputFileError(
            f"{path}: hidden.weight has shape {tuple(state['hidden.weight'].shape)}, "
            "expected [n_hidden, n_inputs]"
        )
    file_hidden, file_inputs = state["hidden.weight"].shape
    expected = expected_shapes(n_inputs or file_inputs, n_hidden or file_hidden)
    if set(state) != set(expected):
        raise InputFileError(
            f"{path}: state_dict keys {sorted(state)} differ from the expected {sorted(expected)}"
        )
    for key, shape in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputFileError(f"{path}: {key} has shape {got}, expected {shape}")
        if not torch.isfinite(value).all():
            raise InputFileError(f"{path}: {key} holds NaN or infinite values")
    net = TwoLayerNet(*reversed(expected["hidden.weight"]), activation)
    net.load_state_dict({key: value.float() for key, value in state.items()})
    return net.eval()


def load_fly_and_models(
    fly_path: str | os.PathLike,
    model_paths: dict[str, str | os.PathLike],
    networks: NetworkSettings | None = None,
) -> tuple[TwoLayerNet, dict[str, TwoLayerNet]]:
    """The fly, and each model checked to have the fly's inputs and the model's units."""
    networks = networks or NetworkSettings()
    fly = load_network(fly_path, activation=networks.fly_activation)
    n_inputs, n_hidden = fly.hidden.in_features, networks.model_hidden or fly.n_hidden
    return fly, {
        model: load_network(path, n_inputs, n_hidden, networks.model_activation)
        for model, path in model_paths.items()
    }
