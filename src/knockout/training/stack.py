"""Many networks of one architecture as one parameter buffer, and their gradients.

Member m's parameters are row m of a [members, P] buffer. Each layer is a view
[members, fan_out, fan_in + 1] of it: every unit's weights followed by its bias, as
``nn.Linear`` holds them. Values flow as [members, units, rows], with a row of ones under
the inputs, so the first layer (bias included) is one batched matrix product, and the
others are a product plus their bias. The optimizer updates every parameter of every
member with a few kernels, and its state (two more buffers) follows the same layout.

The layout is chosen for PyTorch's CPU kernels, measured: with rows in the middle
dimension, the biases and masks broadcast along short rows of units and the elementwise
steps (the bias, the mask, the activation's backward) ran several times slower than the
matrix products; a matrix times a vector, and ``baddbmm`` with a broadcast bias, take
several times longer than a vector times a matrix.

Gradients come from autograd for every architecture (:meth:`NetworkStack.gradient_function`).
For the seed problem's linear two-layer network a closed form costs about 10x fewer
operations per step (``closed_form=True`` where :func:`closed_form_fits`; ``make bench``
measures both in the batched setting, and the tests compare them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from knockout.network import ACTIVATIONS, Architecture, KnockoutNet, output_losses, silenced

GradientFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
ROW_ALIGNMENT = 16
"""Each network's row of the buffer is padded to a multiple of this many numbers (64
bytes), so every network's parameters start on the same alignment whatever its place in
the batch: vectorised kernels then round them alike, and a network comes out the same
bytes alone or beside others (the padding stays 0: no gradient reaches it)."""


def closed_form_fits(architecture: Architecture) -> bool:
    """The closed-form gradient covers the seed problem's shape: linear, two layers, one
    continuous output (and zero silencing: :meth:`NetworkStack.gradient_function`)."""
    return (
        architecture.two_layer
        and architecture.activation == "linear"
        and architecture.n_outputs == 1
        and not architecture.binary_outputs
    )


def with_ones(inputs: torch.Tensor) -> torch.Tensor:
    """Inputs [..., rows, d] as the stack reads them: [..., d + 1, rows], a row of ones last."""
    ones = torch.ones(*inputs.shape[:-1], 1, dtype=inputs.dtype, device=inputs.device)
    return torch.cat([inputs, ones], dim=-1).transpose(-1, -2)


class NetworkStack:
    """``n_members`` networks of ``architecture``; ``params`` [members, P] holds them all."""

    def __init__(
        self, architecture: Architecture, n_members: int, device: torch.device | str = "cpu"
    ) -> None:
        self.architecture = architecture
        self.activate = ACTIVATIONS[architecture.activation]
        self.bottleneck = architecture.layer_names().index("hidden")
        """The index of the bottleneck layer (the silenceable units) in :meth:`layers`."""
        self.frame_layers = len(architecture.conv) + architecture.frame_encoder
        """The frame encoder's layers, first in :meth:`layers` (convolutions, then its dense layer)."""
        self.shapes = architecture.layer_sizes()
        self.used = sum((fan_in + 1) * fan_out for fan_in, fan_out in self.shapes)
        """Numbers of a network's row that hold its parameters (the rest is padding)."""
        self.size = -(-self.used // ROW_ALIGNMENT) * ROW_ALIGNMENT
        self.params = torch.zeros(n_members, self.size, device=device)

    @classmethod
    def of(cls, nets: list[KnockoutNet], device: torch.device | str = "cpu") -> NetworkStack:
        """A stack holding copies of ``nets`` (all of one architecture)."""
        stack = cls(nets[0].architecture, len(nets), device)
        with torch.no_grad():
            for member, net in enumerate(nets):
                for layer, linear in zip(stack.layers(stack.params), net.layers(), strict=True):
                    layer[member] = torch.cat([linear.weight.flatten(1), linear.bias[:, None]], dim=1)
        return stack

    @property
    def n_members(self) -> int:
        return len(self.params)

    def layers(self, buffer: torch.Tensor) -> list[torch.Tensor]:
        """Each layer as a view [members, fan_out, fan_in + 1] of ``buffer`` (the parameters,
        or a buffer of the same layout: a gradient, an optimizer state, a subset of members)."""
        views, start = [], 0
        for fan_in, fan_out in self.shapes:
            views.append(buffer[:, start : start + (fan_in + 1) * fan_out].view(-1, fan_out, fan_in + 1))
            start += (fan_in + 1) * fan_out
        return views

    def network(self, member: int) -> KnockoutNet:
        """Member ``member`` as an ordinary network, on the CPU."""
        net = KnockoutNet(self.architecture)
        with torch.no_grad():
            for linear, layer in zip(
                net.layers(), self.layers(self.params[member : member + 1]), strict=True
            ):
                linear.weight.copy_(layer[0, :, :-1].reshape(linear.weight.shape).cpu())
                linear.bias.copy_(layer[0, :, -1].cpu())
        return net.eval()

    # ------------------------------------------------------------------------------- forward

    def _apply(self, values: torch.Tensor, layers: list[torch.Tensor], activate_last: bool) -> torch.Tensor:
        """Values [members, fan_in, rows] through ``layers`` (the first one's input carries no ones)."""
        for index, layer in enumerate(layers):
            values = torch.bmm(layer[:, :, :-1], values) + layer[:, :, -1:]
            if activate_last or index < len(layers) - 1:
                values = self.activate(values)
        return values

    def activity(self, inputs: torch.Tensor, layers: list[torch.Tensor], group: int = 1) -> torch.Tensor:
        """Bottleneck activity [members, h, rows] for inputs [members / group, d + 1, rows]
        (:func:`with_ones`; a view expanded from [d + 1, rows] when every member reads the
        same rows). Each group of ``group`` consecutive members reads the same rows (the
        restarts of one model), so the first layer is one matrix product per group."""
        if self.frame_layers:
            features = self._frame_features(inputs[:, :-1], layers, group)
            return self._apply(features, layers[self.frame_layers : self.bottleneck + 1], activate_last=True)
        first, *rest = layers[: self.bottleneck + 1]
        n_members, fan_out, fan_in = first.shape
        if group > 1:
            grouped = first.reshape(n_members // group, group * fan_out, fan_in)
            values = torch.bmm(grouped, inputs).view(n_members, fan_out, -1)
        else:
            values = torch.bmm(first, inputs)
        return self._apply(self.activate(values), rest, activate_last=True) if rest else self.activate(values)

    def _frame_features(self, inputs: torch.Tensor, layers: list[torch.Tensor], group: int) -> torch.Tensor:
        """The frame encoder of every member: inputs [groups, history x frame, rows] to the
        frames' features side by side [members, history x frame_features, rows], as
        :meth:`knockout.network.KnockoutNet.encode_frames` gives them one network at a time.

        Every member's convolutions run as one grouped convolution: the frames (rows x
        history of them) are the batch, each group's frames one input channel, and each
        member's channels a group of the output; the frame encoder's dense layer is then a
        matrix product per member (per group where there are no convolutions)."""
        architecture = self.architecture
        history, n_groups, rows = architecture.history, len(inputs), inputs.shape[2]
        n_members = n_groups * group
        dense = layers[self.frame_layers - 1]
        if architecture.conv:
            height, width = architecture.frame_shape
            frames = inputs.reshape(n_groups, history, height, width, rows).permute(4, 1, 0, 2, 3)
            frames = frames.reshape(rows * history, n_groups, height, width)  # frame index: row x history + t
            shapes = architecture.conv_shapes()
            for index, ((channels, kernel, stride), layer) in enumerate(
                zip(architecture.conv, layers, strict=False)
            ):
                weight = layer[:, :, :-1].reshape(n_members * channels, shapes[index][0], kernel, kernel)
                frames = torch.nn.functional.conv2d(
                    frames,
                    weight,
                    layer[:, :, -1].reshape(-1),
                    stride=stride,
                    padding=kernel // 2,
                    groups=n_groups if index == 0 else n_members,
                )
                frames = self.activate(frames)
            flat = frames.reshape(rows * history, n_members, -1).permute(1, 2, 0)  # [members, values, frames]
            values = torch.bmm(dense[:, :, :-1], flat)
        else:
            size = architecture.frame_shape[0]
            flat = (
                inputs.reshape(n_groups, history, size, rows).permute(0, 2, 3, 1).reshape(n_groups, size, -1)
            )
            weight = dense[:, :, :-1]
            grouped = weight.reshape(n_groups, group * weight.shape[1], size)
            values = torch.bmm(grouped, flat).view(n_members, weight.shape[1], -1)
        features = self.activate(values + dense[:, :, -1:])  # [members, frame_features, rows x history]
        n_features = features.shape[1]
        return (
            features.view(n_members, n_features, rows, history)
            .permute(0, 3, 1, 2)
            .reshape(n_members, -1, rows)
        )

    def decode(
        self,
        activity: torch.Tensor,
        layers: list[torch.Tensor],
        keep: torch.Tensor | None = None,
        centre: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Outputs [members, n_outputs, rows] from bottleneck activity [members, h, rows].

        ``keep`` masks the bottleneck: [members, 1, h], one mask per member, is folded into
        the next layer's weights (a masked unit's weights out are zeroed: the same outputs
        and gradients, without a pass over the activity); [members or 1, h, rows], a mask
        per row, multiplies the activity. A masked unit takes the value ``centre``
        [members, h, 1] (None: 0; :func:`knockout.network.silenced`): with a mask per
        member, its weights out times the centre join the next layer's bias."""
        decoder = layers[self.bottleneck + 1 :]
        if keep is not None and keep.shape[1] == 1:
            first, *rest = decoder
            ones = torch.ones_like(keep[:, :, :1])
            folded = first * torch.cat([keep, ones], dim=2)
            if centre is not None:
                shift = torch.bmm(first[:, :, :-1], (1 - keep).transpose(1, 2) * centre)
                folded = torch.cat([folded[:, :, :-1], folded[:, :, -1:] + shift], dim=2)
            decoder = [folded, *rest]
        else:
            activity = silenced(activity, keep, centre)
        return self._apply(activity, decoder, activate_last=False)

    def predict(
        self,
        inputs: torch.Tensor,
        layers: list[torch.Tensor],
        keep: torch.Tensor | None = None,
        centre: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Outputs [members, n_outputs, rows] for inputs [members, d + 1, rows], the
        bottleneck masked by ``keep`` (as :meth:`decode` takes it)."""
        return self.decode(self.activity(inputs, layers), layers, keep, centre)

    # ----------------------------------------------------------------------------- gradients

    def gradient_function(
        self,
        out: torch.Tensor,
        closed_form: bool = False,
        group: int = 1,
        centered: torch.Tensor | None = None,
    ) -> GradientFunction:
        """A function of a batch that writes every member's gradient into ``out`` [members, P]
        and returns each member's mean loss on its batch [members] (squared error for a
        continuous output, cross-entropy for a binary one: :func:`~knockout.network.output_losses`).

        Consecutive members come in groups of ``group`` that read the same rows (a model's
        restarts). Its arguments: ``x`` [groups, batch, d + 1], the inputs with a column of
        ones, ``y`` [groups, batch, outputs], ``weight`` [groups, batch, 1], each row's
        weight in the loss (1 / (rows x outputs) for a batch, 0 on padding rows and where a
        group has no batch), and ``keep`` [members, 1, h], each member's mask. Members share
        no parameter, so each one's gradient is its own loss's. ``centered`` [members] bool:
        the members whose masked units are clamped to their mean over the batch's rows (the
        ``centered`` silencing mode in training: the batch's stimuli are drawn as the control
        data's are, so their mean activity estimates the unit's mean on control data) rather
        than set to 0 (None: none). ``closed_form``: :meth:`_linear_gradient` (where
        :func:`closed_form_fits`, with zero silencing), else autograd.
        """
        if closed_form:
            if not closed_form_fits(self.architecture) or centered is not None:
                shape = "linear two-layer one-output networks with zero silencing"
                raise ValueError(f"the closed-form gradient is for {shape}, not {self.architecture}")
            layers, gradient_layers = self.layers(self.params), self.layers(out)
            return functools.partial(self._linear_gradient, layers, gradient_layers, group)
        leaves = [layer.requires_grad_() for layer in self.layers(self.params)]
        n_members, n_outputs = len(out), self.architecture.n_outputs
        binary = self.architecture.binary_mask()
        binary = None if binary is None else binary.to(out.device).view(1, 1, n_outputs, 1)
        centre_weight = None if centered is None else centered.view(-1, 1, 1).float()  # 1: centered, 0: zero

        def autograd_gradient(x, y, weight, keep):
            groups = len(x)
            with torch.enable_grad():
                activity = self.activity(x.transpose(1, 2), leaves, group)
                centre = None
                if centre_weight is not None:
                    valid = (weight > 0).transpose(1, 2).float().repeat_interleave(group, dim=0)
                    mean = (activity * valid).sum(dim=2, keepdim=True) / valid.sum(dim=2, keepdim=True).clamp(
                        min=1
                    )
                    centre = mean * centre_weight
                predicted = self.decode(activity, leaves, keep, centre)
                losses = output_losses(
                    predicted.view(groups, group, n_outputs, -1), y.transpose(1, 2)[:, None], binary
                )
                weighted = weight.transpose(1, 2)[:, None] * losses
                losses = weighted.sum(dim=(2, 3)).view(n_members)
                grads = torch.autograd.grad(losses.sum(), leaves)
            torch.cat([grad.reshape(n_members, -1) for grad in grads], dim=1, out=out[:, : self.used])
            return losses.detach()

        return autograd_gradient

    @staticmethod
    def _linear_gradient(layers, gradient_layers, group, x, y, weight, keep) -> torch.Tensor:
        """The gradient of a linear two-layer network with one output, in closed form.

        With every row of a batch under one mask k and no activation, the network is the
        linear map x -> x . a + b2 with a = (k * w2) W1 (W1 with its bias column, x with its
        ones), so the prediction costs a dot product with a [d + 1] instead of the hidden
        layer; with delta = 2 weight (prediction - y) and u = x' delta the gradients are
        dW1 = (k * w2)' u', dw2 = k * (W1 u), db2 = sum(delta): O(batch x d + d x h) numbers
        per member and step instead of O(batch x d x h). The members of a group share their
        rows, so the predictions and u are one product per group.
        """
        first, second = layers
        gradient_first, gradient_second = gradient_layers
        groups, n_members = len(x), len(first)
        kept_w2 = second[:, :, :-1] * keep  # (k * w2) [members, 1, h]
        direction = torch.bmm(kept_w2, first)  # a [members, 1, d + 1]
        predicted = torch.bmm(direction.view(groups, group, -1), x.transpose(1, 2))  # [groups, group, batch]
        errors = predicted.add_(second[:, :, -1].view(groups, group, 1)).sub_(y.transpose(1, 2))
        weighted = weight.transpose(1, 2) * errors
        delta = weighted * 2.0
        input_side = torch.bmm(delta, x).view(n_members, 1, -1)  # u' [members, 1, d + 1]
        torch.mul(kept_w2.transpose(1, 2), input_side, out=gradient_first)
        gradient_second[:, :, :-1] = torch.bmm(input_side, first.transpose(1, 2)).mul_(keep)
        gradient_second[:, :, -1] = delta.sum(dim=2).view(n_members, 1)
        return (weighted * errors).sum(dim=2).view(n_members)

    # --------------------------------------------------------------------------- relabelling

    def permute_units(self, member: int, order: torch.Tensor, buffer: torch.Tensor) -> None:
        """Reorder one member's bottleneck units in ``buffer`` (the parameters, or an
        optimizer state of the same layout): unit k becomes old unit ``order[k]``. The
        network computes the same function; only the units' names change."""
        layers = self.layers(buffer)
        into, out_of = layers[self.bottleneck], layers[self.bottleneck + 1]
        with torch.no_grad():
            into[member] = into[member][order, :]
            out_of[member, :, :-1] = out_of[member, :, :-1][:, order]
