"""Figure captions, written when the figures are drawn.

A caption must state the settings its figure was made with. Snakemake's report renders
each caption when the report is built, from the config as it is then, which may no
longer be the config the figure came from. So the step that draws a figure also renders
its caption template with the settings it drew it with, and the report shows that text
as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import yaml

from knockout.tables import write_atomically


class _SettingsDumper(yaml.SafeDumper):
    """YAML as a config file is written: sections as blocks, lists on one line."""


_SettingsDumper.add_representer(
    list, lambda dumper, items: dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=True)
)

_ENVIRONMENT = jinja2.Environment(
    trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined, autoescape=False
)


def _literal_for_report(text: str) -> str:
    """``text`` that the report's own template pass turns back into ``text``.

    The report renders every caption file as a Jinja template; each brace becomes an
    expression printing that brace, so no config value can act as a template (or run
    code) when the report is built.
    """
    return re.sub(r"[{}]", lambda brace: "{{ " + repr(brace.group()) + " }}", text)


def caption(template: str, values: dict, made_with: dict) -> str:
    """The reStructuredText caption: ``template`` (Jinja) rendered with ``values``, then
    ``made_with``, the config sections the figure was drawn from, as a literal block."""
    text = _ENVIRONMENT.from_string(template).render(**values).rstrip()
    settings = yaml.dump(made_with, Dumper=_SettingsDumper, sort_keys=False, width=80, allow_unicode=True)
    block = "".join(f"    {line}\n" for line in settings.splitlines())
    return _literal_for_report(f"{text}\n\nMade with these settings::\n\n{block}")


def write_caption(path: str | Path, template: str, values: dict, made_with: dict) -> None:
    write_atomically(
        path, lambda tmp: Path(tmp).write_text(caption(template, values, made_with), encoding="utf-8")
    )
