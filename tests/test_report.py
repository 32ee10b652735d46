"""End to end: the HTML report (`snakemake --report`) of a tiny run and one sweep.

The report is a self-contained React page that lists a figure only after clicks, so it is
checked in headless Chromium: tests/report_driver.js, appended to a copy of the report,
clicks through every category and row and records what each one showed. Checks that every
figure the workflow registers is shown, embedded byte for byte, under its category, with
its caption rendered for this run (its seeds, noise σ, sweep key and values), captions
that keep the config the figures were made with, and the landing page.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from workflow_helpers import FIGURES, TINY_CONFIG, copy_workflow, snakemake

pytestmark = pytest.mark.slow
CONFIG = {
    **TINY_CONFIG,
    "seeds": [0, 1],
    "train": {**TINY_CONFIG["train"], "epochs": 10},
    "sweep_seeds": [0],
    "sweeps": {"noise": {"key": "fly.noise_sd", "values": [0.02, 0.2]}},
}
MAIN_FIGURES = [f"results/figures/{name}.png" for name in FIGURES]
SWEEP_FIGURE = "results/sweeps/noise/ko_minus_do.png"
NOISE_FIGURES = [f"results/figures/{name}.png" for name in ["behavior_r2", "neural_r2", "r2_vs_contribution"]]
REPORT = "results/report.html"
DRIVER = Path(__file__).with_name("report_driver.js")


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    """Chromium's path; checked before the workflow runs. CI must have it."""
    path = shutil.which("chromium")
    if path is None:
        message = "rendering the report needs Chromium: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """The tiny run, its sweep, and the report of both."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"), CONFIG)
    snakemake(workdir)
    snakemake(workdir, "sweeps")
    # the report holds the figures of its targets' jobs: without targets, "all" only
    snakemake(workdir, "--report", str(workdir / REPORT), "all", "sweeps")
    return workdir


def dump_dom(chromium: str, page: Path) -> str:
    """The page's DOM after its scripts ran.

    Chromium's profile, caches and temporary files go to a scratch folder under /tmp:
    its lock socket's path must stay under a Unix socket's 108 bytes, which pytest's
    temporary folders exceed.
    """
    with tempfile.TemporaryDirectory(prefix="chromium-", dir="/tmp") as folder:
        scratch = Path(folder)
        environment = {
            **os.environ,
            "HOME": folder,
            "XDG_CONFIG_HOME": str(scratch / "config"),
            "XDG_CACHE_HOME": str(scratch / "cache"),
            "TMPDIR": folder,
        }
        command = [
            chromium,
            "--headless",
            "--no-sandbox",  # the sandbox refuses to run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={scratch / 'profile'}",
            "--dump-dom",
            "--virtual-time-budget=10000",  # ms; 0 would never return
            page.as_uri(),
        ]
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "</html>" in result.stdout, result.stderr[-3000:]
    return result.stdout


def without_scripts(dom: str) -> str:
    """The DOM minus <script> and <style>: the report inlines every file name, caption and
    image in scripts, so only what is left was rendered."""
    return re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.DOTALL | re.IGNORECASE)


def png_bytes(data_uri: str) -> bytes:
    header, data = data_uri.split(",", 1)
    assert header.startswith("data:image/png;") and header.endswith(";base64"), header
    return base64.b64decode(data, validate=True)


@pytest.fixture(scope="module")
def shown(chromium, finished_run, tmp_path_factory) -> dict[str, dict]:
    """What the driver saw for each result, by its path."""
    report = (finished_run / REPORT).read_text(encoding="utf-8")
    end = report.rindex("</body>")
    page = tmp_path_factory.mktemp("driven") / "report.html"
    page.write_text(
        f"{report[:end]}<script>\n{DRIVER.read_text()}\n</script>\n{report[end:]}", encoding="utf-8"
    )
    dom = without_scripts(dump_dom(chromium, page))
    found = re.search(r'<pre id="report-driver-result"[^>]*>(.*?)</pre>', dom, re.DOTALL)
    assert found, "the driver wrote no result"
    record = json.loads(html.unescape(found.group(1)))
    assert record["error"] is None, record["error"]
    assert record["categories"] == ["Replicates", "Sweeps"]
    figures = {figure["resultPath"]: figure for figure in record["figures"]}
    assert len(figures) == len(record["figures"]), "a result listed twice"
    return figures


def test_every_figure_is_shown_under_its_category_with_the_bytes_of_its_file(finished_run, shown):
    on_disk = sorted(
        str(path.relative_to(finished_run))
        for path in [
            *finished_run.glob("results/figures/*.png"),
            *finished_run.glob("results/sweeps/*/ko_minus_do.png"),
        ]
    )
    assert on_disk == sorted([*MAIN_FIGURES, SWEEP_FIGURE])
    categories = {path: "Sweeps" if path.startswith("results/sweeps/") else "Replicates" for path in on_disk}
    assert {path: figure["category"] for path, figure in shown.items()} == categories
    for path, figure in shown.items():
        assert figure["tag"] == "img", path
        assert png_bytes(figure["src"]) == (finished_run / path).read_bytes(), path


def test_captions_are_rendered_with_the_runs_values(shown):
    seeds = str(CONFIG["seeds"])
    for path in MAIN_FIGURES:
        caption = shown[path]["caption"]
        assert caption and seeds in caption and "{{" not in caption, (path, caption)
    noise = f"σ = {CONFIG['fly']['noise_sd']}"
    for path in NOISE_FIGURES:
        assert noise in shown[path]["caption"], (path, shown[path]["caption"])
    sweep = CONFIG["sweeps"]["noise"]
    caption = shown[SWEEP_FIGURE]["caption"]
    assert caption and "{{" not in caption, caption
    assert sweep["key"] in caption and str(sweep["values"]) in caption, caption
    assert f"seeds {CONFIG['sweep_seeds']}" in caption, caption


def rst_errors(caption: str) -> str:
    """The text of the error messages docutils appends to a caption with a markup error."""
    messages = re.search(r'<div class="system-messages[^>]*>(.*)', caption, re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", messages.group(1))).split()) if messages else ""


def test_captions_are_valid_restructuredtext(shown):
    broken = {path: rst_errors(figure["caption"] or "") for path, figure in shown.items()}
    assert {path: errors for path, errors in broken.items() if errors} == {}


def test_captions_keep_the_config_the_figures_were_made_with(finished_run, tmp_path):
    """A config edited after the run (figures not redrawn) does not change their captions."""
    path = finished_run / "config" / "config.yaml"
    original = path.read_text()
    path.write_text(yaml.safe_dump({**CONFIG, "train": {**CONFIG["train"], "epochs": 11}}))
    try:
        snakemake(finished_run, "--report", str(tmp_path / "edited.html"), "all")
    finally:
        path.write_text(original)
    report = (tmp_path / "edited.html").read_text(encoding="utf-8")
    assert report.count("epochs: 10") == len(MAIN_FIGURES) and "epochs: 11" not in report


def test_the_report_opens_on_the_workflow_and_a_menu_of_the_categories(chromium, finished_run):
    dom = without_scripts(dump_dom(chromium, finished_run / REPORT))
    assert "What the workflow did" in dom and "How to read it" in dom
    for category in ["Replicates", "Sweeps"]:
        assert f"<span>{category}</span>" in dom
