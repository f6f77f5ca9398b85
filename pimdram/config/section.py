"""Strict access to nested config mappings: unknown keys and bad values name the dotted path."""
from ..errors import ConfigError

_MISSING = object()


class Section:
    """A view of one mapping in a config file that remembers its dotted path.

    Read keys with get()/require(); call done() when finished so any key nobody read is
    reported as unknown (silently ignored keys are a classic source of wrong results).
    """

    def __init__(self, data, path="", source=None):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self._where(source, path)}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.source = source
        self._used = set()

    @staticmethod
    def _where(source, path):
        if source and path:
            return f"{source}: {path}"
        return str(source or path or "config")

    def dotted(self, key):
        return f"{self.path}.{key}" if self.path else str(key)

    def error(self, key, message):
        return ConfigError(f"{self._where(self.source, self.dotted(key))}: {message}")

    def __contains__(self, key):
        return key in self.data

    def keys(self):
        return self.data.keys()

    def get(self, key, default=None, types=None):
        self._used.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            return default
        if types is not None and not isinstance(value, types) or isinstance(value, bool) and types in (int, float, (int, float)):
            raise self.error(key, f"expected {_type_names(types)}, got {value!r}")
        return value

    def require(self, key, types=None):
        if key not in self.data:
            raise self.error(key, "missing")
        return self.get(key, types=types)

    def number(self, key, default=_MISSING, positive=False, integer=False):
        if default is _MISSING and key not in self.data:
            raise self.error(key, "missing")
        value = self.get(key, default, types=(int, float))
        if value is None:
            return None
        if integer and int(value) != value:
            raise self.error(key, f"expected a whole number, got {value!r}")
        if positive and value <= 0:
            raise self.error(key, f"must be positive, got {value!r}")
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
        return Section(self.data.get(key) or {}, self.dotted(key), self.source)

    def done(self):
        unknown = [k for k in self.data if k not in self._used]
        if unknown:
            raise self.error(unknown[0], "unknown key" + (f" (also: {', '.join(map(str, unknown[1:]))})" if len(unknown) > 1 else ""))


def _type_names(types):
    if isinstance(types, tuple):
        return " or ".join(_type_name(t) for t in types)
    return _type_name(types)


def _type_name(t):
    return {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping", bool: "true/false"}.get(t, t.__name__)
