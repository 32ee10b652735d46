"""The baseline: knockout training as a user would first write it in PyTorch.

A module, autograd and ``torch.optim.Adam``, one network and one batch at a time. It
reuses the project's initial weights and plan (batches, masks, learning rates:
``knockout.training.plan.FitPlan``), so it trains exactly what
``knockout.training.train`` trains; only the mechanics of a step differ.
"""

from __future__ import annotations

import torch

from knockout import models
from knockout.behavior_data import BehaviorData
from knockout.network import Architecture, KnockoutNet
from knockout.training import TrainSettings, initial_networks
from knockout.training.plan import FitPlan


def train_plain_loop(
    model: str,
    data: BehaviorData,
    architecture: Architecture,
    settings: TrainSettings,
    seed: int,
    device: torch.device | str = "cpu",
) -> KnockoutNet:
    """Same arguments, same initial weights, batches and masks as ``train`` (one restart)."""
    net = initial_networks(architecture, settings, seed)[0].to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    x, y = data.x.to(device), data.y.to(device)
    for epoch in FitPlan(models.spec(model), data, architecture, settings, seed).epochs():
        for group in optimizer.param_groups:
            group["lr"] = epoch.lr
        for rows, keep in epoch.batches():
            rows, keep = rows.to(device), keep.to(device)
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x[rows], keep), y[rows])
            loss.backward()
            optimizer.step()
    return net.cpu().eval()
