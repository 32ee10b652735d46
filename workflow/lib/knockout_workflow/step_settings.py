"""What a checked config asks of the steps: each model's training settings (the slice of
``train`` a training job gets) and the memory each step will hold, with the config's
problems where that is over ``limits.memory_gb``.

Read by the data sources (their cross-key rules and training estimates), the rules (each
job's settings and memory) and the benchmark; it reads nothing of the workflow.
"""

from __future__ import annotations

from knockout import memory

HOW_TO_RUN_TRAINING = ("one_job_per", "cuda_env")
"""Keys of ``train`` that say where and in which jobs training runs: the networks come out
the same whatever they are, so a figure's caption leaves them out."""
NOT_TRAINING_SETTINGS = ("per_model", "convergence", *HOW_TO_RUN_TRAINING)
"""Keys of ``train`` that say how to run or judge training, not what a network's training is."""


def shared_train_settings(train: dict) -> dict:
    """The ``train`` settings every model uses unless ``train.per_model`` overrides them."""
    return {key: value for key, value in train.items() if key not in NOT_TRAINING_SETTINGS}


def model_train_settings(train: dict, model: str) -> dict:
    """One model's training settings: the shared ones, then its ``per_model`` overrides."""
    return shared_train_settings(train) | train["per_model"].get(model, {})


def batch_sizes(train: dict) -> dict[str, int]:
    """Each batch size the ``train`` section gives, by the key that sets it: the shared one,
    then each ``train.per_model`` model's (its override, or the shared one it inherits)."""
    return {"train.batch_size": shared_train_settings(train)["batch_size"]} | {
        f"train.per_model.{model}.batch_size": model_train_settings(train, model)["batch_size"]
        for model in train["per_model"]
    }


MODEL_ARCHITECTURE_KEYS = ("n_hidden", "encoder", "decoder", "activation")
"""What the config's ``model`` section may change; inputs and outputs are the data's."""


def model_overrides(config: dict) -> dict:
    """The fitted networks' keys that the ``model`` section sets (a null one: the fly's)."""
    return {key: config["model"][key] for key in MODEL_ARCHITECTURE_KEYS if config["model"][key] is not None}


def _model_architecture(config: dict) -> dict:
    """The fitted networks' ``MODEL_ARCHITECTURE_KEYS``, as the config alone tells them."""
    return {key: config["fly"][key] for key in MODEL_ARCHITECTURE_KEYS} | model_overrides(config)


def job_seed_count(config: dict) -> int:
    """Seeds one data, training or evaluation job serves (train.one_job_per)."""
    if config["train"]["one_job_per"] != "experiment":
        return 1
    return max(len(config["seeds"]), len(config["sweep_seeds"]))


def training_estimates(config: dict) -> tuple[float, float]:
    """(least, most) bytes a training job holds: its seeds' training data on the device,
    and one network (what it falls back to when memory is short: the trainer trains in
    turns what would not fit at once), or every network of the job at once."""
    fly, data, train = config["fly"], config["data"], config["train"]
    d, n_outputs = fly["n_inputs"], fly["n_outputs"]
    n_sets = (data["n_silenced"] or fly["n_hidden"]) + 1
    seeds = job_seed_count(config)
    rows = n_sets * data["n_train"] * seeds
    table = n_sets * (data["n_train"] + data["n_test"]) * (d + n_outputs) * 4 * 3  # one file read at a time
    data_bytes = rows * (d + n_outputs) * 4 * 3  # tensors, the device's copy, the batch gathered
    model = _model_architecture(config)
    widths = [d, *model["encoder"], model["n_hidden"], *model["decoder"], n_outputs]
    per_model = [model_train_settings(train, name) for name in config["models"]]
    one_network = [memory.network_bytes(widths, model["n_hidden"], s["batch_size"]) for s in per_model]
    networks = [settings["restarts"] * size for settings, size in zip(per_model, one_network, strict=True)]
    models_per_job = 1 if train["one_job_per"] == "model" else len(networks)
    fixed = table + data_bytes + memory.RELABEL_BYTES
    return fixed + max(one_network), fixed + sum(sorted(networks)[-models_per_job:]) * seeds


def memory_estimates(config: dict) -> dict[str, float]:
    """Bytes each step of a simulated experiment will hold at its peak, roughly: the job's
    runtime, plus the tables and networks the config asks for (sized to catch orders of
    magnitude, not to plan a cluster's memory requests). Training is counted at its least:
    it trains in turns the networks that would not fit at once."""
    fly, data = config["fly"], config["data"]
    d, n_outputs = fly["n_inputs"], fly["n_outputs"]
    n_sets = (data["n_silenced"] or fly["n_hidden"]) + 1
    rows = n_sets * (data["n_train"] + data["n_test"])
    behavior = rows * (d + n_outputs) * 4 * 3  # the tensors, the table, the file's copy
    neurons = data["n_probe"] * (d + fly["n_hidden"]) * 4 * 3
    model = _model_architecture(config)
    widths = [d, *model["encoder"], model["n_hidden"], *model["decoder"], n_outputs]
    optimum = 0  # the knockout optimum's statistics and normal equations, where it is fitted
    linear = model["activation"] == "linear" and not model["encoder"] and not model["decoder"]
    if config["optimum"] and linear and n_outputs == 1:
        h = model["n_hidden"]
        statistics = n_sets * (d + 1) ** 2 * 8 * 3
        dense = (h * (d + 1) + 1) ** 2 * 8 * 3 if (data["n_silenced"] or fly["n_hidden"]) != h else 0
        optimum = statistics + dense
    estimates = {
        "generate_fly_data": behavior + neurons,
        "train_models": training_estimates(config)[0],
        "evaluate_models": behavior + neurons + max(data["n_probe"] * max(widths) * 8 * 8, optimum),
    }
    return {step: memory.RUNTIME_BYTES + estimate for step, estimate in estimates.items()}


def budget_problems(config: dict) -> list[str]:
    """Steps of a simulated experiment whose estimated memory exceeds ``limits.memory_gb``,
    naming the keys that set it (a data folder's size is checked when its files are read)."""
    limit = config["limits"]["memory_gb"] * memory.GIB
    problems = []
    for step, estimate in memory_estimates(config).items():
        if estimate > limit:
            problems.append(
                f"{step} would need about {estimate / memory.GIB:.1f} GB, over limits.memory_gb = "
                f"{config['limits']['memory_gb']:g} (it grows with data.n_train, data.n_test, data.n_probe, "
                f"fly.n_inputs, fly.n_hidden, the layer widths, train.restarts and, with "
                f"train.one_job_per: experiment, the seeds); make them smaller, or "
                f"raise limits.memory_gb if the machine has the memory"
            )
    return problems
