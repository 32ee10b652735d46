"""Many networks of one architecture as one parameter buffer, and their gradients.

Member m's parameters are row m of a [members, P] buffer; each layer's weights are a
view [members, fan_in, fan_out] of it (transposed, so that a batch passes through every
member in one batched product, ``baddbmm``) and its biases a view [members, 1, fan_out].
The optimizer then updates every parameter of every member with a handful of kernels,
and its state (two more buffers of the same shape) follows the same layout.

Gradients come from autograd for every architecture (:meth:`NetworkStack.gradient_function`).
For the seed problem's linear two-layer network a closed form costs about 10x fewer
operations per step (``closed_form=True`` where :func:`closed_form_fits`; ``make bench``
measures both in the batched setting, and the tests compare them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from knockout.network import ACTIVATIONS, Architecture, KnockoutNet

Layer = tuple[torch.Tensor, torch.Tensor]
"""(weights [members, fan_in, fan_out], biases [members, 1, fan_out])."""
GradientFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def closed_form_fits(architecture: Architecture) -> bool:
    """The closed-form gradient covers the seed problem's shape: linear, two layers, one output."""
    return architecture.two_layer and architecture.activation == "linear" and architecture.n_outputs == 1


def _linear(values: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A layer of every member: values [members, batch, fan_in] -> [members, batch, fan_out].

    A layer with one output is a product and a sum: PyTorch's CPU kernels take several
    times longer for a batched matrix times a vector, and the other orientation leaves
    transposed gradients, on which the activations' backward steps are 25 times slower.
    ``baddbmm``'s broadcast bias is slower than an addition.
    """
    if weight.shape[2] == 1:
        return (values * weight.transpose(1, 2)).sum(dim=2, keepdim=True) + bias
    return torch.bmm(values, weight) + bias


class NetworkStack:
    """``n_members`` networks of ``architecture``; ``params`` [members, P] holds them all."""

    def __init__(
        self, architecture: Architecture, n_members: int, device: torch.device | str = "cpu"
    ) -> None:
        self.architecture = architecture
        self.activate = ACTIVATIONS[architecture.activation]
        self.bottleneck = len(architecture.encoder)
        """The index of the bottleneck layer (the silenceable units) in :meth:`layers`."""
        self.shapes = architecture.layer_sizes()
        self.size = sum((fan_in + 1) * fan_out for fan_in, fan_out in self.shapes)
        self.params = torch.zeros(n_members, self.size, device=device)

    @classmethod
    def of(cls, nets: list[KnockoutNet], device: torch.device | str = "cpu") -> NetworkStack:
        """A stack holding copies of ``nets`` (all of one architecture)."""
        stack = cls(nets[0].architecture, len(nets), device)
        with torch.no_grad():
            for member, net in enumerate(nets):
                for (weight, bias), layer in zip(stack.layers(stack.params), net.layers(), strict=True):
                    weight[member] = layer.weight.T
                    bias[member, 0] = layer.bias
        return stack

    @property
    def n_members(self) -> int:
        return len(self.params)

    def layers(self, buffer: torch.Tensor) -> list[Layer]:
        """Each layer's (weights, biases) as views of ``buffer`` (the parameters, or a buffer
        of the same layout: a gradient, an optimizer state, a subset of members)."""
        views, start = [], 0
        for fan_in, fan_out in self.shapes:
            weight = buffer[:, start : start + fan_in * fan_out].view(-1, fan_in, fan_out)
            start += fan_in * fan_out
            bias = buffer[:, start : start + fan_out].view(-1, 1, fan_out)
            start += fan_out
            views.append((weight, bias))
        return views

    def network(self, member: int) -> KnockoutNet:
        """Member ``member`` as an ordinary network, on the CPU."""
        net = KnockoutNet(self.architecture)
        with torch.no_grad():
            for layer, (weight, bias) in zip(
                net.layers(), self.layers(self.params[member : member + 1]), strict=True
            ):
                layer.weight.copy_(weight[0].T.cpu())
                layer.bias.copy_(bias[0, 0].cpu())
        return net.eval()

    # ------------------------------------------------------------------------------- forward

    def _apply(self, values: torch.Tensor, layers: list[Layer], activate_last: bool) -> torch.Tensor:
        for index, (weight, bias) in enumerate(layers):
            values = _linear(values, weight, bias)
            if activate_last or index < len(layers) - 1:
                values = self.activate(values)
        return values

    def activity(self, x: torch.Tensor, layers: list[Layer]) -> torch.Tensor:
        """Bottleneck activity [members, batch, h] for inputs [members, batch, d] (a view
        expanded from [batch, d] when every member reads the same rows)."""
        return self._apply(x, layers[: self.bottleneck + 1], activate_last=True)

    def decode(self, activity: torch.Tensor, layers: list[Layer]) -> torch.Tensor:
        """Outputs [members, batch, n_outputs] from bottleneck activity [members, batch, h]."""
        return self._apply(activity, layers[self.bottleneck + 1 :], activate_last=False)

    def predict(self, x: torch.Tensor, keep: torch.Tensor, layers: list[Layer]) -> torch.Tensor:
        """Outputs [members, batch, n_outputs]; ``keep`` [members, 1 or batch, h] masks the bottleneck."""
        return self.decode(self.activity(x, layers) * keep, layers)

    # ----------------------------------------------------------------------------- gradients

    def gradient_function(self, out: torch.Tensor, closed_form: bool = False) -> GradientFunction:
        """A function of a batch that writes every member's gradient into ``out`` [members, P]
        and returns each member's mean squared error on its batch [members].

        Its arguments: ``x`` [members, batch, d], ``y`` [members, batch, outputs];
        ``weight`` [members, batch, 1], each row's weight in the loss (1 / (rows x outputs)
        for a member's batch, 0 on padding rows and for members with no batch); ``keep``
        [members, 1, h], the batch's mask. Members share no parameter, so each one's
        gradient is its own loss's. ``closed_form``: :meth:`_linear_gradient` (where
        :func:`closed_form_fits`), else autograd.
        """
        if closed_form:
            if not closed_form_fits(self.architecture):
                shape = "linear two-layer one-output networks"
                raise ValueError(f"the closed-form gradient is for {shape}, not {self.architecture}")
            return functools.partial(self._linear_gradient, self.layers(self.params), self.layers(out))
        leaves = [tuple(view.requires_grad_() for view in layer) for layer in self.layers(self.params)]
        flat_leaves = [view for layer in leaves for view in layer]
        n_members = len(out)

        def autograd_gradient(x, y, weight, keep):
            with torch.enable_grad():
                errors = self.predict(x, keep, leaves) - y
                losses = (weight * errors * errors).sum(dim=(1, 2))
                grads = torch.autograd.grad(losses.sum(), flat_leaves)
            torch.cat([grad.reshape(n_members, -1) for grad in grads], dim=1, out=out)
            return losses.detach()

        return autograd_gradient

    @staticmethod
    def _linear_gradient(layers, gradient_layers, x, y, weight, keep) -> torch.Tensor:
        """The gradient of a linear two-layer network with one output, in closed form.

        With every row of a batch under one mask k and no activation, the network is the
        linear map x -> x . a + c with a = W1 (k * w2) and c = b1 . (k * w2) + b2, so the
        prediction costs a dot product with a [d] instead of the hidden layer; with
        delta = 2 weight (prediction - y) and u = x' delta the gradients are
        dW1 = u (k * w2)', db1 = sum(delta) (k * w2)', dw2 = k * (W1' u + b1 sum(delta)),
        db2 = sum(delta): O(batch x d + d x h) numbers per member and step instead of
        O(batch x d x h). Its products put the vector first ([members, 1, n] x [members, n, m]):
        the other orientation, and ``baddbmm`` with a broadcast bias, take PyTorch's CPU
        kernels several times longer.
        """
        (w1, b1), (w2, b2) = layers
        (g_w1, g_b1), (g_w2, g_b2) = gradient_layers
        kept_w2 = w2.transpose(1, 2) * keep  # (k * w2)' [members, 1, h]
        direction = torch.bmm(kept_w2, w1.transpose(1, 2))  # a' [members, 1, d]
        offset = torch.baddbmm(b2, b1, kept_w2.transpose(1, 2))  # c [members, 1, 1]
        errors = torch.baddbmm(offset, direction, x.transpose(1, 2)).sub_(
            y.transpose(1, 2)
        )  # [members, 1, batch]
        weighted = weight.transpose(1, 2) * errors
        delta = weighted * 2.0
        input_side = torch.bmm(delta, x)  # u' [members, 1, d]
        total = delta.sum(dim=2, keepdim=True)  # [members, 1, 1]
        torch.mul(input_side.transpose(1, 2), kept_w2, out=g_w1)
        torch.mul(total, kept_w2, out=g_b1)
        g_w2.copy_(torch.bmm(input_side, w1).add_(b1 * total).mul_(keep).transpose(1, 2))
        g_b2.copy_(total)
        return (weighted * errors).sum(dim=(1, 2))

    # --------------------------------------------------------------------------- relabelling

    def permute_units(self, member: int, order: torch.Tensor, buffer: torch.Tensor) -> None:
        """Reorder one member's bottleneck units in ``buffer`` (the parameters, or an
        optimizer state of the same layout): unit k becomes old unit ``order[k]``. The
        network computes the same function; only the units' names change."""
        layers = self.layers(buffer)
        weight_in, bias_in = layers[self.bottleneck]
        weight_out, _ = layers[self.bottleneck + 1]
        with torch.no_grad():
            weight_in[member] = weight_in[member][:, order]
            bias_in[member] = bias_in[member][:, order]
            weight_out[member] = weight_out[member][order, :]
