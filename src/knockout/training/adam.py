"""Adam for many networks at once, by blocks of networks that step together.

The networks of a block (consecutive rows of the [members, P] parameter buffer) follow
plans of the same length and learning-rate schedule, so at every step they are all
active or all idle and share one learning rate. A block's update is one call of the
kernel ``torch.optim.Adam(fused=True)`` runs, over all its networks; an idle block is
not called at all, so a network with no batch at a step (its training is over) does not
move, nor does its optimizer state.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


class BlockAdam:
    """Adam (no weight decay, no amsgrad) on row blocks of a [members, P] buffer."""

    def __init__(self, params: torch.Tensor, blocks: list[slice]) -> None:
        self.params = params
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self.blocks = blocks
        self.steps = [torch.zeros((), device=params.device) for _ in blocks]
        """Each block's Adam steps so far (the bias corrections' t)."""

    @torch.no_grad()
    def step(self, grad: torch.Tensor, block: int, lr: float) -> None:
        """One step of block ``block`` at rate ``lr``, with ``grad`` laid out as the parameters."""
        rows = self.blocks[block]
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
        return [self.params, self.exp_avg, self.exp_avg_sq]
