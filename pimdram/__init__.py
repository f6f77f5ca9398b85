"""pimdram: a trace-driven, DRAM-command-level simulator for processing-in-memory and LLM inference."""
from ._version import __version__
from .errors import (
    ConfigError,
    ConfigImportWarning,
    FileFormatError,
    OutputExistsError,
    PimdramError,
    PimdramWarning,
    SimulationError,
    SweepError,
    TraceError,
    UsageError,
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
    "UsageError",
    "PimdramWarning",
    "ConfigImportWarning",
    "MemorySystem",
    "Completions",
]


def __getattr__(name):
    # the host-simulator API loads the engine: imported on first use, so `import pimdram` (and the
    # CLI's start-up) stays light
    if name in ("MemorySystem", "Completions"):
        from . import memory_system
        return getattr(memory_system, name)
    raise AttributeError(f"module 'pimdram' has no attribute {name!r}")
