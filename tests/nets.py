"""Test shorthand: the seed problem's two-layer network of a given size."""

from __future__ import annotations

from knockout.network import Architecture, KnockoutNet


def two_layer(n_inputs: int, n_hidden: int, activation: str = "linear") -> KnockoutNet:
    return KnockoutNet(Architecture(n_inputs, n_hidden, activation=activation))
