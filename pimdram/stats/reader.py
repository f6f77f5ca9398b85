"""Reading pimdram.stats HDF5 files: format and version checks, attributes, tables as numpy columns."""
import csv
import functools
import inspect
import os
import stat
from pathlib import Path

import h5py
import numpy as np
import yaml

from .._version import __version__
from ..errors import FileFormatError, PimdramError, VersionTooNewError, VersionTooOldError
from . import schema
from .attrs import decode_attr
from .errors import MissingTableError, StatsFileNotFoundError


def _version_text(version):
    return ".".join(str(v) for v in version)


def check_version(path, version):
    """Accept any minor of this major; reject other majors with the error that says what to do."""
    major, minor = version
    reads = f"this pimdram ({__version__}) reads {schema.FORMAT} {schema.FORMAT_VERSION[0]}.x " \
            f"(up to {_version_text(schema.FORMAT_VERSION)})"
    has = f"{path} has {schema.FORMAT} version {major}.{minor}"
    if major > schema.FORMAT_VERSION[0]:
        raise VersionTooNewError(f"{has}; {reads}: upgrade pimdram to read it")
    if major < schema.FORMAT_VERSION[0]:
        raise VersionTooOldError(f"{has}; {reads}: re-run the replay with this pimdram to "
                                 "regenerate it")


def _column_array(ds, start, stop):
    if h5py.check_string_dtype(ds.dtype) is not None:
        values = ds.asstr()[start:stop]
        return np.array(values.tolist(), dtype=str) if len(values) else np.zeros(0, dtype="U1")
    return ds[start:stop]


#: what h5py raises for a file damaged inside (a corrupt heap, a cut-off chunk, a bad checksum)
_HDF5_ERRORS = (RuntimeError, OSError, KeyError)


def _damage_is_a_format_error(method):
    """A method of StatsFile: h5py's errors on a damaged file become one FileFormatError naming the
    file (they were tracebacks: 'RuntimeError: Unable to synchronously check link existence')."""
    def convert(self, exc):
        if isinstance(exc, PimdramError):
            return exc
        return FileFormatError(f"{self.path}: damaged or incomplete HDF5 file ({str(exc)[:200]})")

    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except _HDF5_ERRORS as exc:
                raise convert(self, exc) from None
        return generator

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _HDF5_ERRORS as exc:
            raise convert(self, exc) from None
    return wrapper


class StatsFile:
    """An open stats file (read-only). Prefer `open_stats(path)`; use as a context manager.

    `.attrs` holds the root attributes as plain Python, with defaults for optional attributes
    the file lacks; `.tables` the table names in writing order; `.table(name)` a table as a dict
    of numpy columns (`pandas.DataFrame(sf.table("channels"))` works).
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StatsFileNotFoundError(f"{self.path}: no such file") from None
        except OSError as exc:         # a name too long, a loop of links, no permission
            raise FileFormatError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if stat.S_ISDIR(st.st_mode):
            raise FileFormatError(f"{self.path} is a directory, not a {schema.FORMAT} file")
        try:
            is_hdf5 = h5py.is_hdf5(self.path)
        except OSError as exc:
            raise FileFormatError(f"{self.path}: cannot read ({exc})") from None
        if not is_hdf5:
            raise FileFormatError(f"{self.path} is not an HDF5 file (expected a {schema.FORMAT} file)")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise FileFormatError(f"{self.path}: cannot open as HDF5 ({exc})") from None
        try:
            _damage_is_a_format_error(StatsFile._check)(self)
        except BaseException:
            self._file.close()
            raise
        self._config = None

    def _check(self):
        raw = {key: decode_attr(value) for key, value in self._file.attrs.items()}
        fmt = raw.get(schema.ATTR_FORMAT)
        if fmt != schema.FORMAT:
            found = f"format {fmt!r}" if fmt is not None else f"no {schema.ATTR_FORMAT!r} attribute"
            raise FileFormatError(f"{self.path} is not a {schema.FORMAT} file ({found})")
        version = raw.get(schema.ATTR_FORMAT_VERSION)
        if (not isinstance(version, list) or len(version) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in version)):
            raise FileFormatError(f"{self.path}: {schema.ATTR_FORMAT_VERSION!r} must be two "
                                  f"integers [major, minor], got {version!r}")
        self.format_version = (version[0], version[1])
        check_version(self.path, self.format_version)
        missing = [k for k in schema.REQUIRED_ATTRS if k not in raw]
        if missing:
            raise FileFormatError(f"{self.path}: missing root attribute(s) {', '.join(missing)}")
        if schema.TABLES_GROUP not in self._file or not isinstance(self._file[schema.TABLES_GROUP], h5py.Group):
            raise FileFormatError(f"{self.path}: no /{schema.TABLES_GROUP} group")
        for key, default in schema.ATTR_DEFAULTS.items():
            raw.setdefault(key, default)
        self.attrs = raw

    # -- attributes --------------------------------------------------------------------------

    @property
    @_damage_is_a_format_error
    def config(self):
        """The resolved configuration the run used, parsed from the `config` YAML text."""
        if self._config is None:
            text = self.attrs[schema.ATTR_CONFIG]
            try:
                self._config = yaml.safe_load(text) if text else {}
            except yaml.YAMLError as exc:
                raise FileFormatError(f"{self.path}: the 'config' attribute is not valid YAML "
                                      f"({exc})") from None
        return self._config

    @property
    def command_names(self):
        return list(self.attrs[schema.ATTR_COMMAND_NAMES])

    @property
    def levels(self):
        return list(self.attrs[schema.ATTR_LEVELS])

    # -- tables ------------------------------------------------------------------------------

    @property
    @_damage_is_a_format_error
    def tables(self):
        """Table names, in the order they were written."""
        return list(self._file[schema.TABLES_GROUP].keys())

    @_damage_is_a_format_error
    def _group(self, name):
        group = self._file[schema.TABLES_GROUP].get(name)
        if not isinstance(group, h5py.Group):
            have = ", ".join(self.tables) or "none"
            raise MissingTableError(f"{self.path} has no table {name!r} (tables: {have})")
        return group

    @_damage_is_a_format_error
    def columns(self, name):
        """Column names of table `name`, in order."""
        group = self._group(name)
        order = group.attrs.get(schema.TABLE_ATTR_COLUMNS)
        names = decode_attr(order) if order is not None else list(group.keys())
        absent = [c for c in names if c not in group]
        if absent:
            raise FileFormatError(f"{self.path}: table {name!r} lists missing column(s) "
                                  f"{', '.join(absent)}")
        return names

    @_damage_is_a_format_error
    def nrows(self, name):
        """Number of rows of table `name` (FileFormatError if its columns differ in length)."""
        group = self._group(name)
        lengths = {c: group[c].shape[0] for c in self.columns(name)}
        if len(set(lengths.values())) > 1:
            raise FileFormatError(f"{self.path}: table {name!r} has columns of different lengths "
                                  f"{lengths}")
        return next(iter(lengths.values()), 0)

    @_damage_is_a_format_error
    def table(self, name, start=None, stop=None, columns=None):
        """Table `name` as a dict column -> numpy array, optionally rows [start, stop) only
        and only the given `columns`."""
        group = self._group(name)
        names = self.columns(name)
        n = self.nrows(name)
        if columns is not None:
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise MissingTableError(f"{self.path}: table {name!r} has no column(s) "
                                        f"{', '.join(unknown)} (columns: {', '.join(names)})")
            names = list(columns)
        start, stop, _ = slice(start, stop).indices(n)
        stop = max(start, stop)
        return {c: _column_array(group[c], start, stop) for c in names}

    @_damage_is_a_format_error
    def iter_chunks(self, name, chunk_rows=schema.CHUNK_ROWS, columns=None):
        """Table `name` in consecutive slices of at most `chunk_rows` rows (bounded memory)."""
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        n = self.nrows(name)
        for start in range(0, n, chunk_rows):
            yield self.table(name, start, min(n, start + chunk_rows), columns=columns)

    @_damage_is_a_format_error
    def units(self, name):
        """Unit of every column of table `name`."""
        group = self._group(name)
        out = {}
        for column in self.columns(name):
            unit = group[column].attrs.get(schema.COLUMN_ATTR_UNIT)
            if unit is None:
                raise FileFormatError(f"{self.path}: column {name}/{column} has no unit attribute")
            out[column] = decode_attr(unit)
        return out

    @_damage_is_a_format_error
    def table_attrs(self, name):
        """Attributes of table `name` (without the bookkeeping `columns` list)."""
        group = self._group(name)
        return {k: decode_attr(v) for k, v in group.attrs.items() if k != schema.TABLE_ATTR_COLUMNS}

    @_damage_is_a_format_error
    def dataframe(self, name, start=None, stop=None, columns=None):
        """Table `name` as a pandas DataFrame, units in `.attrs["units"]`."""
        try:
            import pandas as pd
        except ImportError:
            # a dependency of pimdram; only a broken environment lacks it
            raise PimdramError("reading a table as a DataFrame needs pandas, which pimdram depends on; "
                               "reinstall pimdram or `pip install pandas` (or use .table(), which "
                               "returns numpy arrays)") from None
        frame = pd.DataFrame(self.table(name, start, stop, columns))
        frame.attrs["units"] = {c: u for c, u in self.units(name).items() if c in frame.columns}
        return frame

    @_damage_is_a_format_error
    def summary(self):
        """The one-row `summary` table as a dict of Python scalars."""
        table = self.table(schema.SUMMARY)
        n = self.nrows(schema.SUMMARY)
        if n != 1:
            raise FileFormatError(f"{self.path}: table 'summary' must have one row, has {n}")
        return {c: a[0].item() for c, a in table.items()}

    # -- life cycle --------------------------------------------------------------------------

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        version = _version_text(self.format_version)
        return f"<StatsFile {self.path} ({schema.FORMAT} {version}; tables: {', '.join(self.tables)})>"


def open_stats(path):
    """Open a stats file for reading; raises FileFormatError (or a version error) if it is not
    a pimdram.stats file this pimdram can read."""
    return StatsFile(path)


def write_table_csv(path, name, stream):
    """Table `name` of the stats file at `path` as CSV on the text `stream`: a header row of the
    column names, then one row per table row, read in chunks (bounded memory for any length).
    Numbers keep full precision (Python's shortest round-tripping form); NaN is written `nan`."""
    with open_stats(path) as sf:
        columns = sf.columns(name)
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for chunk in sf.iter_chunks(name):
            writer.writerows(zip(*(chunk[c].tolist() for c in columns)))
