"""The experiment plan's tables, as the planner (knockout.planning) writes them and the
figure (knockout.plotting) reads them: columns, methods, the reasons a unit gets no
number and the interval's coverage. A module of its own, without PyTorch, so that
drawing a plan neither needs the planner's imports nor reruns when its code changes."""

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
