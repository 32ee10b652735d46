"""The baseline: knockout training as a user would first write it in PyTorch.

A module, autograd and ``torch.optim.Adam``, one batch at a time. It reuses the
project's batch schedule, masks and learning-rate schedule, so it trains exactly
what ``knockout.training.train`` trains; only the mechanics of a step differ.
"""

from __future__ import annotations

import torch

from knockout import seeding
from knockout.behavior_data import BehaviorData
from knockout.network import TwoLayerNet, initialize
from knockout.training import TrainSettings, epoch_schedule, keep_masks, masked_units


def train_plain_loop(
    model: str,
    data: BehaviorData,
    n_hidden: int,
    settings: TrainSettings,
    seed: int,
    device: torch.device | str = "cpu",
) -> TwoLayerNet:
    """Same arguments, same initial weights, batches and masks as ``train``."""
    net = TwoLayerNet(data.x.shape[1], n_hidden)
    initialize(net, settings.init, seeding.generator(seed, "model_init"))
    net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    x, y = data.x.to(device), data.y.to(device)
    masks = keep_masks(n_hidden).to(device)
    sets = data.rows_by_set(include_silenced=model != "control")
    schedule_rng = seeding.generator(seed, "schedule")
    dropout_rng = seeding.generator(seed, "dropout")
    for epoch in range(1, settings.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr_at(epoch)
        batches = epoch_schedule(sets, settings.batch_size, schedule_rng)
        units = masked_units(model, [unit for unit, _ in batches], n_hidden, dropout_rng)
        for (_, rows), unit in zip(batches, units, strict=True):
            rows = rows.to(device)
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x[rows], masks[unit + 1]), y[rows])
            loss.backward()
            optimizer.step()
    return net.cpu().eval()
