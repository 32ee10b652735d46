"""KnockoutNet: every architecture's forward pass, silencing through ``keep``, and the two
weight initializations."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from nets import two_layer

from knockout.network import ACTIVATIONS, INIT_SCHEMES, Architecture, KnockoutNet, initialize, silencing_mask


def make_net(n_inputs=6, n_hidden=4, scheme="pytorch", seed=0) -> KnockoutNet:
    return initialize(two_layer(n_inputs, n_hidden), scheme, torch.Generator().manual_seed(seed))


def manual_forward(net: KnockoutNet, x: torch.Tensor, silenced: list[int]) -> torch.Tensor:
    """Hidden values computed by hand (bias included), silenced units set to 0, then the output."""
    w_in, b_in = net.hidden.weight.detach().double(), net.hidden.bias.detach().double()
    w_out, b_out = net.output.weight.detach().double(), net.output.bias.detach().double()
    h = x.double() @ w_in.T + b_in
    h[:, silenced] = 0.0
    return h @ w_out.T + b_out


@pytest.fixture
def x():
    return torch.randn(7, 6, generator=torch.Generator().manual_seed(1))


def test_forward_without_keep_is_the_plain_two_layer_map(x):
    net = make_net()
    with torch.no_grad():
        out = net(x)
    assert out.shape == (7, 1)
    torch.testing.assert_close(out.double(), manual_forward(net, x, []), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("unit", range(4))
def test_keep_zeroes_exactly_the_silenced_unit_after_the_bias(x, unit):
    net = make_net()  # pytorch init: nonzero biases, so "after the bias" matters
    keep = torch.ones(4)
    keep[unit] = 0.0
    with torch.no_grad():
        silenced = net(x, keep).double()
        intact = net(x).double()
    torch.testing.assert_close(silenced, manual_forward(net, x, [unit]), rtol=1e-5, atol=1e-6)
    # The output lost exactly w_out[unit] * h[unit], the bias included.
    h_unit = x.double() @ net.hidden.weight[unit].detach().double() + net.hidden.bias[unit].item()
    lost = net.output.weight[0, unit].item() * h_unit
    torch.testing.assert_close(intact - silenced, lost[:, None], rtol=1e-5, atol=1e-6)
    # Zeroing only the unit's input weights would leave its bias in the output.
    assert abs(net.hidden.bias[unit].item() * net.output.weight[0, unit].item()) > 1e-4


def test_batchwise_keep_applies_each_row_its_own_mask(x):
    net = make_net()
    silenced = [-1, 0, 1, 2, 3, 0, 2]
    keep = torch.ones(7, 4)
    for row, unit in enumerate(silenced):
        if unit >= 0:
            keep[row, unit] = 0.0
    with torch.no_grad():
        out = net(x, keep).double()
    for row, unit in enumerate(silenced):
        expected = manual_forward(net, x[row : row + 1], [unit] if unit >= 0 else [])
        torch.testing.assert_close(out[row : row + 1], expected, rtol=1e-5, atol=1e-6)
    # Different masks really give different outputs for the same input.
    with torch.no_grad():
        assert not torch.allclose(net(x[:1], keep[1]), net(x[:1], keep[2]))


def test_glorot_init_has_zero_biases_and_bounded_weights():
    net = make_net(n_inputs=50, n_hidden=16, scheme="glorot")
    for layer in (net.hidden, net.output):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert torch.count_nonzero(layer.bias) == 0
        assert layer.weight.abs().max() <= bound
        # Uniform on the whole interval, not a narrower one.
        assert layer.weight.abs().max() > 0.8 * bound
    hidden_bound = math.sqrt(6.0 / 66)
    # Mean of U(-b, b) is 0 and its std is b / sqrt(3) (800 draws: std of the mean ~ 0.01 b).
    assert abs(net.hidden.weight.mean().item()) < 0.06 * hidden_bound
    assert net.hidden.weight.std().item() == pytest.approx(hidden_bound / math.sqrt(3), rel=0.1)


def test_pytorch_init_bounds_by_fan_in_with_nonzero_biases():
    net = make_net(n_inputs=50, n_hidden=16, scheme="pytorch")
    for layer in (net.hidden, net.output):
        bound = 1.0 / math.sqrt(layer.weight.shape[1])
        assert layer.weight.abs().max() <= bound
        assert layer.bias.abs().max() <= bound
        assert layer.weight.abs().max() > 0.8 * bound
        assert torch.all(layer.bias != 0)
    # The fan-in bound is not glorot's: the output layer's 1/sqrt(16) = 0.25 < sqrt(6/17) = 0.59.
    assert net.output.weight.abs().max() <= 0.25


def test_unknown_init_scheme_names_the_allowed_ones():
    with pytest.raises(ValueError, match="xavier") as info:
        initialize(two_layer(3, 2), "xavier", torch.Generator())
    for scheme in INIT_SCHEMES:
        assert scheme in str(info.value)


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_same_generator_seed_gives_identical_weights(scheme):
    torch.manual_seed(123)  # the global RNG must play no part
    a = make_net(scheme=scheme, seed=5)
    torch.manual_seed(456)
    b = make_net(scheme=scheme, seed=5)
    c = make_net(scheme=scheme, seed=6)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.hidden.weight, c.hidden.weight)
    assert not torch.equal(a.output.weight, c.output.weight)


def test_expected_shapes_match_the_network_state_dict():
    net = two_layer(6, 4)
    assert net.architecture.expected_shapes() == {
        "hidden.weight": (4, 6),
        "hidden.bias": (4,),
        "output.weight": (1, 4),
        "output.bias": (1,),
    }
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == net.architecture.expected_shapes()
    assert net.n_hidden == 4


ARCHITECTURES = [
    Architecture(6, 4),
    Architecture(6, 4, activation="relu", n_outputs=3),
    Architecture(6, 4, encoder=(8,), activation="relu"),
    Architecture(6, 4, decoder=(5, 7), n_outputs=2, activation="relu"),
    Architecture(6, 4, encoder=(9, 3), decoder=(5,), n_outputs=3, activation="linear"),
    *(Architecture(6, 4, decoder=(5,), activation=a) for a in ACTIVATIONS if a not in ("linear", "relu")),
]


def manual_deep_forward(net: KnockoutNet, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Layer by layer from the state dict, in float64: activation on every hidden layer,
    ``keep`` after the bottleneck's activation, linear outputs."""
    state = {k: v.double() for k, v in net.state_dict().items()}
    names = net.architecture.layer_names()
    values = x.double()
    for name in names:
        values = values @ state[f"{name}.weight"].T + state[f"{name}.bias"]
        if name != "output":
            values = ACTIVATIONS[net.activation](values)
        if name == "hidden":
            values = values * keep.double()
    return values


@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=str)
def test_every_architecture_computes_its_layers_and_silences_the_bottleneck(x, architecture):
    net = initialize(KnockoutNet(architecture), "pytorch", torch.Generator().manual_seed(3))
    expected_keys = architecture.expected_shapes()
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected_keys
    for key in expected_keys:  # the documented key names
        assert key.split(".")[0] in {"encoder", "hidden", "decoder", "output"}
    assert sum(key.startswith("encoder.") for key in expected_keys) == 2 * len(architecture.encoder)
    assert sum(key.startswith("decoder.") for key in expected_keys) == 2 * len(architecture.decoder)
    for unit in (-1, 0, 3):
        keep = silencing_mask(4, unit)
        with torch.no_grad():
            out = net(x, keep)
        assert out.shape == (7, architecture.n_outputs)
        torch.testing.assert_close(out.double(), manual_deep_forward(net, x, keep), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        activity = net.activity(x)
        silenced = net(x, silencing_mask(4, 1))
        by_hand = net.decode(activity * silencing_mask(4, 1))
    assert activity.shape == (7, 4)
    torch.testing.assert_close(silenced, by_hand)
    # silencing changes the output (the unit is wired to it)
    assert not torch.allclose(silenced, net(x).detach())


def test_an_unknown_activation_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="softsign") as info:
        Architecture(3, 2, activation="softsign")
    assert all(name in str(info.value) for name in ACTIVATIONS)


def test_the_config_allows_exactly_the_activations_the_network_has():
    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["$defs"]["activation"]["enum"] == list(ACTIVATIONS)
