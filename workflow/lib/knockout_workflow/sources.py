"""Which source files and third-party modules a workflow script depends on.

Snakemake tracks a rule's script, not what it imports. So the workflow gives each rule
the digests of the project's modules its script uses (the core's and this package's) as a
parameter, and a test checks each rule's conda env provides the third-party modules. Both
follow the imports with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path


def _package_folder(name: str) -> Path:
    """Where an installed package's modules lie (found, not imported)."""
    return Path(importlib.util.find_spec(name).submodule_search_locations[0]).resolve()


PACKAGES = {name: _package_folder(name) for name in ("knockout", "knockout_workflow")}
"""The project's own packages, whose modules a script's digests cover."""


@functools.cache  # every rule's scripts share core modules; each is parsed once per workflow start
def _imports(source: Path) -> frozenset[str]:
    """Dotted names a file imports: ``a.b`` for ``import a.b``, ``a.b.c`` for ``from a.b import c``."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _module_files(name: str) -> list[Path]:
    """The project's files that importing dotted ``name`` runs: the module (``a.py``, or a
    package's ``a/__init__.py``) and the ``__init__.py`` of every package above it; a name
    that ends in an attribute (``from a import f``) is the module that holds it."""
    root, *parts = name.split(".")
    top = PACKAGES[root]
    while parts:
        folder = top.joinpath(*parts)
        module = folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")
        if module.exists():
            packages = [top.joinpath(*parts[:depth], "__init__.py") for depth in range(len(parts))]
            return [*packages, module]
        parts.pop()
    return [top / "__init__.py"]


def core_files(script: Path) -> list[Path]:
    """The project's modules ``script`` uses, directly or through others."""
    found: set[Path] = set()
    pending = [Path(script)]
    while pending:
        for name in _imports(pending.pop()):
            if name.split(".")[0] not in PACKAGES:
                continue
            for path in _module_files(name):
                if path not in found:
                    found.add(path)
                    pending.append(path)
    return sorted(found)


def third_party_modules(script: Path) -> set[str]:
    """Top-level modules outside the standard library and the project that ``script`` needs."""
    names = set()
    for source in [Path(script), *core_files(script)]:
        names.update(name.split(".")[0] for name in _imports(source))
    return {name for name in names if name not in PACKAGES and name not in sys.stdlib_module_names}


def digests(files: Iterable[Path]) -> dict[str, str]:
    """Each project file's path from its package (``knockout/training/plan.py``) and the
    SHA-256 of its content (the first 16 hex digits).

    It stands for the core modules a rule's script uses as one of the rule's ``params``:
    Snakemake reruns a job whose params changed, so the job reruns exactly when one of
    those modules changes content, is added or is dropped (not when it is only touched,
    or the project folder moves), and it names the module that changed, while the
    console's list of each job's inputs stays short.
    """
    return {_name(Path(path)): file_digest(path)[:16] for path in files}


def file_digest(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's content (hex), read in chunks: a data file may be large."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _name(path: Path) -> str:
    """A project file's path from its package's folder's parent; any other file's name."""
    path = path.resolve()
    for folder in PACKAGES.values():
        if path.is_relative_to(folder):
            return path.relative_to(folder.parent).as_posix()
    return path.name
