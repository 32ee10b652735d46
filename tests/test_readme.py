"""The README's Python example runs as written, on the shipped example data."""

from __future__ import annotations

import os
import re

import pytest
from workflow_helpers import REPO

pytestmark = pytest.mark.slow


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_use_from_python_example_runs_and_identifies_the_single_unit_lines(capsys):
    code = readme_block("### Use from Python")
    namespace = {}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        exec(compile(code, "README.md (Use from Python)", "exec"), namespace)
    finally:
        os.chdir(cwd)
    neural = namespace["neural"].set_index(["model", "unit_name"])
    assert neural.loc[("ko", "LC9"), "r2"] > 0.8 > neural.loc[("do", "LC9"), "r2"]
    assert (
        neural.loc[("ko", "LC6"), "recorded"] == 0
        and neural.loc[("ko", "LC6"), "r2"] != neural.loc[("ko", "LC6"), "r2"]
    )
    assert set(namespace["predicted"]["model"]) == {"ko", "do"}
    assert "ko" in capsys.readouterr().out
