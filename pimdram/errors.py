"""The one exception hierarchy of pimdram: every error a user can cause is a PimdramError."""


class PimdramError(Exception):
    """Base class of all errors pimdram raises on bad input or a failed run."""


class ConfigError(PimdramError):
    """A configuration (memory standard, PIM design, model, system) is invalid.

    The message names the file and the dotted path of the offending key.
    """


class TraceError(PimdramError):
    """A trace (request or kernel trace) is malformed; the message names file and line."""


class FileFormatError(PimdramError):
    """A file is not of the expected format (wrong magic string, missing parts)."""


class VersionTooOldError(FileFormatError):
    """A file's format version is older than this pimdram can read."""


class VersionTooNewError(FileFormatError):
    """A file's format version is newer than this pimdram can read; upgrade pimdram."""


class WorkloadError(PimdramError):
    """A model or workload is invalid or does not fit the system."""


class SimulationError(PimdramError):
    """The engine stopped with an error (a deadlock, an illegal program)."""


class UsageError(PimdramError, ValueError):
    """A call of the Python API that cannot be done: an argument out of range (time going back, a
    negative tick, an address that does not fit 64 bits) or an object used after close()."""


class SweepError(PimdramError):
    """A sweep file is invalid, or a sweep cannot start (no executor, no cluster); the message
    names the file and key, or what to install or fix."""


class OutputError(PimdramError):
    """An output cannot be written where asked: the path is empty, a directory, a device or pipe,
    one of the run's inputs, in a missing or read-only directory, or the disk filled up while
    writing. Nothing is left under the output's name or beside it."""


class OutputExistsError(OutputError):
    """The output file exists and overwriting was not requested."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT: Ctrl-C; SIGTERM: kill, timeout, a batch queue).

    Not a PimdramError: nothing was wrong with the input. A KeyboardInterrupt, so that code that
    catches Exception lets it through; the CLI exits with 128 + the signal's number."""

    def __init__(self, signum):
        import signal
        self.signum = int(signum)
        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        self.signal_name = name
        super().__init__(f"interrupted by {name}")

    @property
    def exit_code(self):
        return 128 + self.signum


class PimdramWarning(UserWarning):
    """Base class of the warnings pimdram gives (the CLI prints them as one line each)."""


class ConfigImportWarning(PimdramWarning):
    """An imported configuration (DRAMsim3 .ini, Ramulator 2 YAML) has keys pimdram cannot model or
    that the other simulator itself ignores; the message lists them all."""
