"""When the knockout objective has an exact optimum: the one statement of the conditions,
read by the core (:func:`knockout.identifiability.optimum_problem`, before fitting one) and
by the workflow (which plans the optimum's jobs from the config, without PyTorch).

The derivation (:mod:`knockout.identifiability`) needs linear two-layer networks with one
continuous output, nothing else between inputs and outputs (no frame encoder, no batch
normalisation): the objective is then least squares in the unit products; sets that
silence one unit each (a set's weights are then the sum of the other units' products);
and units silenced to 0 (``zero``: a unit clamped to its mean leaves a data-dependent
offset in the objective).
"""

from __future__ import annotations

from collections.abc import Mapping


def optimum_problem(network: Mapping, single_unit_sets: bool = True, silencing: str = "zero") -> str | None:
    """Why the knockout objective of networks of shape ``network`` (the fields of
    ``knockout.network.Architecture``, as a mapping; a missing optional field is off) has no
    exact optimum on data whose silenced sets do (``single_unit_sets``) or do not all silence
    one unit each, under ko's ``silencing`` mode in training; None: it has one."""
    reasons = []
    if network["activation"] != "linear":
        reasons.append(f"the units are {network['activation']}")
    if network["encoder"] or network["decoder"]:
        reasons.append("the network has encoder or decoder layers")
    if network.get("frame_features"):
        reasons.append("it reads frames through a frame encoder")
    if network["n_outputs"] != 1:
        reasons.append(f"it has {network['n_outputs']} outputs")
    elif network.get("binary_outputs"):
        reasons.append("its output is binary (cross-entropy is not least squares)")
    if network.get("batch_norm"):
        reasons.append("its layers are batch-normalised")
    if not single_unit_sets:
        reasons.append("a set silences several units")
    if silencing != "zero":
        reasons.append(f"ko trains with {silencing} silencing")
    if not reasons:
        return None
    return (
        "the knockout objective has an exact optimum only for linear two-layer networks with one "
        "continuous output, fitted to sets that silence one unit each with units silenced to 0; "
        f"here {' and '.join(reasons)}"
    )
