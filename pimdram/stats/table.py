"""`Table`: equal-length 1-D numpy columns, each with a unit, plus optional table attributes."""
import numpy as np

from .errors import StatsContentError
from . import schema


def _as_column(name, values):
    """`values` as a 1-D numpy array of a storable kind (numbers, bool, str)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise StatsContentError(f"column {name!r}: expected a 1-D array, got shape {array.shape}")
    if array.dtype.kind == "O":
        # an object array is acceptable only if it holds str (e.g. from pandas)
        if not all(isinstance(v, str) for v in array):
            raise StatsContentError(f"column {name!r}: object columns must hold only str")
        array = array.astype(str) if len(array) else np.zeros(0, dtype="U1")
    elif array.dtype.kind == "S":
        array = np.char.decode(array, "utf-8")
    if array.dtype.kind not in schema.COLUMN_KINDS:
        raise StatsContentError(f"column {name!r}: dtype {array.dtype} cannot be stored "
                         "(use bool, integer, float or str)")
    return array


def check_name(what, name):
    """A table or column name must be a non-empty str that is a valid HDF5 link name."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise StatsContentError(f"invalid {what} name {name!r}: use a non-empty string without '/'")


def check_unit(column, unit):
    if not isinstance(unit, str) or not unit.strip():
        raise StatsContentError(f"column {column!r}: unit must be a non-empty string "
                         f"(use '1' for dimensionless quantities and indices), got {unit!r}")


class Table:
    """Equal-length 1-D columns with a unit each, and optional table attributes.

    `columns` maps name -> array-like (order is kept); `units` maps every column name to a unit
    string ("cycle", "count", "B", "B/s", "J", "s", "ns", "1" for dimensionless); `attrs` holds
    table attributes (str, numbers, bools or 1-D lists of them).
    """

    def __init__(self, columns, units, attrs=None):
        if not columns:
            raise StatsContentError("a table needs at least one column")
        self.columns = {}
        for name, values in columns.items():
            check_name("column", name)
            self.columns[name] = _as_column(name, values)
        lengths = {name: len(col) for name, col in self.columns.items()}
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"{n}={k}" for n, k in lengths.items())
            raise StatsContentError(f"columns differ in length: {listing}")
        missing = [n for n in self.columns if n not in units]
        if missing:
            raise StatsContentError(f"no unit given for column(s) {', '.join(missing)}")
        extra = [n for n in units if n not in self.columns]
        if extra:
            raise StatsContentError(f"unit given for unknown column(s) {', '.join(extra)}")
        for name in self.columns:
            check_unit(name, units[name])
        self.units = {name: units[name] for name in self.columns}
        self.attrs = dict(attrs or {})

    def __len__(self):
        return len(next(iter(self.columns.values())))

    def __getitem__(self, name):
        return self.columns[name]

    @property
    def names(self):
        return list(self.columns)

    def __repr__(self):
        return f"Table({len(self)} rows: {', '.join(self.columns)})"


def standard_table(name, columns, *, command_names=(), levels=(), kv_memories=(), attrs=None):
    """A `Table` for standard table `name` with the spec's dtypes and units.

    `columns` must hold exactly the spec's columns (see `schema.standard_columns`); values are
    cast to the spec's dtype, refusing casts that would change a value (e.g. 2**40 into int32,
    or 1.5 into an integer column).
    """
    spec = schema.standard_columns(name, command_names, levels, kv_memories)
    wanted = [c for c, _, _ in spec]
    missing = [c for c in wanted if c not in columns]
    extra = [c for c in columns if c not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unknown {', '.join(extra)}")
        raise StatsContentError(f"table {name!r}: {'; '.join(parts)}")
    attrs = dict(attrs or {})
    absent = [a for a in schema.standard_table_attrs(name) if a not in attrs]
    if absent:
        raise StatsContentError(f"table {name!r}: missing table attribute(s) {', '.join(absent)}")
    if name == schema.LATENCY_HISTOGRAM:
        attrs.setdefault("kind-names", list(schema.LATENCY_KINDS))
    if name == schema.COMMAND_LOG and command_names:
        attrs.setdefault("names", list(command_names))
    cast = {c: cast_column(c, columns[c], dtype) for c, dtype, _ in spec}
    return Table(cast, {c: unit for c, _, unit in spec}, attrs)


def cast_column(name, values, dtype):
    """`values` as `dtype`, or StatsContentError if the cast would change any value."""
    array = _as_column(name, values)
    dtype = np.dtype(dtype)
    if array.dtype == dtype or np.can_cast(array.dtype, dtype, "safe"):
        return array.astype(dtype, copy=False)
    if dtype.kind == "U" or array.dtype.kind == "U":
        raise StatsContentError(f"column {name!r}: cannot store {array.dtype} values as {dtype}")
    with np.errstate(invalid="ignore", over="ignore"):
        result = array.astype(dtype)
        same = np.array_equal(result, array, equal_nan=dtype.kind == "f" and array.dtype.kind == "f")
    if not same:
        raise StatsContentError(f"column {name!r}: values do not fit {dtype} "
                         f"(got {array.dtype}, range {array.min()}..{array.max()})")
    return result
