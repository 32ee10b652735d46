"""The registry of compared models: the one place that says what each model is.

A model's entry carries its behaviour as objects: the data sets it trains on
(:class:`TrainsOn`), what it masks on a training batch and on a test set
(:class:`knockout.masking.Masking`), its label, colour and marker, and, for a reference
that is computed rather than trained, which model's objective it is the exact optimum
of. Training (:mod:`knockout.training.plan`), evaluation (:mod:`knockout.metrics`), the
convergence check, the config check, the summaries, the sweeps and the figures read this
table and ask those objects; nothing else names a model's behaviour. Adding a comparison
model is one entry here; one with a new masking behaviour adds a class to
:mod:`knockout.masking` too.
"""

from __future__ import annotations

from dataclasses import dataclass

from knockout.masking import MATCHING, NONE, RANDOM, Masking


@dataclass(frozen=True)
class TrainsOn:
    """The data sets a model fits: the control set only, or every set (the silenced ones too)."""

    name: str
    silenced: bool
    """Whether the silenced sets are trained on."""

    def sets(self, data) -> list:
        """(silenced units, rows) of each set of ``data`` (a
        :class:`~knockout.behavior_data.BehaviorData`) trained on, in the data's order
        (control first). (Not annotated: this module imports nothing heavy, since the
        summaries and figures, whose environment has no torch, read the registry.)"""
        return data.rows_by_set(include_silenced=self.silenced)


CONTROL_SET = TrainsOn("control", silenced=False)
EVERY_SET = TrainsOn("all", silenced=True)


@dataclass(frozen=True)
class ModelSpec:
    """One compared model: what it trains on, what it masks on a training batch
    (``train_masking``) and on a test set (``test_masking``), how figures show it, and
    ``optimum_of``: for a reference that is computed, not trained, the model whose
    objective it is the exact optimum of (None: a trained model)."""

    name: str
    trains_on: TrainsOn
    train_masking: Masking
    test_masking: Masking
    label: str
    color: str
    marker: str
    optimum_of: str | None = None

    def __post_init__(self) -> None:
        for field, value, kind in (
            ("trains_on", self.trains_on, TrainsOn),
            ("train_masking", self.train_masking, Masking),
            ("test_masking", self.test_masking, Masking),
        ):
            if not isinstance(value, kind):
                raise TypeError(f"model {self.name}: {field} {value!r} is not a {kind.__name__}")
        if self.test_masking.draws:
            raise ValueError(
                f"model {self.name}: test_masking {self.test_masking!r} draws at random "
                f"(evaluation draws nothing)"
            )

    @property
    def trained(self) -> bool:
        """False for a reference that is computed, not trained (an exact optimum)."""
        return self.optimum_of is None


def _checked(specs: tuple[ModelSpec, ...]) -> dict[str, ModelSpec]:
    """The registry by name; an optimum must be of a trained model, names unique."""
    registry = {spec.name: spec for spec in specs}
    if len(registry) != len(specs):
        raise ValueError("model names in the registry repeat")
    for spec in specs:
        target = None if spec.optimum_of is None else registry.get(spec.optimum_of)
        if spec.optimum_of is not None and (target is None or not target.trained):
            raise ValueError(f"model {spec.name}: optimum_of {spec.optimum_of!r} is not a trained model")
    return registry


# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), and a
# marker shape per model so that no figure relies on colour alone.
REGISTRY: dict[str, ModelSpec] = _checked(
    (
        ModelSpec("control", CONTROL_SET, NONE, NONE, "control (control data only)", "#999999", "D"),
        ModelSpec("noko", EVERY_SET, NONE, NONE, "noko (all data, no masking)", "#0072B2", "^"),
        ModelSpec("ko", EVERY_SET, MATCHING, MATCHING, "ko (knockout training)", "#D55E00", "o"),
        ModelSpec("do", EVERY_SET, RANDOM, NONE, "do (random-unit dropout)", "#009E73", "s"),
        ModelSpec(
            "optimum",
            EVERY_SET,
            MATCHING,
            MATCHING,
            "exact knockout optimum (best possible)",
            "#000000",
            "*",
            optimum_of="ko",
        ),
    )
)
TRAINED = tuple(name for name, spec in REGISTRY.items() if spec.trained)
"""The models a config's ``models`` may list, in the order figures and tables show them."""
OPTIMUM = "optimum"
"""The knockout objective's exact optimum (linear two-layer networks), evaluated beside
the trained models; computed where the model it is the optimum of is trained."""
KNOCKOUT = REGISTRY[OPTIMUM].optimum_of
"""The model the optimum is the exact optimum of (ko): the optimum is computed where it is
trained, and its knockout loss is compared with the optimum's (convergence, summaries)."""
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
