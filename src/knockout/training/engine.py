"""The batched engine: many networks of one architecture trained as one computation.

Each network (a *member*: one restart of one model of one replicate) carries out its own
plan (:class:`knockout.training.plan.FitPlan`): its batches, masks and learning rates.
At global step t every member takes step t of its own plan, so a step is a few batched
kernels over all members: gather every member's batch rows from the data (resident on
the device), the forward and backward pass of the stacked networks
(:class:`~knockout.training.stack.NetworkStack`), and one Adam update per block of
networks that step together (:class:`~knockout.training.optimizer.BlockOptimizer`). A member
whose plan has no batch at a step (its training is over: the control set alone has
fewer batches, or its model trains fewer epochs) has zero weight in the loss and its
block is not updated, so it does not move, nor does its optimizer state.

The plans are drawn on the host from the replicates' seeded streams (so a network trains
the same on any device, and the same alone or beside others) and sent to the device a
chunk of steps at a time; which blocks of networks step, and at which learning rate, is
known ahead on the host: the step loop itself never waits for the device. It
synchronises only between chunks, to read back the epoch losses and check for
divergence, and where a model's units are relabelled (after epochs 1, 2, 4, ...:
:mod:`knockout.training.relabel`), which ends a chunk. Progress is reported there too
(:mod:`knockout.training.progress`), from what the chunk's end has already read back.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from knockout.errors import TrainingDiverged
from knockout.inputs import Inputs
from knockout.memory import chunk_bytes_per_network_step
from knockout.network import KnockoutNet
from knockout.training import optimizer
from knockout.training.plan import BatchOrder, Epoch, FitPlan
from knockout.training.relabel import Relabeller, is_relabel_epoch
from knockout.training.stack import NetworkStack, closed_form_fits

DIVERGED_LOSS_FACTOR = 1000.0
"""An epoch whose mean loss exceeds this many times the variance of the behaviour it fits
(predicting the mean scores 1x) has diverged. Adam's bounded steps often keep such a run
finite, so waiting for NaN would let a useless fit through."""
CHUNK_BYTES = 32 << 20
"""What one chunk of the plan (every member's row indices, row weights, masks and loss
bins for its steps) may take on the device."""
MAX_CHUNK_STEPS = 512
"""Steps a chunk holds at most: the epoch losses are read back, and divergence checked,
between chunks."""


@dataclass
class MemberRecord:
    """What training left of one member: its loss per epoch, the epochs after which its
    units were relabelled, and the epoch where it diverged (None: it did not)."""

    losses: list[float] = field(default_factory=list)
    relabelled: list[int] = field(default_factory=list)
    diverged_at: int | None = None


class _Stream:
    """One plan as it is carried out: its epochs drawn one at a time, as arrays of padded
    batch rows (into the device's data store), batch sizes and masks."""

    def __init__(self, plan: FitPlan, order: BatchOrder, offset: int, padded_batch: int) -> None:
        self.plan = plan
        self.offset = offset
        self.padded_batch = padded_batch
        self.n_epochs = plan.n_epochs
        self.steps_per_epoch = plan.batches_per_epoch
        self.total_steps = self.n_epochs * self.steps_per_epoch
        self.relabels = plan.relabels
        self.done = 0
        """Steps of the plan taken so far (every one of them an Adam step for its members)."""
        self._epochs = plan.epochs(order)
        self._current: tuple[Epoch, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _draw(self) -> tuple[Epoch, np.ndarray, np.ndarray, np.ndarray]:
        """The next epoch as (epoch, rows [batches, padded] into the data store, counts
        [batches], keep [batches, h]); a short batch is padded with a valid row."""
        epoch = next(self._epochs)
        table = epoch.rows.numpy()
        rows = np.full((len(table), self.padded_batch), self.offset, dtype=np.int64)
        rows[:, : table.shape[1]] = np.where(table >= 0, table + self.offset, self.offset)
        return epoch, rows, (table >= 0).sum(axis=1), epoch.keep.numpy()

    def steps_to_next_relabel(self) -> int | None:
        """Steps until the end of the next epoch after which this plan relabels (None: never)."""
        if not self.relabels or self.done >= self.total_steps:
            return None
        epoch = self.done // self.steps_per_epoch + 1
        while not is_relabel_epoch(epoch):
            epoch += 1
        if epoch > self.n_epochs:
            return None
        return epoch * self.steps_per_epoch - self.done

    def fill(self, n_steps: int, rows, counts, keep, epoch_index) -> None:
        """Write the next ``n_steps`` steps into the chunk's arrays (rows [steps, padded],
        counts [steps], keep [steps, h], epoch_index [steps]; 0 counts once the plan is over)."""
        filled = 0
        while filled < n_steps and self.done < self.total_steps:
            position = self.done % self.steps_per_epoch
            if position == 0:
                self._current = self._draw()
            epoch, epoch_rows, epoch_counts, epoch_keep = self._current
            take = min(n_steps - filled, self.steps_per_epoch - position)
            window, steps = slice(position, position + take), slice(filled, filled + take)
            rows[steps], counts[steps], keep[steps] = (
                epoch_rows[window],
                epoch_counts[window],
                epoch_keep[window],
            )
            epoch_index[steps] = epoch.number - 1
            filled += take
            self.done += take

    def epochs_completed(self) -> int:
        return self.done // self.steps_per_epoch


def _block_key(plan: FitPlan) -> tuple:
    """Plans with equal keys are active at the same steps and share every step's optimizer
    and learning rate."""
    settings = plan.settings
    return (
        plan.n_epochs,
        plan.batches_per_epoch,
        settings.lr,
        settings.lr_schedule,
        settings.optimizer,
        settings.momentum,
    )


def train_members(
    plans: list[FitPlan],
    starts: list[list[KnockoutNet]],
    device: torch.device | str = "cpu",
    closed_form: bool | None = None,
    whole: list[bool] | None = None,
    progress: Callable[[int, list[list[MemberRecord]]], None] | None = None,
) -> tuple[NetworkStack, list[int], list[list[MemberRecord]]]:
    """Train every plan's networks (``starts[i]``: plan i's initial networks, its restarts)
    side by side; all have one architecture.

    Returns the stack of trained networks, the member where each plan's restarts start
    (they follow each other), and per plan and restart what training left.
    ``closed_form``: the linear two-layer closed-form gradient (None: wherever it fits).
    Raises :class:`TrainingDiverged` as soon as every restart of a plan has diverged,
    for the plans whose every restart is here (``whole``; None: all). ``progress``, if
    given, is called after every chunk of steps with the network steps taken so far (one
    Adam step of one network each) and per plan and restart what training has left so far.
    """
    architecture = plans[0].architecture
    if any(plan.architecture != architecture for plan in plans):
        raise ValueError("every plan of one batch must share its architecture")
    if closed_form is None:
        closed_form = closed_form_fits(architecture) and all(
            plan.settings.silencing == "zero" for plan in plans
        )
    engine = _Engine(plans, starts, torch.device(device), closed_form, whole or [True] * len(plans))
    engine.run(progress)
    return engine.stack, engine.first_member, engine.records


class _Engine:
    """The state of one batched training: the stacked networks, the optimizer, the data on
    the device, every plan's stream of batches, and what has been recorded."""

    def __init__(self, plans, starts: list[list[KnockoutNet]], device, closed_form: bool, whole: list[bool]):
        # Networks whose plans step together sit next to each other: one Adam call a block.
        block_keys = list(dict.fromkeys(_block_key(plan) for plan in plans))
        self.order = sorted(range(len(plans)), key=lambda number: block_keys.index(_block_key(plans[number])))
        self.plans = [plans[number] for number in self.order]
        starts = [starts[number] for number in self.order]
        members = [
            (position, restart) for position, nets in enumerate(starts) for restart in range(len(nets))
        ]
        self.members = members
        first = [members.index((position, 0)) for position in range(len(starts))]
        self.first_member = [first[self.order.index(number)] for number in range(len(plans))]
        self.stack = NetworkStack.of([net for nets in starts for net in nets], device)
        self.grad = torch.zeros_like(self.stack.params)
        restarts = {len(nets) for nets in starts}
        self.group = restarts.pop() if len(restarts) == 1 else 1
        """Members that read the same rows and come together: every plan's restarts where
        all plans have as many, else one (each member is given its rows)."""
        centered = [self.plans[position].settings.silencing == "centered" for position, _ in members]
        self.gradient = self.stack.gradient_function(
            self.grad,
            closed_form,
            self.group,
            torch.tensor(centered, device=device) if any(centered) else None,
        )
        block_of_plan = [block_keys.index(_block_key(plan)) for plan in self.plans]
        blocks = []
        for block in range(len(block_keys)):
            rows = [m for m, (position, _) in enumerate(members) if block_of_plan[position] == block]
            blocks.append(slice(rows[0], rows[-1] + 1))
        self.block_plans = [self.plans[block_of_plan.index(block)] for block in range(len(blocks))]
        methods = [(plan.settings.optimizer, plan.settings.momentum) for plan in self.block_plans]
        self.optimizer = optimizer.BlockOptimizer(self.stack.params, blocks, methods)
        self.device = device

        sharing = collections.Counter(plan.order_key() for plan in self.plans)
        orders: dict[tuple, BatchOrder] = {}
        for plan in self.plans:  # noko, ko and do of a replicate draw the same batches: once
            if (key := plan.order_key()) not in orders:
                orders[key] = plan.batch_order(sharing[key])
        self.padded = max(order.width for order in orders.values())
        self.member_stream = torch.tensor([position for position, _ in members], device=device)
        self.row_stream = self.member_stream[:: self.group]
        """Whose rows each group of members reads: a stream per group."""
        self.data = _DeviceData(self.plans, self.row_stream, self.padded, device)
        self.streams = [
            _Stream(plan, orders[plan.order_key()], self.data.offsets[id(plan.data)], self.padded)
            for plan in self.plans
        ]
        self.max_epochs = max(1, *(stream.n_epochs for stream in self.streams))
        self.sums = torch.zeros(len(members) * self.max_epochs, dtype=torch.float64, device=device)
        """Every member's summed loss per epoch."""
        records_by_position = [[MemberRecord() for _ in nets] for nets in starts]
        self.records = [records_by_position[self.order.index(number)] for number in range(len(plans))]
        self.relabellers = {
            position: Relabeller(
                plan, [m for m, (p, _) in enumerate(members) if p == position], self.data.inputs(plan.data)
            )
            for position, plan in enumerate(self.plans)
            if plan.relabels
        }
        self.relabelled = dict.fromkeys(self.relabellers, 0)
        self.watch = _DivergenceWatch(
            self.plans, members, records_by_position, [whole[n] for n in self.order]
        )
        self.checked = [0] * len(self.streams)
        architecture = self.stack.architecture
        per_step = len(members) * chunk_bytes_per_network_step(self.padded, architecture.n_hidden)
        self.chunk_limit = max(1, min(MAX_CHUNK_STEPS, CHUNK_BYTES // per_step))
        self.step_number = 0

    def run(self, progress: Callable[[int, list[list[MemberRecord]]], None] | None = None) -> None:
        restarts = collections.Counter(position for position, _ in self.members)
        while any(stream.done < stream.total_steps for stream in self.streams):
            relabels = [
                steps for stream in self.streams if (steps := stream.steps_to_next_relabel()) is not None
            ]
            remaining = max(stream.total_steps - stream.done for stream in self.streams)
            self._chunk(min([self.chunk_limit, remaining, *relabels]))  # no idle steps after the last
            self._after_chunk()
            if progress is not None:
                progress(sum(s.done * restarts[p] for p, s in enumerate(self.streams)), self.records)
        for position, relabeller in self.relabellers.items():
            for restart, epochs in enumerate(relabeller.epochs):
                self.watch.records[position][restart].relabelled = epochs

    def _to_device(self, array: np.ndarray, dtype, index: torch.Tensor) -> torch.Tensor:
        """[streams, steps, ...] on the host -> [steps, index, ...] on the device, ``index``
        naming a stream per member or per group of members."""
        tensor = torch.from_numpy(np.ascontiguousarray(np.swapaxes(array, 0, 1))).to(self.device, dtype)
        return tensor if len(index) == len(self.streams) else tensor.index_select(1, index)

    def _chunk(self, n_steps: int) -> None:
        """The next ``n_steps`` steps: the plan's chunk to the device, then the steps."""
        n_streams, n_members, padded = len(self.streams), len(self.members), self.padded
        architecture = self.stack.architecture
        rows = np.zeros((n_streams, n_steps, padded), dtype=np.int64)
        counts = np.zeros((n_streams, n_steps), dtype=np.int64)
        keep = np.ones((n_streams, n_steps, architecture.n_hidden), dtype=np.float32)
        epoch_index = np.zeros((n_streams, n_steps), dtype=np.int64)
        for number, stream in enumerate(self.streams):
            stream.fill(n_steps, rows[number], counts[number], keep[number], epoch_index[number])
        by_member, by_group = self.member_stream, self.row_stream
        rows_t, group_counts = (
            self._to_device(rows, torch.int64, by_group),
            self._to_device(counts, torch.int64, by_group),
        )
        keep_t = self._to_device(keep, torch.float32, by_member).unsqueeze(2)
        valid = torch.arange(padded, device=self.device) < group_counts.unsqueeze(2)
        weight_t = (valid / (group_counts * architecture.n_outputs).clamp(min=1).unsqueeze(2)).unsqueeze(3)
        counts_t = self._to_device(counts, torch.int64, by_member)
        members = torch.arange(n_members, device=self.device)
        bins = self._to_device(epoch_index, torch.int64, by_member) + members * self.max_epochs
        updates = [self._block_updates(step) for step in range(self.step_number, self.step_number + n_steps)]
        self.step_number += n_steps
        step_losses = torch.empty(n_steps, n_members, device=self.device)
        x, y = self.data.x, self.data.y
        with torch.no_grad():
            for step in range(n_steps):
                self.data.gather(rows_t[step].view(-1))
                step_losses[step] = self.gradient(x, y, weight_t[step], keep_t[step])
                for block, lr in updates[step]:
                    self.optimizer.step(self.grad, block, lr)
            losses = step_losses * counts_t * architecture.n_outputs
            self.sums.index_add_(0, bins.view(-1), losses.view(-1).double())

    def _block_updates(self, step: int) -> list[tuple[int, float]]:
        """(block, learning rate) of every block that takes global step ``step`` (from 0)."""
        updates = []
        for block, plan in enumerate(self.block_plans):
            if step < plan.n_epochs * plan.batches_per_epoch:
                updates.append(
                    (block, plan.settings.lr_at(step // plan.batches_per_epoch + 1, plan.n_epochs))
                )
        return updates

    def _after_chunk(self) -> None:
        """Read back the epochs completed, check for divergence, relabel where an epoch calls for it."""
        completed = [stream.epochs_completed() for stream in self.streams]
        if completed != self.checked:
            epoch_sums = self.sums.view(len(self.members), self.max_epochs).cpu().numpy()
            for position in range(len(self.streams)):
                self.watch.record(position, range(self.checked[position], completed[position]), epoch_sums)
            self.checked = completed
        self.watch.check_finite(self.stack.params)
        for position, relabeller in self.relabellers.items():
            stream, epoch = self.streams[position], completed[position]
            if stream.done == epoch * stream.steps_per_epoch and epoch > self.relabelled[position]:
                relabeller(epoch, self.stack, self.optimizer.states())
                self.relabelled[position] = epoch


class _DeviceData:
    """The plans' distinct data sets, each once, resident on the device, and the batch every
    step's rows are gathered into: ``x`` [groups, padded, d + 1] (each row's inputs and a
    one, for the first layer's bias) and ``y`` [groups, padded, outputs].

    Inputs held as a table (one entry a row, ``x_*`` columns) sit beside the one and the
    behaviour, each data set's rows as its networks read them (z-scored where they are),
    so that a step is one gather. Inputs naming entries of values (frames: each sample's
    history, :class:`~knockout.inputs.Inputs`) keep the values once, however many data
    sets (replicate seeds' rows) and histories name them; a step gathers its rows' entries,
    then their values, z-scored by the mean and scale of the group's data set."""

    def __init__(self, plans: list[FitPlan], row_stream: torch.Tensor, padded: int, device) -> None:
        distinct = list({id(plan.data): plan.data for plan in plans}.values())
        self.offsets: dict[int, int] = {}
        """Per data set (by identity), where its rows start."""
        for data in distinct:
            self.offsets[id(data)] = sum(len(other.y) for other in distinct[: len(self.offsets)])
        architecture = plans[0].architecture
        n_inputs, n_outputs, n_groups = architecture.n_inputs, architecture.n_outputs, len(row_stream)
        self.indexed = any(data.inputs.entries is not None for data in distinct)
        self.device = device
        if not self.indexed:
            self.table = torch.cat(
                [torch.cat([data.x, torch.ones(len(data.y), 1), data.y], dim=1) for data in distinct]
            ).to(device)
            self.batch = torch.empty(n_groups, padded, self.table.shape[1], device=device)
            self.x, self.y = self.batch.split([n_inputs + 1, n_outputs], dim=2)
            return
        if len({(data.inputs.per_row, data.inputs.values.shape[1]) for data in distinct}) > 1:
            raise ValueError("every data set of one batch must name as many entries a row, of as many values")
        self.first_entry: dict[tuple, int] = {}
        """Per values held (:meth:`Inputs.values_key`), where its entries start in ``values``."""
        blocks = []
        for data in distinct:
            if (key := data.inputs.values_key()) not in self.first_entry:
                self.first_entry[key] = sum(len(block) for block in blocks)
                blocks.append(data.inputs.values)
        self.values = (blocks[0] if len(blocks) == 1 else torch.cat(blocks)).to(device)
        entries = []
        for data in distinct:
            own = data.inputs.entries
            own = torch.arange(len(data.y))[:, None] if own is None else own
            entries.append(own + self.first_entry[data.inputs.values_key()])
        self.entries = torch.cat(entries).to(device)
        self.table = torch.cat([data.y for data in distinct]).to(device)
        self.mean = self.scale = None
        if distinct[0].inputs.mean is not None:  # the architecture z-scores every data set's inputs
            position = {id(data): number for number, data in enumerate(distinct)}
            group_data = torch.tensor([position[id(plan.data)] for plan in plans], device=device)[row_stream]
            self.mean = torch.stack([data.inputs.mean for data in distinct]).to(device)[group_data, None]
            self.scale = torch.stack([data.inputs.scale for data in distinct]).to(device)[group_data, None]
        self.x = torch.ones(n_groups, padded, n_inputs + 1, device=device)
        self.y = torch.empty(n_groups, padded, n_outputs, device=device)

    def inputs(self, data) -> Inputs:
        """A data set's inputs on the device, naming the values held there."""
        if not self.indexed:
            return data.inputs.to(self.device)
        first = self.first_entry[data.inputs.values_key()]
        return data.inputs.to(self.device, self.values[first : first + len(data.inputs.values)])

    def gather(self, rows: torch.Tensor) -> None:
        """Write the batch of ``rows`` (every group's padded rows, one group after the other)
        into ``x`` and ``y``."""
        if not self.indexed:
            torch.index_select(self.table, 0, rows, out=self.batch.view(-1, self.table.shape[1]))
            return
        n_groups, padded, n_inputs = self.x.shape[0], self.x.shape[1], self.x.shape[2] - 1
        torch.index_select(self.table, 0, rows, out=self.y.view(-1, self.y.shape[2]))
        named = self.entries.index_select(0, rows).view(-1)
        inputs = self.x[:, :, :n_inputs]
        inputs.copy_(self.values.index_select(0, named).view(n_groups, padded, n_inputs))
        if self.mean is not None:
            inputs.sub_(self.mean).div_(self.scale)


class _DivergenceWatch:
    """Marks members whose epoch loss exploded or went non-finite; raises once every
    restart of a plan has (where all of them are in this batch: ``whole``)."""

    def __init__(
        self, plans: list[FitPlan], members: list[tuple[int, int]], records, whole: list[bool]
    ) -> None:
        self.plans, self.members, self.records, self.whole = plans, members, records, whole
        self.thresholds = [DIVERGED_LOSS_FACTOR * plan.behaviour_variance() for plan in plans]

    def record(self, number: int, epochs: range, epoch_sums: np.ndarray) -> None:
        """Plan ``number``'s members' losses of ``epochs`` (0-based), from every member's
        summed losses per epoch ``epoch_sums`` [members, epochs]."""
        plan = self.plans[number]
        values_per_epoch = plan.rows_per_epoch * plan.architecture.n_outputs
        for member, (owner, restart) in enumerate(self.members):
            if owner != number or not epochs:
                continue
            record = self.records[number][restart]
            losses = (epoch_sums[member, epochs.start : epochs.stop] / values_per_epoch).tolist()
            for epoch, loss in zip(epochs, losses, strict=True):
                if record.diverged_at is None and not loss <= self.thresholds[number]:
                    record.diverged_at = epoch + 1
            record.losses.extend(losses)
        self._raise_if_all_diverged(number)

    def check_finite(self, params: torch.Tensor) -> None:
        """Members whose weights are no longer finite have diverged (at their last epoch)."""
        finite = torch.isfinite(params).all(dim=1).tolist()
        for member, (number, restart) in enumerate(self.members):
            record = self.records[number][restart]
            if not finite[member] and record.diverged_at is None:
                record.diverged_at = max(1, len(record.losses))
                self._raise_if_all_diverged(number)

    def _raise_if_all_diverged(self, number: int) -> None:
        if self.whole[number] and all(record.diverged_at is not None for record in self.records[number]):
            raise_diverged(self.plans[number], self.records[number])


def raise_diverged(plan: FitPlan, records: list[MemberRecord]) -> None:
    """Raise :class:`TrainingDiverged` for a plan all of whose restarts (``records``) diverged."""
    epoch = max(record.diverged_at for record in records)
    losses = [record.losses[epoch - 1] for record in records if len(record.losses) >= epoch]
    loss = f"mean training loss {min(losses):.3g}" if losses else "weights not finite"
    restarts = "" if len(records) == 1 else f" (all {len(records)} restarts)"
    raise TrainingDiverged(
        f"model {plan.model!r}, seed {plan.seed}: training diverged{restarts} at epoch {epoch} "
        f"of {plan.n_epochs} ({loss}, over {DIVERGED_LOSS_FACTOR:g} x the variance of the "
        f"behaviour); lower train.lr (now {plan.settings.lr:g})"
    )


def kept_restart(records: list[MemberRecord]) -> int:
    """The restart with the lowest final loss among those that never diverged."""
    candidates = [r for r, record in enumerate(records) if record.diverged_at is None]
    return min(candidates, key=lambda r: records[r].losses[-1] if records[r].losses else math.inf)
