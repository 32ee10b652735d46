"""Figure captions: rendered when the figure is drawn, shown by the report as they are."""

from __future__ import annotations

import jinja2
import pytest
from docutils.core import publish_parts

from knockout_workflow.captions import caption, write_caption

TEMPLATE = (
    "Seeds {{ seeds }}.{% if noise_sd is none %} Recorded data."
    "{% else %} Noise σ = {{ noise_sd }}.{% endif %}"
)
MADE_WITH = {"seeds": [0, 1], "fly": {"noise_sd": 0.05, "encoder": []}, "train": {"per_model": {}}}


def as_the_report_shows_it(text: str) -> str:
    """What Snakemake's report does with a caption file: a Jinja pass, then docutils."""
    rendered = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(text).render()
    return publish_parts(rendered, writer="html")["body"]


def test_the_template_is_rendered_with_the_values_the_figure_was_drawn_with():
    text = caption(TEMPLATE, {"seeds": [0, 1], "noise_sd": 0.05}, MADE_WITH)
    shown = as_the_report_shows_it(text)
    assert "Seeds [0, 1]. Noise σ = 0.05." in shown
    assert "Recorded data" not in shown
    assert "Recorded data" in as_the_report_shows_it(caption(TEMPLATE, {"seeds": [0], "noise_sd": None}, {}))


def test_the_config_is_a_literal_block_of_yaml_braces_and_all():
    shown = as_the_report_shows_it(caption(TEMPLATE, {"seeds": [0], "noise_sd": 0.1}, MADE_WITH))
    block = shown[shown.index("<pre") :]
    for line in ["seeds: [0, 1]", "noise_sd: 0.05", "encoder: []", "per_model: {}"]:
        assert line in block, block


def test_no_config_value_acts_as_a_template_in_the_report():
    hostile = {"data": {"source": "{{ 7 * 7 }}{% for x in range(3) %}x{% endfor %}{# c #}"}}
    shown = as_the_report_shows_it(caption("Seeds {{ seeds }}.", {"seeds": [0]}, hostile))
    assert "{{ 7 * 7 }}{% for x in range(3) %}x{% endfor %}{# c #}" in shown and "49" not in shown


def test_a_missing_value_is_an_error_not_an_empty_caption():
    with pytest.raises(jinja2.UndefinedError):
        caption(TEMPLATE, {"noise_sd": 0.05}, MADE_WITH)


def test_the_caption_file_is_written_whole(tmp_path):
    path = tmp_path / "figures" / "behavior_r2.rst"
    write_caption(path, TEMPLATE, {"seeds": [3], "noise_sd": 0.2}, MADE_WITH)
    assert path.read_text(encoding="utf-8") == caption(TEMPLATE, {"seeds": [3], "noise_sd": 0.2}, MADE_WITH)
    assert [p.name for p in path.parent.iterdir()] == ["behavior_r2.rst"]
