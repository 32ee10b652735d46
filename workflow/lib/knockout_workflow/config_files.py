"""Config files are data: each is checked before Snakemake merges it into the config.

Snakemake reads a config file as YAML and, when it holds ``__use_yte__: true``, renders
it as a YTE template, which runs Python code; and it merges and validates configs by
walking them, so a file of nested YAML aliases (a few hundred bytes that expand to
billions of nodes) hangs the run. The workflow reads every config file itself first
and refuses, naming the file: a file that is not UTF-8 or not YAML, YAML aliases and
anchors, tags, YTE, and files over a size limit.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from knockout.errors import InputFileError

MAX_CONFIG_BYTES = 1 << 20
"""A config file's size limit (the shipped one is about 8 KB)."""
YTE_KEY = "__use_yte__"
PLAIN_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map")}
"""Explicit YAML tags a config may use: plain data types only."""


def _implicit(event) -> bool:
    """Whether an event's tag was written in the file (False) or resolved from its value."""
    implicit = getattr(event, "implicit", True)
    return all(implicit) if isinstance(implicit, tuple) else bool(implicit)


def check_config_file(path: str | os.PathLike) -> None:
    """Raise :class:`InputFileError` naming ``path`` if it is not a plain YAML (or JSON) mapping."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise InputFileError(f"{path}: {size} bytes; a config file may hold at most {MAX_CONFIG_BYTES}")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: config file not found") from None
    except UnicodeDecodeError as error:
        raise InputFileError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.object[error.start : error.start + 1]!r})"
        ) from None
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise InputFileError(
                    f"{path}, line {event.start_mark.line + 1}: YAML anchors and aliases (& and *) are "
                    f"not allowed in a config (they can expand without bound); write the values out"
                )
            tag = getattr(event, "tag", None)
            if tag and tag not in PLAIN_TAGS and not _implicit(event):
                raise InputFileError(f"{path}, line {event.start_mark.line + 1}: YAML tag {tag} not allowed")
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputFileError(f"{path}{where}: not valid YAML ({reason})") from None
    if content is None:
        return
    if not isinstance(content, dict):
        raise InputFileError(
            f"{path}: a config file holds keys at the top level, not {type(content).__name__}"
        )
    if YTE_KEY in content:
        raise InputFileError(
            f"{path}: {YTE_KEY} turns the file into a YTE template, which runs code; configs here are "
            f"plain data: remove the key"
        )
