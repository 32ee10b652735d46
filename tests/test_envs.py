"""The conda envs, checked statically: conda channels cannot be reached where this is built.

Each env must parse, use conda-forge only, pin every package to an exact version, and
provide every third-party module that the scripts of the rules using it import
(directly or through the core package).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from knockout_workflow.sources import PACKAGES, third_party_modules

REPO = Path(__file__).resolve().parents[1]
ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
# import name -> conda-forge package, where they differ
CONDA_PACKAGE = {
    "torch": "pytorch",
    "matplotlib": "matplotlib-base",
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
}
EXACT_PIN = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9_.\-]*)=(?P<version>\d+(\.\d+)*)(=(?P<build>[a-z0-9_*]+))?$"
)
PIP_PACKAGE = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
"""conda-forge package -> its name in requirements.txt, where they differ."""
TRAINING_ENVS = {"TRAINING_ENV": ["torch.yaml", "torch-cuda.yaml"]}
"""A rule's env given by a name in jobs.smk: the env files it can be."""


def env_packages(env: Path) -> dict[str, str]:
    """Package name -> pinned version."""
    spec = yaml.safe_load(env.read_text())
    pins = {}
    for dependency in spec["dependencies"]:
        match = EXACT_PIN.match(dependency) if isinstance(dependency, str) else None
        if match is None:
            raise ValueError(f"{env.name}: {dependency!r} is not pinned as name=version (e.g. numpy=2.1.3)")
        pins[match["name"]] = match["version"]
    return pins


def workflow_rules() -> dict[str, dict[str, Path]]:
    """Rule name -> its ``conda`` env and ``script`` files, read from the rule files."""
    rules = {}
    for rule_file in RULE_FILES:
        for name, body in re.findall(
            r"^rule (\w+):\n((?:[ \t]+.*\n|[ \t]*\n)*)", rule_file.read_text(), re.M
        ):
            directives = dict(re.findall(r"^    (conda|script):\s*\n\s+\"([^\"]+)\"", body, re.M))
            rules[name] = {key: (rule_file.parent / path).resolve() for key, path in directives.items()}
            if named := re.search(r"^    conda:\s*\n\s+([A-Z_]+)\s*$", body, re.M):
                rules[name]["conda"] = REPO / "envs" / TRAINING_ENVS[named[1]][0]
                rules[name]["conda_alternatives"] = [REPO / "envs" / e for e in TRAINING_ENVS[named[1]]]
    return rules


def missing_packages(script: Path, env: Path) -> set[str]:
    """Conda packages ``script`` needs that ``env`` does not provide."""
    needed = {CONDA_PACKAGE.get(module, module) for module in third_party_modules(script)}
    return needed - set(env_packages(env))


def test_the_rule_files_are_found():
    assert {"generate_fly_data", "train_models", "evaluate_models", "plot"} <= set(workflow_rules())


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_uses_conda_forge_only_and_pins_every_package(env):
    spec = yaml.safe_load(env.read_text())
    assert spec["channels"] == ["conda-forge", "nodefaults"]
    pins = env_packages(env)
    # the script preamble imports the host's Snakemake 9, which needs Python >= 3.11
    assert tuple(int(part) for part in pins["python"].split(".")[:2]) >= (3, 11)


@pytest.mark.parametrize("rule", sorted(workflow_rules()))
def test_every_rule_with_a_script_declares_an_env_that_provides_its_imports(rule):
    directives = workflow_rules()[rule]
    assert "script" in directives, f"rule {rule} has no script (only the Python rules are expected)"
    assert "conda" in directives, f"rule {rule} declares no conda env"
    assert directives["conda"].exists(), f"rule {rule}: {directives['conda']} does not exist"
    assert missing_packages(directives["script"], directives["conda"]) == set()


def test_the_plot_env_carries_no_pytorch():
    """Plotting must not import torch, so its env stays small."""
    plot_env = workflow_rules()["plot"]["conda"]
    assert "pytorch" not in env_packages(plot_env)


def test_a_script_importing_a_module_its_env_lacks_is_caught(tmp_path):
    script = tmp_path / "uses_sklearn.py"
    script.write_text("import sklearn.linear_model\nfrom knockout import tables\nimport os\n")
    assert missing_packages(script, REPO / "envs" / "plot.yaml") == {"scikit-learn"}


def test_an_unpinned_package_is_caught(tmp_path):
    env = tmp_path / "loose.yaml"
    env.write_text("channels: [conda-forge, nodefaults]\ndependencies: [python=3.11.10, numpy>=2]\n")
    with pytest.raises(ValueError, match="numpy>=2"):
        env_packages(env)


def requirements() -> dict[str, str]:
    text = (REPO / "requirements.txt").read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([0-9.]+)", text, re.M))


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_are_the_versions_the_venv_is_tested_with(env):
    pinned = requirements()
    for package, version in env_packages(env).items():
        pip_name = PIP_PACKAGE.get(package, package)
        if pip_name in pinned:
            assert version == pinned[pip_name], (
                f"{env.name}: {package}={version}, requirements.txt {pinned[pip_name]}"
            )


def test_the_cuda_env_requests_a_cuda_build_and_provides_what_the_training_env_does():
    spec = yaml.safe_load((REPO / "envs" / "torch-cuda.yaml").read_text())
    assert "pytorch=2.13.0=cuda*" in spec["dependencies"]
    assert set(env_packages(REPO / "envs" / "torch-cuda.yaml")) == set(
        env_packages(REPO / "envs" / "torch.yaml")
    )
    train = workflow_rules()["train_models"]
    for env in train["conda_alternatives"]:
        assert missing_packages(train["script"], env) == set()


def test_script_jobs_find_the_installed_packages_in_any_env():
    """The core and the plumbing are installed in the interpreter that runs Snakemake
    (make venv, editable); Snakemake appends that interpreter's search path to every
    script job's, conda envs included, so an env need not install them itself."""
    from snakemake.common import get_snakemake_searchpaths

    searched = {Path(path).resolve() for path in get_snakemake_searchpaths()}
    assert {folder.parent for folder in PACKAGES.values()} <= searched
