"""Strict access to nested config mappings: unknown keys and bad values name the dotted path, and
whether the value came from a file or from `--set`."""
import math

from ..errors import ConfigError

_MISSING = object()

#: the largest whole number a config value may hold unless its reader allows more: the engine's
#: counts, indices and sizes are 32-bit
INT32_MAX = 2**31 - 1


class Section:
    """A view of one mapping in a config file that remembers its dotted path.

    Read keys with get()/require()/number(); call done() when finished so any key nobody read
    is reported as unknown (silently ignored keys are a classic source of wrong results).
    `overridden` holds the dotted paths set with `--set`: an error about one of them (or a key
    under one) says so instead of blaming the file.
    """

    def __init__(self, data, path="", source=None, overridden=()):
        self.path = path
        self.source = source
        self.overridden = frozenset(overridden)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self._where(path)}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self._used = set()

    def _from_set(self, dotted):
        parts = str(dotted).split(".")
        return any(".".join(parts[:i]) in self.overridden for i in range(1, len(parts) + 1))

    def _where(self, dotted):
        if dotted and self._from_set(dotted):
            return f"--set {dotted}"
        if self.source and dotted:
            return f"{self.source}: {dotted}"
        return str(self.source or dotted or "config")

    def dotted(self, key):
        return f"{self.path}.{key}" if self.path else str(key)

    def error(self, key, message):
        return ConfigError(f"{self._where(self.dotted(key))}: {message}")

    def child(self, data, key):
        """A Section for `data` found at `key` (e.g. "levels[2]") under this one."""
        return Section(data, self.dotted(key), self.source, self.overridden)

    def __contains__(self, key):
        return key in self.data

    def keys(self):
        return self.data.keys()

    def get(self, key, default=None, types=None):
        self._used.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            return default
        numeric = types in (int, float, (int, float))
        if types is not None and not isinstance(value, types) or isinstance(value, bool) and numeric:
            hint = ""
            if numeric and isinstance(value, str) and _reads_as_number(value):
                hint = (" (YAML reads exponent notation without a dot as text: write e.g. 1.0e+9 "
                        "or the digits)")
            raise self.error(key, f"expected {_type_names(types)}, got {value!r}{hint}")
        return value

    def require(self, key, types=None):
        if key not in self.data:
            raise self.error(key, "missing")
        return self.get(key, types=types)

    def number(self, key, default=_MISSING, positive=False, integer=False, minimum=None, maximum=None):
        """A finite number, optionally whole, positive and within [minimum, maximum]. Whole numbers
        are at most INT32_MAX unless `maximum` says otherwise."""
        if default is _MISSING and key not in self.data:
            raise self.error(key, "missing")
        value = self.get(key, default, types=(int, float))
        if value is None or (value is default and key not in self.data):
            return value
        return self.check_number(key, value, positive=positive, integer=integer, minimum=minimum,
                                 maximum=maximum)

    def check_number(self, key, value, positive=False, integer=False, minimum=None, maximum=None):
        """`value` (of `key`) checked as number() checks it; returns it (an int when whole)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        if integer and int(value) != value:
            raise self.error(key, f"expected a whole number, got {value!r}")
        if positive and value <= 0:
            raise self.error(key, f"must be positive, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must not be negative, got {value!r}" if minimum == 0
                             else f"must be at least {minimum}, got {value!r}")
        if maximum is None and integer:
            maximum = INT32_MAX
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value!r}")
        return int(value) if integer else value

    def choice(self, key, choices, default=_MISSING):
        if default is _MISSING and key not in self.data:
            raise self.error(key, "missing")
        value = self.get(key, default)
        if value not in choices:
            raise self.error(key, f"expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value

    def section(self, key, required=False):
        if required and key not in self.data:
            raise self.error(key, "missing")
        self._used.add(key)
        return Section(self.data.get(key) or {}, self.dotted(key), self.source, self.overridden)

    def done(self):
        unknown = [k for k in self.data if k not in self._used]
        if unknown:
            raise self.error(unknown[0], "unknown key" + (f" (also: {', '.join(map(str, unknown[1:]))})" if len(unknown) > 1 else ""))


def _reads_as_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _type_names(types):
    if isinstance(types, tuple):
        return " or ".join(_type_name(t) for t in types)
    return _type_name(types)


def _type_name(t):
    return {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping", bool: "true/false"}.get(t, t.__name__)
