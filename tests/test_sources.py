"""What a workflow script depends on: the project's modules it imports, and their digests."""

from __future__ import annotations

from pathlib import Path

from knockout_workflow.sources import core_files, digests

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def names(script: str) -> set[str]:
    return set(digests(core_files(SCRIPTS / script)))


def test_a_script_depends_on_the_modules_it_imports_directly_and_through_others():
    plotting, training = names("plot.py"), names("train_models.py")
    drawing = {"knockout/plotting.py", "knockout/figures.py", "knockout/summary.py", "knockout/tables.py"}
    assert drawing | {"knockout_workflow/jobs.py"} <= plotting
    assert {"knockout/__init__.py", "knockout_workflow/__init__.py"} <= plotting  # run on import
    assert not any(name.startswith("knockout/training/") for name in plotting)
    assert "knockout/plotting.py" not in training
    # a package: its __init__, and every module of it that is imported, directly or not
    package = {
        f"knockout/training/{name}.py" for name in ("__init__", "plan", "engine", "stack", "optimizer")
    }
    assert package | {"knockout/training/relabel.py", "knockout/network.py"} <= training


def test_digests_follow_content_not_location_or_touching(tmp_path):
    first, second = tmp_path / "a" / "training.py", tmp_path / "b" / "training.py"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text("x = 1\n")
    before = digests([first])
    assert digests([second]) == before  # a moved project folder reruns nothing
    first.write_text("x = 1\n")
    assert digests([first]) == before  # saved unchanged
    first.write_text("x = 2\n")
    assert digests([first]) != before
