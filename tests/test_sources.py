"""What a workflow script depends on: the core modules it imports, and their digests."""

from __future__ import annotations

from pathlib import Path

from knockout.sources import core_files, digests

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def names(script: str) -> set[str]:
    return set(digests(core_files(SCRIPTS / script)))


def test_a_script_depends_on_the_modules_it_imports_directly_and_through_others():
    plotting, training = names("plot.py"), names("train_models.py")
    assert {"plotting.py", "tables.py", "jobs.py"} <= plotting
    assert not any(name.startswith("training/") for name in plotting) and "plotting.py" not in training
    # a package: its __init__, and every module of it that is imported, directly or not
    package = {"training/__init__.py", "training/plan.py", "training/engine.py", "training/stack.py"}
    assert package | {"training/adam.py", "training/relabel.py", "network.py"} <= training


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
