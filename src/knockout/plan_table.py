"""The experiment plan's tables, as the planner (knockout.planning) writes them and the
figure (knockout.plotting) reads them: columns, methods, the reasons a unit gets no
number and the interval's coverage; and which method plans for a network. A module of
its own, without PyTorch, so that drawing a plan neither needs the planner's imports nor
reruns when its code changes, and the workflow checks a plan without importing PyTorch."""

PLAN_COLUMNS = [
    "unit",
    "n_per_set",
    "predicted_r2",
    "lower",
    "upper",
    "p_identified",
    "method",
    "reason",
    "training_shortfall",
]
"""One row per unit and design; ``reason`` says why a unit has no prediction (else empty);
``training_shortfall``, where the formula's training check ran, how far ko's training fell
short of the exact optimum on an experiment of that design simulated from the pilot (taken
off the formula's numbers; NaN where it did not run)."""
MIN_N_COLUMNS = ["unit", "min_n_per_set", "reason"]
FORMULA, SIMULATION, AUTO = "formula", "simulation", "auto"
METHODS = (FORMULA, SIMULATION, AUTO)
INTERVAL = 0.95
"""The coverage of ``lower`` .. ``upper``, the interval of one experiment's R² (clipped to [0, 1])."""

NOT_ALONE = "silenced only together with other units in the pilot: the design cannot tell them apart"
NEVER_SILENCED = "never silenced in the pilot: there is no set to estimate its contribution from"
NARROWER_MODEL = "the model has fewer units than the data: ko has no unit to give this one"
SHORT_REASONS = {
    NOT_ALONE: "silenced with others",
    NEVER_SILENCED: "never silenced",
    NARROWER_MODEL: "no model unit",
}
"""Each reason in a few words, for a figure's cells."""


def formula_applies(architecture) -> str | None:
    """Why the formula method does not apply to networks of ``architecture`` (a
    knockout.network.Architecture, or anything with its fields, such as the workflow's
    architecture dicts as a namespace; None: it does): it is derived for linear two-layer
    networks with one continuous behavioural output, reading plain inputs."""
    if architecture.activation != "linear":
        return f"the formula is derived for linear networks, not {architecture.activation}"
    if architecture.encoder or architecture.decoder:
        return "the formula is derived for two-layer networks (no encoder or decoder layers)"
    if architecture.n_outputs != 1:
        return f"the formula is derived for one behavioural output, not {architecture.n_outputs}"
    if getattr(architecture, "binary_outputs", 0):
        return "the formula is derived for a continuous output (least squares), not a binary one"
    if getattr(architecture, "frame_features", 0):
        return "the formula is derived for networks whose units read the inputs, not a frame encoder"
    return None


def method_for(method: str, architecture) -> str:
    """The method that plans for ``architecture``: ``auto`` is the formula where it
    applies (linear two-layer, one output) and simulation elsewhere. Asking for the
    formula where it does not apply is a ValueError saying why."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} unknown (allowed: {', '.join(METHODS)})")
    problem = formula_applies(architecture)
    if method == AUTO:
        return SIMULATION if problem else FORMULA
    if method == FORMULA and problem:
        raise ValueError(f"method formula: {problem}; use simulation (or auto)")
    return method
