"""Planning a silencing experiment from a pilot: which units a design can identify.

A silencing line costs months; before running one, the planner predicts per unit and
per design (``n_per_set``, training samples per set) the best neural R² knockout
training can reach, an interval and the probability ``p_identified`` that it reaches a
target, from a pilot (control and some silenced sets, at any n). Two methods:

- :mod:`~knockout.planning.formula`: for linear two-layer networks with one output,
  c²/(c² + σ²·d/(n - d - 1)) with the contributions and noise estimated from the pilot
  (finite-sample corrected); instant. It predicts the exact optimum, not a training run:
  :mod:`~knockout.planning.training_check` trains ko on one experiment per design
  simulated from a network like the pilot and takes off how far training fell short.
- :mod:`~knockout.planning.simulation`: for any network, a network fitted to the pilot
  plays the fly, designs are simulated from it and ko is trained on each.

Both carry the pilot's uncertainty into the interval and ``p_identified``;
:func:`~knockout.planning.pilots.plan_pilots` runs whichever applies.
:mod:`~knockout.planning.designs` holds what they share: the rows, the reasons a unit gets
no number, the choice of method (``auto``) and the smallest design per unit; the tables'
vocabulary (columns, methods, reasons) is :mod:`knockout.plan_table`'s, which the figure
reads without importing the planner.
"""

from knockout.plan_table import (
    AUTO,
    FORMULA,
    INTERVAL,
    METHODS,
    MIN_N_COLUMNS,
    NARROWER_MODEL,
    NEVER_SILENCED,
    NOT_ALONE,
    PLAN_COLUMNS,
    SHORT_REASONS,
    SIMULATION,
    formula_applies,
    method_for,
)
from knockout.planning.designs import smallest_designs, unit_reasons
from knockout.planning.formula import (
    FormulaDraws,
    Pilot,
    PilotEstimates,
    formula_plan,
    pilot_estimates,
    predicted_r2,
)
from knockout.planning.pilots import plan_pilots
from knockout.planning.simulation import PilotTable, simulation_plans
from knockout.planning.training_check import training_shortfalls

__all__ = [
    "AUTO",
    "FORMULA",
    "INTERVAL",
    "METHODS",
    "MIN_N_COLUMNS",
    "NARROWER_MODEL",
    "NEVER_SILENCED",
    "NOT_ALONE",
    "PLAN_COLUMNS",
    "SHORT_REASONS",
    "SIMULATION",
    "FormulaDraws",
    "Pilot",
    "PilotEstimates",
    "PilotTable",
    "formula_applies",
    "formula_plan",
    "method_for",
    "pilot_estimates",
    "plan_pilots",
    "predicted_r2",
    "simulation_plans",
    "smallest_designs",
    "training_shortfalls",
    "unit_reasons",
]
