"""The two-layer linear network shared by the simulated fly and the fitted models."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

INIT_SCHEMES = ("glorot", "pytorch")
ACTIVATIONS = ("linear", "relu")


class TwoLayerNet(nn.Module):
    """Inputs -> hidden units (linear or ReLU) -> one linear output; ``keep`` silences units.

    ``keep`` multiplies the hidden activity (after the bias and the activation), so a 0
    entry sets that unit's value to 0 exactly as silencing a neuron does. It has shape
    ``[n_hidden]`` (one mask for the batch) or ``[batch, n_hidden]``.
    """

    def __init__(self, n_inputs: int, n_hidden: int, activation: str = "linear") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} unknown (allowed: {', '.join(ACTIVATIONS)})")
        self.activation = activation
        self.hidden = nn.Linear(n_inputs, n_hidden)
        self.output = nn.Linear(n_hidden, 1)

    @property
    def n_hidden(self) -> int:
        return self.hidden.out_features

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden units' values [batch, n_hidden]: what a neural recording would see."""
        h = self.hidden(x)
        return torch.relu(h) if self.activation == "relu" else h

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        h = self.activity(x)
        if keep is not None:
            h = h * keep
        return self.output(h).squeeze(-1)


@dataclass(frozen=True)
class NetworkSettings:
    """How to rebuild the fly and the models from their weight files (which hold weights
    only): each one's hidden activation, and the models' unit count (None: the fly's)."""

    fly_activation: str = "linear"
    model_activation: str = "linear"
    model_hidden: int | None = None


def silencing_mask(n_hidden: int, silenced_unit: int, remaining: float = 0.0) -> torch.Tensor:
    """The ``keep`` multiplier: 1 for every hidden unit, ``remaining`` for ``silenced_unit``.

    -1, or a unit the network does not have (a model smaller than the fly), silences
    nothing. ``remaining`` > 0 is an incomplete silencing that leaves that fraction.
    """
    keep = torch.ones(n_hidden)
    if 0 <= silenced_unit < n_hidden:
        keep[silenced_unit] = remaining
    return keep


def initialize(net: TwoLayerNet, scheme: str, generator: torch.Generator) -> TwoLayerNet:
    """Draw all weights from ``generator`` (so a seed fixes them on any device).

    glorot: Glorot/Xavier-uniform weights, zero biases (Keras' default, used by the
    paper's authors). pytorch: ``nn.Linear``'s default, U(+-1/sqrt(fan_in)) for
    weights and biases.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init scheme {scheme!r} unknown (allowed: {', '.join(INIT_SCHEMES)})")
    with torch.no_grad():
        for layer in (net.hidden, net.output):
            fan_out, fan_in = layer.weight.shape
            if scheme == "glorot":
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.zero_()
            else:
                bound = 1.0 / math.sqrt(fan_in)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    return net


def expected_shapes(n_inputs: int, n_hidden: int) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` keys and shapes every fly and model file must have."""
    return {
        "hidden.weight": (n_hidden, n_inputs),
        "hidden.bias": (n_hidden,),
        "output.weight": (1, n_hidden),
        "output.bias": (1,),
    }
