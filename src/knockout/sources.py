"""Which source files and third-party modules a workflow script depends on.

Snakemake tracks a rule's script, not what it imports. So the workflow gives each rule
the digests of the core modules its script uses as a parameter, and a test checks each
rule's conda env provides the third-party modules. Both follow the imports with
``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

CORE = Path(__file__).resolve().parent
PACKAGE = CORE.name


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
    """The core's files that importing dotted ``name`` runs: the module (``a.py``, or a
    package's ``a/__init__.py``) and the ``__init__.py`` of every package above it; a name
    that ends in an attribute (``from a import f``) is the module that holds it."""
    parts = name.split(".")[1:]
    while parts:
        folder = CORE.joinpath(*parts)
        module = folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")
        if module.exists():
            packages = [CORE.joinpath(*parts[:depth], "__init__.py") for depth in range(1, len(parts))]
            return [*packages, module]
        parts.pop()
    return []


def core_files(script: Path) -> list[Path]:
    """The core modules ``script`` uses, directly or through other core modules."""
    found: set[Path] = set()
    pending = [Path(script)]
    while pending:
        for name in _imports(pending.pop()):
            if name.split(".")[0] != PACKAGE:
                continue
            for path in _module_files(name):
                if path not in found:
                    found.add(path)
                    pending.append(path)
    return sorted(found)


def third_party_modules(script: Path) -> set[str]:
    """Top-level modules outside the standard library and the core that ``script`` needs."""
    names = set()
    for source in [Path(script), *core_files(script)]:
        names.update(name.split(".")[0] for name in _imports(source))
    return {name for name in names if name != PACKAGE and name not in sys.stdlib_module_names}


def digests(files: Iterable[Path]) -> dict[str, str]:
    """Each core file's path in the core (``training/plan.py``) and the SHA-256 of its
    content (the first 16 hex digits).

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
    """A core file's path within the core; any other file's name."""
    try:
        return path.resolve().relative_to(CORE).as_posix()
    except ValueError:
        return path.name
