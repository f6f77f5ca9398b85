"""The pimdram.stats HDF5 results format: schema, writer, reader and report (see docs/stats-format.md)."""
from .errors import MissingTableError, StatsContentError, StatsFileNotFoundError
from .reader import StatsFile, open_stats
from .schema import FORMAT, FORMAT_VERSION, STANDARD_TABLES, standard_columns
from .table import Table, standard_table
from .writer import StatsWriter, TableWriter, write_stats

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "STANDARD_TABLES",
    "MissingTableError",
    "StatsContentError",
    "StatsFile",
    "StatsFileNotFoundError",
    "StatsWriter",
    "Table",
    "TableWriter",
    "open_stats",
    "standard_columns",
    "standard_table",
    "write_stats",
]
