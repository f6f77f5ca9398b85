"""Errors of the stats layer; each is a pimdram.errors class (and a matching builtin where natural)."""
from ..errors import FileFormatError, PimdramError


class StatsContentError(PimdramError, ValueError):
    """What was handed to the stats writer is malformed (ragged columns, missing unit, bad attribute)."""


class MissingTableError(FileFormatError, KeyError):
    """A stats file has no table (or column) of the requested name."""

    __str__ = Exception.__str__   # KeyError would quote the message


class StatsFileNotFoundError(PimdramError, FileNotFoundError):
    """The stats file to read does not exist."""

    __str__ = Exception.__str__   # OSError's str expects (errno, strerror)
