"""What a workflow script depends on: the core modules it imports, and their digests."""

from __future__ import annotations

from pathlib import Path

from knockout.sources import core_files, digests

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def test_a_script_depends_on_the_modules_it_imports_directly_and_through_others():
    plotting = {path.name for path in core_files(SCRIPTS / "plot.py")}
    training = {path.name for path in core_files(SCRIPTS / "train_model.py")}
    assert {"plotting.py", "tables.py", "jobs.py"} <= plotting
    assert "training.py" not in plotting and "plotting.py" not in training
    assert {"training.py", "network.py"} <= training


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
