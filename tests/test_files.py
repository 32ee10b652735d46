"""Files between steps: Parquet tables, weight files, and the jobs' error reporting."""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from nets import two_layer

from knockout import naming
from knockout.errors import InputFileError, TrainingDiverged
from knockout.network import Architecture, KnockoutNet, initialize
from knockout.tables import (
    read_neural_scores,
    read_table,
    write_atomically,
    write_table,
)
from knockout.weights import load_models, load_network, save_network
from knockout_workflow.jobs import run_job

# ---------------------------------------------------------------------------------------------- tables


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_table_round_trip_keeps_values_and_dtypes(small_replicate, tmp_path):
    _, train, _, probe = small_replicate
    path = tmp_path / "new" / "folder" / "train.parquet"  # parent folders are created
    write_table(train, path)
    columns = ["set", *naming.input_columns(6), "y"]
    pd.testing.assert_frame_equal(read_table(path, columns), train[columns])
    write_table(probe, tmp_path / "probe.parquet")
    probe_columns = naming.neurons_columns(6, naming.unit_names(4))
    pd.testing.assert_frame_equal(read_table(tmp_path / "probe.parquet", probe_columns), probe)
    assert leftovers(path.parent) == leftovers(tmp_path) == []


def test_read_table_returns_the_requested_columns_in_the_requested_order(tmp_path):
    table = pd.DataFrame({"b": [1, 2], "a": [0.5, 1.5], "extra": ["p", "q"]})
    write_table(table, tmp_path / "t.parquet")
    assert list(read_table(tmp_path / "t.parquet", ["a", "b"]).columns) == ["a", "b"]


def test_write_table_is_byte_reproducible(small_replicate, tmp_path):
    _, train, _, _ = small_replicate
    write_table(train, tmp_path / "a.parquet")
    write_table(train.copy(), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_only_text_columns_are_dictionary_encoded(tmp_path):
    import pyarrow.parquet

    table = pd.DataFrame({"set": ["control", "A"] * 50, "x_00": np.linspace(0, 1, 100), "seed": 3})
    write_table(table, tmp_path / "t.parquet")
    row_group = pyarrow.parquet.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    encodings = {row_group.column(i).path_in_schema: row_group.column(i).encodings for i in range(3)}
    assert "RLE_DICTIONARY" in encodings["set"]
    assert "RLE_DICTIONARY" not in encodings["x_00"] and "RLE_DICTIONARY" not in encodings["seed"]
    write_table(table[["x_00"]], tmp_path / "numbers.parquet")  # no text column at all
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "numbers.parquet"), table[["x_00"]])


def assert_input_error_starts_with_path(path, columns=("a",)):
    with pytest.raises(InputFileError) as info:
        read_table(path, columns)
    assert str(info.value).startswith(f"{path}: ")
    return str(info.value)


def test_read_table_missing_file(tmp_path):
    assert "not found" in assert_input_error_starts_with_path(tmp_path / "missing.parquet")


def test_read_table_truncated_file(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"a": np.arange(1000.0)}), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_input_error_starts_with_path(path)


def test_read_table_not_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_text("dataset,y\ncontrol,1.0\n")
    assert_input_error_starts_with_path(path)


def test_read_table_missing_column_names_it(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"x_00": [1.0], "y": [2.0]}), path)
    message = assert_input_error_starts_with_path(path, ["x_00", "x_01", "y"])
    assert "x_01" in message


def test_read_table_with_no_rows(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"a": np.array([], np.float32)}), path)
    assert "no rows" in assert_input_error_starts_with_path(path)


def test_neural_tables_may_hold_nan_only_where_a_measure_is_undefined(tmp_path):
    """Every reader of neural tables (summaries, sweeps, figures) goes through one function."""
    table = pd.DataFrame({column: [0.5, 0.25] for column in naming.NEURAL_SCORE_COLUMNS})
    table["model"], table["unit"], table["silenced"], table["unit_name"] = "ko", [0, 1], 1, ["a", "b"]
    table[list(naming.GROUND_TRUTH_MEASURES)] = np.nan  # recorded data: no fly to compare with
    write_table(table, tmp_path / "relu.parquet")
    read = read_neural_scores([tmp_path / "relu.parquet"], [3])
    assert read["seed"].tolist() == [3, 3] and read["r2_predicted"].isna().all()
    table.loc[0, "silencing_effect"] = np.nan
    write_table(table, tmp_path / "broken.parquet")
    with pytest.raises(InputFileError, match="silencing_effect hold NaN"):
        read_neural_scores([tmp_path / "broken.parquet"], [3])


def test_a_failing_writer_leaves_no_file(tmp_path):
    def writer(temporary):
        with open(temporary, "w") as handle:
            handle.write("half a file")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_atomically(tmp_path / "out.parquet", writer)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_table_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "t.parquet"
    good = pd.DataFrame({"a": [1.0, 2.0]})
    write_table(good, path)
    unserializable = pd.DataFrame({"a": [object(), object()]})
    with pytest.raises(Exception):  # noqa: B017 (whatever pyarrow raises)
        write_table(unserializable, path)
    pd.testing.assert_frame_equal(read_table(path, ["a"]), good)
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


# --------------------------------------------------------------------------------------------- weights


def make_net(seed=0, n_inputs=6, n_hidden=4):
    return initialize(two_layer(n_inputs, n_hidden), "pytorch", torch.Generator().manual_seed(seed))


def good_state(n_inputs=6, n_hidden=4):
    return {key: value.clone() for key, value in make_net(0, n_inputs, n_hidden).state_dict().items()}


SIX_BY_FOUR = Architecture(6, 4)


def test_network_round_trip(tmp_path):
    net = make_net()
    save_network(net, tmp_path / "sub" / "net.pt")
    loaded = load_network(tmp_path / "sub" / "net.pt", SIX_BY_FOUR)
    assert set(loaded.state_dict()) == set(net.state_dict())
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert (loaded.hidden.in_features, loaded.n_hidden) == (6, 4)
    assert leftovers(tmp_path / "sub") == []


def test_a_deeper_network_round_trips_with_its_named_layers(tmp_path):
    architecture = Architecture(6, 4, encoder=(5,), decoder=(7, 3), n_outputs=2, activation="relu")
    net = initialize(KnockoutNet(architecture), "glorot", torch.Generator().manual_seed(0))
    save_network(net, tmp_path / "deep.pt")
    loaded = load_network(tmp_path / "deep.pt", architecture)
    assert sorted(loaded.state_dict()) == sorted(architecture.expected_shapes())
    assert "decoder.1.weight" in loaded.state_dict()
    x = torch.randn(3, 6)
    torch.testing.assert_close(loaded(x), net(x))
    # the same file read as the config's two-layer network is refused, naming the keys
    assert_refused(tmp_path / "deep.pt", "encoder.0.weight", "keys", architecture=SIX_BY_FOUR)


def assert_refused(path, *fragments, architecture=SIX_BY_FOUR):
    with pytest.raises(InputFileError) as info:
        load_network(path, architecture)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message
    return message


def test_load_network_missing_file(tmp_path):
    assert_refused(tmp_path / "none.pt", "not found")


@pytest.mark.parametrize(
    "change",
    [
        lambda state: state.pop("output.bias"),
        lambda state: state.update({"hidden.extra": torch.zeros(4)}),
        lambda state: state.pop("hidden.weight"),
    ],
    ids=["missing key", "extra key", "no hidden.weight"],
)
def test_load_network_rejects_a_wrong_key_set(tmp_path, change):
    state = good_state()
    change(state)
    torch.save(state, tmp_path / "net.pt")
    assert_refused(tmp_path / "net.pt")


def test_load_network_rejects_a_wrong_shape_naming_key_and_shapes(tmp_path):
    state = good_state()
    state["hidden.bias"] = torch.zeros(5)
    torch.save(state, tmp_path / "net.pt")
    assert_refused(tmp_path / "net.pt", "hidden.bias", "(5,)", "(4,)")


def test_load_network_rejects_a_network_of_another_size(tmp_path):
    save_network(make_net(), tmp_path / "net.pt")
    assert_refused(tmp_path / "net.pt", "hidden.weight", "(4, 6)", "(4, 7)", architecture=Architecture(7, 4))
    # consistent shapes of another size are refused too: the config says 3 units
    assert_refused(tmp_path / "net.pt", "(3, 6)", architecture=Architecture(6, 3))


def test_load_network_rejects_non_finite_values(tmp_path):
    for value in (float("nan"), float("inf")):
        state = good_state()
        state["output.weight"][0, 2] = value
        torch.save(state, tmp_path / "net.pt")
        assert_refused(tmp_path / "net.pt", "output.weight", "NaN")


def test_load_network_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "net.pt"
    save_network(make_net(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_refused(path, "not a loadable weights file")


def test_load_network_rejects_something_else_than_a_state_dict(tmp_path):
    torch.save([torch.zeros(4, 6)], tmp_path / "list.pt")
    assert_refused(tmp_path / "list.pt", "state_dict")
    (tmp_path / "text.pt").write_text("hidden.weight = 0")
    assert_refused(tmp_path / "text.pt")


MARKER = []


def _run_on_load(path):
    """What a malicious pickle would run; here it only leaves a trace."""
    with open(path, "w") as handle:
        handle.write("code ran")
    MARKER.append(path)
    return torch.zeros(1)


class CodeCarrier:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_run_on_load, (self.path,))


class CustomModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(6, 4)


def test_load_network_refuses_pickled_code_without_running_it(tmp_path):
    trace = tmp_path / "trace.txt"
    state = good_state()
    state["output.bias"] = CodeCarrier(str(trace))
    torch.save(state, tmp_path / "evil.pt")
    assert_refused(tmp_path / "evil.pt", "pickled code")
    assert not trace.exists()
    assert MARKER == []
    # The file does carry code: an unrestricted load runs it.
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert trace.read_text() == "code ran"
    MARKER.clear()


def test_load_network_refuses_a_pickled_module(tmp_path):
    torch.save(CustomModule(), tmp_path / "module.pt")
    assert_refused(tmp_path / "module.pt", "not a loadable weights file")


def test_load_models_checks_each_against_the_config(tmp_path):
    save_network(make_net(1), tmp_path / "ko.pt")
    save_network(make_net(2, n_hidden=5), tmp_path / "noko.pt")
    models = load_models({"ko": tmp_path / "ko.pt"}, SIX_BY_FOUR)
    assert torch.equal(models["ko"].hidden.weight, make_net(1).hidden.weight)
    with pytest.raises(InputFileError, match=r"noko\.pt: hidden\.weight has shape"):
        load_models({"ko": tmp_path / "ko.pt", "noko": tmp_path / "noko.pt"}, SIX_BY_FOUR)


def test_load_network_rejects_a_hidden_weight_that_is_not_a_matrix(tmp_path):
    state = good_state()
    state["hidden.weight"] = torch.zeros(4)
    torch.save(state, tmp_path / "net.pt")
    assert_refused(tmp_path / "net.pt", "hidden.weight")


# ------------------------------------------------------------------------------------------------ jobs


@pytest.fixture
def restore_logging():
    """run_job reconfigures the root logger for the job's log file; undo that after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(
    "error",
    [InputFileError("results/seed_0/train.parquet: file not found"), TrainingDiverged("model 'ko' diverged")],
)
def test_a_user_error_exits_1_with_one_console_line_and_a_log_entry(tmp_path, capsys, restore_logging, error):
    log = tmp_path / "job.log"

    def job():
        logging.info("started")
        raise error

    console = sys.stderr
    with pytest.raises(SystemExit) as info:
        run_job(str(log), job)
    assert sys.stderr is console
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"ERROR: {error}"]
    assert "Traceback" not in captured.err
    assert captured.out == ""
    text = log.read_text()
    assert "started" in text
    assert f"ERROR {error}" in text


def test_a_successful_job_logs_to_the_file_and_keeps_the_console_quiet(tmp_path, capsys, restore_logging):
    log = tmp_path / "job.log"

    def job():
        logging.info("trained in %.1f s", 1.5)
        print("a library warning", file=sys.stderr)

    console = sys.stderr
    run_job(str(log), job)
    assert sys.stderr is console
    assert capsys.readouterr().err == ""
    text = log.read_text()
    assert "INFO trained in 1.5 s" in text
    assert "a library warning" in text


def test_an_unexpected_error_is_not_turned_into_a_user_error(tmp_path, capsys, restore_logging):
    console = sys.stderr

    def job():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_job(str(tmp_path / "job.log"), job)
    assert sys.stderr is console
    assert "ERROR:" not in capsys.readouterr().err


def test_an_unexpected_error_is_recorded_in_the_log(tmp_path, restore_logging):
    def job():
        raise KeyError("bug in a step")

    with pytest.raises(KeyError):
        run_job(str(tmp_path / "job.log"), job)
    assert "bug in a step" in (tmp_path / "job.log").read_text()


def test_written_files_get_the_permissions_open_would_give(tmp_path):
    """The temporary file of an atomic write is private (0600); the result must follow the umask."""
    previous = os.umask(0o022)
    try:
        write_table(pd.DataFrame({"a": [1.0]}), tmp_path / "t.parquet")
        save_network(make_net(), tmp_path / "net.pt")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "t.parquet").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "net.pt").stat().st_mode) == 0o644


# ------------------------------------------------------------------------------------ non-finite values


def test_read_table_refuses_non_finite_values(tmp_path, small_replicate):
    _, train_table, _, _ = small_replicate
    table = train_table.copy()
    table.loc[3, "y"] = float("nan")
    path = tmp_path / "train.parquet"
    write_table(table, path)
    with pytest.raises(InputFileError, match=r"column\(s\) y hold NaN or infinite values") as error:
        read_table(path, ["x_00", "y"])
    assert str(error.value).startswith(str(path))


def test_read_table_accepts_nan_only_where_allowed_and_never_infinity(tmp_path):
    path = tmp_path / "summary.parquet"
    write_table(pd.DataFrame({"mean": [0.5, 0.6], "ci_low": [float("nan"), 0.1]}), path)
    assert read_table(path, ["mean", "ci_low"], may_be_nan=["ci_low"])["ci_low"].isna().sum() == 1
    with pytest.raises(InputFileError, match=r"column\(s\) ci_low hold NaN"):
        read_table(path, ["mean", "ci_low"])
    write_table(pd.DataFrame({"mean": [0.5], "ci_low": [float("inf")]}), path)
    with pytest.raises(InputFileError, match=r"column\(s\) ci_low hold NaN or infinite"):
        read_table(path, ["mean", "ci_low"], may_be_nan=["ci_low"])


def test_read_table_refuses_text_in_a_numeric_column(tmp_path, small_replicate):
    _, train_table, _, _ = small_replicate
    table = train_table.copy()
    table["x_01"] = table["x_01"].astype(str)
    path = tmp_path / "train.parquet"
    write_table(table, path)
    with pytest.raises(InputFileError, match=r"column\(s\) x_01 \(.*\) should hold numbers") as error:
        read_table(path, ["set", "x_00", "x_01", "y"])
    assert str(error.value).startswith(str(path))


# ------------------------------------------------------------------ files that would allocate too much


def test_a_weights_archive_declaring_more_than_the_network_needs_is_refused_unread(tmp_path):
    """A few kilobytes that unpack to 50 MB: refused from the zip directory, nothing inflated."""
    import zipfile

    save_network(make_net(), tmp_path / "net.pt")
    with zipfile.ZipFile(tmp_path / "net.pt", "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("net/data/99", b"\0" * 50_000_000)
    assert (tmp_path / "net.pt").stat().st_size < 200_000
    assert_refused(tmp_path / "net.pt", "would take", "bytes unpacked", "refused unread")


def test_a_weights_file_that_is_not_a_zip_archive_is_refused(tmp_path):
    (tmp_path / "net.pt").write_bytes(b"\x80\x02not a zip")
    assert_refused(tmp_path / "net.pt", "not a loadable weights file", "zip archive")


def test_a_parquet_table_larger_than_the_limit_is_refused_from_its_metadata(tmp_path):
    from knockout import tables

    pd.DataFrame({"a": np.zeros(100_000)}).to_parquet(tmp_path / "t.parquet")  # dictionary-encoded
    tables.check_parquet_size(tmp_path / "t.parquet")  # within the limit
    assert (tmp_path / "t.parquet").stat().st_size < 10_000  # 100000 zeros compress to almost nothing
    with pytest.raises(InputFileError, match=r"t\.parquet: 100000 rows x 1 columns would take 0\.00 GiB"):
        tables.check_parquet_size(tmp_path / "t.parquet", limit=10_000)


def test_a_full_disk_is_one_line_naming_the_file_and_nothing_half_written_is_left(
    tmp_path, capsys, restore_logging
):
    import errno

    def writer(temporary):
        Path(temporary).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", "results/figures/neural_r2.png")

    def job():
        write_atomically(tmp_path / "figure.png", writer)

    with pytest.raises(SystemExit) as info:
        run_job(str(tmp_path / "job.log"), job)
    assert info.value.code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "ERROR: no space left writing results/figures/neural_r2.png (No space left on device)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log"]
