"""The registry of compared models: the one place that says what each model is.

Training (which sets a model fits, what it masks on a silenced batch), evaluation (what
it masks on a silenced test set), the config check, the summaries, the sweeps and the
figures all read this table; adding a comparison model means adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

TRAINS_ON = ("control", "all")
"""control: the control set only; all: every data set."""
TRAIN_MASKS = ("none", "matching", "random")
"""What a model masks on a batch of a silenced set: nothing, the model unit matching the
silenced fly unit, or a uniformly random unit."""
TEST_MASKS = ("none", "matching")


@dataclass(frozen=True)
class ModelSpec:
    """One compared model. ``trained`` is False for a reference that is computed, not
    trained (the knockout objective's exact optimum)."""

    name: str
    trains_on: str
    train_mask: str
    test_mask: str
    label: str
    color: str
    marker: str
    trained: bool = True

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("trains_on", self.trains_on, TRAINS_ON),
            ("train_mask", self.train_mask, TRAIN_MASKS),
            ("test_mask", self.test_mask, TEST_MASKS),
        ):
            if value not in allowed:
                raise ValueError(f"model {self.name}: {field} {value!r} unknown (allowed: {allowed})")


# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), and a
# marker shape per model so that no figure relies on colour alone.
REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("control", "control", "none", "none", "control (control data only)", "#999999", "D"),
        ModelSpec("noko", "all", "none", "none", "noko (all data, no masking)", "#0072B2", "^"),
        ModelSpec("ko", "all", "matching", "matching", "ko (knockout training)", "#D55E00", "o"),
        ModelSpec("do", "all", "random", "none", "do (random-unit dropout)", "#009E73", "s"),
        ModelSpec(
            "optimum",
            "all",
            "matching",
            "matching",
            "exact knockout optimum (best possible)",
            "#000000",
            "*",
            trained=False,
        ),
    )
}
TRAINED = tuple(name for name, spec in REGISTRY.items() if spec.trained)
"""The models a config's ``models`` may list, in the order figures and tables show them."""
OPTIMUM = "optimum"
"""The knockout objective's exact optimum (linear two-layer networks), evaluated beside
the trained models; computed where ko is trained."""
KNOCKOUT = "ko"
CONTRAST = ("ko", "do")
"""The pair the sweeps compare: knockout training against the control that masks as
often, but a random unit."""


def spec(name: str) -> ModelSpec:
    """A model's registry entry; an unknown name fails naming the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"model {name!r} unknown (allowed: {', '.join(REGISTRY)})") from None


def ordered(names) -> list[str]:
    """``names`` in the registry's order (unknown names fail loudly)."""
    names = set(names)
    for name in names:
        spec(name)
    return [name for name in REGISTRY if name in names]
