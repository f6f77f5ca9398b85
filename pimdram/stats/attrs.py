"""Conversion of attribute values between Python and HDF5 (str, numbers, bools, 1-D lists of them)."""
import numbers

import h5py
import numpy as np

from .errors import StatsContentError

_STR = h5py.string_dtype("utf-8")


def encode_attr(name, value):
    """`value` as something h5py stores faithfully: UTF-8 strings, int64/float64/bool arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    if isinstance(value, numbers.Integral):
        if not -2**63 <= int(value) < 2**63:
            raise StatsContentError(f"attribute {name!r}: {value} does not fit in 64 bits")
        return np.int64(value)
    if isinstance(value, numbers.Real):
        return np.float64(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value.tolist() if isinstance(value, np.ndarray) else value)
        if np.ndim(value) != 1 and not (isinstance(value, (list, tuple)) and not items):
            raise StatsContentError(f"attribute {name!r}: lists must be 1-D")
        if all(isinstance(v, str) for v in items):   # also the empty list
            return np.array(items, dtype=_STR)
        if all(isinstance(v, (bool, np.bool_)) for v in items):
            return np.array(items, dtype=bool)
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
            if any(not -2**63 <= int(v) < 2**63 for v in items):
                raise StatsContentError(f"attribute {name!r}: a value does not fit in 64 bits")
            return np.array(items, dtype=np.int64)
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in items):
            return np.array(items, dtype=np.float64)
        raise StatsContentError(f"attribute {name!r}: list items must all be str, all bool or all numbers")
    raise StatsContentError(f"attribute {name!r}: cannot store a {type(value).__name__} "
                     "(use str, int, float, bool or a 1-D list of them)")


def decode_attr(value):
    """An attribute as read by h5py, as plain Python (str, int, float, bool, list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OS":
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
