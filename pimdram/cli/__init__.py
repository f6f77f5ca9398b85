"""The `pimdram` command line: a click group whose subcommands live one per module."""
import importlib
import sys
import warnings

import click

from .._version import __version__
from ..errors import Interrupted, PimdramError, PimdramWarning

# subcommand name -> module (under pimdram.cli) that defines `command`
COMMANDS = {
    "replay": "replay",
    "report": "report",
    "check": "check",
    "config": "config",
    "gen": "gen",
    "model": "model",
    "system": "system",
    "sweep": "sweep",
    "plot": "plot",
    "validate": "validate",
    "requests": "requests",
    "serve": "serve",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (fast `--help`, light start)."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        module = COMMANDS.get(name)
        if module is None:
            return None
        return importlib.import_module(f"{__name__}.{module}").command

    def invoke(self, ctx):
        from .._atomic import run_inputs

        try:
            with warnings.catch_warnings(), run_inputs():
                # pimdram's warnings (e.g. what an imported config does not carry over) become one
                # line each on stderr
                warnings.simplefilter("always", PimdramWarning)
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except PimdramError as exc:
            # library errors become one line, no traceback
            raise click.ClickException(str(exc)) from None
        except Interrupted as exc:
            # past click's own KeyboardInterrupt handling (a blank line and "Aborted!"), to main()
            raise _Stopped(exc) from None


class _Stopped(BaseException):
    """Carries an Interrupted from a command to main() unchanged by click."""

    def __init__(self, interrupted):
        super().__init__(str(interrupted))
        self.interrupted = interrupted


_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, PimdramWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pimdram")
def cli():
    """pimdram: DRAM-command-level simulation of processing-in-memory for LLM inference.

    \b
    Typical use:
      pimdram replay traces/example_hbm2.dramsim3 --memory hbm2_2gbps -o out.h5
      pimdram report out.h5
      pimdram check out.h5
      pimdram sweep study.yaml -o study.parquet && pimdram plot throughput study.parquet -o study.png
    """


def main(argv=None):
    """The `pimdram` executable: SIGINT and SIGTERM stop the run at once (an HDF5 write first
    completes), remove its temporary files, leave existing outputs alone, and exit with 128 +
    the signal's number (130, 143)."""
    from .. import _signals

    _signals.install()
    try:
        code = cli.main(args=argv, prog_name="pimdram", standalone_mode=False)
    except _Stopped as exc:
        _interrupted(exc.interrupted.signal_name, exc.interrupted.exit_code)
    except click.Abort as exc:
        # click turns a KeyboardInterrupt (Interrupted is one) into Abort
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, Interrupted):
            _interrupted(cause.signal_name, cause.exit_code)
        _interrupted("SIGINT", 130)
    except Interrupted as exc:
        _interrupted(exc.signal_name, exc.exit_code)
    except KeyboardInterrupt:
        _interrupted("SIGINT", 130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # `pimdram report ... | head`: the reader went away; nothing more to say (and Python's
        # final flush of stdout must not fail either)
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    pending = _signals.pending()
    if pending is not None:     # arrived after the last safe point: still not a success
        import signal
        _interrupted(signal.Signals(pending).name, 128 + pending)
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted(name, code):
    click.echo(f"pimdram: interrupted by {name}", err=True)
    sys.exit(code)
