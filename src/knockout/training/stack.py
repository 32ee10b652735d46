"""Many networks of one architecture as one parameter buffer, and their gradients.

Member m's parameters are row m of a [members, P] buffer. Each layer is a view
[members, fan_out, fan_in + 1] of it: every unit's weights followed by its bias, as
``nn.Linear`` holds them; after the layers come the batch normalisations' scales and
shifts, a view [members, 2, units] each (their running statistics, which are not
learned, sit in a buffer of their own, ``running``). Values flow as [members, units,
rows], with a row of ones under the inputs, so the first layer (bias included) is one
batched matrix product, and the others are a product plus their bias. The optimizer
updates every parameter of every member with a few kernels, and its state (two more
buffers) follows the same layout.

The layout is chosen for PyTorch's CPU kernels, measured: with rows in the middle
dimension, the biases and masks broadcast along short rows of units and the elementwise
steps (the bias, the mask, the activation's backward) ran several times slower than the
matrix products; a matrix times a vector, and ``baddbmm`` with a broadcast bias, take
several times longer than a vector times a matrix.

Batch normalisation (:class:`knockout.network.BatchNorm`) is computed in training from each
member's batch rows alone (a padded row, or a member without a batch, counts for nothing);
everywhere else a network is evaluated its normalisation is a fixed affine map, folded
into the layer before it (:meth:`NetworkStack.evaluation_layers`).

Gradients come from autograd for every architecture (:meth:`NetworkStack.gradient_function`).
For the seed problem's linear two-layer network a closed form costs about 10x fewer
operations per step (``closed_form=True`` where :func:`closed_form_fits`; ``make bench``
measures both in the batched setting, and the tests compare them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from knockout.network import (
    ACTIVATIONS,
    BATCH_NORM_EPS,
    BATCH_NORM_MOMENTUM,
    Architecture,
    KnockoutNet,
    output_losses,
    silenced,
)

GradientFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
ROW_ALIGNMENT = 16
"""Each network's row of the buffer is padded to a multiple of this many numbers (64
bytes), so every network's parameters start on the same alignment whatever its place in
the batch: vectorised kernels then round them alike, and a network comes out the same
bytes alone or beside others (the padding stays 0: no gradient reaches it)."""


def closed_form_fits(architecture: Architecture) -> bool:
    """The closed-form gradient covers the seed problem's shape: linear, two layers, one
    continuous output, no batch normalisation (and zero silencing:
    :meth:`NetworkStack.gradient_function`)."""
    return (
        architecture.two_layer
        and architecture.activation == "linear"
        and not architecture.batch_norm
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
        self.norm_widths = architecture.normalized_widths()
        """Units of each batch-normalised layer (the first ``len(norm_widths)`` layers)."""
        self.used = sum((fan_in + 1) * fan_out for fan_in, fan_out in self.shapes) + 2 * sum(self.norm_widths)
        """Numbers of a network's row that hold its parameters (the rest is padding)."""
        self.size = -(-self.used // ROW_ALIGNMENT) * ROW_ALIGNMENT
        self.params = torch.zeros(n_members, self.size, device=device)
        self.running = torch.zeros(n_members, 2 * sum(self.norm_widths), device=device)
        """Each batch normalisation's running mean and variance, a view [members, 2, units]
        each (:meth:`running_statistics`)."""
        for statistics in self.running_statistics():
            statistics[:, 1] = 1.0

    @classmethod
    def of(cls, nets: list[KnockoutNet], device: torch.device | str = "cpu") -> NetworkStack:
        """A stack holding copies of ``nets`` (all of one architecture)."""
        stack = cls(nets[0].architecture, len(nets), device)
        with torch.no_grad():
            for member, net in enumerate(nets):
                for layer, linear in zip(stack.layers(stack.params), net.layers(), strict=True):
                    layer[member] = torch.cat([linear.weight.flatten(1), linear.bias[:, None]], dim=1)
                learned_norms, running_norms = stack.norms(stack.params), stack.running_statistics()
                norms = zip(learned_norms, running_norms, net.norms.values(), strict=True)
                for learned, running, norm in norms:
                    learned[member] = torch.stack([norm.weight, norm.bias])
                    running[member] = torch.stack([norm.running_mean, norm.running_var])
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

    def norms(self, buffer: torch.Tensor) -> list[torch.Tensor]:
        """Each batch normalisation's scale and shift as a view [members, 2, units] of
        ``buffer`` (of the parameters' layout), after the layers."""
        views, start = [], sum((fan_in + 1) * fan_out for fan_in, fan_out in self.shapes)
        for width in self.norm_widths:
            views.append(buffer[:, start : start + 2 * width].view(-1, 2, width))
            start += 2 * width
        return views

    def running_statistics(self) -> list[torch.Tensor]:
        """Each batch normalisation's running mean and variance, a view [members, 2, units]
        of ``running``."""
        if not self.norm_widths:
            return []
        views = self.running.split([2 * width for width in self.norm_widths], dim=1)
        return [view.view(-1, 2, width) for view, width in zip(views, self.norm_widths, strict=True)]

    def evaluation_layers(self, members: torch.Tensor) -> list[torch.Tensor]:
        """The layers [len(members), fan_out, fan_in + 1] of ``members`` (indices) as they are
        evaluated: each batch normalisation, by its running statistics a fixed affine map of
        its units, folded into the layer before it (unit k's weights and bias scaled by
        scale_k / sqrt(var_k + eps), then shifted by shift_k - mean_k times that). What every
        evaluation outside a training step reads (relabelling's costs and centres)."""
        rows = self.params.index_select(0, members)
        layers, norms = self.layers(rows), self.norms(rows)
        running = [statistics.index_select(0, members) for statistics in self.running_statistics()]
        for index, (learned, statistics) in enumerate(zip(norms, running, strict=True)):
            factor = learned[:, 0] * torch.rsqrt(statistics[:, 1] + BATCH_NORM_EPS)  # [members, units]
            folded = layers[index] * factor[:, :, None]
            shift = learned[:, 1] - statistics[:, 0] * factor
            layers[index] = torch.cat([folded[:, :, :-1], folded[:, :, -1:] + shift[:, :, None]], dim=2)
        return layers

    def network(self, member: int) -> KnockoutNet:
        """Member ``member`` as an ordinary network (in evaluation mode), on the CPU."""
        net = KnockoutNet(self.architecture)
        row = self.params[member : member + 1]
        with torch.no_grad():
            for linear, layer in zip(net.layers(), self.layers(row), strict=True):
                linear.weight.copy_(layer[0, :, :-1].reshape(linear.weight.shape).cpu())
                linear.bias.copy_(layer[0, :, -1].cpu())
            norms = zip(net.norms.values(), self.norms(row), self.running_statistics(), strict=True)
            for norm, learned, running in norms:
                norm.weight.copy_(learned[0, 0].cpu())
                norm.bias.copy_(learned[0, 1].cpu())
                norm.running_mean.copy_(running[member, 0].cpu())
                norm.running_var.copy_(running[member, 1].cpu())
        return net.eval()

    # ------------------------------------------------------------------------------- forward

    def _apply(
        self,
        values: torch.Tensor,
        layers: list[torch.Tensor],
        activate_last: bool,
        first: int,
        norm: BatchStatistics | None = None,
    ) -> torch.Tensor:
        """Values [members, fan_in, rows] through ``layers`` (the first one's input carries no
        ones), layer number ``first`` of :meth:`layers` onwards; a hidden layer is
        batch-normalised by ``norm`` (None: not, or folded into ``layers``) before its activation."""
        for index, layer in enumerate(layers):
            values = torch.bmm(layer[:, :, :-1], values) + layer[:, :, -1:]
            if activate_last or index < len(layers) - 1:
                values = self._hidden(first + index, values, norm)
        return values

    def _hidden(self, index: int, values: torch.Tensor, norm: BatchStatistics | None) -> torch.Tensor:
        """Layer ``index``'s output [members, units, columns] normalised (by ``norm``) and activated."""
        return self.activate(values if norm is None else norm(index, values))

    def activity(
        self,
        inputs: torch.Tensor,
        layers: list[torch.Tensor],
        group: int = 1,
        norm: BatchStatistics | None = None,
    ) -> torch.Tensor:
        """Bottleneck activity [members, h, rows] for inputs [members / group, d + 1, rows]
        (:func:`with_ones`; a view expanded from [d + 1, rows] when every member reads the
        same rows). Each group of ``group`` consecutive members reads the same rows (the
        restarts of one model), so the first layer is one matrix product per group.
        ``norm``: training's batch normalisation (None: ``layers`` are
        :meth:`evaluation_layers`, or the architecture has none)."""
        if self.frame_layers:
            features = self._frame_features(inputs[:, :-1], layers, group, norm)
            encoder = layers[self.frame_layers : self.bottleneck + 1]
            return self._apply(features, encoder, activate_last=True, first=self.frame_layers, norm=norm)
        first, *rest = layers[: self.bottleneck + 1]
        n_members, fan_out, fan_in = first.shape
        if group > 1:
            grouped = first.reshape(n_members // group, group * fan_out, fan_in)
            values = torch.bmm(grouped, inputs).view(n_members, fan_out, -1)
        else:
            values = torch.bmm(first, inputs)
        values = self._hidden(0, values, norm)
        return self._apply(values, rest, activate_last=True, first=1, norm=norm) if rest else values

    def _frame_features(
        self, inputs: torch.Tensor, layers: list[torch.Tensor], group: int, norm: BatchStatistics | None
    ) -> torch.Tensor:
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
                frames = self.activate(frames if norm is None else norm.channels(index, frames, channels))
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
        # [members, frame_features, rows x history]
        features = self._hidden(self.frame_layers - 1, values + dense[:, :, -1:], norm)
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
        norm: BatchStatistics | None = None,
    ) -> torch.Tensor:
        """Outputs [members, n_outputs, rows] from bottleneck activity [members, h, rows].

        ``keep`` masks the bottleneck: [members, 1, h], one mask per member, is folded into
        the next layer's weights (a masked unit's weights out are zeroed: the same outputs
        and gradients, without a pass over the activity); [members or 1, h, rows], a mask
        per row, multiplies the activity. A masked unit takes the value ``centre``
        [members, h, 1] (None: 0; :func:`knockout.network.silenced`): with a mask per
        member, its weights out times the centre join the next layer's bias. ``norm`` as
        :meth:`activity` takes it."""
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
        return self._apply(activity, decoder, activate_last=False, first=self.bottleneck + 1, norm=norm)

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
        :func:`closed_form_fits`, with zero silencing), else autograd. Where the architecture
        batch-normalises, each call also moves every member's running statistics towards
        its batch's (:class:`BatchStatistics`), and a normalised layer's bias gets no gradient:
        the normalisation subtracts it again, so its true gradient is 0, and the optimizer would
        random-walk it on rounding noise (Adam's step does not shrink with the gradient).
        """
        if closed_form:
            if not closed_form_fits(self.architecture) or centered is not None:
                shape = "linear two-layer one-output networks with zero silencing"
                raise ValueError(f"the closed-form gradient is for {shape}, not {self.architecture}")
            layers, gradient_layers = self.layers(self.params), self.layers(out)
            return functools.partial(self._linear_gradient, layers, gradient_layers, group)
        leaves = [view.requires_grad_() for view in [*self.layers(self.params), *self.norms(self.params)]]
        layers, norms = leaves[: len(self.shapes)], leaves[len(self.shapes) :]
        n_members, n_outputs = len(out), self.architecture.n_outputs
        binary = self.architecture.binary_mask()
        binary = None if binary is None else binary.to(out.device).view(1, 1, n_outputs, 1)
        centre_weight = None if centered is None else centered.view(-1, 1, 1).float()  # 1: centered, 0: zero

        def autograd_gradient(x, y, weight, keep):
            groups = len(x)
            valid = None
            if centre_weight is not None or norms:
                # [members, 1, rows]: 1 at each member's batch rows, 0 at padding
                valid = (weight > 0).transpose(1, 2).float().repeat_interleave(group, dim=0)
            norm = (
                BatchStatistics(norms, valid, self.architecture.history, self.frame_layers) if norms else None
            )
            with torch.enable_grad():
                activity = self.activity(x.transpose(1, 2), layers, group, norm)
                centre = None
                if centre_weight is not None:
                    mean = (activity * valid).sum(dim=2, keepdim=True) / valid.sum(dim=2, keepdim=True).clamp(
                        min=1
                    )
                    centre = mean * centre_weight
                predicted = self.decode(activity, layers, keep, centre, norm)
                losses = output_losses(
                    predicted.view(groups, group, n_outputs, -1), y.transpose(1, 2)[:, None], binary
                )
                weighted = weight.transpose(1, 2)[:, None] * losses
                losses = weighted.sum(dim=(2, 3)).view(n_members)
                grads = torch.autograd.grad(losses.sum(), leaves)
            torch.cat([grad.reshape(n_members, -1) for grad in grads], dim=1, out=out[:, : self.used])
            if norm is not None:
                for layer in self.layers(out)[: len(norms)]:
                    layer[:, :, -1] = 0.0  # the normalisation subtracts the bias again: it stays
                norm.update(self.running_statistics())
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
        optimizer state of the same layout), with their batch normalisation's scale and
        shift: unit k becomes old unit ``order[k]``. The network computes the same function;
        only the units' names change (:meth:`permute_statistics` reorders the running
        statistics, which are not learned)."""
        layers = self.layers(buffer)
        into, out_of = layers[self.bottleneck], layers[self.bottleneck + 1]
        with torch.no_grad():
            into[member] = into[member][order, :]
            out_of[member, :, :-1] = out_of[member, :, :-1][:, order]
            if self.norm_widths:
                norm = self.norms(buffer)[self.bottleneck]
                norm[member] = norm[member][:, order]

    def permute_statistics(self, member: int, order: torch.Tensor) -> None:
        """Reorder one member's bottleneck units' running statistics as :meth:`permute_units`."""
        if self.norm_widths:
            statistics = self.running_statistics()[self.bottleneck]
            statistics[member] = statistics[member][:, order]


class BatchStatistics:
    """Batch normalisation in a training step (:class:`knockout.network.BatchNorm` for every
    member at once): each member's hidden units standardized over its own valid batch rows,
    scaled and shifted by its learned ``norms`` [members, 2, units] each; the batch's mean and
    variance are kept for :meth:`update`.

    ``valid`` [members, 1, rows] is 1 at a member's rows and 0 at padding (a member without a
    batch has none: its statistics are 0 and it keeps its running ones). The frame encoder's
    layers (the first ``frame_layers``) see a sample's ``history`` frames as columns
    row x history + t."""

    def __init__(
        self, norms: list[torch.Tensor], valid: torch.Tensor, history: int, frame_layers: int
    ) -> None:
        self.norms = norms
        self.valid = valid
        self.frames = valid.repeat_interleave(history, dim=2) if history > 1 else valid
        self.frame_layers = frame_layers
        self.batch: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        """Per layer index, the batch's mean and biased variance [members, units], and the
        number of values [members, 1] each is over."""

    def __call__(self, index: int, values: torch.Tensor) -> torch.Tensor:
        """Layer ``index``'s values [members, units, columns] (rows; a frame layer's: frames), normalised."""
        mask = self.frames if index < self.frame_layers else self.valid
        count = mask.sum(dim=2)  # [members, 1]
        mean = (values * mask).sum(dim=2) / count.clamp(min=1)
        centred = values - mean[:, :, None]
        variance = (centred * centred * mask).sum(dim=2) / count.clamp(min=1)
        self.batch[index] = (mean.detach(), variance.detach(), count)
        return self._scaled(index, centred, variance, (slice(None), slice(None), None))

    def channels(self, index: int, frames: torch.Tensor, channels: int) -> torch.Tensor:
        """Convolution ``index``'s output [frames, members x channels, H, W], normalised per
        member and channel over its valid frames and every position."""
        n_frames, _, height, width = frames.shape
        values = frames.view(n_frames, -1, channels, height, width)
        mask = self.frames[:, 0].T[:, :, None]  # [frames, members, 1]
        count = mask.sum(dim=0) * (height * width)  # [members, 1]
        # summed over positions first, masked per frame: no masked copy of the feature maps
        mean = (values.sum(dim=(3, 4)) * mask).sum(dim=0) / count.clamp(min=1)  # [members, channels]
        centred = values - mean[None, :, :, None, None]
        variance = (centred.square().sum(dim=(3, 4)) * mask).sum(dim=0) / count.clamp(min=1)
        self.batch[index] = (mean.detach(), variance.detach(), count)
        scaled = self._scaled(index, centred, variance, (None, slice(None), slice(None), None, None))
        return scaled.view(frames.shape)

    def _scaled(
        self, index: int, centred: torch.Tensor, variance: torch.Tensor, where: tuple
    ) -> torch.Tensor:
        """``centred`` values over their standard deviation, scaled and shifted by layer
        ``index``'s learned numbers, those [members, units] indexed by ``where`` to broadcast."""
        learned = self.norms[index]
        factor = learned[:, 0] * torch.rsqrt(variance + BATCH_NORM_EPS)
        return centred * factor[where] + learned[:, 1][where]

    @torch.no_grad()
    def update(self, running: list[torch.Tensor]) -> None:
        """Move each ``running`` [members, 2, units] (mean, variance) :data:`BATCH_NORM_MOMENTUM`
        of the way to this batch's (the variance unbiased, as ``nn.BatchNorm1d``'s), for the
        members that had a batch."""
        for index, statistics in enumerate(running):
            mean, variance, count = self.batch[index]
            unbiased = variance * count / (count - 1).clamp(min=1)
            moved = torch.stack([mean, unbiased], dim=1) - statistics
            statistics.add_(moved * (BATCH_NORM_MOMENTUM * (count > 0))[:, :, None])
