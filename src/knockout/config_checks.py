"""Config rules that span several keys, which the JSON schema cannot express.

The workflow runs these right after the schema, before any job, so a bad value
stops the run with one sentence naming the key, the value and what is allowed.
"""

from __future__ import annotations


def config_problems(config: dict) -> list[str]:
    """Every cross-key problem of a schema-valid config (empty when it is fine)."""
    problems = []
    n_train = config["data"]["n_train"]
    shared = {key: value for key, value in config["train"].items() if key != "per_model"}
    settings = {"train": shared} | {
        f"train.per_model.{model}": shared | override
        for model, override in config["train"]["per_model"].items()
    }
    for where, values in settings.items():
        if values["batch_size"] > n_train:
            problems.append(
                f"{where}.batch_size = {values['batch_size']} is larger than data.n_train = {n_train}; "
                f"every batch comes from one data set, so use at most {n_train}"
            )
    unused = sorted(set(config["train"]["per_model"]) - set(config["models"]))
    if unused:
        problems.append(
            f"train.per_model names {', '.join(unused)}, which is not in models "
            f"({', '.join(config['models'])}); add it to models or remove the override"
        )
    return problems
