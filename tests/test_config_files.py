"""Config files are data: each is read and checked before Snakemake merges it."""

from __future__ import annotations

import pytest

from knockout.errors import InputFileError
from knockout_workflow.config_files import MAX_CONFIG_BYTES, check_config_file

BOMB = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"

REFUSED = [
    ("aliases", BOMB.encode(), "line 1: YAML anchors and aliases (& and *) are not allowed"),
    ("yte", b"__use_yte__: true\nseeds: [0]\n", "__use_yte__ turns the file into a YTE template"),
    ("not utf-8", b"seeds: [0]\n# caf\xe9\n", "not UTF-8 text (byte 16: b'\\xe9')"),
    ("invalid yaml", b"seeds: [0, 1\n", "line 2, column 1: not valid YAML"),
    ("python tag", b"seeds: !!python/object/apply:os.system [ls]\n", "YAML tag tag:yaml.org,2002:python"),
    ("a list", b"- 1\n- 2\n", "holds keys at the top level, not list"),
    ("too large", b"#" * (MAX_CONFIG_BYTES + 1), f"at most {MAX_CONFIG_BYTES}"),
]


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_a_config_file_that_is_not_plain_data_is_refused_naming_it(tmp_path, content, message):
    path = tmp_path / "my.yaml"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as error:
        check_config_file(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


@pytest.mark.parametrize("content", [b"", b"seeds: [0, 1]\nfly: {n_hidden: 4}\n", b'{"seeds": [0]}'])
def test_plain_yaml_and_json_pass(tmp_path, content):
    (tmp_path / "ok.yaml").write_bytes(content)
    check_config_file(tmp_path / "ok.yaml")
