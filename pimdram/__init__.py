"""pimdram: a trace-driven, DRAM-command-level simulator for processing-in-memory and LLM inference."""
from ._version import __version__
from .errors import (
    ConfigError,
    FileFormatError,
    OutputExistsError,
    PimdramError,
    SimulationError,
    SweepError,
    TraceError,
    VersionTooNewError,
    VersionTooOldError,
    WorkloadError,
)

__all__ = [
    "__version__",
    "PimdramError",
    "ConfigError",
    "TraceError",
    "FileFormatError",
    "VersionTooOldError",
    "VersionTooNewError",
    "WorkloadError",
    "SimulationError",
    "SweepError",
    "OutputExistsError",
]
