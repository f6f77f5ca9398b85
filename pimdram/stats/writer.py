"""Writing pimdram.stats HDF5 files atomically: whole tables, or long tables appended in chunks."""
import contextlib
import datetime
from pathlib import Path

import h5py
import numpy as np

from .. import _signals
from .._atomic import output_path, publish, temp_path_for
from .._version import __version__
from ..errors import OutputError
from . import schema
from .attrs import encode_attr
from .diskfile import GuardedFile
from .errors import StatsContentError
from .table import Table, cast_column, check_name, check_unit

_STR = h5py.string_dtype("utf-8")


def _storage_dtype(dtype):
    return _STR if np.dtype(dtype).kind == "U" else np.dtype(dtype)


def _filters(n_rows, dtype):
    """Dataset creation options: gzip+shuffle in chunks for long numeric columns, one chunk for
    short ones; every numeric column with rows carries a Fletcher-32 checksum per chunk, so that
    damage inside its data is an error when read rather than a wrong number (text columns and
    empty ones have none)."""
    if np.dtype(dtype).kind == "U" or n_rows == 0:
        return {}
    if n_rows < schema.COMPRESS_MIN_ROWS:
        return {"chunks": (n_rows,), "fletcher32": True}
    return {"chunks": (min(n_rows, schema.CHUNK_ROWS),), "compression": "gzip",
            "compression_opts": schema.GZIP_LEVEL, "shuffle": True, "fletcher32": True}


def _write_attrs(h5obj, attrs):
    for key, value in attrs.items():
        if not isinstance(key, str) or not key:
            raise StatsContentError(f"attribute names must be non-empty strings, got {key!r}")
        h5obj.attrs[key] = encode_attr(key, value)


def _column_data(array):
    return array.astype(object) if array.dtype.kind == "U" else array


class TableWriter:
    """Appends rows to one table in chunks, so a long table (the command log) never sits in memory.

    Obtained from `StatsWriter.append_table`; every `append` must hold exactly the declared
    columns, all of equal length. Values are cast to the declared dtypes (refusing lossy casts).
    """

    def __init__(self, group, dtypes, units, guard=contextlib.nullcontext):
        self._group = group
        self._guard = guard
        self._dtypes = {name: np.dtype(d) for name, d in dtypes.items()}
        self.rows = 0
        for name, dtype in self._dtypes.items():
            if dtype.kind not in schema.COLUMN_KINDS:
                raise StatsContentError(f"column {name!r}: dtype {dtype} cannot be stored")
            if dtype.kind != "U":
                options = {"chunks": (schema.CHUNK_ROWS,), "compression": "gzip",
                           "compression_opts": schema.GZIP_LEVEL, "shuffle": True, "fletcher32": True}
            else:
                options = {"chunks": (schema.CHUNK_ROWS,)}
            ds = group.create_dataset(name, shape=(0,), maxshape=(None,),
                                      dtype=_storage_dtype(dtype), **options)
            ds.attrs[schema.COLUMN_ATTR_UNIT] = units[name]

    def append(self, chunk):
        """Append a chunk: a `Table` or a mapping column name -> 1-D array."""
        columns = chunk.columns if isinstance(chunk, Table) else chunk
        if set(columns) != set(self._dtypes):
            missing = sorted(set(self._dtypes) - set(columns))
            extra = sorted(set(columns) - set(self._dtypes))
            raise StatsContentError(f"table {self._group.name.rsplit('/', 1)[-1]!r}: chunk columns "
                                    f"differ from the declared ones (missing {missing}, unknown {extra})")
        # cast and check everything first, so a bad chunk leaves the table unchanged
        cast = {name: cast_column(name, columns[name], dtype) for name, dtype in self._dtypes.items()}
        lengths = {len(a) for a in cast.values()}
        if len(lengths) != 1:
            raise StatsContentError(f"chunk columns differ in length: "
                                    f"{ {n: len(a) for n, a in cast.items()} }")
        n = lengths.pop()
        if n == 0:
            return
        with self._guard():
            for name, array in cast.items():
                ds = self._group[name]
                ds.resize((self.rows + n,))
                ds[self.rows:self.rows + n] = _column_data(array)
        self.rows += n

    def __len__(self):
        return self.rows


class StatsWriter:
    """Writes one stats file: tables go to a temporary file that is renamed when complete.

    Use as a context manager: leaving the block normally commits (validates the root
    attributes, closes, renames onto `path`); leaving it with an exception, or calling
    `abort()`, removes the temporary file. `attrs` may be updated until the commit (e.g. the
    wall time, known only at the end).

    `path` is checked first (pimdram._atomic.output_path: a regular or new file, none of
    `inputs`). A full disk (or any failed write) is an OutputError at the first write that
    meets it, never a crash: HDF5 writes through a GuardedFile. SIGINT and SIGTERM wait for
    the end of an HDF5 call (pimdram._signals), and a pending one stops the commit.
    """

    def __init__(self, path, attrs, overwrite=False, inputs=()):
        self.path = output_path(path, overwrite=overwrite, inputs=inputs)
        self.overwrite = overwrite
        self.attrs = dict(attrs)
        reserved = [k for k in self.attrs if k in schema.WRITER_ATTRS]
        if reserved:
            raise StatsContentError(f"root attribute(s) {', '.join(reserved)} are written by pimdram, "
                                    "not by the caller")
        self.temp_path = temp_path_for(self.path)
        self._disk = None
        self._open = False
        try:
            self._disk = GuardedFile(self.temp_path)
            self._file = h5py.File(self._disk, "w")
            self._open = True
            with self._guard():
                self._tables = self._file.create_group(schema.TABLES_GROUP, track_order=True)
        except BaseException:
            self.abort()
            raise

    @contextlib.contextmanager
    def _guard(self):
        """Around every HDF5 call: signals wait for its end, and a failed write becomes an
        OutputError once HDF5 is done (it never sees the failure)."""
        with _signals.deferred():
            yield
        self._raise_write_error()

    def _raise_write_error(self):
        if self._disk is not None and self._disk.error is not None:
            exc = self._disk.error
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}")

    # -- tables ------------------------------------------------------------------------------

    def _new_group(self, name, attrs, columns):
        self._check_open()
        check_name("table", name)
        if name in self._tables:
            raise StatsContentError(f"table {name!r} written twice")
        group = self._tables.create_group(name)
        _write_attrs(group, attrs)
        group.attrs[schema.TABLE_ATTR_COLUMNS] = encode_attr(schema.TABLE_ATTR_COLUMNS, list(columns))
        return group

    def write_table(self, name, table):
        """Write a whole `Table` as `/tables/<name>`."""
        if not isinstance(table, Table):
            raise StatsContentError(f"table {name!r}: expected a Table, got {type(table).__name__}")
        with self._guard():
            group = self._new_group(name, table.attrs, table.names)
            n = len(table)
            for column, array in table.columns.items():
                ds = group.create_dataset(column, data=_column_data(array),
                                          dtype=_storage_dtype(array.dtype), **_filters(n, array.dtype))
                ds.attrs[schema.COLUMN_ATTR_UNIT] = table.units[column]

    def append_table(self, name, dtypes, units, attrs=None):
        """Start table `name` with columns `dtypes` (name -> dtype, in order) and `units`;
        returns a `TableWriter` to append chunks to."""
        if not dtypes:
            raise StatsContentError(f"table {name!r}: needs at least one column")
        for column in dtypes:
            check_name("column", column)
            if column not in units:
                raise StatsContentError(f"table {name!r}: no unit given for column {column!r}")
            check_unit(column, units[column])
        extra = [c for c in units if c not in dtypes]
        if extra:
            raise StatsContentError(f"table {name!r}: unit given for unknown column(s) {', '.join(extra)}")
        with self._guard():
            group = self._new_group(name, attrs or {}, dtypes)
            return TableWriter(group, dtypes, units, self._guard)

    # -- finishing ---------------------------------------------------------------------------

    def _check_open(self):
        if not self._open:
            raise StatsContentError(f"stats writer for {self.path} is already closed")

    def _root_attrs(self):
        missing = [k for k in schema.REQUIRED_ATTRS if k not in self.attrs]
        if missing:
            raise StatsContentError(f"missing root attribute(s) {', '.join(missing)}")
        attrs = {
            schema.ATTR_FORMAT: schema.FORMAT,
            schema.ATTR_FORMAT_VERSION: list(schema.FORMAT_VERSION),
            schema.ATTR_GENERATED_BY: f"pimdram {__version__}",
            schema.ATTR_CREATION_DATE: datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds"),
        }
        attrs.update(self.attrs)
        return attrs

    def commit(self):
        """Finish the file and move it to its final name (the only way it ever gets there)."""
        self._check_open()
        try:
            with self._guard():
                _write_attrs(self._file, self._root_attrs())
                self._file.close()
                self._open = False
                self._disk.fsync()
            self._disk.close()
            publish(self.temp_path, self.path, self.overwrite)
        except BaseException:
            self.abort()
            raise

    def abort(self):
        """Discard everything written so far; the final path is left untouched."""
        with _signals.deferred():
            if self._open:
                self._open = False
                try:
                    self._file.close()
                except Exception:  # closing a broken file must not hide the original error
                    pass
            if self._disk is not None:
                self._disk.close()
            self.temp_path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


def write_stats(path, attrs, tables, overwrite=False):
    """Write a stats file with root attributes `attrs` and `tables` (name -> Table).

    A table's value may also be an iterable of `Table` chunks (same columns, units, attributes
    in each; the first chunk's are used), appended one at a time so a long command log never
    needs to be in memory at once. The file appears under `path` only when complete.
    """
    with StatsWriter(path, attrs, overwrite=overwrite) as writer:
        for name, table in tables.items():
            if isinstance(table, Table):
                writer.write_table(name, table)
                continue
            appender = None
            for chunk in table:
                if not isinstance(chunk, Table):
                    raise StatsContentError(f"table {name!r}: chunks must be Tables, "
                                            f"got {type(chunk).__name__}")
                if appender is None:
                    units = chunk.units
                    appender = writer.append_table(
                        name, {c: a.dtype for c, a in chunk.columns.items()}, units, chunk.attrs)
                elif chunk.units != units:
                    raise StatsContentError(f"table {name!r}: chunks disagree on units")
                appender.append(chunk)
            if appender is None:
                raise StatsContentError(f"table {name!r}: no chunks given (an empty table needs "
                                        "one Table with zero rows, to fix its columns and units)")
    return Path(path)
