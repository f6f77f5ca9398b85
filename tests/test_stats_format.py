"""The pimdram.stats HDF5 format: round trips, version handling, atomic writes, chunked tables."""
import datetime
import os
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pimdram.errors import (
    FileFormatError,
    OutputExistsError,
    PimdramError,
    VersionTooNewError,
    VersionTooOldError,
)
from pimdram.stats import (
    FORMAT,
    FORMAT_VERSION,
    STANDARD_TABLES,
    MissingTableError,
    StatsContentError,
    StatsFileNotFoundError,
    StatsWriter,
    Table,
    open_stats,
    standard_columns,
    standard_table,
    write_stats,
)
from pimdram.stats import schema

DOCS = Path(__file__).resolve().parents[1] / "docs" / "stats-format.md"

CONFIG_YAML = "memory:\n  standard: HBM2\n  channels: 8\n  timing: {nRCD: 14, nRP: 14}\n"


def run_attrs(**extra):
    attrs = {
        "config": CONFIG_YAML,
        "trace-sha256": "0123456789abcdef" * 4,
        "trace-path": "traces/example.trace",
        "seed": 42,
        "command-names": ["ACT", "PRE", "RD", "WR", "REFab"],
        "levels": ["channel", "pseudo_channel", "bank_group", "bank"],
    }
    attrs.update(extra)
    return attrs


def leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir())


ALL_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64"]


def every_dtype_table(n):
    rng = np.random.default_rng(7)
    columns, units = {}, {}
    for i, name in enumerate(ALL_DTYPES):
        dtype = np.dtype(name)
        if dtype.kind == "b":
            values = rng.integers(0, 2, n).astype(bool)
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            values = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
        else:
            values = rng.standard_normal(n).astype(dtype)
        columns[f"c_{name}"] = values
        units[f"c_{name}"] = ["cycle", "count", "B", "B/s", "J", "s", "ns", "1"][i % 8]
    columns["label"] = np.array([f"kernel-{i}-ü" for i in range(n)])
    units["label"] = "1"
    return Table(columns, units, attrs={"window": 64, "kind-names": ["read", "write"]})


# --- round trip -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 3, schema.COMPRESS_MIN_ROWS + 5])
def test_round_trip_every_dtype_and_unit(tmp_path, n):
    table = every_dtype_table(n)
    path = tmp_path / "out.h5"
    write_stats(path, run_attrs(), {"mixed": table})
    with open_stats(path) as sf:
        assert sf.tables == ["mixed"]
        back = sf.table("mixed")
        assert list(back) == table.names
        for name, array in table.columns.items():
            assert back[name].dtype.kind == array.dtype.kind
            if array.dtype.kind != "U":
                assert back[name].dtype == array.dtype
            np.testing.assert_array_equal(back[name], array)
        assert sf.units("mixed") == table.units
        assert sf.table_attrs("mixed") == {"window": 64, "kind-names": ["read", "write"]}
        assert sf.nrows("mixed") == n


def test_root_attributes_round_trip_as_python_types(tmp_path):
    path = tmp_path / "out.h5"
    extra = {"flag": True, "ratio": 0.25, "empty": [], "ints": [1, 2, 3], "floats": [0.5, 1.5],
             "description": "baseline HBM2 run"}
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    write_stats(path, run_attrs(**extra), {"t": Table({"x": [1]}, {"x": "count"})})
    with open_stats(path) as sf:
        attrs = sf.attrs
        assert attrs["format"] == FORMAT
        assert attrs["format-version"] == list(FORMAT_VERSION)
        assert sf.format_version == FORMAT_VERSION
        assert re.fullmatch(r"pimdram \d+\.\d+\.\d+.*", attrs["generated-by"])
        created = datetime.datetime.fromisoformat(attrs["creation-date"])
        assert created.utcoffset() == datetime.timedelta(0)
        assert before <= created <= datetime.datetime.now(datetime.timezone.utc)
        assert attrs["seed"] == 42 and type(attrs["seed"]) is int
        assert attrs["command-names"] == ["ACT", "PRE", "RD", "WR", "REFab"]
        assert sf.command_names == attrs["command-names"]
        assert sf.levels == ["channel", "pseudo_channel", "bank_group", "bank"]
        assert attrs["trace-path"] == "traces/example.trace"
        assert attrs["flag"] is True
        assert attrs["ratio"] == 0.25
        assert attrs["empty"] == []
        assert attrs["ints"] == [1, 2, 3]
        assert attrs["floats"] == [0.5, 1.5]
        assert attrs["description"] == "baseline HBM2 run"
        assert sf.config == {"memory": {"standard": "HBM2", "channels": 8,
                                        "timing": {"nRCD": 14, "nRP": 14}}}
    # the on-disk form is the documented one: format-version an int array, strings UTF-8
    with h5py.File(path, "r") as f:
        assert f.attrs["format-version"].dtype.kind == "i"
        assert list(f.attrs["format-version"]) == list(FORMAT_VERSION)
        assert "tables/t/x" in f
        assert f["tables/t/x"].attrs["unit"] == "count"


def test_writer_rejects_missing_and_reserved_attributes(tmp_path):
    attrs = run_attrs()
    del attrs["levels"]
    with pytest.raises(StatsContentError, match="levels"):
        write_stats(tmp_path / "a.h5", attrs, {})
    assert leftovers(tmp_path) == []
    with pytest.raises(StatsContentError, match="format"):
        write_stats(tmp_path / "b.h5", run_attrs(format="other"), {})
    with pytest.raises(StatsContentError, match="cannot store a dict"):
        write_stats(tmp_path / "c.h5", run_attrs(nested={"a": 1}), {})
    assert leftovers(tmp_path) == []


# --- reading what is not ours ------------------------------------------------------------------

def write_then_edit(path, **root_attrs):
    write_stats(path, run_attrs(), {"t": Table({"x": [1, 2]}, {"x": "count"})})
    with h5py.File(path, "r+") as f:
        for key, value in root_attrs.items():
            if value is None:
                del f.attrs[key]
            else:
                f.attrs[key] = value


def test_newer_major_version_is_rejected(tmp_path):
    path = tmp_path / "new.h5"
    write_then_edit(path, **{"format-version": np.array([FORMAT_VERSION[0] + 1, 0])})
    with pytest.raises(VersionTooNewError) as info:
        open_stats(path)
    message = str(info.value)
    assert f"{FORMAT_VERSION[0] + 1}.0" in message
    assert f"{FORMAT_VERSION[0]}.x" in message
    assert "upgrade" in message


def test_older_major_version_is_rejected(tmp_path):
    path = tmp_path / "old.h5"
    write_then_edit(path, **{"format-version": np.array([FORMAT_VERSION[0] - 1, 9])})
    with pytest.raises(VersionTooOldError) as info:
        open_stats(path)
    message = str(info.value)
    assert f"{FORMAT_VERSION[0] - 1}.9" in message
    assert f"{FORMAT_VERSION[0]}.x" in message


def test_newer_minor_version_reads_and_missing_optional_attributes_get_defaults(tmp_path):
    path = tmp_path / "minor.h5"
    write_then_edit(path, **{"format-version": np.array([FORMAT_VERSION[0], FORMAT_VERSION[1] + 7]),
                             "added-in-a-later-minor": "value"})
    with open_stats(path) as sf:
        assert sf.format_version == (FORMAT_VERSION[0], FORMAT_VERSION[1] + 7)
        assert sf.attrs["added-in-a-later-minor"] == "value"
        for key, default in schema.ATTR_DEFAULTS.items():
            assert sf.attrs[key] == default
        np.testing.assert_array_equal(sf.table("t")["x"], [1, 2])


def test_default_does_not_replace_a_stored_optional_attribute(tmp_path):
    path = tmp_path / "d.h5"
    write_stats(path, run_attrs(description="kept"), {})
    with open_stats(path) as sf:
        assert sf.attrs["description"] == "kept"


@pytest.mark.parametrize("edit, match", [
    ({"format": "cooler"}, "not a pimdram.stats file"),
    ({"format": None}, "no 'format' attribute"),
    ({"format-version": "1.0"}, "must be two integers"),
    ({"format-version": np.array([1, 0, 0])}, "must be two integers"),
    ({"seed": None}, "missing root attribute"),
])
def test_wrong_format_is_rejected(tmp_path, edit, match):
    path = tmp_path / "f.h5"
    write_then_edit(path, **edit)
    with pytest.raises(FileFormatError, match=match):
        open_stats(path)


def test_plain_hdf5_and_non_hdf5_and_missing_files_are_rejected(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(FileFormatError, match="not a pimdram.stats file"):
        open_stats(plain)
    text = tmp_path / "notes.h5"
    text.write_text("LD 0x1000\nST 0x2000\n")
    with pytest.raises(FileFormatError, match="not an HDF5 file"):
        open_stats(text)
    with pytest.raises(StatsFileNotFoundError, match="no such file") as info:
        open_stats(tmp_path / "absent.h5")
    assert isinstance(info.value, PimdramError)
    with pytest.raises(FileFormatError, match="directory"):
        open_stats(tmp_path)


def test_missing_table_and_column(tmp_path):
    path = tmp_path / "m.h5"
    write_stats(path, run_attrs(), {"t": Table({"x": [1]}, {"x": "count"})})
    with open_stats(path) as sf:
        with pytest.raises(MissingTableError, match="no table 'channels'") as info:
            sf.table("channels")
        assert isinstance(info.value, KeyError) and isinstance(info.value, FileFormatError)
        with pytest.raises(MissingTableError, match="no column"):
            sf.table("t", columns=["y"])


# --- atomic writes -----------------------------------------------------------------------------

def test_exception_mid_write_leaves_no_file_and_no_temp_file(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="engine died"):
        with StatsWriter(path, run_attrs()) as writer:
            writer.write_table("summary", Table({"cycles": [10]}, {"cycles": "cycle"}))
            log = writer.append_table("command_log", {"cycle": "int64"}, {"cycle": "cycle"})
            log.append({"cycle": np.arange(100)})
            assert len(leftovers(tmp_path)) == 1   # only the temporary file so far
            assert not path.exists()
            raise RuntimeError("engine died")
    assert leftovers(tmp_path) == []


def test_failing_chunk_iterator_leaves_no_file(tmp_path):
    def chunks():
        yield Table({"cycle": np.arange(10)}, {"cycle": "cycle"})
        raise RuntimeError("trace truncated")

    with pytest.raises(RuntimeError, match="trace truncated"):
        write_stats(tmp_path / "out.h5", run_attrs(), {"command_log": chunks()})
    assert leftovers(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.h5"
    write_stats(path, run_attrs(seed=1), {})

    def chunks():
        yield Table({"cycle": np.arange(10)}, {"cycle": "cycle"})
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_stats(path, run_attrs(seed=2), {"command_log": chunks()}, overwrite=True)
    assert leftovers(tmp_path) == ["out.h5"]
    with open_stats(path) as sf:
        assert sf.attrs["seed"] == 1


def test_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "out.h5"
    write_stats(path, run_attrs(seed=1), {})
    with pytest.raises(OutputExistsError, match="exists"):
        write_stats(path, run_attrs(seed=2), {})
    with open_stats(path) as sf:
        assert sf.attrs["seed"] == 1
    write_stats(path, run_attrs(seed=2), {}, overwrite=True)
    with open_stats(path) as sf:
        assert sf.attrs["seed"] == 2
    assert leftovers(tmp_path) == ["out.h5"]


def test_file_created_meanwhile_is_not_clobbered(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(OutputExistsError):
        with StatsWriter(path, run_attrs()) as writer:
            writer.write_table("t", Table({"x": [1]}, {"x": "count"}))
            path.write_text("someone else's file")
    assert path.read_text() == "someone else's file"
    assert leftovers(tmp_path) == ["out.h5"]


def test_written_file_gets_ordinary_permissions(tmp_path):
    path = tmp_path / "out.h5"
    write_stats(path, run_attrs(), {})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# --- tables ------------------------------------------------------------------------------------

@pytest.mark.parametrize("columns, units, match", [
    ({"a": [1, 2], "b": [1]}, {"a": "count", "b": "count"}, "differ in length"),
    ({"a": [1]}, {}, "no unit"),
    ({"a": [1]}, {"a": ""}, "non-empty"),
    ({"a": [1]}, {"a": "count", "b": "B"}, "unknown column"),
    ({"a": [[1, 2]]}, {"a": "count"}, "1-D"),
    ({"a": np.array([1, "x"], dtype=object)}, {"a": "1"}, "only str"),
    ({"a": np.array([1j])}, {"a": "1"}, "cannot be stored"),
    ({"a/b": [1]}, {"a/b": "1"}, "invalid column name"),
    ({}, {}, "at least one column"),
])
def test_table_validation(columns, units, match):
    with pytest.raises(StatsContentError, match=match):
        Table(columns, units)


def test_long_columns_are_compressed_and_short_ones_are_not(tmp_path):
    path = tmp_path / "c.h5"
    n = schema.COMPRESS_MIN_ROWS * 3
    write_stats(path, run_attrs(), {
        "long": Table({"x": np.arange(n)}, {"x": "count"}),
        "short": Table({"x": np.arange(4)}, {"x": "count"}),
    })
    with h5py.File(path, "r") as f:
        long_ds, short_ds = f["tables/long/x"], f["tables/short/x"]
        assert long_ds.compression == "gzip" and long_ds.shuffle
        assert long_ds.chunks[0] <= schema.CHUNK_ROWS
        # short: one uncompressed chunk, for its checksum; both carry Fletcher-32
        assert short_ds.compression is None and short_ds.chunks == (4,)
        assert long_ds.fletcher32 and short_ds.fletcher32


def test_standard_tables_cast_to_spec_dtypes_and_units():
    names = ["ACT", "RD"]
    cols = {c: [1] for c, _, _ in standard_columns("channels", names)}
    table = standard_table("channels", cols, command_names=names)
    assert table.names[:3] == ["channel", "cmd_ACT", "cmd_RD"]
    assert table["channel"].dtype == np.int32
    assert table["cmd_ACT"].dtype == np.int64
    assert table["read_latency_p99"].dtype == np.float64
    assert table.units["busy_cycles"] == "cycle"
    assert table.units["energy_j"] == "J"

    levels = ["channel", "bank_group", "bank"]
    log = standard_table("command_log", {"cycle": [5], "command": [1], "channel": [0],
                                          "bank_group": [-1], "bank": [-1], "row": [-1],
                                          "column": [-1]},
                         command_names=names, levels=levels)
    assert log.names == ["cycle", "command", "channel", "bank_group", "bank", "row", "column"]
    assert log["command"].dtype == np.uint8 and log["bank"].dtype == np.int32
    assert log.attrs["names"] == names

    hist = standard_table("latency_histogram", {"channel": [0], "kind": [1], "bin_start": [0],
                                                "bin_end": [8], "count": [3]})
    assert hist.attrs["kind-names"] == ["read", "write"]


def test_standard_table_refuses_bad_content():
    with pytest.raises(StatsContentError, match="missing .*peak_bandwidth"):
        standard_table("summary", {c: [1] for c, _, _ in standard_columns("summary")
                                   if c != "peak_bandwidth"})
    with pytest.raises(StatsContentError, match="unknown extra"):
        standard_table("bandwidth", {"step": [0], "bytes_read": [1], "bytes_written": [1],
                                     "extra": [0]}, attrs={"window": 10})
    with pytest.raises(StatsContentError, match="window"):
        standard_table("bandwidth", {"step": [0], "bytes_read": [1], "bytes_written": [1]})
    with pytest.raises(StatsContentError, match="do not fit int32"):
        standard_table("energy", {"channel": [2 ** 40], "activate_j": [0.0], "read_j": [0.0],
                                  "write_j": [0.0], "refresh_j": [0.0], "background_j": [0.0],
                                  "total_j": [0.0]})
    with pytest.raises(StatsContentError, match="do not fit int64"):
        standard_table("bandwidth", {"step": [0.5], "bytes_read": [1], "bytes_written": [1]},
                       attrs={"window": 10})
    with pytest.raises(KeyError, match="not a standard"):
        standard_columns("nonsense")


def test_summary_is_one_row_of_python_scalars(tmp_path):
    path = tmp_path / "s.h5"
    cols = {c: [7] for c, _, _ in standard_columns("summary")}
    cols["tck_ns"] = [0.5]
    write_stats(path, run_attrs(), {"summary": standard_table("summary", cols)})
    with open_stats(path) as sf:
        summary = sf.summary()
    assert summary["cycles"] == 7 and type(summary["cycles"]) is int
    assert summary["tck_ns"] == 0.5 and type(summary["tck_ns"]) is float
    assert list(summary) == [c for c, _, _ in standard_columns("summary")]

    two = tmp_path / "two.h5"
    write_stats(two, run_attrs(), {"summary": Table({"cycles": [1, 2]}, {"cycles": "cycle"})})
    with open_stats(two) as sf:
        with pytest.raises(FileFormatError, match="one row"):
            sf.summary()


# --- long tables in chunks ---------------------------------------------------------------------

LEVELS = ["channel", "pseudo_channel", "bank_group", "bank"]


def log_chunk(start, n, rng):
    columns = {"cycle": np.arange(start, start + n, dtype=np.int64) * 3,
               "command": rng.integers(0, 5, n, dtype=np.uint8)}
    for level in LEVELS:
        columns[level] = rng.integers(-1, 8, n).astype(np.int32)
    columns["row"] = rng.integers(-1, 1 << 14, n).astype(np.int32)
    columns["column"] = rng.integers(-1, 32, n).astype(np.int32)
    return standard_table("command_log", columns, command_names=run_attrs()["command-names"],
                          levels=LEVELS)


def test_command_log_appended_in_chunks_and_read_in_slices(tmp_path):
    rng = np.random.default_rng(1)
    sizes = [1000, 0, schema.CHUNK_ROWS + 17, 5, 3000]
    chunks, start = [], 0
    for n in sizes:
        chunks.append(log_chunk(start, n, rng))
        start += n
    total = sum(sizes)
    path = tmp_path / "log.h5"
    with StatsWriter(path, run_attrs()) as writer:
        first = chunks[0]
        appender = writer.append_table("command_log", {c: a.dtype for c, a in first.columns.items()},
                                       first.units, first.attrs)
        for chunk in chunks:
            appender.append(chunk)
        assert len(appender) == total
        # a bad chunk is refused and leaves the table as it was
        with pytest.raises(StatsContentError, match="missing"):
            appender.append({"cycle": [1]})
        with pytest.raises(StatsContentError, match="do not fit"):
            appender.append({**chunks[0].columns, "row": np.full(1000, 2 ** 40)})
        assert len(appender) == total
    expected = {c: np.concatenate([ch[c] for ch in chunks]) for c in chunks[0].names}
    with open_stats(path) as sf:
        assert sf.nrows("command_log") == total
        assert sf.table_attrs("command_log")["names"] == run_attrs()["command-names"]
        whole = sf.table("command_log")
        for c in expected:
            np.testing.assert_array_equal(whole[c], expected[c])
            assert whole[c].dtype == expected[c].dtype
        part = sf.table("command_log", 65000, 66100, columns=["cycle", "bank"])
        assert list(part) == ["cycle", "bank"]
        np.testing.assert_array_equal(part["cycle"], expected["cycle"][65000:66100])
        np.testing.assert_array_equal(sf.table("command_log", -5)["row"], expected["row"][-5:])
        assert len(sf.table("command_log", total + 10, total + 20)["cycle"]) == 0
        pieces = list(sf.iter_chunks("command_log", chunk_rows=10000, columns=["command"]))
        assert all(len(p["command"]) <= 10000 for p in pieces)
        np.testing.assert_array_equal(np.concatenate([p["command"] for p in pieces]),
                                      expected["command"])
    with h5py.File(path, "r") as f:
        assert f["tables/command_log/cycle"].compression == "gzip"
        assert f["tables/command_log/cycle"].maxshape == (None,)


def test_write_stats_takes_an_iterator_of_chunks(tmp_path):
    rng = np.random.default_rng(2)
    consumed = []

    def chunks():
        for i in range(4):
            consumed.append(i)
            yield log_chunk(i * 100, 100, rng)

    path = tmp_path / "it.h5"
    write_stats(path, run_attrs(), {"command_log": chunks()})
    assert consumed == [0, 1, 2, 3]
    with open_stats(path) as sf:
        np.testing.assert_array_equal(sf.table("command_log")["cycle"], np.arange(400) * 3)
        assert sf.units("command_log")["cycle"] == "cycle"
    with pytest.raises(StatsContentError, match="no chunks"):
        write_stats(tmp_path / "empty.h5", run_attrs(), {"command_log": iter([])})
    assert not (tmp_path / "empty.h5").exists()


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=6),
       start=st.integers(0, 1500), length=st.integers(0, 1500))
def test_chunked_append_equals_concatenation(tmp_path_factory, sizes, start, length):
    path = tmp_path_factory.mktemp("prop") / "p.h5"
    values = [np.arange(sum(sizes[:i]), sum(sizes[:i + 1]), dtype=np.int64) for i in range(len(sizes))]
    write_stats(path, run_attrs(),
                {"log": (Table({"cycle": v, "odd": v % 2 == 1}, {"cycle": "cycle", "odd": "1"})
                         for v in values)})
    expected = np.concatenate(values)
    with open_stats(path) as sf:
        got = sf.table("log", start, start + length)
    np.testing.assert_array_equal(got["cycle"], expected[start:start + length])
    np.testing.assert_array_equal(got["odd"], expected[start:start + length] % 2 == 1)


# --- pandas ------------------------------------------------------------------------------------

def test_tables_load_into_pandas(tmp_path):
    import pandas as pd      # a dependency of pimdram: the README's example works from the default install
    path = tmp_path / "p.h5"
    table = every_dtype_table(50)
    write_stats(path, run_attrs(), {"mixed": table})
    with open_stats(path) as sf:
        frame = sf.dataframe("mixed")
        direct = pd.DataFrame(sf.table("mixed"))
    assert list(frame.columns) == table.names
    assert len(frame) == 50
    assert frame.attrs["units"] == table.units
    pd.testing.assert_frame_equal(frame, direct)
    np.testing.assert_array_equal(frame["c_uint64"].to_numpy(), table["c_uint64"])
    assert list(frame["label"]) == list(table["label"])


def test_dataframe_without_pandas_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "p.h5"
    write_stats(path, run_attrs(), {"t": Table({"x": [1]}, {"x": "count"})})
    monkeypatch.setitem(sys.modules, "pandas", None)   # makes `import pandas` fail
    with open_stats(path) as sf:
        with pytest.raises(PimdramError, match="pip install pandas"):
            sf.dataframe("t")
        np.testing.assert_array_equal(sf.table("t")["x"], [1])


# --- the spec ----------------------------------------------------------------------------------

def test_spec_documents_every_standard_column_with_its_unit():
    text = DOCS.read_text()
    assert f"`{FORMAT}`" in text
    assert f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}" in text
    for attr in schema.REQUIRED_ATTRS + schema.WRITER_ATTRS + tuple(schema.ATTR_DEFAULTS):
        assert f"`{attr}`" in text, attr
    for table in STANDARD_TABLES:
        assert f"`{table}`" in text, table
        for column, dtype, unit in standard_columns(table):
            row = re.search(rf"^\| `{re.escape(column)}` \| (\w+) \| `([^`]*)` \|", 
                            _section(text, table), re.M)
            assert row, f"{table}.{column} not documented"
            assert row.group(1) == dtype.name, f"{table}.{column} dtype"
            assert row.group(2) == unit, f"{table}.{column} unit"


def _section(text, table):
    """The part of the spec under the heading for `table`."""
    match = re.search(rf"^### `{table}`.*?(?=^### |\Z)", text, re.M | re.S)
    assert match, f"no section for {table}"
    return match.group(0)
