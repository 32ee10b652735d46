"""What the experiment planner (``snakemake plan``, the config's ``plan`` section) asks of
the workflow: its pilot as a data source, the method, the training the simulation does,
and the plan's problems, checked before any job but only when a plan is asked for (a
plan section that does not fit, say, a wider fly stops ``snakemake plan``, not the main
run).

The science is knockout.planning; this module reads the config and nothing of the
workflow, and imports no PyTorch (knockout.plan_table, not the planner): every start of the
workflow imports it. An architecture here is the dict the data sources give
(``fitted_architecture``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import SimpleNamespace

from knockout import memory, plan_table
from knockout.data_folder import Layout
from knockout.models import KNOCKOUT
from knockout_workflow.data_sources import DataSource, data_source
from knockout_workflow.step_settings import model_train_settings


def pilot_config(config: dict) -> dict:
    """The config whose data source is the plan's pilot (``plan.pilot`` as ``data.source``):
    a source with a true network draws ``plan.pilot_n`` rows per set of it (the fly, per
    seed; ``data.n_test`` 0: a pilot is not split), a folder is read with ``plan.units``
    (or ``data.units``)."""
    plan, pilot = config["plan"], copy.deepcopy(config)
    units = plan["units"] or config["data"]["units"]
    pilot["data"] |= {"source": plan["pilot"], "units": units, "n_train": plan["pilot_n"], "n_test": 0}
    return pilot


def pilot_source(config: dict) -> DataSource:
    return data_source(pilot_config(config))


def plan_training_settings(config: dict) -> dict:
    """The training of every network the plan trains (the simulation, or the formula's
    training check): ko's settings (its ``train.per_model`` overrides included), with
    ``plan.simulation.restarts`` if set."""
    settings = model_train_settings(config["train"], KNOCKOUT)
    restarts = config["plan"]["simulation"]["restarts"]
    return settings | ({"restarts": restarts} if restarts is not None else {})


def plan_trains(config: dict, method: str) -> bool:
    """Whether the plan trains networks: the simulation, or the formula's training check."""
    return method == plan_table.SIMULATION or config["plan"]["check_training"]


def plan_method(config: dict, architecture: Mapping) -> str:
    """``plan.method`` resolved for the model's ``architecture`` (auto: the formula where
    it applies); a ValueError where the formula is asked for and does not apply."""
    return plan_table.method_for(config["plan"]["method"], SimpleNamespace(**architecture))


def pilot_layout_problems(layout: Layout) -> list[str]:
    """What a pilot must have: one control set, and a unit silenced alone."""
    problems = []
    controls = [name for name, units in layout.sets if not units]
    if len(controls) != 1:
        problems.append(
            f"plan.pilot has {len(controls)} control sets (sets silencing nothing); the planner "
            "compares each silenced set with exactly one control set"
        )
    if not any(len(units) == 1 for _, units in layout.sets):
        problems.append(
            "plan.pilot has no set silencing one unit alone; the planner estimates each unit "
            "from a set that silences it alone"
        )
    return problems


def pilot_problems(config: dict) -> list[str]:
    """What must hold before the pilot can be read: a pilot folder's units."""
    plan = config["plan"]
    if pilot_source(config).has_ground_truth:  # drawn from the true network, whose units it has
        if plan["units"] is not None:
            return ["plan.units is for a pilot folder; a simulated pilot's units are the fly's; remove it"]
        return []
    if plan["units"] or config["data"]["units"]:
        return []
    return [
        f"plan.units: missing; plan.pilot {plan['pilot']} is a data folder, so list its silenceable "
        "units in order (or set data.units, which it then takes)"
    ]


def plan_problems(config: dict, layout: Layout, architecture: Mapping, set_rows: dict[str, int]) -> list[str]:
    """The plan section's problems for its pilot (``layout``, and ``set_rows``: each set's
    rows) and the model's ``architecture`` (empty when it is fine)."""
    plan = config["plan"]
    drawn = pilot_source(config).has_ground_truth  # from a true network: plan.pilot_n rows a set
    problems = pilot_layout_problems(layout)
    try:
        method = plan_method(config, architecture)
    except ValueError as error:
        return [*problems, f"plan.{error}"]
    batch_size = plan_training_settings(config)["batch_size"]
    d = architecture["n_inputs"]
    for n in plan["n_per_set"]:
        if n < batch_size:
            problems.append(
                f"plan.n_per_set: {n} is below ko's train.batch_size = {batch_size}; every batch "
                f"comes from one set, so a design needs at least {batch_size} training rows per set"
            )
        if method == plan_table.FORMULA and n <= d + 1:
            problems.append(
                f"plan.n_per_set: {n} leaves no residual degrees of freedom for {d} inputs "
                f"(the formula needs more than d + 1 = {d + 1} rows per set)"
            )
    if method == plan_table.FORMULA:
        least = d + 2
        why = f"the formula fits each pilot set by least squares, which needs at least d + 2 = {least}"
    else:
        least = batch_size
        why = (
            f"the simulation fits ko to the pilot, each batch (train.batch_size = {batch_size}) from "
            f"one set, so it needs at least {batch_size}"
        )
    if short := {name: rows for name, rows in set_rows.items() if rows < least}:
        name, rows = next(iter(short.items()))
        if drawn:
            where = f"plan.pilot_n = {rows}"
        else:
            where = f"plan.pilot: set {name} has {rows} rows"
            where += f" ({len(short)} sets are short)" if len(short) > 1 else ""
        problems.append(f"{where}: {why} rows per set")
    if plan_trains(config, method):
        problems += plan_budget_problems(config, layout, architecture, method)
    return problems


def plan_memory(
    config: dict, layout: Layout, architecture: Mapping, method: str = plan_table.SIMULATION
) -> float:
    """Bytes the plan's job holds at its peak, roughly, where it trains: every simulated
    experiment's data (``plan.simulation.seeds`` a design for the simulation, one for the
    formula's training check; each kept until its ko is trained; the tensors and the
    trainer's copy), the pilots, and one network."""
    plan = config["plan"]
    experiments = plan["simulation"]["seeds"] if method == plan_table.SIMULATION else 1
    pilots = len(config["seeds"]) if pilot_source(config).has_ground_truth else 1  # one per seed's fly
    row_bytes = (architecture["n_inputs"] + architecture["n_outputs"]) * 4 * 2
    rows = len(layout.sets) * sum(plan["n_per_set"]) * experiments * pilots
    rows += len(layout.sets) * plan["pilot_n"] * pilots * (1 + experiments)
    widths = [architecture["n_inputs"], *architecture["encoder"], architecture["n_hidden"]]
    widths += [*architecture["decoder"], architecture["n_outputs"]]
    batch_size = plan_training_settings(config)["batch_size"]
    network = memory.network_bytes(widths, architecture["n_hidden"], batch_size)
    return memory.RUNTIME_BYTES + rows * row_bytes + network


def plan_budget_problems(config: dict, layout: Layout, architecture: Mapping, method: str) -> list[str]:
    needed = plan_memory(config, layout, architecture, method)
    limit = config["limits"]["memory_gb"]
    if needed <= limit * memory.GIB:
        return []
    return [
        f"plan: its simulated experiments would hold about {needed / memory.GIB:.1f} GB, over "
        f"limits.memory_gb = {limit:g} (it grows with plan.n_per_set, plan.simulation.seeds, the "
        f"pilot's sets and inputs and, for a simulated pilot, the seeds); make them smaller, or "
        f"raise limits.memory_gb"
    ]
