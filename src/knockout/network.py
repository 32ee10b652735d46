"""The network shared by the simulated fly and the fitted models.

inputs -> encoder layers -> silenceable bottleneck units -> decoder layers -> outputs

Inputs that are a history of frames (images [H, W], or feature vectors [F]) may first go
through a frame encoder shared across frames, as in the authors' KO network: convolutions
(``conv``: channels, kernel, stride each; images only), then a dense layer to
``frame_features`` features per frame; the frames' features, side by side, are what the
``encoder`` layers read.

The bottleneck units are the model's candidate neurons (one per cell type, as in the
paper's KO network): silencing and knockout masking act on them alone. Every hidden
layer (the frame encoder's, encoder, bottleneck, decoder) has the same activation; the
outputs (the behavioural variables) are linear. With ``batch_norm`` every hidden layer is
batch-normalised before its activation (:class:`BatchNorm`), as every hidden layer of the
authors' network is; silencing acts after it, on the bottleneck's activity. With no
encoder, no decoder and one output this is the two-layer network of the seed problem,
with the same four weight keys.

Outputs are continuous (the value itself, fitted by squared error) or binary (the last
``binary_outputs`` of them: the log-odds of an event such as a song pulse in that frame,
fitted by cross-entropy, as the authors' network gives song probabilities through a
sigmoid). :func:`output_losses` is the one definition of the loss both kinds take.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from knockout.inputs import Inputs

INIT_SCHEMES = ("glorot", "pytorch")
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda values: values,
    "relu": torch.relu,
    "tanh": torch.tanh,
}
"""Each hidden layer's activation by its config name: the one table the network and the
batched trainer (through autograd) read. Adding one is an entry here and its name in the
schema's ``activation`` enum (workflow/schemas/config.schema.yaml; tests/test_network.py
checks the two agree, and the network and training tests run every entry)."""


@dataclass(frozen=True)
class Architecture:
    """A network's shape: what the config's ``fly`` and ``model`` sections describe."""

    n_inputs: int
    n_hidden: int
    encoder: tuple[int, ...] = ()
    decoder: tuple[int, ...] = ()
    n_outputs: int = 1
    activation: str = "linear"
    binary_outputs: int = 0
    """How many of the outputs, the last ones, are binary (log-odds of an event)."""
    frame_shape: tuple[int, ...] = ()
    """One frame's shape, (H, W) or (F,), where the inputs are a history of frames (their
    ``n_inputs`` values are the frames flattened one after the other); () for plain inputs."""
    conv: tuple[tuple[int, int, int], ...] = ()
    """The frame encoder's convolutions: (channels, kernel, stride) each, padding kernel // 2."""
    frame_features: int = 0
    """Features per frame of the frame encoder's dense layer (0: no frame encoder)."""
    standardize: bool = False
    """Whether the network standardizes its inputs first, by the mean and scale it holds
    (``input_mean``, ``input_scale``: the training rows', set when it is trained:
    :func:`input_standardization`); frames of pixels near one background value train
    poorly without it."""
    batch_norm: bool = False
    """Whether every hidden layer is batch-normalised before its activation (:class:`BatchNorm`)."""

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} unknown (allowed: {', '.join(ACTIVATIONS)})")
        if not 0 <= self.binary_outputs <= self.n_outputs:
            raise ValueError(
                f"binary_outputs {self.binary_outputs} must lie in 0 .. n_outputs ({self.n_outputs})"
            )
        object.__setattr__(self, "encoder", tuple(self.encoder))
        object.__setattr__(self, "decoder", tuple(self.decoder))
        object.__setattr__(self, "frame_shape", tuple(self.frame_shape))
        object.__setattr__(self, "conv", tuple(tuple(layer) for layer in self.conv))
        if self.frame_features or self.conv:
            if not self.frame_shape or self.n_inputs % math.prod(self.frame_shape):
                raise ValueError(
                    f"a frame encoder needs inputs that are whole frames: {self.n_inputs} inputs, "
                    f"frames of {self.frame_shape or 'no shape'}"
                )
            if self.frame_features < 1:
                raise ValueError("a frame encoder's convolutions need frame_features >= 1 after them")
            if self.conv and len(self.frame_shape) != 2:
                raise ValueError(f"convolutions need image frames (H, W), not {self.frame_shape}")

    @property
    def frame_encoder(self) -> bool:
        """Whether a frame encoder shared across frames reads the inputs."""
        return self.frame_features > 0

    @property
    def history(self) -> int:
        """Frames per sample (1 for plain inputs)."""
        return self.n_inputs // math.prod(self.frame_shape) if self.frame_shape else 1

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(channels, height, width) of each frame after each convolution, the frame first."""
        shapes = [(1, *self.frame_shape)]
        for channels, kernel, stride in self.conv:
            _, height, width = shapes[-1]
            padding = kernel // 2
            shapes.append(
                (
                    channels,
                    (height + 2 * padding - kernel) // stride + 1,
                    (width + 2 * padding - kernel) // stride + 1,
                )
            )
        return shapes

    def binary_mask(self) -> torch.Tensor | None:
        """[n_outputs] bool: which outputs are binary (log-odds; cross-entropy); None where
        every output is continuous (so the losses skip the binary branch altogether)."""
        if not self.binary_outputs:
            return None
        return torch.arange(self.n_outputs) >= self.n_outputs - self.binary_outputs

    @property
    def two_layer(self) -> bool:
        """inputs -> bottleneck -> outputs, nothing in between (the seed problem's shape)."""
        return not self.encoder and not self.decoder and not self.frame_encoder

    def layer_names(self) -> list[str]:
        """The layers in order, as their ``state_dict`` prefixes."""
        return [
            *(f"conv.{i}" for i in range(len(self.conv))),
            *(["frame_features"] if self.frame_encoder else []),
            *(f"encoder.{i}" for i in range(len(self.encoder))),
            "hidden",
            *(f"decoder.{i}" for i in range(len(self.decoder))),
            "output",
        ]

    def normalized_layers(self) -> list[str]:
        """The layers batch-normalised before their activation (every hidden one where
        ``batch_norm``), in the order of :meth:`layer_names`."""
        return self.layer_names()[:-1] if self.batch_norm else []

    def normalized_widths(self) -> list[int]:
        """Units (a convolution's channels) of each of :meth:`normalized_layers`."""
        return [fan_out for _, fan_out in self.layer_sizes()[: len(self.normalized_layers())]]

    def layer_sizes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of each layer of ``layer_names``; a convolution's fan_in is its
        input channels x kernel x kernel, its fan_out its channels."""
        sizes = []
        if self.frame_encoder:
            shapes = self.conv_shapes()
            for (channels, kernel, _), (in_channels, _, _) in zip(self.conv, shapes, strict=False):
                sizes.append((in_channels * kernel * kernel, channels))
            frame_values = math.prod(shapes[-1]) if self.conv else math.prod(self.frame_shape)
            sizes.append((frame_values, self.frame_features))
        first = self.history * self.frame_features if self.frame_encoder else self.n_inputs
        widths = [first, *self.encoder, self.n_hidden, *self.decoder, self.n_outputs]
        return [*sizes, *itertools.pairwise(widths)]

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """The ``state_dict`` keys and shapes every weight file of this architecture has."""
        shapes = {}
        kernels = {f"conv.{i}": (kernel, kernel) for i, (_, kernel, _) in enumerate(self.conv)}
        for name, (fan_in, fan_out) in zip(self.layer_names(), self.layer_sizes(), strict=True):
            if name in kernels:
                kernel = kernels[name]
                shapes[f"{name}.weight"] = (fan_out, fan_in // math.prod(kernel), *kernel)
            else:
                shapes[f"{name}.weight"] = (fan_out, fan_in)
            shapes[f"{name}.bias"] = (fan_out,)
        if self.standardize:
            shapes |= {"input_mean": (self.n_inputs,), "input_scale": (self.n_inputs,)}
        for name, width in zip(self.normalized_layers(), self.normalized_widths(), strict=True):
            for entry in BatchNorm.ENTRIES:
                shapes[f"norms.{norm_key(name)}.{entry}"] = (width,)
        return shapes

    def values_per_sample(self) -> int:
        """Numbers one sample's pass holds, every layer's output together (the frame
        encoder's once per frame; a batch-normalised layer's twice, before and after): what
        sizes a step's activations."""
        sizes = self.layer_sizes()
        hidden_copies = 2 if self.batch_norm else 1
        per_frame = 0
        if self.frame_encoder:
            per_frame = sum(math.prod(shape) for shape in self.conv_shapes()[1:]) + self.frame_features
            sizes = sizes[len(self.conv) + 1 :]
        hidden = sum(fan_out for _, fan_out in sizes[:-1])
        return (per_frame * self.history + hidden) * hidden_copies + self.n_outputs

    def parameter_count(self) -> int:
        """Learned numbers of one network: weights and biases, and each batch-normalised
        unit's scale and shift."""
        weights = sum((fan_in + 1) * fan_out for fan_in, fan_out in self.layer_sizes())
        return weights + 2 * sum(self.normalized_widths())


BATCH_NORM_MOMENTUM = 0.01
"""The weight of each training batch's statistics in the running ones (PyTorch's convention;
Keras's default momentum 0.99, which the authors kept, is 0.01 here)."""
BATCH_NORM_EPS = 1e-3
"""Added to the variance before its square root (Keras's default, which the authors kept)."""


def norm_key(layer: str) -> str:
    """A layer's batch normalisation's key in ``KnockoutNet.norms`` (``encoder.0`` -> ``encoder_0``)."""
    return layer.replace(".", "_")


class BatchNorm(nn.Module):
    """Batch normalisation of one layer's units (a convolution's channels), before the
    activation: in training each unit is standardized over the batch's rows (and a
    convolution's positions), in evaluation by the running mean and variance that training
    left (:data:`BATCH_NORM_MOMENTUM`, the unbiased batch variance, as ``nn.BatchNorm1d``);
    then scaled by ``weight`` and shifted by ``bias``, both learned. Where a network is
    evaluated it is a fixed affine map of each unit. The batched trainer computes the same
    (:class:`knockout.training.stack.NetworkStack`); this module is what weight files hold
    and what evaluates them."""

    ENTRIES = ("weight", "bias", "running_mean", "running_var")
    """Its ``state_dict`` entries, each one number per unit."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(units))
        self.bias = nn.Parameter(torch.zeros(units))
        self.register_buffer("running_mean", torch.zeros(units))
        self.register_buffer("running_var", torch.ones(units))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(
            values,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            BATCH_NORM_MOMENTUM,
            BATCH_NORM_EPS,
        )


class KnockoutNet(nn.Module):
    """The network of an :class:`Architecture`; ``keep`` silences bottleneck units.

    ``keep`` multiplies the bottleneck activity (after the bias and the activation), so a
    0 entry sets that unit's value to 0 exactly as silencing a neuron does. It has shape
    ``[n_hidden]`` (one mask for the batch) or ``[batch, n_hidden]``. The output is
    ``[batch, n_outputs]``.
    """

    def __init__(self, architecture: Architecture) -> None:
        super().__init__()
        self.architecture = architecture
        sizes = dict(zip(architecture.layer_names(), architecture.layer_sizes(), strict=True))
        n_encoder, n_decoder = len(architecture.encoder), len(architecture.decoder)
        shapes = architecture.conv_shapes()
        self.conv = nn.ModuleList(
            nn.Conv2d(in_channels, channels, kernel, stride, padding=kernel // 2)
            for (channels, kernel, stride), (in_channels, _, _) in zip(
                architecture.conv, shapes, strict=False
            )
        )
        if architecture.frame_encoder:
            self.frame_features = nn.Linear(*sizes["frame_features"])
        self.encoder = nn.ModuleList(nn.Linear(*sizes[f"encoder.{i}"]) for i in range(n_encoder))
        if architecture.standardize:
            self.register_buffer("input_mean", torch.zeros(architecture.n_inputs))
            self.register_buffer("input_scale", torch.ones(architecture.n_inputs))
        self.hidden = nn.Linear(*sizes["hidden"])
        self.decoder = nn.ModuleList(nn.Linear(*sizes[f"decoder.{i}"]) for i in range(n_decoder))
        self.output = nn.Linear(*sizes["output"])
        self.norms = nn.ModuleDict(
            {
                norm_key(name): BatchNorm(width)
                for name, width in zip(
                    architecture.normalized_layers(), architecture.normalized_widths(), strict=True
                )
            }
        )

    @property
    def n_hidden(self) -> int:
        return self.architecture.n_hidden

    @property
    def activation(self) -> str:
        return self.architecture.activation

    def activate(self, values: torch.Tensor) -> torch.Tensor:
        """Every hidden layer's activation (the architecture's, from :data:`ACTIVATIONS`)."""
        return ACTIVATIONS[self.activation](values)

    def hidden_layer(self, name: str, layer: nn.Module, values: torch.Tensor) -> torch.Tensor:
        """``values`` through the hidden layer ``name`` (of ``Architecture.layer_names``):
        the layer, its batch normalisation where it has one, the activation."""
        values = layer(values)
        if self.architecture.batch_norm:
            values = self.norms[norm_key(name)](values)
        return self.activate(values)

    def layers(self) -> list[nn.Linear | nn.Conv2d]:
        """Every layer, in the order of ``Architecture.layer_names``."""
        frames = [*self.conv, self.frame_features] if self.architecture.frame_encoder else []
        return [*frames, *self.encoder, self.hidden, *self.decoder, self.output]

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs [batch, history x frame] as the frame encoder gives them: each frame through
        the same convolutions and dense layer, the frames' features side by side
        [batch, history x frame_features] (oldest frame first)."""
        architecture = self.architecture
        frames = x.reshape(len(x) * architecture.history, *architecture.frame_shape)
        if self.conv:
            frames = frames.unsqueeze(1)
            for index, layer in enumerate(self.conv):
                frames = self.hidden_layer(f"conv.{index}", layer, frames)
        features = self.hidden_layer("frame_features", self.frame_features, frames.flatten(1))
        return features.reshape(len(x), -1)

    def standardized(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs as the first layer reads them: z-scored where the architecture says so."""
        return (x - self.input_mean) / self.input_scale if self.architecture.standardize else x

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck units' values [batch, n_hidden]: what a neural recording would see."""
        x = self.standardized(x)
        if self.architecture.frame_encoder:
            x = self.encode_frames(x)
        for index, layer in enumerate(self.encoder):
            x = self.hidden_layer(f"encoder.{index}", layer, x)
        return self.hidden_layer("hidden", self.hidden, x)

    def decode(self, activity: torch.Tensor) -> torch.Tensor:
        """The outputs [batch, n_outputs] that the bottleneck's ``activity`` drives."""
        for index, layer in enumerate(self.decoder):
            activity = self.hidden_layer(f"decoder.{index}", layer, activity)
        return self.output(activity)

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None = None, centre: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Outputs for inputs ``x`` with the bottleneck silenced by ``keep``: a silenced unit
        takes the value ``centre`` [n_hidden] (None: 0, the ``zero`` silencing mode; a
        unit's mean activity over control data: ``centered``, :func:`silenced`)."""
        return self.decode(silenced(self.activity(x), keep, centre))


def silenced(activity: torch.Tensor, keep: torch.Tensor | None, centre: torch.Tensor | None) -> torch.Tensor:
    """Bottleneck ``activity`` with each unit moved ``1 - keep`` of the way to ``centre``
    (None: 0). keep 0 silences a unit: to 0 (``zero``), or clamped to its mean over control
    data (``centered``, the authors' "knockout-centered", which keeps the decoder in the
    range of inputs it was trained on); keep 1 leaves it."""
    if keep is None:
        return activity
    if centre is None:
        return activity * keep
    return activity * keep + (1 - keep) * centre


def output_losses(predicted: torch.Tensor, target: torch.Tensor, binary: torch.Tensor | None) -> torch.Tensor:
    """Each output value's loss, elementwise: the squared error of a continuous output, the
    cross-entropy -[y log p + (1 - y) log(1 - p)] of a binary one whose ``predicted`` value
    is the log-odds (p = sigmoid(predicted)), written as softplus(z) - y z so that it stays
    finite for any z. ``binary`` is a bool mask broadcasting against ``predicted`` (None:
    every output continuous). Training, relabelling and the knockout objective all take
    their loss from here; each output weighs the same in their mean."""
    errors = predicted - target
    squared = errors * errors
    if binary is None:
        return squared
    return torch.where(binary, torch.nn.functional.softplus(predicted) - target * predicted, squared)


def event_probabilities(outputs: torch.Tensor, architecture: Architecture) -> torch.Tensor:
    """Outputs [rows, n_outputs] as what they predict: a continuous output as it is, a
    binary one's log-odds as the event's probability."""
    binary = architecture.binary_mask()
    return (
        outputs if binary is None else torch.where(binary.to(outputs.device), torch.sigmoid(outputs), outputs)
    )


STANDARDIZATION_CHUNK_ROWS = 4096
"""Rows :func:`input_standardization` takes at a time, so that its float64 sums never hold
more than this many rows (a frames folder's inputs are large)."""


def input_standardization(
    x: Inputs | torch.Tensor, pooled: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, scale) per input over the rows ``x`` (a tensor [rows, d], or
    :class:`~knockout.inputs.Inputs`, gathered a chunk at a time), summed in float64: each input's mean,
    and its standard deviation (1 for an input that never varies there), or where ``pooled``
    (the pixels of frames, one kind of value) the standard deviation of every input about
    its mean, shared: a pixel the target seldom crosses would otherwise be magnified into
    what the network keys on. Two passes over chunks of rows: no float64 copy of ``x``."""
    x = x if isinstance(x, Inputs) else Inputs(x)
    mean = sum(chunk.double().sum(dim=0) for chunk in x.chunks(STANDARDIZATION_CHUNK_ROWS)) / len(x)
    squares = sum(
        (chunk.double() - mean).square().sum(dim=0) for chunk in x.chunks(STANDARDIZATION_CHUNK_ROWS)
    )
    squares = squares / len(x)
    if pooled:
        spread = squares.mean().sqrt()
        scale = torch.full_like(mean, spread.item() if spread > 0 else 1.0)
    else:
        scale = squares.sqrt()
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return mean.float(), scale.float()


def keep_matrix(
    masked: Sequence[Iterable[int]], n_hidden: int, remaining: float = 0.0, *, device="cpu"
) -> torch.Tensor:
    """[rows, n_hidden] ``keep`` multipliers: ``remaining`` (0: fully masked) at each row's
    ``masked`` units, 1 elsewhere. A unit the network does not have (negative, or a fly unit
    past a smaller model's last) masks nothing. The one place keep multipliers are built:
    training batches (what a model's masking masks, :mod:`knockout.masking`), test sets,
    the fly's own silencing, relabelling."""
    keep = torch.ones(len(masked), n_hidden)
    rows, units = [], []
    for row, row_units in enumerate(masked):
        for unit in row_units:
            if 0 <= unit < n_hidden:
                rows.append(row)
                units.append(unit)
    keep[torch.tensor(rows, dtype=torch.int64), torch.tensor(units, dtype=torch.int64)] = remaining
    return keep.to(device)


def silencing_mask(n_hidden: int, silenced_unit: int, remaining: float = 0.0) -> torch.Tensor:
    """The ``keep`` multiplier: 1 for every bottleneck unit, ``remaining`` for ``silenced_unit``.

    -1, or a unit the network does not have (a model smaller than the fly), silences
    nothing. ``remaining`` > 0 is an incomplete silencing that leaves that fraction.
    """
    return keep_matrix([(silenced_unit,)], n_hidden, remaining)[0]


def initialize(net: KnockoutNet, scheme: str, generator: torch.Generator) -> KnockoutNet:
    """Draw all weights from ``generator``, layer by layer from the input side (so a seed
    fixes them on any device).

    glorot: Glorot/Xavier-uniform weights, zero biases (Keras' default, used by the
    paper's authors). pytorch: ``nn.Linear``'s default, U(+-1/sqrt(fan_in)) for
    weights and biases.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init scheme {scheme!r} unknown (allowed: {', '.join(INIT_SCHEMES)})")
    with torch.no_grad():
        for layer in net.layers():
            receptive = math.prod(layer.weight.shape[2:])  # a convolution's kernel; 1 for a dense layer
            fan_out, fan_in = layer.weight.shape[0] * receptive, layer.weight.shape[1] * receptive
            if scheme == "glorot":
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.zero_()
            else:
                bound = 1.0 / math.sqrt(fan_in)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    return net
