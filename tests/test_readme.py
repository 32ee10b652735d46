"""The README's Python example runs as written, on the shipped example data."""

from __future__ import annotations

import os
import re

import pytest
from workflow_helpers import REPO

from knockout import planning

pytestmark = pytest.mark.slow


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def run_readme_block(heading: str) -> dict:
    """Run the first Python block after ``heading`` in the project's folder, as a reader
    would; its variables."""
    namespace = {}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        exec(compile(readme_block(heading), f"README.md ({heading.lstrip('# ')})", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


def test_the_use_from_python_example_runs_and_identifies_the_single_unit_lines(capsys):
    namespace = run_readme_block("### Use from Python")
    neural = namespace["neural"].set_index(["model", "unit_name"])
    assert neural.loc[("ko", "LC9"), "r2"] > 0.8 > neural.loc[("do", "LC9"), "r2"]
    assert (
        neural.loc[("ko", "LC6"), "recorded"] == 0
        and neural.loc[("ko", "LC6"), "r2"] != neural.loc[("ko", "LC6"), "r2"]
    )
    assert set(namespace["predicted"]["model"]) == {"ko", "do"}
    assert "ko" in capsys.readouterr().out


def test_the_planning_example_runs_and_plans_the_shipped_pilot():
    smallest = run_readme_block("## Planning an experiment")["plan"].smallest.set_index("unit")
    # what the README says of it: N3 and N6 at 100, N5 at 300, N2 and N7 at 3000, N1, N4, N8 none (0)
    assert smallest["min_n_per_set"].fillna(0).to_dict() == {
        "N1": 0,
        "N2": 3000,
        "N3": 100,
        "N4": 0,
        "N5": 300,
        "N6": 100,
        "N7": 3000,
        "N8": 0,
    }
    assert smallest.loc["N8", "reason"] == planning.NEVER_SILENCED
