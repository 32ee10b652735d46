"""This workflow used as a Snakemake module by an outer workflow (`module:` + `use rule *`):
it finds its core, its schema and its scripts from its own folder, not the outer one's."""

from __future__ import annotations

import pytest
import yaml
from workflow_helpers import REPO, SEEDS, TINY_CONFIG, snakemake

pytestmark = pytest.mark.slow

OUTER = f"""configfile: "my_config.yaml"


module knockout:
    snakefile:
        "{REPO / "Snakefile"}"
    config:
        config


use rule * from knockout as knockout_*
"""


def test_an_outer_workflow_imports_it_as_a_module_dry_runs_and_runs(tmp_path):
    (tmp_path / "Snakefile").write_text(OUTER)
    (tmp_path / "my_config.yaml").write_text(
        yaml.safe_dump(TINY_CONFIG | {"seeds": SEEDS[:1], "sweeps": None})
    )
    planned = snakemake(tmp_path, "-n")
    assert "knockout_train_models" in planned.stdout
    snakemake(tmp_path)
    assert (tmp_path / "results/seed0/eval/neural.parquet").exists()
    assert (tmp_path / "results/figures/neural_r2.png").read_bytes()[:4] == b"\x89PNG"
    assert "Nothing to be done" in snakemake(tmp_path, "-n").stdout
