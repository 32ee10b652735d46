"""The baseline: knockout training as a user would first write it in PyTorch.

A module, autograd and ``torch.optim.Adam``, one batch at a time. It reuses the
project's initial weights, batch plan (``epoch_plans``), masks and learning-rate
schedule, so it trains exactly what ``knockout.training.train`` trains; only the
mechanics of a step differ.
"""

from __future__ import annotations

import torch

from knockout.behavior_data import BehaviorData
from knockout.network import Architecture, KnockoutNet
from knockout.training import TrainSettings, epoch_plans, initial_networks, keep_matrix


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
    for epoch, batch_rows, units in epoch_plans(model, data, architecture.n_hidden, settings, seed):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr_at(epoch)
        for rows, keep in zip(batch_rows, keep_matrix(units, architecture.n_hidden, device), strict=True):
            rows = rows.to(device)
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x[rows], keep), y[rows])
            loss.backward()
            optimizer.step()
    return net.cpu().eval()
