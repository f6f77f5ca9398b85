"""The results table of a sweep (`pimdram.sweep-results`, docs/sweeps.md): one row per point (its
hash, its inputs, status and error, and the kept metrics), with units and the sweep in the
metadata; written atomically as Parquet, CSV or HDF5 and read back as a pandas DataFrame."""
import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._atomic import output_path, publish, temp_path_for, writing
from .._version import __version__
from ..errors import FileFormatError, OutputExistsError, PimdramError, VersionTooNewError, VersionTooOldError

FORMAT = "pimdram.sweep-results"
#: [major, minor] this pimdram writes; it reads any 1.x
FORMAT_VERSION = (1, 0)
SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".h5": "hdf5", ".hdf5": "hdf5"}
#: the key of the metadata in a Parquet file's schema metadata
PARQUET_KEY = b"pimdram"
#: a CSV file's first line starts with this, followed by the metadata as JSON
CSV_PREFIX = "# "


@dataclass(frozen=True)
class Metric:
    """One result column: its name, unit, dtype, and where in a kernel replay's stats file it comes
    from (table and column; table `device_energy` columns are summed over the devices)."""
    name: str
    unit: str
    dtype: str
    table: str
    column: str
    meaning: str


METRICS = (
    Metric("tokens_per_s", "1/s", "float64", "run", "tokens_per_s", "tokens produced per second of simulated time"),
    Metric("energy_j", "J", "float64", "summary", "energy_j",
           "energy of every kernel on every device and link, and every device's and memory's static energy"),
    Metric("energy_per_token_j", "J", "float64", "run", "energy_per_token_j", "energy_j / tokens"),
    Metric("simulated_seconds", "s", "float64", "summary", "simulated_seconds", "simulated time of the run"),
    Metric("decode_tokens_per_s", "1/s", "float64", "run", "decode_tokens_per_s",
           "tokens of decode steps per second of the decode steps"),
    Metric("decode_seconds", "s", "float64", "run", "decode_seconds", "first start to last end of decode kernels"),
    Metric("prefill_seconds", "s", "float64", "run", "prefill_seconds", "first start to last end of prefill kernels"),
    Metric("tokens", "count", "int64", "run", "tokens", "tokens produced (prefill: prompt tokens processed)"),
    Metric("decode_tokens", "count", "int64", "run", "decode_tokens", "tokens produced by decode steps"),
    Metric("energy_memory_j", "J", "float64", "device_energy", "memory_j", "off-chip memory / DRAM array energy"),
    Metric("energy_compute_j", "J", "float64", "device_energy", "compute_j", "arithmetic energy"),
    Metric("energy_onchip_j", "J", "float64", "device_energy", "onchip_j", "on-chip buffer and cache energy"),
    Metric("energy_communication_j", "J", "float64", "device_energy", "communication_j", "link energy"),
    Metric("energy_static_j", "J", "float64", "device_energy", "static_j",
           "static power of every device and memory over the run, idle ones included"),
    Metric("bytes_read", "B", "int64", "summary", "bytes_read", "bytes the kernels read"),
    Metric("bytes_written", "B", "int64", "summary", "bytes_written", "bytes the kernels wrote"),
    Metric("bandwidth", "B/s", "float64", "summary", "bandwidth", "(bytes_read + bytes_written) / simulated_seconds"),
    Metric("cycles", "cycle", "int64", "summary", "cycles", "simulated time in cycles of the reference clock"),
    Metric("tck_ns", "ns", "float64", "summary", "tck_ns", "the reference clock's cycle"),
    Metric("kernels", "count", "int64", "run", "kernels", "kernels replayed"),
    Metric("kernels_simulated", "count", "int64", "run", "kernels_simulated", "kernels simulated at command level"),
    Metric("kernels_reused", "count", "int64", "run", "kernels_reused", "kernels reusing an equal kernel's result"),
    Metric("kernels_modelled", "count", "int64", "run", "kernels_modelled", "kernels timed by a device or link model"),
    Metric("overcommitted", "1", "bool", "run", "overcommitted", "the workload did not fit a memory (allow_overcommit)"),
    Metric("wall_seconds", "s", "float64", "", "", "wall time of the point: gen, replay and summary"),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}

#: units of input columns (any other input: "1")
INPUT_UNITS = {"batch": "count", "prompt_tokens": "count", "output_tokens": "count", "context": "count",
               "speculation": "count", "layers": "count"}
#: the columns every table has, around the inputs and the metrics
LEADING = ("point",)
STATUS = ("status", "error")
STATUS_OK, STATUS_FAILED = "ok", "failed"


def metrics_of_stats(path, wall_seconds):
    """The metrics of a kernel replay's stats file, as plain Python values."""
    from ..stats import open_stats

    out = {}
    with open_stats(path) as sf:
        tables = {}
        for m in METRICS:
            if not m.table:
                continue
            if m.table not in tables:
                tables[m.table] = sf.table(m.table)
            column = tables[m.table][m.column]
            value = column.sum() if m.table == "device_energy" else column[0]
            out[m.name] = value.item() if isinstance(value, np.generic) else value
    out["wall_seconds"] = wall_seconds
    return out


def input_dtype(values):
    """The column dtype of an input's values: boolean, Int64, float64 or (anything else) string."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "Int64"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float64"
    return "string"


def _column(values, dtype):
    import pandas as pd

    if dtype == "string":
        return pd.array([None if v is None else (v if isinstance(v, str) else json.dumps(v))
                         for v in values], dtype="object")
    if dtype in ("int64", "Int64"):
        return pd.array(values, dtype="Int64")
    if dtype == "bool":
        return pd.array(values, dtype="boolean")
    return pd.array([np.nan if v is None else v for v in values], dtype=dtype)


def build_frame(rows, input_keys, metric_names, meta):
    """The results DataFrame of `rows` (dicts: point, inputs, status, error, metrics) with columns
    point, the inputs, status, error, then the metrics; `.attrs["pimdram"]` holds `meta` plus
    units and dtypes."""
    import pandas as pd

    columns, dtypes, units = {}, {}, {}
    columns["point"] = _column([r["point"] for r in rows], "string")
    dtypes["point"], units["point"] = "string", "1"
    for key in input_keys:
        values = [r["inputs"].get(key) for r in rows]
        dtypes[key] = input_dtype(values)
        columns[key] = _column(values, dtypes[key])
        units[key] = INPUT_UNITS.get(key, "1")
    for key in STATUS:
        columns[key] = _column([r[key] or "" for r in rows], "string")
        dtypes[key], units[key] = "string", "1"
    for name in metric_names:
        m = METRIC_BY_NAME[name]
        columns[name] = _column([r["metrics"].get(name) if r["metrics"] else None for r in rows], m.dtype)
        dtypes[name] = {"int64": "Int64", "bool": "boolean"}.get(m.dtype, m.dtype)
        units[name] = m.unit
    frame = pd.DataFrame(columns)
    frame.attrs["pimdram"] = dict(meta, format=FORMAT, format_version=list(FORMAT_VERSION),
                                  generated_by=f"pimdram {__version__}",
                                  creation_date=datetime.datetime.now(datetime.timezone.utc)
                                  .isoformat(timespec="seconds"),
                                  inputs=list(input_keys), metrics=list(metric_names), units=units, dtypes=dtypes)
    frame.attrs["units"] = units
    return frame


def results_kind(path):
    """'parquet', 'csv' or 'hdf5', from the file name (a PimdramError for another name, or for
    .parquet without pyarrow: said before a sweep runs, not after)."""
    kind = SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise PimdramError(f"{path}: the results table is .parquet, .csv or .h5 (by its name)")
    if kind == "parquet":
        _parquet()
    return kind


def write_results(frame, path, overwrite=False):
    """Write the results DataFrame to `path` (format by suffix), atomically."""
    kind = results_kind(path)
    path = output_path(path, overwrite=overwrite)
    meta = json.dumps(frame.attrs["pimdram"], default=str, allow_nan=False)
    tmp = temp_path_for(path)
    try:
        with writing(path):
            {"parquet": _write_parquet, "csv": _write_csv, "hdf5": _write_hdf5}[kind](frame, tmp, meta)
        publish(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def _parquet():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise PimdramError("Parquet tables need pyarrow: pip install 'pimdram[parquet]' "
                           "(or write .csv or .h5)") from None
    return pyarrow


def _write_parquet(frame, tmp, meta):
    pa = _parquet()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), PARQUET_KEY: meta.encode()})
    pa.parquet.write_table(table, str(tmp))


def _write_csv(frame, tmp, meta):
    import csv

    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(CSV_PREFIX + meta + "\n")
        # strings quoted, so a '#' inside one never reads as a comment (pandas: comment="#")
        frame.to_csv(f, index=False, quoting=csv.QUOTE_NONNUMERIC, na_rep="", lineterminator="\n")


def _write_hdf5(frame, tmp, meta):
    import h5py

    info = frame.attrs["pimdram"]
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format-version"] = np.array(FORMAT_VERSION, dtype=np.int64)
        f.attrs["generated-by"] = info["generated_by"]
        f.attrs["creation-date"] = info["creation_date"]
        f.attrs["metadata"] = meta
        group = f.create_group("results")
        group.attrs["columns"] = list(frame.columns)
        nulls = f.create_group("nulls")
        for name in frame.columns:
            column = frame[name]
            missing = column.isna().to_numpy()
            dtype = info["dtypes"][name]
            if dtype == "string":
                data = np.array(["" if m else str(v) for v, m in zip(column.tolist(), missing)], dtype=object)
                ds = group.create_dataset(name, data=data, dtype=h5py.string_dtype("utf-8"))
            elif dtype == "boolean":
                ds = group.create_dataset(name, data=column.fillna(False).to_numpy(dtype=bool))
            elif dtype == "Int64":
                ds = group.create_dataset(name, data=column.fillna(0).to_numpy(dtype=np.int64))
            else:
                ds = group.create_dataset(name, data=column.to_numpy(dtype=np.float64, na_value=np.nan))
            ds.attrs["unit"] = info["units"][name]
            if missing.any():
                nulls.create_dataset(name, data=missing)


def _check_meta(meta, path):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FileFormatError(f"{path} is not a {FORMAT} table")
    version = meta.get("format_version")
    if not (isinstance(version, list) and len(version) == 2 and all(isinstance(v, int) for v in version)):
        raise FileFormatError(f"{path}: format_version must be [major, minor], got {version!r}")
    reads = f"this pimdram ({__version__}) reads {FORMAT} {FORMAT_VERSION[0]}.x"
    if version[0] > FORMAT_VERSION[0]:
        raise VersionTooNewError(f"{path} has {FORMAT} version {version[0]}.{version[1]}; {reads}: upgrade pimdram")
    if version[0] < FORMAT_VERSION[0]:
        raise VersionTooOldError(f"{path} has {FORMAT} version {version[0]}.{version[1]}; {reads}: "
                                 "rerun the sweep to regenerate it")
    for key in ("inputs", "metrics", "units", "dtypes"):
        if key not in meta:
            raise FileFormatError(f"{path}: metadata lacks {key!r}")
    return meta


def read_results(path):
    """A results table as a pandas DataFrame: its columns with their dtypes, the metadata in
    `.attrs["pimdram"]` and the units in `.attrs["units"]`. Rejects files of another major version."""
    path = Path(path)
    try:
        if not path.is_file():
            raise FileFormatError(f"{path}: no such file")
    except OSError as exc:          # a name too long, a loop of links
        raise FileFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    kind = results_kind(path)
    try:
        frame, meta = {"parquet": _read_parquet, "csv": _read_csv, "hdf5": _read_hdf5}[kind](path)
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: not UTF-8 text at byte {exc.start}; not a {FORMAT} table") from None
    except PimdramError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        # a damaged or foreign file (h5py's and pandas' errors): one line naming it
        raise FileFormatError(f"{path}: not a readable {FORMAT} table ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None
    frame.attrs["pimdram"] = meta
    frame.attrs["units"] = meta["units"]
    return frame


def _read_parquet(path):
    pa = _parquet()
    try:
        table = pa.parquet.read_table(str(path))
    except (OSError, pa.ArrowException) as exc:
        raise FileFormatError(f"{path}: not a Parquet file ({exc})") from None
    raw = (table.schema.metadata or {}).get(PARQUET_KEY)
    if raw is None:
        raise FileFormatError(f"{path} is not a {FORMAT} table (no pimdram metadata)")
    meta = _check_meta(json.loads(raw), path)
    return table.to_pandas(), meta


def _read_csv(path):
    import pandas as pd

    with open(path, encoding="utf-8") as f:
        first = f.readline()
    if not first.startswith(CSV_PREFIX):
        raise FileFormatError(f"{path} is not a {FORMAT} table (no '# {{...}}' metadata line)")
    try:
        meta = json.loads(first[len(CSV_PREFIX):])
    except ValueError:
        raise FileFormatError(f"{path}:1: the metadata line is not JSON") from None
    meta = _check_meta(meta, path)
    dtypes = meta["dtypes"]
    frame = pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""],
                        dtype={c: (str if d == "string" else "float64" if d == "float64" else "object")
                               for c, d in dtypes.items()})
    for column, dtype in dtypes.items():
        if column not in frame:
            raise FileFormatError(f"{path}: column {column!r} of the metadata is missing")
        frame[column] = _from_text(frame[column], dtype)
    for column in LEADING + STATUS:     # CSV cannot tell "" from a missing value; these are never missing
        frame[column] = pd.array(["" if pd.isna(v) else v for v in frame[column].tolist()], dtype="object")
    return frame, meta


def _from_text(column, dtype):
    import pandas as pd

    if dtype == "string":
        return pd.array([None if isinstance(v, float) and np.isnan(v) else v for v in column.tolist()],
                        dtype="object")
    if dtype == "float64":
        return column.astype("float64")
    values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in column.tolist()]
    if dtype == "boolean":
        return pd.array([None if v is None else str(v) == "True" for v in values], dtype="boolean")
    return pd.array([None if v is None else int(v) for v in values], dtype="Int64")


def _read_hdf5(path):
    import h5py
    import pandas as pd

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FileFormatError(f"{path}: not an HDF5 file ({exc})") from None
    with f:
        if f.attrs.get("format") != FORMAT or "metadata" not in f.attrs:
            raise FileFormatError(f"{path} is not a {FORMAT} table")
        meta = _check_meta(json.loads(f.attrs["metadata"]), path)
        group = f["results"]
        columns = {}
        for name in meta["dtypes"]:
            if name not in group:
                raise FileFormatError(f"{path}: column {name!r} of the metadata is missing")
            ds = group[name]
            missing = f["nulls"][name][()] if name in f["nulls"] else np.zeros(ds.shape[0], bool)
            dtype = meta["dtypes"][name]
            if dtype == "string":
                values = ds.asstr()[()].tolist()
                columns[name] = pd.array([None if m else v for v, m in zip(values, missing)], dtype="object")
            elif dtype in ("boolean", "Int64"):
                values = ds[()].tolist()
                columns[name] = pd.array([None if m else v for v, m in zip(values, missing)], dtype=dtype)
            else:
                columns[name] = pd.array(ds[()], dtype="float64")
    return pd.DataFrame(columns), meta
