"""The two-layer linear network shared by the simulated fly and the fitted models."""

from __future__ import annotations

import math

import torch
from torch import nn

INIT_SCHEMES = ("glorot", "pytorch")


class TwoLayerNet(nn.Module):
    """Inputs -> linear hidden units -> one output; ``keep`` silences hidden units.

    ``keep`` multiplies the hidden activity after the bias, so a 0 entry sets that
    unit's value to 0 exactly as silencing a neuron does. It has shape
    ``[n_hidden]`` (one mask for the batch) or ``[batch, n_hidden]``.
    """

    def __init__(self, n_inputs: int, n_hidden: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_inputs, n_hidden)
        self.output = nn.Linear(n_hidden, 1)

    @property
    def n_hidden(self) -> int:
        return self.hidden.out_features

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden(x)
        if keep is not None:
            h = h * keep
        return self.output(h).squeeze(-1)


def silencing_mask(n_hidden: int, silenced_unit: int) -> torch.Tensor:
    """The ``keep`` multiplier: 1 for every hidden unit, 0 for ``silenced_unit`` (-1: none)."""
    keep = torch.ones(n_hidden)
    if silenced_unit >= 0:
        keep[silenced_unit] = 0.0
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
