"""The optimizer for many networks at once, by blocks of networks that step together:
Adam, or SGD with momentum (the authors' recipe).

The networks of a block (consecutive rows of the [members, P] parameter buffer) follow
plans of the same length, optimizer and learning-rate schedule, so at every step they are
all active or all idle and share one learning rate. A block's Adam update is one call of
the kernel ``torch.optim.Adam(fused=True)`` runs, over all its networks; an SGD update is
two in-place operations over them. An idle block is not called at all, so a network with
no batch at a step (its training is over) does not move, nor does its optimizer state.
"""

from __future__ import annotations

import torch

from knockout.training.settings import OPTIMIZERS

BETAS = (0.9, 0.999)
EPS = 1e-8


class BlockOptimizer:
    """Adam (no weight decay, no amsgrad) or SGD with momentum (PyTorch's form: the buffer
    b = momentum b + g, then p -= lr b; Keras' v = momentum v - lr g, p += v, is the same
    for a constant rate) on row blocks of a [members, P] buffer; ``methods`` gives each
    block's (optimizer, momentum)."""

    def __init__(self, params: torch.Tensor, blocks: list[slice], methods: list[tuple[str, float]]) -> None:
        unknown = {method for method, _ in methods} - set(OPTIMIZERS)
        if unknown:
            raise ValueError(f"optimizer {unknown.pop()!r} unknown (allowed: {', '.join(OPTIMIZERS)})")
        self.params = params
        self.exp_avg = torch.zeros_like(params)
        """Adam's first moment, or SGD's momentum buffer."""
        self.exp_avg_sq = torch.zeros_like(params) if any(m == "adam" for m, _ in methods) else None
        self.blocks = blocks
        self.methods = methods
        self.steps = [torch.zeros((), device=params.device) for _ in blocks]
        """Each block's Adam steps so far (the bias corrections' t)."""

    @torch.no_grad()
    def step(self, grad: torch.Tensor, block: int, lr: float) -> None:
        """One step of block ``block`` at rate ``lr``, with ``grad`` laid out as the parameters."""
        rows = self.blocks[block]
        method, momentum = self.methods[block]
        if method == "sgd":
            self.exp_avg[rows].mul_(momentum).add_(grad[rows])
            self.params[rows].sub_(self.exp_avg[rows], alpha=lr)
            return
        self.steps[block] += 1
        beta1, beta2 = BETAS
        torch._fused_adam_(
            [self.params[rows]],
            [grad[rows]],
            [self.exp_avg[rows]],
            [self.exp_avg_sq[rows]],
            [],
            [self.steps[block]],
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=EPS,
            amsgrad=False,
            maximize=False,
        )

    def states(self) -> list[torch.Tensor]:
        """Every buffer laid out like the parameters (for reordering a member's units)."""
        return [buffer for buffer in (self.params, self.exp_avg, self.exp_avg_sq) if buffer is not None]
